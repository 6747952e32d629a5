/**
 * Every exchange, queue and routing key of the services, as data; lib/declare_topology.ts
 * declares them from it. No other file spells a name.
 *
 * ```text
 *   Estoque ──create──▶ [productionorder] ──create──▶ (create.productionorder) ──▶ OrdemDeProducao
 *                            ▲                                                      │  │
 *        ttl backend: expires│back  (create.productionorder.retry.<ms>) ◀── retry ──┘  │
 *                                                                                      │
 *              [productionorder.dlx] ──create──▶ (create.productionorder.dlx) ◀── dead letter
 *
 *   ctl, console ──state──▶ [productionorder.control] ──state──▶ (productionorder.control.state)
 *                                   │ state, ping                       last pause or resume
 *                                   ▼
 *                  (productionorder.control.<instance>.<id>)  one per OrdemDeProducao, exclusive
 * ```
 *
 * @module
 */

import { serverVersionAtLeast } from "./server_version.ts";

/** How retries wait: queue TTLs (any RabbitMQ) or the delayed-message plugin. */
export type RetryBackend = "ttl" | "plugin";

/** The kind of queue: classic (one node), or quorum (replicated on a cluster with Raft). */
export type QueueType = "classic" | "quorum";

/** The delivery limit of quorum queues when none is given. */
export const DEFAULT_DELIVERY_LIMIT = 20;

/** One retry tier of the TTL backend: a queue whose messages expire back to the work queue. */
export interface RetryTier {
  /** The delay of this tier, in milliseconds (the queue's `x-message-ttl`). */
  readonly delayMs: number;
  /** The queue's name. */
  readonly queue: string;
}

/** The names and settings of one deployment's broker objects. */
export interface Topology {
  /** The prefix every name starts with; empty for the names the Go services use. */
  readonly prefix: string;
  /** The retry backend the topology is built for. */
  readonly backend: RetryBackend;
  /** The exchange Estoque publishes to (`productionorder`). */
  readonly exchange: string;
  /** Its type: `direct`, or `x-delayed-message` on the plugin backend. */
  readonly exchangeType: "direct" | "x-delayed-message";
  /** The routing key of production-order requests (`create`). */
  readonly routingKey: string;
  /** The work queue (`create.productionorder`). */
  readonly queue: string;
  /** The dead-letter exchange (`productionorder.dlx`). */
  readonly deadLetterExchange: string;
  /** The dead-letter queue (`create.productionorder.dlx`). */
  readonly deadLetterQueue: string;
  /** The retry tiers of the TTL backend, shortest first; empty on the plugin backend. */
  readonly retryTiers: readonly RetryTier[];
  /** The type of every queue. */
  readonly queueType: QueueType;
  /**
   * Quorum queues: how often a message of the work queue or a retry tier may be returned to the
   * queue (a consumer crashed or requeued it) before the broker dead-letters it with reason
   * `delivery_limit`. The DLQ has no limit (see {@linkcode queueDeclarations}).
   */
  readonly deliveryLimit: number;
  /** The control plane: pause and resume reach every OrdemDeProducao through it. */
  readonly control: ControlNames;
}

/**
 * The names of the control plane (lib/control_store.ts, lib/control_listener.ts; declared by
 * lib/control_topology.ts): a direct exchange; a durable queue that keeps the last pause or resume
 * (`x-max-length: 1`) for instances that start later; a lock that makes reading and changing that
 * state one at a time; and one exclusive queue per running instance.
 */
export interface ControlNames {
  /** The direct exchange of control messages (`productionorder.control`). */
  readonly exchange: string;
  /** The routing key of pause and resume (`state`): the state queue and every instance get it. */
  readonly stateKey: string;
  /** The routing key of "who is there?" (`ping`): only running instances get it. */
  readonly pingKey: string;
  /** The durable queue holding the last pause or resume (`productionorder.control.state`). */
  readonly stateQueue: string;
  /**
   * The exclusive queue whose holder alone reads or changes the state
   * (`productionorder.control.lock`); the broker frees it when its holder's connection closes.
   */
  readonly lockQueue: string;
  /** What every per-process queue of the control plane starts with (`productionorder.control.`). */
  readonly queuePrefix: string;
}

/** A topology option that is out of range; `option` names it, for error messages. */
export class TopologyOptionError extends RangeError {
  /** The option at fault. */
  readonly option: keyof TopologyOptions;

  /** Creates the error for `option`. */
  constructor(option: keyof TopologyOptions, message: string) {
    super(message);
    this.name = "TopologyOptionError";
    this.option = option;
  }
}

/** Options for {@linkcode topology}. */
export interface TopologyOptions {
  /**
   * Put before every name, so several deployments or tests can share a broker.
   * @default {""}
   */
  prefix?: string;
  /**
   * The retry backend.
   * @default {"ttl"}
   */
  backend?: RetryBackend;
  /** The distinct retry delays in milliseconds; one tier is made for each on the TTL backend. */
  retryDelays?: readonly number[];
  /**
   * The type of every queue.
   * @default {"classic"}
   */
  queueType?: QueueType;
  /**
   * The delivery limit of quorum queues, set explicitly rather than left to the broker.
   * @default {20}
   */
  deliveryLimit?: number;
}

const PREFIX = /^[A-Za-z0-9._:-]{0,100}$/;

/**
 * Builds the topology for a prefix and backend.
 *
 * @example
 * ```ts
 * topology({ prefix: "demo.", retryDelays: [5000] }).retryTiers;
 * // [{ delayMs: 5000, queue: "demo.create.productionorder.retry.5000ms" }]
 * ```
 */
export function topology(options: TopologyOptions = {}): Topology {
  const prefix = options.prefix ?? "";
  if (!PREFIX.test(prefix)) {
    throw new TopologyOptionError(
      "prefix",
      `prefix may hold only letters, digits and . _ : - (at most 100), got ${
        JSON.stringify(prefix)
      }`,
    );
  }
  const backend = options.backend ?? "ttl";
  if (backend !== "ttl" && backend !== "plugin") {
    throw new TopologyOptionError(
      "backend",
      `retry backend must be "ttl" or "plugin", got ${JSON.stringify(backend)}`,
    );
  }
  const queueType = options.queueType ?? "classic";
  if (queueType !== "classic" && queueType !== "quorum") {
    throw new TopologyOptionError(
      "queueType",
      `queue type must be "classic" or "quorum", got ${JSON.stringify(queueType)}`,
    );
  }
  if (queueType === "quorum" && backend === "plugin") {
    throw new TopologyOptionError(
      "queueType",
      "quorum queues need the ttl retry backend: the delayed-message plugin keeps delayed " +
        "messages on one node, outside any queue",
    );
  }
  const deliveryLimit = options.deliveryLimit ?? DEFAULT_DELIVERY_LIMIT;
  if (!Number.isSafeInteger(deliveryLimit) || deliveryLimit < 1) {
    throw new TopologyOptionError(
      "deliveryLimit",
      `delivery limit must be a positive integer, got ${deliveryLimit}`,
    );
  }
  const queue = `${prefix}create.productionorder`;
  const delays = backend === "ttl"
    ? [...new Set(options.retryDelays ?? [])].sort((a, b) => a - b)
    : [];
  return Object.freeze({
    prefix,
    backend,
    exchange: `${prefix}productionorder`,
    exchangeType: backend === "plugin" ? "x-delayed-message" : "direct",
    routingKey: "create",
    queue,
    deadLetterExchange: `${prefix}productionorder.dlx`,
    deadLetterQueue: `${queue}.dlx`,
    retryTiers: Object.freeze(delays.map((delayMs) => ({
      delayMs,
      queue: `${queue}.retry.${delayMs}ms`,
    }))),
    queueType,
    deliveryLimit,
    control: Object.freeze({
      exchange: `${prefix}productionorder.control`,
      stateKey: "state",
      pingKey: "ping",
      stateQueue: `${prefix}productionorder.control.state`,
      lockQueue: `${prefix}productionorder.control.lock`,
      queuePrefix: `${prefix}productionorder.control.`,
    }),
  });
}

/** The TTL-backend tier for a delay: the shortest tier at least that long, else the longest. */
export function retryTierFor(topo: Topology, delayMs: number): RetryTier {
  const tier = topo.retryTiers.find((t) => t.delayMs >= delayMs) ?? topo.retryTiers.at(-1);
  if (!tier) {
    throw new Error(`topology ${topo.exchange} has no retry tiers (backend ${topo.backend})`);
  }
  return tier;
}

/** A queue's declaration, as the services make it. */
export interface QueueDeclaration {
  /** The queue name. */
  readonly name: string;
  /** Its `x-` arguments. */
  readonly arguments: Readonly<Record<string, unknown>>;
}

/**
 * The DLQ's delivery limit: the largest 32-bit integer, unreachable by looking (3.10, 4.0 and 4.3
 * keep every letter through it; `-1` would mean unlimited on 4.x but drops every letter on 3.x).
 */
export const UNLIMITED_DELIVERIES = 2_147_483_647;

/**
 * Whether a broker of `serverVersion` (e.g. `"3.10.8"`) gives every quorum queue a delivery limit
 * when none is set (RabbitMQ 4.0 and later: 20).
 */
export function limitsQuorumQueuesByDefault(serverVersion: string): boolean {
  return serverVersionAtLeast(serverVersion, "4.0");
}

/**
 * The queues of a topology with the arguments they are declared with, the same on every version.
 *
 * On quorum queues, every queue that dead-letters (the work queue to the DLX, each retry tier
 * back to the exchange) does so `at-least-once`, which RabbitMQ honours only with
 * `x-overflow: reject-publish` (otherwise it falls back to at-most-once without a word), and
 * those queues have an explicit `x-delivery-limit`. The DLQ has none that could be reached: every
 * look at a dead letter (`dlq list`, the console) is a delivery given back, and RabbitMQ counts
 * those too, so a limited DLQ drops its letters after a few looks. Its limit is
 * {@linkcode UNLIMITED_DELIVERIES} on every version: 4.x sets 20 where none is given, and `-1`
 * (4.x's "unlimited") drops every letter on 3.x; one value for all also means a DLQ declared on
 * 3.x needs no change when the broker moves to 4.x.
 */
export function queueDeclarations(topo: Topology): QueueDeclaration[] {
  const quorum = topo.queueType === "quorum";
  const type: Record<string, unknown> = quorum ? { "x-queue-type": "quorum" } : {};
  const common: Record<string, unknown> = quorum
    ? { ...type, "x-delivery-limit": topo.deliveryLimit }
    : {};
  const unlimited: Record<string, unknown> = quorum
    ? { ...type, "x-delivery-limit": UNLIMITED_DELIVERIES }
    : type;
  const deadLettering: Record<string, unknown> = quorum
    ? { "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish" }
    : {};
  return [
    {
      name: topo.queue,
      arguments: {
        ...common,
        "x-dead-letter-exchange": topo.deadLetterExchange,
        "x-dead-letter-routing-key": topo.routingKey,
        ...deadLettering,
      },
    },
    { name: topo.deadLetterQueue, arguments: unlimited },
    ...topo.retryTiers.map((tier) => ({
      name: tier.queue,
      arguments: {
        ...common,
        "x-message-ttl": tier.delayMs,
        "x-dead-letter-exchange": topo.exchange,
        "x-dead-letter-routing-key": topo.routingKey,
        ...deadLettering,
        // Parked retries wait on disk, not in the broker's memory (classic queues before 3.12;
        // quorum queues always keep their messages on disk).
        ...(quorum ? {} : { "x-queue-mode": "lazy" }),
      },
    })),
  ];
}

/** The name of the delayed-message plugin, for error messages. */
export const DELAYED_MESSAGE_PLUGIN = "rabbitmq_delayed_message_exchange";

/** The first RabbitMQ release on which the delayed-message plugin cannot run. */
export const NO_DELAYED_MESSAGE_PLUGIN_FROM = "4.3";

/**
 * Whether a broker of `serverVersion` can run the plugin backend: RabbitMQ before 4.3. The
 * delayed-message plugin keeps its delayed messages in Mnesia, which 4.3 removed: built for 4.3
 * and enabled, every declare of its exchange closes the connection (541 INTERNAL_ERROR) and the
 * node does not boot again. A version that cannot be read is let through (the broker says).
 */
export function pluginBackendRuns(serverVersion: string): boolean {
  return !serverVersionAtLeast(serverVersion, NO_DELAYED_MESSAGE_PLUGIN_FROM);
}
