/**
 * The demo: the whole flow in one process against a real broker. It declares a demo-prefixed
 * topology, starts OrdemDeProducao's consumer, publishes a mixed batch (orders under and over the
 * limit, one order twice, malformed messages), runs Estoque's stock scenario (movements in a stock
 * store, the ones that cross a reorder point writing a production-order request into the outbox,
 * which the outbox relay publishes) and reports where every message ended.
 *
 * @module
 */

import { Broker } from "./broker.ts";
import { inspectDeadLetters } from "./dead_letter_ops.ts";
import { OrderConsumer } from "./consumer.ts";
import type { Outcome } from "./outcome.ts";
import { publishOrder } from "./estoque.ts";
import type { Ledger } from "./ledger.ts";
import { SqliteLedger } from "./sqlite_ledger.ts";
import { PostgresLedger } from "./postgres_ledger.ts";
import { newOrder, type Order, ORDER_CONTENT_TYPE } from "./order.ts";
import { ConfirmedPublisher } from "./publisher.ts";
import type { RetryPolicy } from "./retry_policy.ts";
import { type Topology } from "./topology.ts";
import { declareTopology, deleteTopology } from "./declare_topology.ts";
import { SqliteStockStore } from "./sqlite_stock_store.ts";
import { OutboxRelay } from "./outbox_relay.ts";
import type { StockStore } from "./stock_store.ts";

/**
 * The demo's stock: three colours at 100 with a reorder point of 40. Each takes six movements of
 * -15 (100 to 10): the fifth crosses the point (40 to 25), so each colour asks for production once.
 */
export const DEMO_STOCK = Object.freeze({
  colors: [
    "3f2c8a1e-5b7d-4e9a-8c61-0d4f2b7a9e13",
    "a81d4c6e-2f93-4b05-9e7a-6c3b1d8f0a42",
    "c5e07b29-8d14-4f6a-b3c2-9a1e7d5f4b80",
  ],
  quantity: 100,
  reorderPoint: 40,
  reorderQuantity: 300,
  movements: 6,
  delta: -15,
});

/** Malformed messages the demo publishes, each with what is wrong with it. */
export const MALFORMED_SAMPLES: readonly {
  readonly what: string;
  readonly body: string;
  readonly contentType?: string;
}[] = [
  { what: "not JSON", body: "RefCode=42" },
  { what: "a JSON array", body: "[1, 2, 3]" },
  { what: "a missing field", body: '{"RefCode":"0b5a8d4e-2c1f-4a63-9d7e-3f2b1c0a9e8d"}' },
  {
    what: "a non-UUID RefCode",
    body: '{"RefCode":"abc","ColorCode":"abc","Quantity":1,"EventType":"CREATE"}',
  },
  {
    what: "a negative Quantity",
    body:
      '{"RefCode":"0b5a8d4e-2c1f-4a63-9d7e-3f2b1c0a9e8d","ColorCode":"7c9e6679-7425-40de-944b-e07fc1f90ae7","Quantity":-5,"EventType":"CREATE"}',
  },
  {
    what: "an unknown EventType",
    body:
      '{"RefCode":"0b5a8d4e-2c1f-4a63-9d7e-3f2b1c0a9e8d","ColorCode":"7c9e6679-7425-40de-944b-e07fc1f90ae7","Quantity":5,"EventType":"DELETE"}',
  },
  { what: "an empty body", body: "" },
  { what: "a wrong content type", body: "<order/>", contentType: "application/xml" },
];

/** Options for {@linkcode runDemo}. */
export interface DemoOptions {
  /** The broker URL. */
  readonly url: string;
  /** The demo topology; it is deleted first, and at the end unless `keep`. */
  readonly topology: Topology;
  /** The retry policy (short delays make a quick demo). */
  readonly policy: RetryPolicy;
  /** How many valid orders; about a third are over the limit. */
  readonly orders: number;
  /** The ledger file; it is deleted first. */
  readonly ledgerPath: string;
  /** A PostgreSQL ledger instead of the file (its tables are emptied first). */
  readonly ledgerUrl?: string | undefined;
  /** Consumers competing for the queue, each with its own ledger connection. @default {1} */
  readonly consumers?: number;
  /** Keep the topology after the demo, to look at it in the management UI. */
  readonly keep: boolean;
  /** The business rule's limit. @default {500} */
  readonly maxQuantity?: number;
  /** Stops waiting when aborted. */
  readonly signal?: AbortSignal;
}

/** Where every published message ended. */
export interface DemoReport {
  /** Messages published (valid, repeated, malformed, and the outbox relay's requests). */
  readonly published: number;
  /** Production orders created. */
  readonly created: number;
  /** Deliveries recognised as an order already created. */
  readonly duplicates: number;
  /** Production orders created by each consumer (`demo-1`, …). */
  readonly createdBy: ReadonlyMap<string, number>;
  /** Retries, by retry number (1 = first retry). */
  readonly retriedByAttempt: ReadonlyMap<number, number>;
  /** Messages found in the dead-letter queue, by `x-dead-letter-reason`. */
  readonly deadLetteredByReason: ReadonlyMap<string, number>;
  /** Stock movements applied in the stock scenario (and one refused: below zero). */
  readonly movements: number;
  /** Production-order requests the movements wrote into the outbox (reorder points crossed). */
  readonly requests: number;
  /** Of those, the ones the outbox relay published. */
  readonly relayed: number;
  /** Published messages (the relay's requests included) whose end was checked. */
  readonly accountedFor: number;
  /** Wall time, in milliseconds. */
  readonly elapsedMs: number;
}

/** Runs the demo and reports; see the module doc. */
export async function runDemo(options: DemoOptions): Promise<DemoReport> {
  const started = performance.now();
  const topo = options.topology;
  const maxQuantity = options.maxQuantity ?? 500;
  const count = options.consumers ?? 1;
  await using broker = await Broker.connect(options.url, { name: "demo" });
  await deleteTopology(broker, topo).catch(() => {});
  await declareTopology(broker, topo);
  const ledgers: Ledger[] = [];
  if (options.ledgerUrl) {
    for (let i = 0; i < count; i++) {
      ledgers.push(await PostgresLedger.open(options.ledgerUrl, { instanceId: `demo-${i + 1}` }));
    }
    await (ledgers[0] as PostgresLedger).clear();
  } else {
    await Deno.remove(options.ledgerPath).catch(() => {});
    for (const suffix of ["-wal", "-shm"]) {
      await Deno.remove(options.ledgerPath + suffix).catch(() => {});
    }
    // In one process the consumers share one SQLite ledger (and its writer).
    const shared = await SqliteLedger.open(options.ledgerPath, { instanceId: "demo" });
    for (let i = 0; i < count; i++) ledgers.push(shared);
  }
  const ledger = ledgers[0]!;
  const outcomes: Outcome[] = [];
  const createdBy = new Map<string, number>();
  const consumers: OrderConsumer[] = [];
  for (const [i, own] of ledgers.entries()) {
    consumers.push(
      await OrderConsumer.start({
        broker,
        topology: topo,
        ledger: own,
        policy: options.policy,
        maxQuantity,
        onOutcome: (outcome) => {
          outcomes.push(outcome);
          if (outcome.kind === "created") {
            const id = `demo-${i + 1}`;
            createdBy.set(id, (createdBy.get(id) ?? 0) + 1);
          }
        },
      }),
    );
  }
  try {
    const publisher = new ConfirmedPublisher(await broker.confirmChannel());
    const orders: Order[] = Array.from({ length: options.orders }, (_, i) =>
      newOrder({
        quantity: i % 3 === 2 ? maxQuantity + 1 + i : (i * 37) % (maxQuantity + 1),
      }));
    const repeated = orders.find((o) => o.quantity <= maxQuantity);
    const sends: Promise<void>[] = orders.map((order) => publishOrder(publisher, topo, order));
    if (repeated) sends.push(publishOrder(publisher, topo, repeated));
    MALFORMED_SAMPLES.forEach((sample, i) => {
      sends.push(
        publisher.publish(topo.exchange, topo.routingKey, new TextEncoder().encode(sample.body), {
          contentType: sample.contentType ?? ORDER_CONTENT_TYPE,
          messageId: `malformed-${i + 1}`,
          persistent: true,
          mandatory: true,
        }),
      );
    });
    await Promise.all(sends);
    const stock = await stockScenario(topo, options);
    const published = sends.length + stock.requests.length;

    await Promise.all(
      consumers.map((c) => c.drained(options.signal ? { signal: options.signal } : {})),
    );

    // Check every published message's end in the ledger or the dead-letter queue.
    // Check every published message's end: exactly one place, the ledger or the DLQ.
    const { letters: deadLetters } = await inspectDeadLetters(broker, topo);
    const deadLetteredByReason = new Map<string, number>();
    const inDlq = new Map<string, string[]>();
    for (const letter of deadLetters) {
      deadLetteredByReason.set(letter.reason, (deadLetteredByReason.get(letter.reason) ?? 0) + 1);
      const id = letter.refCode ?? "";
      inDlq.set(id, [...(inDlq.get(id) ?? []), letter.reason]);
    }
    let accountedFor = 0;
    for (const order of orders) {
      const inLedger = (await ledger.findOrder(order.refCode)) !== undefined ? 1 : 0;
      if (inLedger + (inDlq.get(order.refCode)?.length ?? 0) === 1) accountedFor++;
    }
    if (repeated && (await ledger.findOrder(repeated.refCode))) accountedFor++;
    MALFORMED_SAMPLES.forEach((_, i) => {
      const reasons = inDlq.get(`malformed-${i + 1}`) ?? [];
      if (reasons.length === 1 && reasons[0] === "invalid") accountedFor++;
    });
    // Each request the stock movements made: one production order of its quantity.
    for (const request of stock.requests) {
      const order = await ledger.findOrder(request.refCode);
      if (order?.quantity === request.quantity && !inDlq.has(request.refCode)) accountedFor++;
    }

    const retriedByAttempt = new Map<number, number>();
    for (const o of outcomes) {
      if (o.kind === "retried") {
        retriedByAttempt.set(o.retry, (retriedByAttempt.get(o.retry) ?? 0) + 1);
      }
    }
    return {
      published,
      created: outcomes.filter((o) => o.kind === "created").length,
      duplicates: outcomes.filter((o) => o.kind === "duplicate").length,
      createdBy,
      retriedByAttempt,
      deadLetteredByReason,
      movements: stock.movements,
      requests: stock.requests.length,
      relayed: stock.relayed,
      accountedFor,
      elapsedMs: performance.now() - started,
    };
  } finally {
    for (const consumer of consumers) await consumer.stop();
    for (const own of new Set(ledgers)) await own.close();
    if (!options.keep) await deleteTopology(broker, topo).catch(() => {});
  }
}

/** What the stock scenario did: movements applied, requests written, requests relayed. */
interface StockScenario {
  readonly movements: number;
  readonly requests: readonly { readonly refCode: string; readonly quantity: number }[];
  readonly relayed: number;
}

/**
 * Estoque's side: a stock store beside the ledger (emptied first), the {@linkcode DEMO_STOCK}
 * movements and one refused (it would take a colour below zero: nothing written), and the outbox
 * relay publishing what they asked for, until it has published every request.
 */
async function stockScenario(topo: Topology, options: DemoOptions): Promise<StockScenario> {
  const path = options.ledgerPath.replace(/(\.sqlite)?$/, "-stock.sqlite");
  for (const suffix of ["", "-wal", "-shm"]) await Deno.remove(path + suffix).catch(() => {});
  await using store: StockStore = await SqliteStockStore.open(path);
  const requests: { refCode: string; quantity: number }[] = [];
  let movements = 0;
  for (const color of DEMO_STOCK.colors) {
    await store.setItem({
      color,
      quantity: DEMO_STOCK.quantity,
      reorderPoint: DEMO_STOCK.reorderPoint,
      reorderQuantity: DEMO_STOCK.reorderQuantity,
    });
  }
  for (let i = 0; i < DEMO_STOCK.movements; i++) {
    for (const color of DEMO_STOCK.colors) {
      const result = await store.move({ color, delta: DEMO_STOCK.delta, reason: "demo" });
      movements++;
      if (result.request) requests.push(result.request);
    }
  }
  // Refused, nothing written: the colour holds 10.
  await store.move({ color: DEMO_STOCK.colors[0]!, delta: -1_000 }).then(
    () => Promise.reject(new Error("the demo's stock store took a movement below zero")),
    () => undefined,
  );
  // On a connection of its own, as Estoque's relay.
  await using relay = OutboxRelay.start({
    store,
    urls: [options.url],
    topology: topo,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const deadline = Date.now() + 30_000;
  while (relay.published < requests.length) {
    if (Date.now() > deadline) {
      throw new Error(`the outbox relay published ${relay.published} of ${requests.length}`);
    }
    options.signal?.throwIfAborted();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { movements, requests, relayed: relay.published };
}

/** Renders a report as the table the demo prints. */
export function formatDemoReport(report: DemoReport, topo: Topology, policy: RetryPolicy): string {
  const rows: [string, string][] = [
    ["created (production orders)", String(report.created)],
    ["duplicate (not created twice)", String(report.duplicates)],
  ];
  if (report.createdBy.size > 1) {
    for (const [id, n] of [...report.createdBy].sort()) {
      rows.push([`  created by ${id}`, String(n)]);
    }
  }
  rows.push(["stock movements", String(report.movements)]);
  rows.push(["  reorder requests (outbox)", String(report.requests)]);
  rows.push(["  relayed to the broker", String(report.relayed)]);
  for (const [attempt, n] of [...report.retriedByAttempt].sort(([a], [b]) => a - b)) {
    rows.push([`retried, attempt ${attempt}`, String(n)]);
  }
  for (const [reason, n] of [...report.deadLetteredByReason].sort()) {
    rows.push([`dead-lettered: ${reason}`, String(n)]);
  }
  const ok = report.accountedFor === report.published;
  rows.push([
    "accounted for",
    `${report.accountedFor}/${report.published} ${ok ? "ok" : "MISSING"}`,
  ]);
  const width = Math.max(...rows.map(([label]) => label.length)) + 2;
  const valueWidth = Math.max(...rows.map(([, value]) => value.length));
  const lines = rows.map(([label, value]) =>
    `  ${label.padEnd(width)}${value.padStart(valueWidth)}`
  );
  lines.splice(lines.length - 1, 0, `  ${"-".repeat(width + valueWidth)}`);
  const delays = topo.retryTiers.length > 0
    ? topo.retryTiers.map((t) => t.delayMs).join("/") + " ms"
    : `${policy.delayMs} ms ${policy.strategy}`;
  return [
    `Demo: ${report.published} messages through ${topo.exchange} ` +
    `(retry backend ${topo.backend}, ${policy.maxRetries} retries, delays ${delays}) ` +
    `in ${(report.elapsedMs / 1000).toFixed(1)} s`,
    "",
    ...lines,
    "",
  ].join("\n");
}
