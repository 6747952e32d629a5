/**
 * The PostgreSQL stock store's movements committed in groups (lib/_postgres_stock_mover.ts), each
 * test in a schema of its own, dropped afterwards: movements taken at once share a transaction,
 * one colour's in the order they were taken, refusals and repeated keys answered as alone; in a
 * group, each movement's item, outbox row and history row still commit together or not at all: a movement whose statement fails fails alone, an outage in the middle of a group writes
 * none of it, and a group whose COMMIT answer is lost leaves every movement of it whole (each one
 * applied with its request, which its retry finds); two groups taking the same colours in
 * opposite orders never deadlock.
 */

import { strict as assert } from "node:assert";
import { PostgresStockMover } from "../lib/_postgres_stock_mover.ts";
import { postgresPool, postgresTarget } from "../lib/_postgres.ts";
import { PostgresStockStore } from "../lib/postgres_stock_store.ts";
import {
  checkMovement,
  isStoreUnavailable,
  type MovementResult,
  StockCommitUnknownError,
} from "../lib/stock_store.ts";
import { POSTGRES_URL, waitFor } from "../testing/broker.ts";
import { CommitDroppingProxy } from "../testing/commit_proxy.ts";
import { dropSchema, postgresClient } from "../testing/postgres.ts";

/** Colours in the order their codes sort: a group takes their row locks in this order. */
const COLORS = Array.from(
  { length: 6 },
  (_, i) => `${String(i + 1).repeat(8)}-1111-4111-8111-111111111111`,
);
const LAST = COLORS.at(-1)!;

/** Runs `fn` on a store in a schema of its own, whose tables `sql` reaches; drops it after. */
async function withStore(
  fn: (
    store: PostgresStockStore,
    sql: (text: string, values?: unknown[]) => Promise<Record<string, unknown>[]>,
    schema: string,
  ) => Promise<void>,
  url = POSTGRES_URL,
): Promise<void> {
  const schema = `test_mover_${crypto.randomUUID().slice(0, 8)}`;
  try {
    await using store = await PostgresStockStore.open(url, { schema });
    await using client = await postgresClient(POSTGRES_URL);
    await client.query(`SET search_path = ${schema}`);
    for (const color of COLORS) {
      await store.setItem({ color, quantity: 10, reorderPoint: 10, reorderQuantity: 25 });
    }
    await fn(store, async (text, values) => (await client.query(text, values)).rows, schema);
  } finally {
    await dropSchema(POSTGRES_URL, schema);
  }
}

/** Each colour's quantity, the outbox's RefCodes and the history's (RefCode or null) rows. */
async function state(
  sql: (text: string) => Promise<Record<string, unknown>[]>,
): Promise<{ quantities: number[]; outbox: string[]; history: (string | null)[] }> {
  const items = await sql("SELECT color, quantity FROM stock_items ORDER BY color");
  const outbox = await sql("SELECT ref_code FROM stock_outbox ORDER BY id");
  const history = await sql("SELECT ref_code FROM stock_movements ORDER BY id");
  return {
    quantities: items.map((r) => Number(r.quantity)),
    outbox: outbox.map((r) => String(r.ref_code)),
    history: history.map((r) => (r.ref_code as string | null) ?? null),
  };
}

/** Every committed movement's request is in the outbox and in its history row, and no other is. */
function assertWhole(results: readonly MovementResult[], s: Awaited<ReturnType<typeof state>>) {
  const requests = results.flatMap((r) => r.request ? [r.request.refCode] : []).sort();
  assert.deepEqual([...s.outbox].sort(), requests);
  assert.deepEqual(s.history.filter((r) => r !== null).sort(), requests);
  assert.equal(s.history.length, results.length);
}

Deno.test("movements taken at once share one transaction, each with its request", async () => {
  await withStore(async (store, sql) => {
    // Every colour crosses its reorder point; then each comes back to it: no request.
    const results = await Promise.all([
      ...COLORS.map((color) => store.move({ color, delta: -1 })),
      ...COLORS.map((color) => store.move({ color, delta: 1 })),
    ]);
    const [{ n }] = await sql("SELECT count(DISTINCT xmin::text) AS n FROM stock_movements") as [
      { n: string },
    ];
    assert.equal(Number(n), 1, "one transaction for the twelve");
    assert.equal(results.filter((r) => r.request !== undefined).length, 6);
    assert.deepEqual(results.map((r) => r.item.quantity), [
      ...COLORS.map(() => 9),
      ...COLORS.map(() => 10),
    ]);
    assertWhole(results, await state(sql));
  });
});

Deno.test("in a group, one colour's movements apply in the order they were taken, a refused one writes nothing, a repeated key answers the first", async () => {
  await withStore(async (store, sql) => {
    const [red, blue] = COLORS as [string, string];
    const settled = await Promise.allSettled([
      store.move({ color: red, delta: -10 }), // 10 -> 0, crosses
      store.move({ color: blue, delta: -1, idempotencyKey: "blue-1" }), // 10 -> 9, crosses
      store.move({ color: red, delta: -1 }), // below zero: refused, nothing written
      store.move({ color: red, delta: 12 }), // 0 -> 12
      store.move({ color: blue, delta: -1, idempotencyKey: "blue-1" }), // the same: answered
      store.move({ color: red, delta: -3 }), // 12 -> 9, crosses again
      store.move({ color: "00000000-0000-4000-8000-000000000000", delta: 1 }), // unknown
    ]);
    assert.deepEqual(settled.map((s) => s.status), [
      "fulfilled",
      "fulfilled",
      "rejected",
      "fulfilled",
      "fulfilled",
      "fulfilled",
      "rejected",
    ]);
    const value = (i: number) => (settled[i] as PromiseFulfilledResult<MovementResult>).value;
    const code = (i: number) => (settled[i] as PromiseRejectedResult).reason.code;
    assert.deepEqual([code(2), code(6)], ["below_zero", "unknown_color"]);
    assert.deepEqual([0, 1, 3, 5].map((i) => [value(i).before, value(i).item.quantity]), [
      [10, 0],
      [10, 9],
      [0, 12],
      [12, 9],
    ]);
    assert.equal(value(4).replayed, true);
    assert.equal(value(4).movementId, value(1).movementId);
    assert.equal(value(4).request?.refCode, value(1).request?.refCode);
    assert.ok(value(0).request && value(5).request && value(3).request === undefined);
    const [{ n }] = await sql("SELECT count(DISTINCT xmin::text) AS n FROM stock_movements") as [
      { n: string },
    ];
    assert.equal(Number(n), 1, "one transaction");
    const after = await state(sql);
    assert.deepEqual(after.quantities.slice(0, 2), [9, 9]);
    assertWhole([0, 1, 3, 5].map(value), after);
  });
});

Deno.test("in a group, a movement whose statement fails fails alone: its item, request and history row are not written, the others' are", async () => {
  await withStore(async (store, sql) => {
    // The history row of LAST's movements is refused: the statement fails after its item and its
    // outbox row were written, in the group's transaction.
    await sql(
      `CREATE FUNCTION refuse_last() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF NEW.color = '${LAST}' THEN RAISE EXCEPTION 'movement refused by a test trigger'; END IF;
         RETURN NEW;
       END $$;
       CREATE TRIGGER refuse BEFORE INSERT ON stock_movements
         FOR EACH ROW EXECUTE FUNCTION refuse_last();`,
    );
    const settled = await Promise.allSettled(
      COLORS.map((color) => store.move({ color, delta: -1 })),
    );
    assert.deepEqual(
      settled.map((s) => s.status),
      [...COLORS.slice(1).map(() => "fulfilled"), "rejected"],
    );
    assert.match(String((settled.at(-1) as PromiseRejectedResult).reason), /test trigger/);
    const results = settled.flatMap((s) => s.status === "fulfilled" ? [s.value] : []);
    const after = await state(sql);
    assert.deepEqual(after.quantities, [9, 9, 9, 9, 9, 10]);
    assertWhole(results, after);
  });
});

Deno.test("an outage in the middle of a group writes none of it; the store takes movements again after", async () => {
  await withStore(async (store, sql, schema) => {
    // The group's statement waits in LAST's history row: the group has not committed.
    await sql(
      `CREATE FUNCTION slow_last() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF NEW.color = '${LAST}' THEN PERFORM pg_sleep(30); END IF;
         RETURN NEW;
       END $$;
       CREATE TRIGGER slow BEFORE INSERT ON stock_movements
         FOR EACH ROW EXECUTE FUNCTION slow_last();`,
    );
    const group = Promise.allSettled(COLORS.map((color) => store.move({ color, delta: -1 })));
    const [{ pid }] = await waitFor(
      "the group's connection, asleep in LAST's history row",
      async () => {
        const rows = await sql(
          `SELECT DISTINCT a.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.relation = '${schema}.stock_items'::regclass AND a.wait_event = 'PgSleep'`,
        );
        return rows.length === 1 ? rows as [{ pid: number }] : undefined;
      },
      10_000,
    );
    await sql("SELECT pg_terminate_backend($1)", [pid]);
    const settled = await group;
    for (const s of settled) {
      assert.equal(s.status, "rejected");
      assert.ok(isStoreUnavailable(s.reason), String(s.reason));
    }
    assert.deepEqual(await state(sql), {
      quantities: COLORS.map(() => 10),
      outbox: [],
      history: [],
    });
    await sql("DROP TRIGGER slow ON stock_movements");
    const again = await store.move({ color: COLORS[0]!, delta: -1 });
    assert.ok(again.request);
  });
});

Deno.test("a group whose COMMIT answer is lost: each movement is unknown, each was applied whole, and its retry with its key finds it", async () => {
  await using proxy = CommitDroppingProxy.start(POSTGRES_URL);
  await withStore(async (store, sql) => {
    const movements = COLORS.slice(0, 3).map((color, i) => ({
      color,
      delta: -1,
      idempotencyKey: `lost-${i}`,
    }));
    const dropped = proxy.dropNextCommit("INSERT INTO stock_movements");
    const settled = await Promise.allSettled(movements.map((m) => store.move(m)));
    await dropped;
    for (const s of settled) {
      assert.equal(s.status, "rejected");
      assert.equal((s.reason as { code?: string }).code, "commit_unknown", String(s.reason));
    }
    const retried = await Promise.all(movements.map((m) => store.move(m)));
    assert.ok(retried.every((r) => r.replayed === true && r.request !== undefined));
    const after = await state(sql);
    assert.deepEqual(after.quantities, [9, 9, 9, 10, 10, 10]);
    assertWhole(retried, after);
  }, proxy.url);
});

Deno.test("two stores' groups taking the same colours in opposite orders never deadlock", async () => {
  await withStore(async (one, sql, schema) => {
    await using two = await PostgresStockStore.open(POSTGRES_URL, { schema });
    const deadlocks = async () =>
      Number(
        (await sql("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"))[0]
          ?.deadlocks,
      );
    const before = await deadlocks();
    const rounds = 20;
    const moves: Promise<MovementResult>[] = [];
    for (let round = 0; round < rounds; round++) {
      for (const color of COLORS) moves.push(one.move({ color, delta: 1 }));
      for (const color of COLORS.toReversed()) moves.push(two.move({ color, delta: 1 }));
      await new Promise((resolve) => setTimeout(resolve, 0)); // the next round, another group
    }
    await Promise.all(moves);
    assert.equal(await deadlocks(), before);
    assert.deepEqual((await state(sql)).quantities, COLORS.map(() => 10 + 2 * rounds));
  });
});

Deno.test("with one writer, a movement taken just as the writer finishes is never left queued without one, however many ticks its caller takes", async () => {
  // The window is a tick or two wide (the writer saw an empty queue and is not yet removed), so
  // the next movement is taken 0 to 4 ticks after the last one settled, each offset 20 times, on
  // the mover itself: what the store or an HTTP handler adds in between shifts the offset.
  await withStore(async (store, _sql, schema) => {
    await store.setItem({ color: LAST, quantity: 1_000, reorderPoint: 0, reorderQuantity: 1 });
    const pool = postgresPool(postgresTarget(POSTGRES_URL, schema), {
      applicationName: "mover test",
      max: 1,
      statementTimeoutMs: 5_000,
    });
    try {
      const mover = new PostgresStockMover({
        pool,
        channel: `mover_test_${schema}`,
        writers: 1,
        classify: (error) => error,
        commitUnknown: (error) => new StockCommitUnknownError("commit unknown", { cause: error }),
      });
      let settled = 0;
      const all = (async () => {
        for (let ticks = 0; ticks <= 4; ticks++) {
          for (let i = 0; i < 20; i++) {
            await mover.move(checkMovement({ color: LAST, delta: -1 }), new Date());
            for (let tick = 0; tick < ticks; tick++) await null;
            settled++;
          }
        }
      })();
      await waitFor(
        "100 movements settled one after another",
        () => settled === 100 ? true : undefined,
        15_000,
      ).finally(() => all.catch(() => {}));
      await all;
      await mover.drain();
    } finally {
      await pool.end();
    }
  });
});
