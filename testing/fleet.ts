/**
 * A small fleet in one test process, for tests that change a running deployment: an Estoque that
 * keeps publishing orders to whichever topology it is pointed at, OrdemDeProducao consumers each
 * on a connection of its own (as separate processes would be) sharing one ledger, and a journal
 * of every outcome, which consumer group had it and when; {@linkcode withFleet} runs one on a
 * broker and cleans up after it. Also what the management API says of a delayed-message exchange.
 *
 * @module
 */

import { Broker } from "../lib/broker.ts";
import { OrderConsumer } from "../lib/consumer.ts";
import { SqliteLedger } from "../lib/sqlite_ledger.ts";
import { publishOrder } from "../lib/estoque.ts";
import type { Ledger } from "../lib/ledger.ts";
import { newOrder, type Order } from "../lib/order.ts";
import type { Outcome } from "../lib/outcome.ts";
import { ConfirmedPublisher } from "../lib/publisher.ts";
import type { RetryPolicy } from "../lib/retry_policy.ts";
import { type Topology } from "../lib/topology.ts";
import { declareTopology, deleteTopology } from "../lib/declare_topology.ts";
import { type BrokerUnderTest, connectTo, managementRequest, vhostPath } from "./other_brokers.ts";

/** One outcome as the journal keeps it. */
export interface JournalEntry {
  readonly outcome: Outcome;
  /** The consumer group that had it (`plugin`, `ttl`, …). */
  readonly group: string;
  /** When (`performance.now()`). */
  readonly at: number;
}

/** Every outcome of every consumer of a fleet, in the order they came. */
export class Journal {
  readonly entries: JournalEntry[] = [];

  /** The `onOutcome` of a consumer of `group`. */
  recorder(group: string): (outcome: Outcome) => void {
    return (outcome) => this.entries.push({ outcome, group, at: performance.now() });
  }

  /** The entries about one message, in order. */
  of(key: string): JournalEntry[] {
    return this.entries.filter(({ outcome }) => keyOf(outcome) === key);
  }
}

/** The RefCode or message key an outcome is about. */
export function keyOf(outcome: Outcome): string | undefined {
  return "refCode" in outcome ? outcome.refCode : outcome.messageKey;
}

/** One OrdemDeProducao of a fleet: its own connection and consumer. */
export interface FleetMember {
  readonly broker: Broker;
  readonly consumer: OrderConsumer;
}

/** What {@linkcode startConsumers} needs. */
export interface ConsumerGroupOptions {
  /** The broker's AMQP URL. */
  readonly url: string;
  readonly topology: Topology;
  readonly ledger: Ledger;
  readonly policy: RetryPolicy;
  readonly journal: Journal;
  /** What the journal calls the group. */
  readonly group: string;
  readonly count: number;
  /** @default {500} */
  readonly maxQuantity?: number;
}

/** Starts `count` consumers on `topology`, each on a connection of its own. */
export async function startConsumers(options: ConsumerGroupOptions): Promise<FleetMember[]> {
  const members: FleetMember[] = [];
  try {
    for (let i = 0; i < options.count; i++) {
      const broker = await Broker.connect(options.url, { name: `test ${options.group} ${i}` });
      try {
        const consumer = await OrderConsumer.start({
          broker,
          topology: options.topology,
          ledger: options.ledger,
          policy: options.policy,
          maxQuantity: options.maxQuantity ?? 500,
          onOutcome: options.journal.recorder(options.group),
        });
        members.push({ broker, consumer });
      } catch (error) {
        await broker.close();
        throw error;
      }
    }
    return members;
  } catch (error) {
    await stopConsumers(members);
    throw error;
  }
}

/** Stops consumers as SIGTERM does (in-flight deliveries finish), then closes their connections. */
export async function stopConsumers(members: readonly FleetMember[]): Promise<void> {
  await Promise.all(members.map(async ({ broker, consumer }) => {
    try {
      await consumer.stop();
    } finally {
      await broker.close();
    }
  }));
}

/** An order Estoque published, and where. */
export interface SentOrder {
  readonly order: Order;
  /** The exchange it was published to. */
  readonly exchange: string;
}

/**
 * Estoque publishing without pause but a `paceMs` breath between orders (each confirmed before
 * the next), to whichever topology it points at now, until stopped. Orders alternate: one within
 * the limit, one over it.
 */
export class PacedEstoque {
  readonly sent: SentOrder[] = [];
  #target: Topology;
  #stopping = false;
  readonly #done: Promise<void>;

  private constructor(publisher: ConfirmedPublisher, target: Topology, paceMs: number) {
    this.#target = target;
    this.#done = this.#run(publisher, paceMs);
    this.#done.catch(() => {}); // observed by stop()
  }

  /** Starts publishing to `target` on `broker`. */
  static async start(broker: Broker, target: Topology, paceMs = 20): Promise<PacedEstoque> {
    return new PacedEstoque(new ConfirmedPublisher(await broker.confirmChannel()), target, paceMs);
  }

  /** Publishes the next orders to `target` (an Estoque restarted with other flags). */
  pointAt(target: Topology): void {
    this.#target = target;
  }

  async #run(publisher: ConfirmedPublisher, paceMs: number): Promise<void> {
    for (let i = 0; !this.#stopping; i++) {
      const order = newOrder({ quantity: i % 2 === 0 ? 1 + (i % 500) : 501 + (i % 400) });
      const target = this.#target;
      await publishOrder(publisher, target, order);
      this.sent.push({ order, exchange: target.exchange });
      await new Promise((resolve) => setTimeout(resolve, paceMs));
    }
  }

  /** Stops after the order being published is confirmed; rejects if a publish failed. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await this.#done;
  }
}

/**
 * How many messages a delayed-message exchange holds, waiting for their delay, by the management
 * API (`messages_delayed`; `rabbitmqadmin list exchanges name messages_delayed` shows the same).
 */
export async function messagesDelayed(target: BrokerUnderTest, exchange: string): Promise<number> {
  const path = `exchanges/${vhostPath(target)}/${encodeURIComponent(exchange)}`;
  const info = await managementRequest(target, "GET", path) as { messages_delayed?: unknown };
  if (typeof info.messages_delayed !== "number") {
    throw new Error(`${exchange} says nothing of messages_delayed: not a delayed-message exchange`);
  }
  return info.messages_delayed;
}

/**
 * Resolves with `check()` once it is not undefined, looking every `intervalMs`; rejects after
 * `timeoutMs` saying what it waited for.
 */
export async function poll<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const result = await check();
    if (result !== undefined) return result;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Settings every consumer of a {@linkcode FleetRun} gets, unless told otherwise. */
export interface FleetRunOptions {
  readonly policy: RetryPolicy;
  readonly maxQuantity: number;
  /** Consumers in each group. */
  readonly size: number;
}

/**
 * One test's fleet on one broker: its topologies, consumer groups and Estoques, one ledger and
 * one journal; {@linkcode withFleet} stops and deletes whatever it started and declared.
 */
export class FleetRun {
  readonly target: BrokerUnderTest;
  /** The broker's RabbitMQ release. */
  readonly version: string;
  /** The test's own connection: Estoque's publishes, declares, deletes and looks. */
  readonly broker: Broker;
  readonly ledger: SqliteLedger;
  readonly journal = new Journal();
  readonly #options: FleetRunOptions;
  /** Every topology declared, by exchange name: one declared again in place replaces the first. */
  readonly #topologies = new Map<string, Topology>();
  readonly #running = new Set<FleetMember[]>();
  readonly #publishing = new Set<PacedEstoque>();

  constructor(
    target: BrokerUnderTest,
    broker: Broker,
    ledger: SqliteLedger,
    options: FleetRunOptions,
  ) {
    this.target = target;
    this.version = broker.serverVersion;
    this.broker = broker;
    this.ledger = ledger;
    this.#options = options;
  }

  /** Declares `topo`, deleted at the end. */
  async declare(topo: Topology): Promise<void> {
    this.#topologies.set(topo.exchange, topo);
    await declareTopology(this.broker, topo);
  }

  /** Starts a group of consumers on `topo`, with the run's policy unless `policy` is given. */
  async consumers(
    topo: Topology,
    group: string,
    policy: RetryPolicy = this.#options.policy,
  ): Promise<FleetMember[]> {
    const members = await startConsumers({
      url: this.target.url,
      topology: topo,
      ledger: this.ledger,
      policy,
      journal: this.journal,
      group,
      count: this.#options.size,
      maxQuantity: this.#options.maxQuantity,
    });
    this.#running.add(members);
    return members;
  }

  /** Stops a group of consumers as SIGTERM does. */
  async stop(members: FleetMember[]): Promise<void> {
    this.#running.delete(members);
    await stopConsumers(members);
  }

  /** Starts an Estoque publishing to `topo`. */
  async estoque(topo: Topology): Promise<PacedEstoque> {
    const publisher = await PacedEstoque.start(this.broker, topo);
    this.#publishing.add(publisher);
    return publisher;
  }

  /** Stops an Estoque once its last order is confirmed. */
  async stopEstoque(publisher: PacedEstoque): Promise<void> {
    this.#publishing.delete(publisher);
    await publisher.stop();
  }

  /** Stops what still runs and deletes every topology declared. */
  async cleanUp(name: string): Promise<void> {
    for (const publisher of this.#publishing) await publisher.stop().catch(() => {});
    for (const members of this.#running) await stopConsumers(members).catch(() => {});
    const cleaner = await Broker.connect(this.target.url, { name: `test ${name} cleanup` });
    try {
      for (const topo of this.#topologies.values()) await deleteTopology(cleaner, topo);
    } finally {
      await cleaner.close();
    }
  }
}

/**
 * Connects to `target`, runs `fn` with a fresh {@linkcode FleetRun}, then stops whatever still
 * runs, deletes every topology it declared and closes, whatever happened.
 */
export async function withFleet(
  target: BrokerUnderTest,
  name: string,
  options: FleetRunOptions,
  fn: (run: FleetRun) => Promise<void>,
): Promise<void> {
  const broker = await connectTo(target, `test ${name}`);
  try {
    const ledger = await SqliteLedger.open(":memory:", { instanceId: "test" });
    const run = new FleetRun(target, broker, ledger, options);
    try {
      await fn(run);
    } finally {
      try {
        await run.cleanUp(name);
      } finally {
        await ledger.close();
      }
    }
  } finally {
    await broker.close();
  }
}
