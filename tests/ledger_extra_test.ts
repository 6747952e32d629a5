/**
 * A production order keeps the fields of its body this reader does not know (a v1.1 producer's
 * extra field), in both ledgers, bounded; and a ledger written before they were kept is migrated
 * by a service and still read, migrated or not, by a reader.
 */

import { strict as assert } from "node:assert";
import { oldSqliteLedger } from "../testing/old_ledger.ts";
import { EXTRA_MAX_BYTES, type Ledger } from "../lib/ledger.ts";
import { openLedgerReader } from "../lib/open_ledger.ts";
import { PostgresLedger } from "../lib/postgres_ledger.ts";
import { SqliteLedger } from "../lib/sqlite_ledger.ts";
import { SqliteLedgerReader } from "../lib/sqlite_ledger_reader.ts";
import { newOrder } from "../lib/order.ts";
import { buildJourney } from "../lib/console/journey.ts";
import { POSTGRES_URL } from "../testing/broker.ts";
import { dropSchema, postgresClient } from "../testing/postgres.ts";

const schemaName = () => `test_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;

async function bothLedgers(fn: (name: string, ledger: Ledger) => Promise<void>): Promise<void> {
  {
    await using ledger = await SqliteLedger.open(":memory:");
    await fn("SqliteLedger", ledger);
  }
  const schema = schemaName();
  try {
    await using ledger = await PostgresLedger.open(POSTGRES_URL, { schema });
    await fn("PostgresLedger", ledger);
  } finally {
    await dropSchema(POSTGRES_URL, schema);
  }
}

Deno.test("a created order keeps its body's extra fields in both ledgers, and the journey shows them", async () => {
  await bothLedgers(async (name, ledger) => {
    const order = newOrder({ quantity: 4 });
    const plain = newOrder({ quantity: 5 });
    const extra = { Priority: 3, Plant: { site: "BR-SC", line: 2 } };
    assert.deepEqual(
      await ledger.commit([
        { kind: "order", order, attempt: 0, extra },
        { kind: "order", order: plain, attempt: 0 },
      ]),
      ["created", "created"],
    );
    assert.deepEqual((await ledger.findOrder(order.refCode))?.extra, extra, name);
    assert.equal("extra" in (await ledger.findOrder(plain.refCode))!, false, name);
    const journey = buildJourney(order.refCode, await ledger.journey(order.refCode), []);
    assert.deepEqual(journey?.productionOrder?.extra, extra, name);
    const created = journey?.steps.find((s) => s.kind === "created");
    assert.match(created?.detail ?? "", /fields this reader does not know, kept: Priority, Plant/);
  });
});

Deno.test(`extra fields past ${EXTRA_MAX_BYTES} bytes of JSON are cut, with a marker that says so`, async () => {
  await bothLedgers(async (name, ledger) => {
    const order = newOrder({ quantity: 1 });
    await ledger.commit([{ kind: "order", order, attempt: 0, extra: { Big: "x".repeat(10_000) } }]);
    const kept = (await ledger.findOrder(order.refCode))?.extra;
    assert.equal(typeof kept?.["…truncated"], "string", name);
    assert.ok(new TextEncoder().encode(JSON.stringify(kept)).byteLength <= EXTRA_MAX_BYTES + 200);
  });
});

Deno.test("SqliteLedger adds the extra column to a ledger written before it; a reader reads the old file before and after", async () => {
  await using old = await oldSqliteLedger(
    "INSERT INTO production_orders VALUES ('r-old', 'c', 2, '2026-11-01T00:00:00.000Z', 0, 'old');",
  );
  {
    await using reader = SqliteLedgerReader.open(old.path);
    const found = await reader.findOrder("r-old");
    assert.equal(found?.quantity, 2);
    assert.equal(found?.extra, undefined);
  }
  const order = newOrder({ quantity: 7 });
  {
    await using ledger = await SqliteLedger.open(old.path, { instanceId: "new" });
    await ledger.commit([{ kind: "order", order, attempt: 0, extra: { Priority: 1 } }]);
    assert.equal((await ledger.findOrder("r-old"))?.extra, undefined);
  }
  await using reader = SqliteLedgerReader.open(old.path);
  assert.deepEqual((await reader.findOrder(order.refCode))?.extra, { Priority: 1 });
});

Deno.test("PostgresLedger adds the extra column to a schema made before it; a reader (migrate: false) reads it before and after", async () => {
  const schema = schemaName();
  const url = new URL(POSTGRES_URL);
  url.searchParams.set("search_path", schema);
  try {
    {
      await using client = await postgresClient(POSTGRES_URL);
      await client.query(`
        CREATE SCHEMA ${schema};
        CREATE TABLE ${schema}.production_orders (ref_code text PRIMARY KEY,
          color_code text NOT NULL, quantity bigint NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(), attempt integer NOT NULL,
          instance_id text NOT NULL);
        CREATE TABLE ${schema}.forwarded_messages (message_key text NOT NULL, hop text NOT NULL,
          outcome text NOT NULL, at timestamptz NOT NULL DEFAULT now(), instance_id text NOT NULL,
          error text, delay_ms integer, PRIMARY KEY (message_key, hop));
        INSERT INTO ${schema}.production_orders VALUES ('r-old', 'c', 2, now(), 0, 'old');`);
    }
    {
      await using reader = await openLedgerReader(url.href);
      const found = await reader.findOrder("r-old");
      assert.equal(found?.quantity, 2);
      assert.equal(found?.extra, undefined);
      assert.equal((await reader.journey("r-old")).order?.quantity, 2);
    }
    const order = newOrder({ quantity: 7 });
    {
      await using ledger = await PostgresLedger.open(url.href, { instanceId: "new" });
      await ledger.commit([{ kind: "order", order, attempt: 0, extra: { Priority: 1 } }]);
    }
    await using reader = await openLedgerReader(url.href);
    assert.deepEqual((await reader.findOrder(order.refCode))?.extra, { Priority: 1 });
  } finally {
    await dropSchema(POSTGRES_URL, schema);
  }
});
