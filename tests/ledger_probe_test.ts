/**
 * The breaker closes when the ledger's probe passes, so the probe must fail whenever a commit
 * would: a full disk, a read-only file or database, not only a lost connection or a held lock.
 */
import { strict as assert } from "node:assert";
import { join } from "node:path";
import { LedgerUnavailableError } from "../lib/errors.ts";
import { newOrder } from "../lib/order.ts";
import { PostgresLedger } from "../lib/postgres_ledger.ts";
import { SqliteLedger } from "../lib/sqlite_ledger.ts";
import { POSTGRES_URL, within } from "../testing/broker.ts";
import { fillDisk, tinyDisk } from "../testing/disk.ts";
import { impatientLedger, uniqueSchema } from "../testing/locked_ledger.ts";
import { dropSchema, postgresClient } from "../testing/postgres.ts";
import { HoldingProxy } from "../testing/proxy.ts";

const order = () => ({ kind: "order", order: newOrder({ quantity: 1 }), attempt: 0 }) as const;

Deno.test("a SQLite ledger on a full disk fails its probe as it fails commits, and passes again once there is room", async () => {
  await using disk = await tinyDisk(2_048);
  await using ledger = await SqliteLedger.open(join(disk.path, "ledger.sqlite"), {
    instanceId: "full",
  });
  await ledger.commit([order()]);
  await fillDisk(join(disk.path, "filler"));
  const many = Array.from({ length: 2_000 }, order);
  await assert.rejects(
    () => ledger.commit(many),
    (e: unknown) => e instanceof LedgerUnavailableError && e.code === "full",
  );
  await assert.rejects(
    () => ledger.probe(),
    (e: unknown) => e instanceof LedgerUnavailableError && e.code === "full",
    "the probe passed while commits fail with a full disk",
  );
  await Deno.remove(join(disk.path, "filler"));
  await ledger.probe();
  assert.deepEqual((await ledger.commit(many)).filter((r) => r === "created").length, 2_000);
});

Deno.test("a PostgreSQL ledger whose database turns read-only fails its probe as it fails commits", async () => {
  const database = `ledger_ro_${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;
  const url = new URL(POSTGRES_URL);
  await using admin = await postgresClient(url.href);
  await admin.query(`CREATE DATABASE ${database}`);
  url.pathname = `/${database}`;
  try {
    const ledger = await PostgresLedger.open(url.href, { instanceId: "read-only" });
    try {
      await ledger.commit([order()]);
      await ledger.probe();
      // A standby, or an operator's safety switch: new sessions cannot write.
      await admin.query(`ALTER DATABASE ${database} SET default_transaction_read_only = on`);
      await admin.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
        [database],
      );
      // The pool's idle connections were ended: the first attempts may meet one of them (57P01).
      const codes: (string | undefined)[] = [];
      for (let i = 0; i < 5 && codes.at(-1) !== "25006"; i++) {
        codes.push(await ledger.commit([order()]).then(() => "committed", (e) => e.code));
      }
      assert.equal(codes.at(-1), "25006", `commits on a read-only database: ${codes}`);
      await assert.rejects(
        () => ledger.probe(),
        (e: unknown) => e instanceof LedgerUnavailableError && e.code === "25006",
        "the probe passed while commits fail on a read-only database",
      );
      await admin.query(`ALTER DATABASE ${database} SET default_transaction_read_only = off`);
      await admin.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
        [database],
      );
      await ledger.probe().catch(() => {}); // may meet a connection ended above (57P01)
      await ledger.probe();
      assert.deepEqual(await ledger.commit([order()]), ["created"]);
    } finally {
      await ledger.close();
    }
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  }
});

Deno.test("a PostgreSQL ledger whose connection goes silent (half-open) fails commits and probes as an outage within its statement timeout", async () => {
  await using proxy = HoldingProxy.start(POSTGRES_URL);
  const schema = uniqueSchema();
  const ledger = await PostgresLedger.open(proxy.url, {
    schema,
    instanceId: "silent",
    statementTimeoutMs: 1_000,
  });
  try {
    await ledger.commit([order()]);
    proxy.hold(); // the server's answers stop arriving, as on a half-open connection
    await assert.rejects(
      () => within(ledger.commit([order()]), 10_000, "the commit"),
      (e: unknown) => e instanceof LedgerUnavailableError,
    );
    await assert.rejects(() => within(ledger.probe(), 10_000, "the probe"), LedgerUnavailableError);
    proxy.release();
    await ledger.probe().catch(() => {}); // a connection the stall left behind may fail once
    await ledger.probe();
    assert.deepEqual(await ledger.commit([order()]), ["created"]);
  } finally {
    proxy.release();
    await ledger.close();
    await dropSchema(POSTGRES_URL, schema);
  }
});

Deno.test("a PostgreSQL commit cancelled by the statement timeout (a table locked) is an outage, not the orders' failure", async () => {
  const schema = uniqueSchema();
  const ledger = await impatientLedger(schema, "locked");
  await using admin = await postgresClient(POSTGRES_URL);
  try {
    await admin.query("BEGIN");
    await admin.query(`LOCK TABLE ${schema}.production_orders IN ACCESS EXCLUSIVE MODE`);
    await assert.rejects(
      () => within(ledger.commit([order()]), 10_000, "the commit"),
      (e: unknown) => e instanceof LedgerUnavailableError && e.code === "57014",
    );
    await admin.query("ROLLBACK");
    assert.deepEqual(await ledger.commit([order()]), ["created"]);
  } finally {
    await admin.query("ROLLBACK").catch(() => {});
    await ledger.close();
    await dropSchema(POSTGRES_URL, schema);
  }
});

for (const table of ["production_orders", "forwarded_messages"]) {
  Deno.test(`a PostgreSQL ledger's probe fails while a lock on ${table} makes commits time out, and passes once it is released`, async () => {
    const schema = uniqueSchema();
    const ledger = await impatientLedger(schema, "table-locked");
    await using admin = await postgresClient(POSTGRES_URL);
    try {
      await admin.query("BEGIN");
      // What a migration or an operator's LOCK TABLE holds: reads go on, every insert waits.
      await admin.query(`LOCK TABLE ${schema}.${table} IN EXCLUSIVE MODE`);
      await assert.rejects(
        () => within(ledger.probe(), 10_000, "the probe"),
        (e: unknown) => e instanceof LedgerUnavailableError && e.code === "57014",
        "the probe passed while commits time out on a locked table",
      );
      await admin.query("ROLLBACK");
      await ledger.probe();
    } finally {
      await admin.query("ROLLBACK").catch(() => {});
      await ledger.close();
      await dropSchema(POSTGRES_URL, schema);
    }
  });
}
