/**
 * The demo: the whole flow in one process against a real broker. It declares a demo-prefixed
 * topology, starts OrdemDeProducao's consumer, publishes a mixed batch (orders under and over the
 * limit, one order twice, malformed messages) and reports where every message ended.
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
import { declareTopology, deleteTopology, type Topology } from "./topology.ts";

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
  /** Messages published (valid, repeated and malformed). */
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
  /** Published messages whose end was checked in the ledger or the DLQ. */
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
    const published = sends.length;

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
      accountedFor,
      elapsedMs: performance.now() - started,
    };
  } finally {
    for (const consumer of consumers) await consumer.stop();
    for (const own of new Set(ledgers)) await own.close();
    if (!options.keep) await deleteTopology(broker, topo).catch(() => {});
  }
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
