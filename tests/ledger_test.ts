import { strict as assert } from "node:assert";
import { join } from "node:path";
import type { Ledger } from "../lib/ledger.ts";
import { openLedger, openLedgerReader } from "../lib/open_ledger.ts";
import { SqliteLedger } from "../lib/sqlite_ledger.ts";
import { SqliteLedgerReader } from "../lib/sqlite_ledger_reader.ts";
import { DatabaseSync } from "node:sqlite";
import { oldSqliteLedger } from "../testing/old_ledger.ts";
import { LedgerUnavailableError } from "../lib/errors.ts";
import { openDatabase, SCHEMA, SqliteWriter, unavailableCode } from "../lib/_sqlite_writer.ts";
import { PostgresLedger } from "../lib/postgres_ledger.ts";
import { newOrder } from "../lib/order.ts";
import { POSTGRES_URL, tempDir } from "../testing/broker.ts";
import { dropSchema, postgresClient } from "../testing/postgres.ts";

const now = () => new Date("2026-11-24T12:00:00.000Z");

/** A ledger in a schema of its own, dropped afterwards. */
async function postgresLedger(
  options: { instanceId?: string; now?: () => Date } = {},
): Promise<Ledger> {
  const schema = `test_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  const ledger = await PostgresLedger.open(POSTGRES_URL, { ...options, schema });
  const close = async () => {
    await ledger.close();
    await dropSchema(POSTGRES_URL, schema);
  };
  return {
    commit: (writes) => ledger.commit(writes),
    wasForwarded: (key, hop) => ledger.wasForwarded(key, hop),
    findOrder: (ref) => ledger.findOrder(ref),
    countOrders: () => ledger.countOrders(),
    journey: (ref) => ledger.journey(ref),
    probe: () => ledger.probe(),
    close,
    [Symbol.asyncDispose]: close,
  };
}

const IMPLEMENTATIONS: [
  string,
  (options?: { instanceId?: string; now?: () => Date }) => Promise<Ledger>,
][] = [
  ["SqliteLedger", (options) => SqliteLedger.open(":memory:", options)],
  ["PostgresLedger", postgresLedger],
];

for (const [name, open] of IMPLEMENTATIONS) {
  Deno.test(`${name}.probe() resolves while the ledger can take commits`, async () => {
    await using ledger = await open();
    await ledger.probe();
  });

  Deno.test(`${name} creates one production order per RefCode, within and across batches`, async () => {
    await using ledger = await open({ instanceId: "test:1", now });
    const order = newOrder({ quantity: 10 });
    const other = newOrder({ quantity: 2 ** 40 });
    const results = await ledger.commit([
      { kind: "order", order, attempt: 0 },
      { kind: "order", order, attempt: 1 },
      { kind: "forward", messageKey: "m0", hop: "0:0", outcome: "retried" },
      { kind: "order", order: other, attempt: 3 },
    ]);
    assert.deepEqual(results, ["created", "duplicate", "recorded", "created"]);
    assert.deepEqual(await ledger.commit([{ kind: "order", order, attempt: 2 }]), ["duplicate"]);
    assert.equal(await ledger.countOrders(), 2);
    assert.deepEqual(await ledger.findOrder(order.refCode), {
      refCode: order.refCode,
      colorCode: order.colorCode,
      quantity: 10,
      createdAt: "2026-11-24T12:00:00.000Z",
      attempt: 0,
      instanceId: "test:1",
    });
    assert.equal((await ledger.findOrder(other.refCode))?.quantity, 2 ** 40);
    assert.equal(await ledger.findOrder(newOrder().refCode), undefined);
  });

  Deno.test(`${name} remembers which hops of a message were passed on`, async () => {
    await using ledger = await open();
    await ledger.commit([{ kind: "forward", messageKey: "m1", hop: "0:1", outcome: "retried" }]);
    await ledger.commit([{ kind: "forward", messageKey: "m1", hop: "0:1", outcome: "retried" }]);
    assert.equal(await ledger.wasForwarded("m1", "0:1"), true);
    assert.equal(await ledger.wasForwarded("m1", "0:2"), false);
    assert.equal(await ledger.wasForwarded("m2", "0:1"), false);
  });

  Deno.test(`${name}.journey() tells each hop's error, delay and instance, then the order`, async () => {
    await using ledger = await open({ instanceId: "ordem-1", now });
    const order = newOrder({ quantity: 700 });
    await ledger.commit([{
      kind: "forward",
      messageKey: order.refCode,
      hop: "0:0",
      outcome: "retried",
      error: "maximum quantity exceeded: 700 > 500",
      delayMs: 5000,
    }]);
    await ledger.commit([{
      kind: "forward",
      messageKey: order.refCode,
      hop: "0:1",
      outcome: "dead-lettered",
      error: "maximum quantity exceeded: 700 > 500",
    }]);
    await ledger.commit([{ kind: "order", order, attempt: 0 }]);
    const journey = await ledger.journey(order.refCode);
    assert.deepEqual(journey.forwards.map((f) => [f.hop, f.outcome, f.delayMs, f.instanceId]), [
      ["0:0", "retried", 5000, "ordem-1"],
      ["0:1", "dead-lettered", undefined, "ordem-1"],
    ]);
    assert.equal(journey.forwards[0]!.error, "maximum quantity exceeded: 700 > 500");
    assert.equal(journey.order?.quantity, 700);
    assert.deepEqual(await ledger.journey("unknown"), { order: undefined, forwards: [] });
  });
}

Deno.test("SqliteLedger adds the hop columns to a ledger written before they existed", async () => {
  await using old = await oldSqliteLedger(
    "INSERT INTO forwarded_messages VALUES ('m1', '0:0', 'retried', '2026-11-01T00:00:00.000Z');",
  );
  {
    // A reader of the old file, before any service migrated it, still tells the hop.
    await using reader = SqliteLedgerReader.open(old.path);
    const { forwards } = await reader.journey("m1");
    assert.deepEqual(forwards.map((f) => [f.hop, f.error, f.instanceId]), [
      ["0:0", undefined, undefined],
    ]);
  }
  await using ledger = await SqliteLedger.open(old.path, { instanceId: "new" });
  await ledger.commit([
    { kind: "forward", messageKey: "m1", hop: "0:1", outcome: "retried", error: "e", delayMs: 10 },
  ]);
  const { forwards } = await ledger.journey("m1");
  assert.deepEqual(forwards.map((f) => [f.hop, f.error, f.delayMs, f.instanceId]), [
    ["0:0", undefined, undefined, undefined],
    ["0:1", "e", 10, "new"],
  ]);
});

Deno.test("PostgresLedger: two instances committing the same RefCodes at once create each order once", async () => {
  const schema = `test_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  const [a, b] = await Promise.all([
    PostgresLedger.open(POSTGRES_URL, { schema, instanceId: "a" }),
    PostgresLedger.open(POSTGRES_URL, { schema, instanceId: "b" }),
  ]);
  try {
    const orders = Array.from({ length: 200 }, () => newOrder({ quantity: 1 }));
    const writes = orders.map((order) => ({ kind: "order" as const, order, attempt: 0 }));
    const [ra, rb] = await Promise.all([a.commit(writes), b.commit(writes.toReversed())]);
    const created = [...ra, ...rb].filter((r) => r === "created").length;
    assert.equal(created, 200);
    assert.equal(await a.countOrders(), 200);
    const spread = await a.ordersByInstance();
    assert.equal((spread.a ?? 0) + (spread.b ?? 0), 200);
  } finally {
    await a.close();
    await b.close();
    await dropSchema(POSTGRES_URL, schema);
  }
});

Deno.test("PostgresLedger.open() names the database without its password when it cannot connect", async () => {
  await assert.rejects(
    () => PostgresLedger.open("postgres://user:s3cret@127.0.0.1:1/db"),
    (e: Error) =>
      /^cannot open the ledger at postgres:\/\/user:\*\*\*@127\.0\.0\.1:1\/db: /.test(e.message) &&
      !e.message.includes("s3cret"),
  );
});

Deno.test("SqliteLedger keeps committed orders across a reopen, and creates its directory", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "nested", "ledger.sqlite");
  const order = newOrder();
  {
    await using ledger = await SqliteLedger.open(path);
    await ledger.commit([{ kind: "order", order, attempt: 0 }]);
  }
  await using reopened = await SqliteLedger.open(path);
  assert.equal((await reopened.findOrder(order.refCode))?.quantity, order.quantity);
});

Deno.test("SqliteLedger on a file: hop lookups share a held read, yet see every hop committed since, and other reads see every commit", async () => {
  await using dir = await tempDir();
  await using ledger = await SqliteLedger.open(join(dir.path, "ledger.sqlite"));
  const keys = Array.from({ length: 50 }, (_, i) => `m${i}`);
  // Fifty lookups: the first opens the read they share.
  const before = await Promise.all(keys.map((key) => ledger.wasForwarded(key, "0:1")));
  assert.deepEqual(before, keys.map(() => false));
  await ledger.commit([{ kind: "forward", messageKey: "m7", hop: "0:1", outcome: "retried" }]);
  // In the turn the worker's reply arrived in, and in a later one, while the read is still held.
  assert.equal(await ledger.wasForwarded("m7", "0:1"), true);
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(await ledger.wasForwarded("m7", "0:1"), true);
  assert.equal(await ledger.wasForwarded("m8", "0:1"), false);
  // An order committed while the lookups' read is held is found, and counted.
  const order = newOrder();
  await ledger.commit([{ kind: "order", order, attempt: 0 }]);
  assert.equal((await ledger.findOrder(order.refCode))?.refCode, order.refCode);
  assert.equal(await ledger.countOrders(), 1);
  // And the hop is still known after the read that hid it has ended.
  assert.equal(await ledger.wasForwarded("m7", "0:1"), true);
});

Deno.test("SqliteLedger.open() fails at once, naming the path, when the file cannot be made", async () => {
  await using dir = await tempDir();
  const blocker = join(dir.path, "not-a-directory");
  await Deno.writeTextFile(blocker, "");
  await assert.rejects(
    () => SqliteLedger.open(join(blocker, "ledger.sqlite")),
    /^Error: cannot open the ledger at .*not-a-directory\/ledger\.sqlite: /,
  );
});

Deno.test("openLedger() tries a PostgreSQL that refuses connections again for retryForMs, then names it", async () => {
  const started = performance.now();
  await assert.rejects(
    () => openLedger("postgres://user:s3cret@127.0.0.1:1/db", { retryForMs: 300 }),
    (e: Error) => /cannot open the ledger at postgres:\/\/user:\*\*\*@/.test(e.message),
  );
  // At least one wait of 250 ms or more came between the attempts.
  assert.ok(performance.now() - started >= 250);
  await using ledger = await openLedger("sqlite::memory:", { instanceId: "x" });
  assert.equal(await ledger.countOrders(), 0);
});

Deno.test("a SQLite ledger locked by another process is unavailable (commit and probe), and is back once released", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "ledger.sqlite");
  await using ledger = await SqliteLedger.open(path, { instanceId: "test" });
  const holder = new DatabaseSync(path);
  holder.exec("BEGIN IMMEDIATE"); // another process's write transaction, holding the lock
  try {
    const write = { kind: "order", order: newOrder({ quantity: 1 }), attempt: 0 } as const;
    await assert.rejects(
      () => ledger.commit([write]),
      (e: unknown) => e instanceof LedgerUnavailableError && e.code === "busy",
    );
    await assert.rejects(() => ledger.probe(), LedgerUnavailableError);
    holder.exec("ROLLBACK");
    await ledger.probe();
    assert.deepEqual(await ledger.commit([write]), ["created"]);
  } finally {
    holder.close();
  }
});

Deno.test("SQLite's own read-only and full errors are outages of the ledger, not failures of a message", () => {
  const write = { kind: "order", order: newOrder({ quantity: 1 }), attempt: 0 } as const;
  const readOnly = openDatabase(":memory:");
  readOnly.exec(SCHEMA);
  readOnly.exec("PRAGMA query_only = ON");
  assert.throws(
    () => new SqliteWriter(readOnly).commit([write], new Date().toISOString(), "test"),
    (e: unknown) => unavailableCode(e) === "readonly",
  );
  const full = openDatabase(":memory:");
  full.exec(SCHEMA);
  const pages = Number(
    (full.prepare("PRAGMA page_count").get() as { page_count: number })
      .page_count,
  );
  full.exec(`PRAGMA max_page_count = ${pages}`);
  const many = Array.from({ length: 500 }, () => ({ ...write, order: newOrder({ quantity: 1 }) }));
  assert.throws(
    () => new SqliteWriter(full).commit(many, new Date().toISOString(), "test"),
    (e: unknown) => unavailableCode(e) === "full",
  );
  assert.equal(unavailableCode(new Error("UNIQUE constraint failed")), undefined);
});

Deno.test("openLedgerReader() on PostgreSQL changes no schema: it reads, and says so when there is nothing to read", async () => {
  const schema = `test_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  const url = new URL(POSTGRES_URL);
  url.searchParams.set("search_path", schema);
  try {
    const error = await openLedgerReader(url.href).then(
      async (reader) => (await reader.close(), undefined),
      (e: Error) => e,
    );
    await using client = await postgresClient(POSTGRES_URL);
    const { rows } = await client.query(
      "SELECT 1 FROM information_schema.schemata WHERE schema_name = $1",
      [schema],
    );
    assert.equal(rows.length, 0, "the reader created the schema");
    assert.match(String(error), new RegExp(`no ledger in schema ${schema}.*OrdemDeProducao`));
    // Once OrdemDeProducao made it, the reader reads, and cannot write.
    const writer = await PostgresLedger.open(url.href, { instanceId: "writer" });
    const order = newOrder({ quantity: 3 });
    await writer.commit([{ kind: "order", order, attempt: 0 }]);
    await writer.close();
    const reader = await openLedgerReader(url.href);
    try {
      assert.equal((await reader.findOrder(order.refCode))?.quantity, 3);
    } finally {
      await reader.close();
    }
  } finally {
    await dropSchema(POSTGRES_URL, schema);
  }
});
