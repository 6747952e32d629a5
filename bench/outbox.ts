/**
 * The outbox's sides of the benchmark. **relay**: Estoque's relay publishing N outbox rows a
 * movement committed (a SQLite stock store, as `estoque serve` keeps it by default), each confirmed
 * and marked sent, against raw amqplib publishing the same N messages with confirms at its best.
 * **movement lag**: movements taken at a steady rate, paced by their scheduled times, each one
 * crossing its colour's reorder point, on SQLite or on PostgreSQL, with the relay running beside
 * them as `estoque serve` runs it; the lag of each from its scheduled time to its request's arrival
 * in the work queue.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import pg from "pg";
import { encodeOrder, newOrder, type Order } from "../lib/order.ts";
import { orderProperties } from "../lib/order_properties.ts";
import { OutboxMetrics } from "../lib/outbox_metrics.ts";
import { OutboxRelay } from "../lib/outbox_relay.ts";
import { PostgresStockStore } from "../lib/postgres_stock_store.ts";
import { SqliteStockStore } from "../lib/sqlite_stock_store.ts";
import type { OutboxRow, StockStore } from "../lib/stock_store.ts";
import { emptyHistogram, type Histogram, record } from "./_histogram.ts";
import { onSchedule } from "./_latency.ts";
import { STORE_WARMUP } from "./_method.ts";
import { publishWindowed, rawConnect } from "./_raw_client.ts";
import { within } from "../testing/broker.ts";
import { RELAY } from "./_services_settings.ts";
import { type RunContext, type RunResult, withConnection } from "./_shared.ts";

/** The quantity each request asks for (a reorder quantity). */
const REORDER_QUANTITY = 500;

/** N orders as N rows of the outbox hold them: a RefCode, a colour, the reorder quantity. */
export function outboxOrders(n: number): Order[] {
  return Array.from({ length: n }, () => newOrder({ quantity: REORDER_QUANTITY }));
}

/** Writes `orders` into the outbox of the SQLite stock file at `path`, unsent, in one commit. */
export function commitOutboxRows(path: string, orders: readonly Order[], at: Date): void {
  const db = new DatabaseSync(path);
  try {
    db.exec("PRAGMA busy_timeout = 10000");
    db.exec("BEGIN IMMEDIATE");
    const insert = db.prepare(
      "INSERT INTO stock_outbox (ref_code, color_code, quantity, created_at) VALUES (?, ?, ?, ?)",
    );
    for (const o of orders) insert.run(o.refCode, o.colorCode, o.quantity, at.toISOString());
    db.exec("COMMIT");
  } finally {
    db.close();
  }
}

/** The relay's metrics, which also say when `count` requests have been marked sent. */
class MarkedCounter extends OutboxMetrics {
  readonly done = Promise.withResolvers<void>();
  #marked = 0;

  constructor(readonly count: number) {
    super({ instanceId: "bench" });
  }

  override published(rows: readonly OutboxRow[], at: Date): void {
    super.published(rows, at);
    this.#marked += rows.length;
    if (this.#marked >= this.count) this.done.resolve();
  }
}

/** Resolves once `relay` has found the outbox empty and sleeps (connected, topology checked). */
async function idle(relay: OutboxRelay): Promise<void> {
  const deadline = performance.now() + 30_000;
  while (!relay.idle) {
    if (performance.now() > deadline) throw new Error("the relay did not settle in 30 s");
    await Promise.race([relay.done, new Promise((resolve) => setTimeout(resolve, 1))]);
  }
}

/**
 * The relay publishing N rows committed in a SQLite stock store's outbox: timed from waking it
 * (connected, its topology checked, the outbox found empty and the rows committed afterwards,
 * untimed) to the last row marked sent after the broker's confirm. The relay runs with the
 * services' defaults (batch size, confirm timeout), except its fallback poll, put off so that only
 * the bench's wake-up starts it.
 */
export async function oursRelay(ctx: RunContext): Promise<RunResult> {
  const path = join(ctx.dir, `stock-${crypto.randomUUID()}.sqlite`);
  await using store = await SqliteStockStore.open(path);
  const metrics = new MarkedCounter(ctx.messages);
  const relay = OutboxRelay.start({
    store,
    urls: [ctx.url],
    topology: ctx.topo,
    declare: false,
    confirmTimeoutMs: RELAY.confirmTimeoutMs,
    batchSize: RELAY.batchSize,
    retentionMs: RELAY.retentionMs,
    pollMs: 3_600_000,
    metrics,
  });
  try {
    await idle(relay);
    commitOutboxRows(path, outboxOrders(ctx.messages), new Date());
    const started = performance.now();
    relay.wake();
    await Promise.race([metrics.done.promise, relay.done]);
    const elapsedMs = performance.now() - started;
    const left = (await store.outboxStats()).depth;
    if (left !== 0) throw new Error(`${left} rows left unsent`);
    return { messages: ctx.messages, elapsedMs };
  } finally {
    await relay.stop();
  }
}

/**
 * Raw amqplib publishing the messages of N outbox rows (made beforehand, untimed, as the rows
 * are), with Estoque's properties (persistent, `mandatory`, its headers), with confirms in raw's
 * window: the publish path's raw side, each message made from its row when it is sent.
 */
export async function rawRelay(ctx: RunContext): Promise<RunResult> {
  const orders = outboxOrders(ctx.messages);
  const createdAt = Date.now();
  const broker = await rawConnect(ctx.url, ctx.settings, "bench-raw-publisher");
  try {
    const channel = await broker.confirmChannel();
    const started = performance.now();
    await publishWindowed(channel, ctx.messages, (i) => {
      const order = orders[i]!;
      return {
        exchange: ctx.topo.exchange,
        routingKey: ctx.topo.routingKey,
        content: Buffer.from(encodeOrder(order)),
        options: orderProperties(order, createdAt),
      };
    }, ctx.settings.window);
    const elapsedMs = performance.now() - started;
    await channel.close();
    return { messages: ctx.messages, elapsedMs };
  } finally {
    await broker.close();
  }
}

/** Which stock store a movement-lag run takes its movements in. */
export type LagStore = "sqlite" | "postgres";

/** One movement-lag run: each movement's lag, and how fast the movements were committed. */
export interface MovementLagRun {
  /** Milliseconds from each movement's scheduled time to its request's arrival in the queue. */
  readonly lags: Histogram;
  /** Movements committed a second: all of them over the time to the last commit. */
  readonly committedRate: number;
}

/** What a movement-lag run needs besides its topology. */
export interface MovementLagOptions {
  readonly store: LagStore;
  /** Movements a second. */
  readonly rate: number;
  /** The PostgreSQL the `postgres` runs use (a schema of their own each, dropped after). */
  readonly postgresUrl: string;
}

/** Gives `n` colours an item each at its reorder point: each one's next -1 asks for production. */
async function itemsAtTheirPoint(
  store: StockStore,
  n: number,
  postgres: { url: string; schema: string } | undefined,
): Promise<string[]> {
  const colors = Array.from({ length: n }, () => crypto.randomUUID());
  if (postgres === undefined) {
    await Promise.all(
      colors.map((color) =>
        store.setItem({ color, quantity: 10, reorderPoint: 10, reorderQuantity: REORDER_QUANTITY })
      ),
    );
    return colors;
  }
  const client = new pg.Client({ connectionString: postgres.url });
  await client.connect();
  try {
    await client.query(
      `INSERT INTO ${postgres.schema}.stock_items
         (color, quantity, reorder_point, reorder_quantity, updated_at)
       SELECT unnest($1::text[]), 10, 10, $2, now()`,
      [colors, REORDER_QUANTITY],
    );
  } finally {
    await client.end();
  }
  return colors;
}

/** Drops a movement-lag run's PostgreSQL schema. */
async function dropSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await client.end();
  }
}

/**
 * Movements at `rate` a second, `ctx.messages` of them, each on a colour of its own at its reorder
 * point (so each one makes a request: the outbox's worst case), in a fresh store; the relay runs
 * beside them with the services' defaults, as in `estoque serve`. Movement i is scheduled at
 * t0 + i/rate and taken then, without waiting for the ones before it (a store that falls behind
 * shows in the lags, not in a slower schedule); its lag runs from that scheduled time to the
 * arrival of its request at a consumer of the work queue. Before the schedule, untimed,
 * {@linkcode STORE_WARMUP} movements at the same rate on colours of their own, their requests
 * awaited: a fresh store opens its pool's connections and prepares its statements on each of them
 * on its first movements (on PostgreSQL the first ones waited 40-70 ms in a profile); a service
 * pays that after its start and after a lull, not at a steady rate.
 */
export async function movementLag(
  ctx: RunContext,
  options: MovementLagOptions,
): Promise<MovementLagRun> {
  const n = ctx.messages;
  const schema = `bench_stock_${crypto.randomUUID().slice(0, 8)}`;
  const postgres = options.store === "postgres" ? { url: options.postgresUrl, schema } : undefined;
  try {
    await using store = postgres === undefined
      ? await SqliteStockStore.open(join(ctx.dir, `stock-${crypto.randomUUID()}.sqlite`))
      : await PostgresStockStore.open(options.postgresUrl, { schema });
    const colors = await itemsAtTheirPoint(store, STORE_WARMUP + n, postgres);
    const warmup = colors.splice(0, STORE_WARMUP);
    return await withConnection(ctx.url, { name: "bench-arrivals" }, async (broker) => {
      const arrived = new Map<string, number>();
      const warmed = Promise.withResolvers<void>();
      const all = Promise.withResolvers<void>();
      const channel = await broker.channel();
      await channel.consume(ctx.topo.queue, (message) => {
        if (!message) return;
        arrived.set(String(message.properties.messageId), performance.now());
        if (arrived.size >= STORE_WARMUP) warmed.resolve();
        if (arrived.size >= STORE_WARMUP + n) all.resolve();
      }, { noAck: true });
      const relay = OutboxRelay.start({
        store,
        urls: [ctx.url],
        topology: ctx.topo,
        confirmTimeoutMs: RELAY.confirmTimeoutMs,
        batchSize: RELAY.batchSize,
        pollMs: RELAY.pollMs,
        retentionMs: RELAY.retentionMs,
      });
      try {
        await idle(relay);
        const warming: Promise<unknown>[] = [];
        await onSchedule(STORE_WARMUP, options.rate, (i) => {
          warming.push(store.move({ color: warmup[i]!, delta: -1 }));
        });
        await Promise.all(warming);
        await within(Promise.race([warmed.promise, relay.done]), 60_000, "the warm-up's requests");
        const scheduled = new Map<string, number>();
        const moved: Promise<void>[] = [];
        let t0 = 0;
        let lastCommit = 0;
        await onSchedule(n, options.rate, (i, at) => {
          if (i === 0) t0 = at;
          moved.push(
            store.move({ color: colors[i]!, delta: -1 }).then((result) => {
              lastCommit = performance.now();
              if (result.request === undefined) throw new Error("a movement made no request");
              scheduled.set(result.request.refCode, at);
            }),
          );
        });
        await Promise.all(moved);
        await within(Promise.race([all.promise, relay.done]), 60_000, `all ${n} requests`);
        const lags = emptyHistogram();
        for (const [refCode, at] of scheduled) record(lags, arrived.get(refCode)! - at);
        return { lags, committedRate: n / ((lastCommit - t0) / 1000) };
      } finally {
        await relay.stop();
        await channel.close().catch(() => {});
      }
    });
  } finally {
    if (postgres !== undefined) await dropSchema(postgres.url, schema).catch(() => {});
  }
}
