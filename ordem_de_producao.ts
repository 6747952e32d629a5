/**
 * OrdemDeProducao: consumes production-order requests, writes one production order per RefCode
 * to the ledger, retries failures after a growing delay and dead-letters what keeps failing.
 * Runs until SIGINT/SIGTERM (then finishes in-flight messages and exits 0), or with `--drain`
 * until the work queue and its retries are empty. A lost connection is re-established with
 * backoff, through every URL given, and consuming resumes; it exits 1 only when no broker could be
 * reached for RECONNECT_TIMEOUT_MS, or for an error reconnecting cannot cure (a refused login, a
 * topology declared with other settings, or with `--no-declare` a topology that is missing).
 *
 *   deno task ordem [--prefetch N] [--max-quantity Q] [--ledger PATH] [--drain] [--url amqp://...]
 *
 * Env: RABBITMQ_URL (comma-separated for a cluster), RABBITMQ_CA_FILE, RABBITMQ_CERT_FILE,
 * RABBITMQ_KEY_FILE, RECONNECT_TIMEOUT_MS, QUEUE_TYPE, DELIVERY_LIMIT, TOPOLOGY_PREFIX, TOPOLOGY_DECLARE, RETRY_BACKEND, RETRY_MAX, RETRY_DELAY_MS, RETRY_STRATEGY,
 * RETRY_MAX_DELAY_MS, RETRY_JITTER, PREFETCH, MAX_QUANTITY, LEDGER_PATH, LEDGER_URL, INSTANCE_ID,
 * ORDEM_DRAIN, CONFIRM_TIMEOUT_MS, SHUTDOWN_TIMEOUT_MS, HTTP_ENABLED, HTTP_PORT, HTTP_HOST, LOG_LEVEL.
 * `--help` lists every flag. Serves /metrics (Prometheus), /healthz and /readyz on HTTP_PORT
 * (9464) unless `--no-http`.
 *
 * @module
 */

import { type Broker, redactUrl } from "./lib/broker.ts";
import { ordemConfig } from "./lib/config.ts";
import { COMMANDS } from "./lib/options.ts";
import { OrderConsumer } from "./lib/consumer.ts";
import { openLedger } from "./lib/open_ledger.ts";
import { serveHttp } from "./lib/http_server.ts";
import { logger, setupLogging } from "./lib/log.ts";
import { ConsumerMetrics } from "./lib/metrics.ts";
import { EXIT, runCommand } from "./lib/main.ts";
import { keepConnected } from "./lib/reconnect.ts";
import { prepareTopology } from "./lib/topology.ts";

runCommand(COMMANDS.ordem, async (cl, signal) => {
  const config = ordemConfig(cl);
  setupLogging({ level: config.logLevel, fields: { instanceId: config.instanceId } });
  const log = logger("ordem");

  await using ledger = await openLedger(config.ledgerUrl, {
    instanceId: config.instanceId,
    retryForMs: config.reconnectTimeoutMs,
    signal,
  });
  const running: { consumer?: OrderConsumer | undefined; broker?: Broker | undefined } = {};
  const connected = () => running.broker?.isOpen ?? false;
  const metrics = new ConsumerMetrics({
    instanceId: config.instanceId,
    inFlight: () => running.consumer?.inFlight ?? 0,
    connected,
  });
  await using http = config.http
    ? await serveHttp({
      ...config.http,
      registry: metrics.registry,
      ready: () => connected() && (running.consumer?.ready ?? false),
    })
    : undefined;
  if (http) log.info("serving /metrics, /healthz and /readyz", { port: http.port });
  const stopped = new Promise<"signal">((resolve) => {
    if (signal.aborted) resolve("signal");
    signal.addEventListener("abort", () => resolve("signal"), { once: true });
  });
  let deliveries = 0;
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
    await prepareTopology(broker, config.topology, config);
    const consumer = running.consumer = await OrderConsumer.start({
      broker,
      topology: config.topology,
      ledger,
      policy: config.policy,
      maxQuantity: config.maxQuantity,
      prefetch: config.prefetch,
      confirmTimeoutMs: config.confirmTimeoutMs,
      onOutcome: metrics.observe,
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
      ]);
      log.info("stopping", { why });
      return why;
    } finally {
      // In-flight deliveries finish first (their acks may fail: the broker then redelivers them,
      // and the ledger turns a second production order into a duplicate).
      await consumer.stop(config.shutdownTimeoutMs);
      deliveries += consumer.deliveries;
      running.consumer = undefined;
    }
  }).catch((error) => {
    if (signal.aborted) return "signal" as const;
    throw error;
  });
  log.info("stopped", { why, deliveries });
  return EXIT.ok;
});
