/**
 * The outbox's rows of the benchmark, run against the local broker and PostgreSQL at tiny sizes:
 * `--only relay` pairs the relay with raw amqplib publishing the very messages it publishes;
 * `--only "movement lag"` times every movement on SQLite and on PostgreSQL, each one's request
 * arriving in the work queue.
 */

import { strict as assert } from "node:assert";
import { join } from "node:path";
import type { ConsumeMessage } from "amqplib";
import { RAW_START } from "../bench/_settings.ts";
import { type RunContext, type RunResult, withBenchTopology } from "../bench/_shared.ts";
import { leftBy } from "../testing/bench_side.ts";
import { movementLag, oursRelay, rawRelay } from "../bench/outbox.ts";
import { SERVICES } from "../bench/_services_settings.ts";
import { POSTGRES_URL, RABBITMQ_URL, runScript, tempDir } from "../testing/broker.ts";

/** Tiny sizes, raw's settings pinned: no sweep. */
const TINY = [
  "--rounds",
  "2",
  "--messages",
  "300",
  "--warmup",
  "50",
  "--raw-window",
  "256",
  "--raw-writes",
  "as-is",
];

/** The results of the one run in `dir`, as `T` reads them. */
async function results<T>(dir: string): Promise<T> {
  const [run] = [...Deno.readDirSync(dir)];
  return JSON.parse(await Deno.readTextFile(join(dir, run!.name, "results.json"))) as T;
}

Deno.test("bench --only relay pairs the outbox relay with raw's confirmed publish, in ABBA rounds, and writes the ratio", async () => {
  await using dir = await tempDir();
  const { code, stdout, stderr } = await runScript("bench/main.ts", [
    "--only",
    "relay",
    ...TINY,
    "--results",
    dir.path,
  ]);
  assert.equal(code, 0, stderr);
  assert.match(stderr, /relay: raw keeps window 256, writes as amqplib does/);
  assert.match(stderr, /relay round 2 \(ours, raw\): raw [\d,]+\/s, ours [\d,]+\/s/);
  assert.match(stdout, /^relay: raw [\d,]+\/s, ours [\d,]+\/s, ratio [\d.]+ \[[\d.]+–[\d.]+\]/m);
  const { rows: [row] } = await results<{
    rows: { path: string; target: number; raw: { rates: number[] }; ours: { rates: number[] } }[];
  }>(dir.path);
  assert.equal(row!.path, "relay");
  assert.equal(row!.target, 0.9);
  assert.equal(row!.raw.rates.length, 2);
  assert.equal(row!.ours.rates.length, 2);
});

Deno.test('bench --only "movement lag" times every movement on SQLite and on PostgreSQL, each store in its rounds', async () => {
  await using dir = await tempDir();
  const { code, stdout, stderr } = await runScript(
    "bench/main.ts",
    ["--only", "movement lag", "--quick", "--results", dir.path],
    { POSTGRES_URL },
  );
  assert.equal(code, 0, stderr);
  assert.match(stderr, /movement lag round 2 \(postgres, sqlite\): postgres p99 [\d.]+ ms/);
  for (const store of ["sqlite", "postgres"]) {
    assert.match(
      stdout,
      new RegExp(
        `^movement lag ${store}: p50 [\\d.]+ ms, p99 [\\d.]+ ms at 2,000 movements/s`,
        "m",
      ),
    );
  }
  const { movementLag: lag } = await results<{
    movementLag: {
      rate: number;
      movements: number;
      rows: { store: string; lag: { count: number }; committed: { rates: number[] } }[];
    };
  }>(dir.path);
  assert.equal(lag.rate, 2_000);
  assert.deepEqual(lag.rows.map((r) => r.store), ["sqlite", "postgres"]);
  for (const row of lag.rows) {
    assert.equal(row.lag.count, 2 * lag.movements, row.store); // two rounds, every movement
    assert.equal(row.committed.rates.length, 2, row.store);
  }
});

/** The messages `side` left in the work queue after publishing 5 outbox requests. */
const publishedBy = (side: (ctx: RunContext) => Promise<RunResult>, dir: string) =>
  leftBy(side, (topo) => topo.queue, dir, { ...RAW_START, window: 100 });

/** What a message carries, less what differs from message to message (ids, times). */
function shape(message: ConsumeMessage) {
  const { headers = {}, ...properties } = message.properties;
  const order = JSON.parse(message.content.toString());
  return {
    properties: Object.keys(properties).filter((k) =>
      properties[k as keyof typeof properties] !== undefined
    ).sort(),
    persistent: message.properties.deliveryMode,
    headers: Object.keys(headers).sort(),
    fields: Object.keys(order).sort(),
    quantity: order.Quantity,
    bodySize: message.content.byteLength,
  };
}

Deno.test("bench relay: raw publishes the very messages the relay publishes from its outbox rows", async () => {
  await using dir = await tempDir();
  const ours = await publishedBy(oursRelay, dir.path);
  const raw = await publishedBy(rawRelay, dir.path);
  assert.equal(ours.length, 5);
  assert.equal(ours[0]!.properties.messageId, JSON.parse(ours[0]!.content.toString()).RefCode);
  for (let i = 0; i < 5; i++) assert.deepEqual(shape(raw[i]!), shape(ours[i]!));
});

Deno.test("bench movement lag: every movement makes a request, timed from its scheduled time to its arrival, on each store", async () => {
  await using dir = await tempDir();
  for (const store of ["sqlite", "postgres"] as const) {
    const run = await withBenchTopology(RABBITMQ_URL, (broker, topo) =>
      movementLag(
        { url: RABBITMQ_URL, broker, topo, messages: 200, dir: dir.path, settings: SERVICES },
        { store, rate: 1_000, postgresUrl: POSTGRES_URL },
      ));
    assert.equal(run.lags.total, 200, store);
    assert.ok(run.lags.max > 0 && run.lags.max < 10_000, store);
    assert.ok(run.committedRate > 0, store);
  }
});
