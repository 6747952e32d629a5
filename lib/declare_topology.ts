/**
 * What a service does with its topology on the broker: declares it (or, with `--no-declare`,
 * checks that someone else did), refuses a retry backend the broker cannot run, and deletes it
 * (tests, the demo). The names and arguments come from lib/topology.ts; this file spells none.
 *
 * @module
 */

import type { Channel } from "amqplib";
import type { Broker } from "./broker.ts";
import { describeError, errorCode, FatalError, REPLY_CODE, replyCode } from "./errors.ts";
import { logger } from "./log.ts";
import {
  DELAYED_MESSAGE_PLUGIN,
  NO_DELAYED_MESSAGE_PLUGIN_FROM,
  pluginBackendRuns,
  queueDeclarations,
  type Topology,
} from "./topology.ts";
/**
 * Stops the plugin backend on RabbitMQ 4.3 and later, from the version the connection reported
 * and before anything is sent: declaring an `x-delayed-message` exchange on such a node, with a
 * plugin built for it, can take the node down.
 *
 * @throws {FatalError} with code `plugin_unsupported`, naming the alternative.
 */
export function refuseUnsupportedBackend(broker: Broker, topo: Topology): void {
  if (topo.backend !== "plugin" || pluginBackendRuns(broker.serverVersion)) return;
  throw new FatalError(
    `--retry-backend plugin cannot run on RabbitMQ ${broker.serverVersion} at ${broker.safeUrl}: ` +
      `the delayed-message plugin (${DELAYED_MESSAGE_PLUGIN}) does not work on RabbitMQ ` +
      `${NO_DELAYED_MESSAGE_PLUGIN_FROM} and later (it keeps delayed messages in Mnesia, which ` +
      `${NO_DELAYED_MESSAGE_PLUGIN_FROM} removed; declaring its exchange there can take the node ` +
      `down), so nothing was declared. Use --retry-backend ttl (retry queues with a TTL, any ` +
      `RabbitMQ): docs/migration.md moves a running fleet off the plugin`,
    { code: "plugin_unsupported" },
  );
}

/**
 * Declares the exchanges, queues and bindings of a topology (all durable). Declaring what exists
 * with the same settings is a no-op, so both services call it at start-up.
 *
 * @throws {FatalError} with a clear message when the plugin backend is asked of RabbitMQ 4.3 or
 * later (`plugin_unsupported`, before anything is declared) or of a broker without the
 * delayed-message plugin (`plugin_missing`), or when an object exists with other settings.
 */
export async function declareTopology(broker: Broker, topo: Topology): Promise<void> {
  refuseUnsupportedBackend(broker, topo);
  let channel: Channel | undefined;
  /** The exchange or queue being declared, for the error: their names never coincide. */
  let declaring: string | undefined;
  try {
    channel = await broker.channel();
    declaring = topo.exchange;
    await channel.assertExchange(topo.exchange, topo.exchangeType, {
      durable: true,
      ...(topo.exchangeType === "x-delayed-message"
        ? { arguments: { "x-delayed-type": "direct" } }
        : {}),
    });
    declaring = topo.deadLetterExchange;
    await channel.assertExchange(topo.deadLetterExchange, "direct", { durable: true });
    for (const queue of queueDeclarations(topo)) {
      declaring = queue.name;
      await channel.assertQueue(queue.name, { durable: true, arguments: { ...queue.arguments } });
    }
    declaring = undefined;
    await channel.bindQueue(topo.queue, topo.exchange, topo.routingKey);
    await channel.bindQueue(topo.deadLetterQueue, topo.deadLetterExchange, topo.routingKey);
    await channel.close();
  } catch (error) {
    const explained = broker.explain(error);
    const code = replyCode(explained);
    if (
      declaring === topo.exchange && topo.exchangeType === "x-delayed-message" &&
      await unknownExchangeType(broker, topo.exchange, code)
    ) {
      throw new FatalError(
        `the broker at ${broker.safeUrl} lacks the delayed-message plugin (${DELAYED_MESSAGE_PLUGIN}) ` +
          `that --retry-backend plugin needs: enable it with ` +
          `"rabbitmq-plugins enable ${DELAYED_MESSAGE_PLUGIN}", or use --retry-backend ttl`,
        { cause: explained, code: "plugin_missing" },
      );
    }
    if (code === REPLY_CODE.preconditionFailed && declaring === topo.deadLetterQueue) {
      throw new FatalError(
        `the dead-letter queue ${topo.deadLetterQueue} exists with other arguments ` +
          `(${explained.message}); a quorum DLQ declared by an earlier version carries a ` +
          `delivery limit, and every look at a dead letter spends a delivery of it until the ` +
          `broker drops the letter: move its letters out, delete it and start again ` +
          `(docs/operations.md, "A DLQ with a delivery limit"); until then, do not look at it ` +
          `with dlq or the console`,
        { cause: explained, code: "topology_mismatch" },
      );
    }
    if (code === REPLY_CODE.preconditionFailed) {
      throw new FatalError(
        `the broker holds an object of this topology with other settings (${explained.message}); ` +
          `move the messages it holds out first (a retry queue may hold orders), then delete it, ` +
          `or use another --prefix, or run on it as it is with --no-declare`,
        { cause: explained, code: "topology_mismatch" },
      );
    }
    throw new Error(`cannot declare the topology of ${topo.exchange}: ${explained.message}`, {
      cause: explained,
    });
  }
}

/**
 * Whether the declare of `exchange` that failed with reply code `code` was refused because the
 * broker does not know its type. RabbitMQ 3.x closes the connection with 503 COMMAND_INVALID;
 * 4.x closes the channel with 406 PRECONDITION_FAILED, the code it also gives an exchange that
 * exists with other settings, so a passive declare tells the two apart: 404, the exchange does
 * not exist, so what was refused is its type.
 */
async function unknownExchangeType(
  broker: Broker,
  exchange: string,
  code: number | undefined,
): Promise<boolean> {
  if (code === REPLY_CODE.commandInvalid) return true;
  if (code !== REPLY_CODE.preconditionFailed || !broker.isOpen) return false;
  let channel: Channel | undefined;
  try {
    channel = await broker.channel();
    await channel.checkExchange(exchange);
    return false;
  } catch (error) {
    return replyCode(error) === REPLY_CODE.notFound;
  } finally {
    await channel?.close().catch(() => {});
  }
}

/**
 * Checks, with passive declares, that every exchange and queue a service needs exists, and
 * declares nothing: for running on a topology someone else declared (the Go Estoque's, during a
 * migration). Passive declares see names only: the doctor checks types, arguments and bindings.
 *
 * @throws {FatalError} with code `topology_missing`, naming every missing object and what to do;
 * with code `plugin_unsupported` for the plugin backend on RabbitMQ 4.3 or later, before any check.
 */
export async function checkTopology(broker: Broker, topo: Topology): Promise<void> {
  refuseUnsupportedBackend(broker, topo);
  const wanted: [kind: "exchange" | "queue", name: string][] = [
    ["exchange", topo.exchange],
    ["exchange", topo.deadLetterExchange],
    ["queue", topo.queue],
    ["queue", topo.deadLetterQueue],
    ...topo.retryTiers.map((tier) => ["queue", tier.queue] as ["queue", string]),
  ];
  const missing: string[] = [];
  for (const [kind, name] of wanted) {
    // A failed passive declare closes its channel: one channel per check.
    const channel = await broker.channel();
    try {
      if (kind === "exchange") await channel.checkExchange(name);
      else await channel.checkQueue(name);
    } catch (error) {
      if (replyCode(error) !== REPLY_CODE.notFound) throw broker.explain(error);
      missing.push(`${kind} ${name}`);
    } finally {
      await channel.close().catch(() => {});
    }
  }
  if (missing.length === 0) return;
  const tiersMissing = topo.retryTiers.some((tier) => missing.includes(`queue ${tier.queue}`));
  throw new FatalError(
    `--no-declare: ${missing.join(", ")} ${missing.length === 1 ? "does" : "do"} not exist on ` +
      `${broker.safeUrl}; declare ${
        missing.length === 1 ? "it" : "them"
      } first (the Go Estoque declares ` +
      `the plugin backend's topology), or run without --no-declare` +
      (tiersMissing
        ? "; the ttl backend's retry queues are this project's own: on the Go services' " +
          "topology use --retry-backend plugin"
        : ""),
    { code: "topology_missing" },
  );
}

/** Declares the topology, or with `declare: false` only checks that it exists. */
export function prepareTopology(
  broker: Broker,
  topo: Topology,
  options: { readonly declare: boolean },
): Promise<void> {
  return options.declare ? declareTopology(broker, topo) : checkTopology(broker, topo);
}

/** A session's topology, prepared: its work may start. */
export interface PreparedTopology {
  /**
   * Rejects when the declare made beside the work finds what a first session's declare would have
   * stopped on (a {@linkcode FatalError}: an object there with other settings, the delayed-message
   * plugin missing): the session must end on it. Never resolves; race it with the session's work.
   */
  readonly failed: Promise<never>;
  /**
   * Resolves once the topology is known to be as declared: at once on a first session, after the
   * declare beside the work on a later one (or once that declare failed for another reason, which
   * is logged). Rejects as {@linkcode PreparedTopology.failed} does. What would put messages into
   * an object the declare may find changed (a retry copy into a retry queue recreated without its
   * TTL) waits for it.
   */
  readonly declared: Promise<void>;
}

const NEVER: Promise<never> = new Promise<never>(() => {});
const SETTLED: Promise<void> = Promise.resolve();

/**
 * How one process prepares the topology on each of its broker sessions, for a service that
 * reconnects. The first session declares it (with `declare: false`, checks it) before the work.
 * A session after a reconnect checks it with passive declares, which only read, starts its work,
 * and declares it again beside the work: on RabbitMQ 3.x declaring what exists (an exchange, a
 * binding) is a Mnesia transaction, and while a cluster node is cut off it waits until the cluster
 * takes that node for down (`net_ticktime`, 60 s by default), which is when a service most likely
 * reconnects. What the check finds missing (deleted while the process was away) is declared before
 * the work, as in a first session; what the declare beside the work finds changed ends the session
 * ({@linkcode PreparedTopology.failed}).
 *
 * @returns the preparation of one session: it resolves when the work may start.
 * @throws what {@linkcode prepareTopology} throws. A declare beside the work that fails for another
 * reason (the connection lost, a refused permission) is logged, not thrown.
 */
export function sessionTopology(
  topo: Topology,
  options: { readonly declare: boolean },
): (broker: Broker) => Promise<PreparedTopology> {
  let declared = false;
  return async (broker) => {
    if (!options.declare || !declared) {
      await prepareTopology(broker, topo, options);
      declared = true;
      return { failed: NEVER, declared: SETTLED };
    }
    try {
      await checkTopology(broker, topo);
    } catch (error) {
      if (errorCode(error) !== "topology_missing") throw error;
      await declareTopology(broker, topo);
      return { failed: NEVER, declared: SETTLED };
    }
    const declaring = declareTopology(broker, topo).catch((error) => {
      if (error instanceof FatalError) throw error;
      // A connection lost is the session's to notice; anything else is worth a look, no more.
      if (broker.isOpen) {
        logger("topology").warning("cannot declare the topology again after a reconnect", {
          exchange: topo.exchange,
          error: describeError(error),
        });
      }
    });
    const failed = declaring.then(() => NEVER);
    // Observed by the session's race and its copies; a session already over lets them go.
    declaring.catch(() => {});
    failed.catch(() => {});
    return { failed, declared: declaring };
  };
}

/**
 * Deletes every exchange and queue of a topology, the control plane's included, messages included.
 * For tests and the demo.
 */
export async function deleteTopology(broker: Broker, topo: Topology): Promise<void> {
  const channel = await broker.channel();
  try {
    for (const queue of queueDeclarations(topo)) {
      await channel.deleteQueue(queue.name);
    }
    await channel.deleteExchange(topo.exchange);
    await channel.deleteExchange(topo.deadLetterExchange);
    await channel.deleteQueue(topo.control.stateQueue);
    await channel.deleteExchange(topo.control.exchange);
  } finally {
    await channel.close().catch(() => {});
  }
}
