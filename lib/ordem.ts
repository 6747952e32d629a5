/**
 * OrdemDeProducao's run: the ledger, the metrics and health endpoint, the operator's pause, and
 * one consuming session per broker connection (declare or check the topology, listen to the control
 * plane and read the pause state, consume until stopped, drained or the connection is lost; then
 * reconnect with backoff through every URL and start another).
 *
 * @module
 */

import type { Broker } from "./broker.ts";
import type { OrdemConfig } from "./config.ts";
import { OrderConsumer } from "./consumer.ts";
import { ControlListener } from "./control_listener.ts";
import { pauseDetail, readiness, serveHttp } from "./http_server.ts";
import { logger } from "./log.ts";
import { ConsumerMetrics } from "./metrics.ts";
import { openLedger } from "./open_ledger.ts";
import { OperatorPause } from "./operator_pause.ts";
import { redactUrl } from "./redact.ts";
import { keepConnected } from "./reconnect.ts";
import { cachedQueueStats, readQueueStats } from "./queue_stats.ts";
import { controlExists, declareControl } from "./control_topology.ts";
import { describeError, errorCode } from "./errors.ts";
import { sessionTopology } from "./declare_topology.ts";
import { settlesWithin } from "./settles_within.ts";
import { DoublingTimeout } from "./backoff.ts";
import { ConsumeUnansweredError } from "./intake.ts";

/**
 * The longest first-delivery timeout a session gets by doubling after its consumers were taken
 * for stuck (a longer one configured stays as it is).
 */
const MAX_FIRST_DELIVERY_TIMEOUT_MS = 60_000;

/**
 * How long a session waits for the control plane (declared, listened to, its state read) before
 * it consumes without it (10 s).
 */
export const CONTROL_START_MS = 10_000;

/** Why OrdemDeProducao stopped, and how many deliveries it took. */
export interface OrdemResult {
  readonly why: "signal" | "drained" | "done";
  readonly deliveries: number;
}

/**
 * Runs OrdemDeProducao until `signal` aborts, or with `--drain` until the queues are empty.
 *
 * @throws the error that stopped it for good: a ledger that cannot be opened, a fatal broker
 * error, or no broker for `reconnectTimeoutMs`.
 */
export async function runOrdem(config: OrdemConfig, signal: AbortSignal): Promise<OrdemResult> {
  const log = logger("ordem");
  await using ledger = await openLedger(config.ledgerUrl, {
    instanceId: config.instanceId,
    retryForMs: config.reconnectTimeoutMs,
    signal,
  });
  const running: { consumer?: OrderConsumer | undefined; broker?: Broker | undefined } = {};
  const connected = () => running.broker?.isOpen ?? false;
  const inFlight = () => running.consumer?.inFlight ?? 0;
  // The operator's pause outlives sessions: a session's consumer starts paused when it holds.
  const pause = new OperatorPause();
  /** Whether a session of this process read the pause state from the control plane. */
  let stateKnown = false;
  const metrics = new ConsumerMetrics({
    instanceId: config.instanceId,
    inFlight,
    connected,
    pause: () => pause.state,
    queues: cachedQueueStats(() =>
      running.broker?.isOpen ? readQueueStats(running.broker, config.topology) : undefined
    ),
  });
  await using http = config.http
    ? await serveHttp({
      ...config.http,
      registry: metrics.registry,
      ready: readiness(running),
      detail: pauseDetail(() => pause.state, inFlight),
    })
    : undefined;
  if (http) log.info("serving /metrics, /healthz and /readyz", { port: http.port });
  /**
   * Declares the control plane (or with `--no-declare` checks it exists) and listens to it: the
   * pause state read and applied before this returns. Without one (a topology someone else
   * declared), or with one that exists with other settings, this instance cannot be paused: it
   * says so and runs on, rather than the whole fleet refusing to start over the control plane.
   */
  const listenToControl = async (broker: Broker): Promise<ControlListener | undefined> => {
    const topo = config.topology;
    if (config.declare) {
      try {
        await declareControl(broker, topo);
      } catch (error) {
        // A connection lost is the session's to handle; anything else (other settings, a user
        // not allowed to declare it) is the control plane's alone.
        if (!broker.isOpen) throw error;
        const mismatch = errorCode(error) === "topology_mismatch";
        log.error(
          mismatch
            ? "the control plane exists with other settings: this instance cannot be paused"
            : "cannot declare the control plane: this instance cannot be paused",
          {
            exchange: topo.control.exchange,
            queue: topo.control.stateQueue,
            error: describeError(error),
            remedy: mismatch
              ? "delete the state queue (note the state with ctl status first), then pause or " +
                "resume again, and restart the instances"
              : "see docs/operations.md, Pause and resume",
          },
        );
        return undefined;
      }
    } else if (!(await controlExists(broker, topo))) {
      log.warning("no control plane on this broker: this instance cannot be paused", {
        exchange: topo.control.exchange,
        remedy: "a deno task ctl pause or resume declares it; restart the instances after",
      });
      return undefined;
    }
    return await ControlListener.start({
      broker,
      topology: topo,
      name: config.instanceId,
      onState: (state) => {
        stateKnown = true;
        return pause.apply(state);
      },
      answer: () => ({
        instanceId: config.instanceId,
        paused: pause.paused,
        seq: pause.state.seq,
        consuming: running.consumer?.consuming ?? false,
        inFlight: inFlight(),
        at: new Date().toISOString(),
      }),
    });
  };
  /**
   * {@linkcode listenToControl}, bounded by {@linkcode CONTROL_START_MS}: a control plane that does
   * not answer (the node holding its classic state queue is down, its lock held) or fails must not
   * keep the instance from its orders. It then consumes as it last knew (paused or not; a process
   * just started, not paused), cannot be paused this session, and says so; a later session (after
   * a reconnect) tries again.
   */
  const listenWithin = async (broker: Broker): Promise<ControlListener | undefined> => {
    const listening = listenToControl(broker);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((resolve) => {
      timer = setTimeout(() => resolve("late"), CONTROL_START_MS);
    });
    try {
      const first = await Promise.race([listening, late]);
      if (first !== "late") return first;
      // A listener that comes after all is let go at once: this session runs without one.
      listening.then((listener) => listener?.close(), () => {});
      log.error(
        "the control plane did not answer: this instance runs on as it last knew and " +
          "cannot be paused this session",
        {
          paused: pause.paused,
          waitedMs: CONTROL_START_MS,
          queue: config.topology.control.stateQueue,
          remedy: "see docs/operations.md, Pause and resume",
        },
      );
      return undefined;
    } catch (error) {
      if (!broker.isOpen) throw error; // the connection's loss is the session's to handle
      log.error(
        "cannot listen to the control plane: this instance runs on as it last knew and " +
          "cannot be paused this session",
        {
          paused: pause.paused,
          error: describeError(error),
          remedy: "see docs/operations.md, Pause and resume",
        },
      );
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  };
  const stopped = new Promise<"signal">((resolve) => {
    if (signal.aborted) resolve("signal");
    signal.addEventListener("abort", () => resolve("signal"), { once: true });
  });
  let deliveries = 0;
  /** The consumer's first-delivery timeout this session: doubled after each taken for stuck. */
  const firstDelivery = new DoublingTimeout(
    config.firstDeliveryTimeoutMs,
    MAX_FIRST_DELIVERY_TIMEOUT_MS,
  );
  const prepareTopology = sessionTopology(config.topology, config);
  // One session per connection: declare, consume until stopped, drained or the connection is
  // lost; then keepConnected reconnects (with backoff, through every URL) and starts another.
  const why = await keepConnected({
    urls: config.urls,
    connect: { name: `ordem ${config.instanceId}`, tls: config.tls },
    signal,
    giveUpAfterMs: config.reconnectTimeoutMs,
    onReconnect: () => metrics.reconnects.inc(),
  }, async (broker) => {
    running.broker = broker;
    const topology = await prepareTopology(broker);
    // The first session listens before it consumes: a fleet paused before this process started
    // must take nothing. A later one consumes at once as it last knew and listens beside it: a
    // listener binds a queue (a Mnesia transaction on 3.x, waiting on a cut-off node until the
    // cluster takes it for down), and a pause made while this process was away reaches it when
    // its listener has read the state (docs/operations.md, Pause and resume).
    const listening = listenWithin(broker);
    listening.catch(() => {}); // its failure is the session's, through the race below
    if (!stateKnown) await listening;
    const consumer = running.consumer = await OrderConsumer.start({
      broker,
      topology: config.topology,
      ledger,
      policy: config.policy,
      maxQuantity: config.maxQuantity,
      prefetch: config.prefetch,
      prefetchBytes: config.prefetchBytes,
      confirmTimeoutMs: config.confirmTimeoutMs,
      firstDeliveryTimeoutMs: firstDelivery.ms,
      onOutcome: metrics.observe,
      onCriticalTime: metrics.observeCriticalTime,
      ledgerName: redactUrl(config.ledgerUrl),
      onLedger: metrics.observeLedger,
      pause,
      topologyDeclared: topology.declared,
    }).catch((error) => {
      // Its start went unanswered (a node that still names a cut-off leader): the session ends,
      // the next consumes on a new connection, and gives its start twice as long.
      if (error instanceof ConsumeUnansweredError) firstDelivery.tooShort();
      throw error;
    });
    log.info("ready", {
      instanceId: config.instanceId,
      broker: broker.safeUrl,
      backend: config.topology.backend,
      queueType: config.topology.queueType,
      ledger: redactUrl(config.ledgerUrl),
    });
    try {
      const drained = config.drain
        ? consumer.drained({ signal }).then(() => "drained" as const)
        : new Promise<never>(() => {});
      const why = await Promise.race([
        stopped,
        drained,
        consumer.done.then(() => "done" as const),
        topology.failed, // the topology changed while this process was away: it stops
        // A listener that lost its channel would miss pauses: the session ends and starts again.
        listening.then((control) =>
          control ? control.done.then(() => "done" as const) : new Promise<never>(() => {})
        ),
      ]);
      log.info("stopping", { why });
      return why;
    } finally {
      // In-flight deliveries finish first (their acks may fail: the broker then redelivers them,
      // and the ledger turns a second production order into a duplicate).
      // A consumer taken for stuck holds no delivery: its channel, which may not answer the
      // cancel, gets a second.
      await consumer.stop(consumer.stuck ? 1_000 : config.shutdownTimeoutMs);
      deliveries += consumer.deliveries;
      // Taken for stuck again and again (a broker slow to send a first delivery, or a standby
      // consumer of a single-active-consumer queue): each next session waits twice as long.
      if (consumer.stuck) firstDelivery.tooShort();
      else if (consumer.deliveries > 0) firstDelivery.sufficed();
      running.consumer = undefined;
      // The listener is closed if it came; one still on its way gets a second, then goes with
      // the connection.
      await settlesWithin(listening.then((control) => control?.close()), 1_000);
    }
  }).catch((error) => {
    if (signal.aborted) return "signal" as const;
    throw error;
  });
  log.info("stopped", { why, deliveries });
  return { why, deliveries };
}
