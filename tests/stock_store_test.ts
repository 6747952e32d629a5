/**
 * The stock store, on SQLite (a file, through its worker; and in memory) and on PostgreSQL (a
 * schema of its own per test, dropped afterwards): items, movements checked before anything is
 * written, the outbox row written in the movement's transaction or not at all, claims, retention
 * and the wake-up of relays.
 */

import { strict as assert } from "node:assert";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { isFatalError } from "../lib/errors.ts";
import { PostgresStockStore } from "../lib/postgres_stock_store.ts";
import { SqliteStockStore } from "../lib/sqlite_stock_store.ts";
import {
  applyMovement,
  checkMovement,
  isStoreUnavailable,
  StockError,
  type StockErrorCode,
  type StockStore,
} from "../lib/stock_store.ts";
import { POSTGRES_URL, tempDir, within } from "../testing/broker.ts";
import { CommitDroppingProxy } from "../testing/commit_proxy.ts";
import { dropSchema, postgresClient } from "../testing/postgres.ts";

const RED = "6f1c2a4e-8d3b-4f5a-9c7e-1b2d3e4f5a6b";
const BLUE = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

/** A backend under test: how to open a store on it, and run raw SQL against it. */
interface Backend {
  readonly name: string;
  /** Opens a store on this test's database (every call: the same one). */
  open(): Promise<StockStore>;
  /** Runs SQL on the database behind the store, outside it (a trigger, say). */
  sql(text: string): Promise<void>;
}

/** Runs `fn` on a fresh store of each backend; the database is removed afterwards. */
function eachBackend(
  name: string,
  fn: (backend: Backend) => Promise<void>,
  only?: readonly ("sqlite" | "memory" | "postgres")[],
): void {
  const wanted = (kind: "sqlite" | "memory" | "postgres") =>
    only === undefined || only.includes(kind);
  if (wanted("sqlite")) {
    Deno.test(`${name} (SQLite)`, async () => {
      await using dir = await tempDir();
      const path = join(dir.path, "stock.sqlite");
      await fn({
        name: "sqlite",
        open: () => SqliteStockStore.open(path),
        sql: (text) => {
          const db = new DatabaseSync(path);
          try {
            db.exec(text);
          } finally {
            db.close();
          }
          return Promise.resolve();
        },
      });
    });
  }
  if (wanted("memory")) {
    Deno.test(`${name} (SQLite in memory)`, async () => {
      let store: SqliteStockStore | undefined;
      await fn({
        name: "memory",
        // One store: an in-memory database lives as long as its connection.
        open: async () => {
          store ??= await SqliteStockStore.open(":memory:");
          return shared(store);
        },
        sql: () => Promise.reject(new Error("no SQL on an in-memory store")),
      });
      await store?.close();
    });
  }
  if (wanted("postgres")) {
    Deno.test(`${name} (PostgreSQL)`, async () => {
      const schema = `test_stock_${crypto.randomUUID().slice(0, 8)}`;
      try {
        await fn({
          name: "postgres",
          open: () => PostgresStockStore.open(POSTGRES_URL, { schema }),
          sql: async (text) => {
            await using client = await postgresClient(POSTGRES_URL);
            await client.query(`SET search_path = ${schema}`);
            await client.query(text);
          },
        });
      } finally {
        await dropSchema(POSTGRES_URL, schema);
      }
    });
  }
}

/** A store whose close() leaves the one underneath open (an in-memory one lives as long). */
function shared(store: StockStore): StockStore {
  return new Proxy(store, {
    get(target, property) {
      if (property === "close" || property === Symbol.asyncDispose) return () => Promise.resolve();
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** Rejects with a StockError of `code`. */
async function refused(promise: Promise<unknown>, code: StockErrorCode): Promise<void> {
  await assert.rejects(promise, (e: unknown) => e instanceof StockError && e.code === code);
}

Deno.test("applyMovement() asks for production only when stock falls from at or above the point to below it", () => {
  const item = { color: RED, quantity: 12, reorderPoint: 10 };
  assert.deepEqual(applyMovement(item, -2), { after: 10, crossed: false });
  assert.deepEqual(applyMovement(item, -3), { after: 9, crossed: true });
  assert.deepEqual(applyMovement({ ...item, quantity: 10 }, -1), { after: 9, crossed: true });
  assert.deepEqual(applyMovement({ ...item, quantity: 9 }, -4), { after: 5, crossed: false });
  assert.deepEqual(applyMovement({ ...item, quantity: 9 }, 5), { after: 14, crossed: false });
  assert.deepEqual(applyMovement({ ...item, reorderPoint: 0 }, -12), { after: 0, crossed: false });
  assert.throws(
    () => applyMovement(item, -13),
    (e: unknown) =>
      e instanceof StockError && e.code === "below_zero" &&
      e.message === `colour ${RED} has 12 in stock: taking 13 would leave -1`,
  );
  assert.throws(
    () => applyMovement(item, Number.MAX_SAFE_INTEGER),
    (e: unknown) => e instanceof StockError && e.code === "too_large",
  );
});

Deno.test("checkMovement() refuses a colour that is not a code, a delta that is not a whole number or is 0, a long reason", () => {
  const bad: Array<[unknown, unknown, StockErrorCode]> = [
    ["red", -1, "bad_color"],
    [RED, 1.5, "bad_delta"],
    [RED, 0, "bad_delta"],
    [RED, "3", "bad_delta"],
    [RED, Number.NaN, "bad_delta"],
    [RED, 2 ** 60, "bad_delta"],
  ];
  for (const [color, delta, code] of bad) {
    assert.throws(
      () => checkMovement({ color, delta } as never),
      (e: unknown) => e instanceof StockError && e.code === code,
      `${color} ${delta}`,
    );
  }
  assert.throws(
    () => checkMovement({ color: RED, delta: 1, reason: "x".repeat(201) }),
    (e: unknown) => e instanceof StockError && e.code === "bad_reason",
  );
  assert.deepEqual(checkMovement({ color: RED.toUpperCase(), delta: -2 }), {
    color: RED,
    delta: -2,
  });
});

eachBackend(
  "setItem() creates and replaces an item, listItems() and getItem() read it",
  async (b) => {
    await using store = await b.open();
    await store.setItem({
      color: RED.toUpperCase(),
      quantity: 5,
      reorderPoint: 2,
      reorderQuantity: 9,
    });
    await store.setItem({ color: BLUE, quantity: 1, reorderPoint: 0, reorderQuantity: 1 });
    const replaced = await store.setItem({
      color: RED,
      quantity: 50,
      reorderPoint: 20,
      reorderQuantity: 100,
    });
    assert.equal(replaced.quantity, 50);
    const items = await store.listItems();
    assert.deepEqual(items.map((i) => [i.color, i.quantity, i.reorderPoint, i.reorderQuantity]), [
      [BLUE, 1, 0, 1],
      [RED, 50, 20, 100],
    ]);
    assert.equal((await store.getItem(RED))?.reorderQuantity, 100);
    assert.equal(await store.getItem("00000000-0000-4000-8000-000000000000"), undefined);
    await refused(
      store.setItem({ color: RED, quantity: -1, reorderPoint: 0, reorderQuantity: 1 }),
      "bad_item",
    );
    await refused(
      store.setItem({ color: RED, quantity: 1, reorderPoint: 0, reorderQuantity: 0 }),
      "bad_item",
    );
    assert.equal((await store.getItem(RED))?.quantity, 50);
  },
);

eachBackend(
  "a refused movement (unknown colour, not a whole number, below zero) writes nothing",
  async (b) => {
    await using store = await b.open();
    await store.setItem({ color: RED, quantity: 12, reorderPoint: 10, reorderQuantity: 40 });
    await refused(store.move({ color: BLUE, delta: -1 }), "unknown_color");
    await refused(store.move({ color: RED, delta: 0.5 }), "bad_delta");
    await refused(store.move({ color: RED, delta: -13 }), "below_zero");
    await refused(store.move({ color: "red", delta: -1 }), "bad_color");
    assert.equal((await store.getItem(RED))?.quantity, 12);
    assert.equal(await store.countMovements(), 0);
    assert.deepEqual(await store.outboxRows(), []);
    // A refused movement committed beside accepted ones (one batch) leaves them alone.
    const results = await Promise.allSettled([
      store.move({ color: RED, delta: -1 }),
      store.move({ color: RED, delta: -100 }),
      store.move({ color: RED, delta: -1 }),
    ]);
    assert.deepEqual(results.map((r) => r.status), ["fulfilled", "rejected", "fulfilled"]);
    assert.equal((await store.getItem(RED))?.quantity, 10);
    assert.equal(await store.countMovements(), 2);
    assert.deepEqual(await store.outboxRows(), []);
  },
);

eachBackend(
  "a movement that crosses the reorder point puts exactly one request in the outbox",
  async (b) => {
    await using store = await b.open();
    await store.setItem({ color: RED, quantity: 12, reorderPoint: 10, reorderQuantity: 40 });
    assert.equal(
      (await store.move({ color: RED, delta: -2, reason: "order 1" })).request,
      undefined,
    );
    const crossing = await store.move({ color: RED, delta: -3 });
    assert.equal(crossing.before, 10);
    assert.equal(crossing.item.quantity, 7);
    const request = crossing.request!;
    assert.match(
      request.refCode,
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    assert.equal(request.colorCode, RED);
    assert.equal(request.quantity, 40);
    // Further down asks for nothing more; back up to the point and down again asks again.
    assert.equal((await store.move({ color: RED, delta: -7 })).request, undefined);
    assert.equal((await store.move({ color: RED, delta: 10 })).request, undefined);
    const again = await store.move({ color: RED, delta: -1 });
    assert.ok(again.request);
    const rows = await store.outboxRows();
    assert.deepEqual(rows.map((r) => [r.refCode, r.colorCode, r.quantity, r.sentAt]), [
      [request.refCode, RED, 40, undefined],
      [again.request.refCode, RED, 40, undefined],
    ]);
    assert.ok(rows[0]!.id < rows[1]!.id);
    assert.equal(await store.countMovements(), 5);
    assert.deepEqual(await store.outboxStats(), {
      depth: 2,
      oldestUnsentAt: rows[0]!.createdAt,
      maxAttempts: 0,
    });
  },
);

eachBackend(
  "a movement whose transaction fails after its outbox row is written leaves no row and no change",
  async (b) => {
    await using store = await b.open();
    await store.setItem({ color: RED, quantity: 10, reorderPoint: 10, reorderQuantity: 40 });
    // The history row is written last: a trigger that refuses it fails the movement after its
    // item and its outbox row were written, inside the same transaction.
    await b.sql(
      b.name === "postgres"
        ? `CREATE FUNCTION refuse_movement() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN RAISE EXCEPTION 'movement refused by a test trigger'; END $$;
         CREATE TRIGGER refuse BEFORE INSERT ON stock_movements
           FOR EACH ROW EXECUTE FUNCTION refuse_movement();`
        : `CREATE TRIGGER refuse BEFORE INSERT ON stock_movements
           BEGIN SELECT RAISE(ABORT, 'movement refused by a test trigger'); END;`,
    );
    await assert.rejects(store.move({ color: RED, delta: -1 }), /refused by a test trigger/);
    assert.equal((await store.getItem(RED))?.quantity, 10);
    assert.deepEqual(await store.outboxRows(), []);
    assert.equal(await store.countMovements(), 0);
    await b.sql(
      b.name === "postgres" ? "DROP TRIGGER refuse ON stock_movements" : "DROP TRIGGER refuse",
    );
    assert.ok((await store.move({ color: RED, delta: -1 })).request);
    assert.equal((await store.outboxRows()).length, 1);
  },
  ["sqlite", "postgres"],
);

eachBackend(
  "concurrent movements of one colour, from two stores, cross its reorder point once",
  async (b) => {
    await using one = await b.open();
    await using two = await b.open();
    await one.setItem({ color: RED, quantity: 100, reorderPoint: 50, reorderQuantity: 7 });
    const moves = Array.from(
      { length: 80 },
      (_, i) => (i % 2 === 0 ? one : two).move({ color: RED, delta: -1 }),
    );
    const results = await Promise.all(moves);
    assert.equal(
      results.filter((r) => r.request !== undefined).length,
      1,
    );
    assert.equal((await one.getItem(RED))?.quantity, 20);
    assert.equal((await two.outboxRows()).length, 1);
  },
  ["sqlite", "postgres"],
);

eachBackend(
  "a claim's finish() marks only the confirmed rows sent and counts the failed ones",
  async (b) => {
    await using store = await b.open();
    await store.setItem({ color: RED, quantity: 1, reorderPoint: 1, reorderQuantity: 5 });
    await store.setItem({ color: BLUE, quantity: 1, reorderPoint: 1, reorderQuantity: 6 });
    await store.move({ color: RED, delta: -1 });
    await store.move({ color: BLUE, delta: -1 });
    const claim = await store.claimOutbox(10);
    assert.deepEqual(claim.rows.map((r) => r.quantity), [5, 6]);
    const at = new Date();
    await claim.finish([claim.rows[0]!.id], [{ id: claim.rows[1]!.id, error: "returned" }], at);
    const rows = await store.outboxRows();
    assert.equal(rows[0]!.sentAt?.getTime(), at.getTime());
    assert.equal(rows[1]!.sentAt, undefined);
    assert.equal(rows[1]!.attempts, 1);
    assert.equal((await store.outboxStats()).maxAttempts, 1);
    const next = await store.claimOutbox(10);
    assert.deepEqual(next.rows.map((r) => r.id), [rows[1]!.id]);
    await next.abandon();
    assert.equal((await store.outboxStats()).depth, 1);
  },
);

eachBackend(
  "two claims never hold the same row: the second skips what the first holds",
  async (b) => {
    await using one = await b.open();
    await using two = await b.open();
    for (let i = 0; i < 5; i++) {
      const color = crypto.randomUUID();
      await one.setItem({ color, quantity: 1, reorderPoint: 1, reorderQuantity: 1 });
      await one.move({ color, delta: -1 });
    }
    const first = await one.claimOutbox(3);
    const second = await two.claimOutbox(3);
    assert.equal(first.rows.length, 3);
    assert.equal(second.rows.length, 2);
    assert.deepEqual(first.rows.filter((r) => second.rows.some((s) => s.id === r.id)), []);
    await first.abandon();
    await second.finish(second.rows.map((r) => r.id), [], new Date());
    assert.deepEqual(
      (await one.claimOutbox(10)).rows.map((r) => r.id),
      first.rows.map((r) => r.id),
    );
  },
  ["postgres"],
);

eachBackend(
  "the outbox of a SQLite file is relayed by one process: another claim fails relay_in_use",
  async (b) => {
    await using one = await b.open();
    await using two = await b.open();
    await (await one.claimOutbox(1)).abandon();
    await assert.rejects(
      two.claimOutbox(1),
      (e: unknown) => isFatalError(e) && (e as { code?: string }).code === "relay_in_use",
    );
    await one.close();
    await (await two.claimOutbox(1)).abandon();
  },
  ["sqlite"],
);

eachBackend(
  "deleteSent() deletes the rows sent before the given time, and only those",
  async (b) => {
    await using store = await b.open();
    for (let i = 0; i < 3; i++) {
      const color = crypto.randomUUID();
      await store.setItem({ color, quantity: 1, reorderPoint: 1, reorderQuantity: 1 });
      await store.move({ color, delta: -1 });
    }
    const first = await store.claimOutbox(10);
    const [a, b2, c] = first.rows;
    await first.finish([a!.id], [], new Date("2020-01-01T00:00:00Z"));
    const second = await store.claimOutbox(10);
    assert.deepEqual(second.rows.map((r) => r.id), [b2!.id, c!.id]);
    await second.finish([c!.id], [], new Date("2030-01-01T00:00:00Z"));
    assert.equal(await store.deleteSent(new Date("2025-01-01T00:00:00Z")), 1);
    assert.deepEqual((await store.outboxRows()).map((r) => r.id), [b2!.id, c!.id]);
  },
  ["memory", "postgres"],
);

eachBackend("listen() wakes a relay once a movement's request is committed", async (b) => {
  await using store = await b.open();
  await using other = b.name === "postgres" ? await b.open() : undefined;
  const mover = other ?? store;
  await mover.setItem({ color: RED, quantity: 2, reorderPoint: 2, reorderQuantity: 3 });
  let wakes = 0;
  let woken = Promise.withResolvers<void>();
  await using _listener = await store.listen(() => {
    wakes++;
    woken.resolve();
  });
  await within(woken.promise, 5_000, "the wake-up on listening"); // on PostgreSQL, once listening
  woken = Promise.withResolvers<void>();
  const before = wakes;
  await mover.move({ color: RED, delta: 1 }); // no request: no wake-up
  await mover.move({ color: RED, delta: -2 }); // a request
  await within(woken.promise, 5_000, "the wake-up of a request");
  assert.equal(wakes - before, 1);
}, ["memory", "postgres"]);

eachBackend(
  "a movement repeated with its idempotency key is applied once, and the repeat returns the first result",
  async (b) => {
    await using store = await b.open();
    await store.setItem({ color: RED, quantity: 12, reorderPoint: 10, reorderQuantity: 40 });
    const key = "order-81-take";
    const first = await store.move({
      color: RED,
      delta: -3,
      reason: "order 81",
      idempotencyKey: key,
    });
    assert.ok(first.request);
    assert.equal(first.replayed, undefined);
    await store.setItem({ color: RED, quantity: 9, reorderPoint: 10, reorderQuantity: 40 });
    const again = await store.move({
      color: RED,
      delta: -3,
      reason: "order 81",
      idempotencyKey: key,
    });
    assert.equal(again.replayed, true);
    assert.equal(again.movementId, first.movementId);
    assert.equal(again.before, 12);
    assert.equal(again.item.quantity, first.item.quantity);
    assert.equal(again.request?.refCode, first.request.refCode);
    assert.equal(again.request?.id, first.request.id);
    assert.equal((await store.getItem(RED))?.quantity, 9);
    assert.equal(await store.countMovements(), 1);
    assert.equal((await store.outboxRows()).length, 1);
    // In one batch (SQLite) or at once from one pool (PostgreSQL): still once.
    const together = await Promise.all([
      store.move({ color: RED, delta: 2, idempotencyKey: "together" }),
      store.move({ color: RED, delta: 2, idempotencyKey: "together" }),
    ]);
    assert.equal(together[0].movementId, together[1].movementId);
    assert.equal((await store.getItem(RED))?.quantity, 11);
    assert.equal(await store.countMovements(), 2);
    // The same key for another movement is refused, and writes nothing.
    await refused(store.move({ color: RED, delta: -1, idempotencyKey: key }), "key_reused");
    await refused(store.move({ color: RED, delta: -1, idempotencyKey: "" }), "bad_key");
    await refused(store.move({ color: RED, delta: -1, idempotencyKey: "a\nb" }), "bad_key");
    assert.equal((await store.getItem(RED))?.quantity, 11);
    assert.equal(await store.countMovements(), 2);
  },
);

Deno.test("a movement whose COMMIT answer is lost is reported as an unknown outcome, not an outage; its retry with the same key applies it once", async () => {
  const schema = `test_stock_${crypto.randomUUID().slice(0, 8)}`;
  await using proxy = CommitDroppingProxy.start(POSTGRES_URL);
  try {
    await using store = await PostgresStockStore.open(proxy.url, { schema });
    await store.setItem({ color: RED, quantity: 100, reorderPoint: 10, reorderQuantity: 5 });
    const dropped = proxy.dropNextCommit();
    const movement = { color: RED, delta: -30, reason: "order 81", idempotencyKey: "k-81" };
    const error = await store.move(movement).then(
      () => assert.fail("the movement resolved though its COMMIT answer was lost"),
      (e: unknown) => e,
    );
    await dropped;
    assert.equal(isStoreUnavailable(error), false, `an outage: ${error}`);
    assert.equal((error as { code?: string }).code, "commit_unknown");
    // The client does what it is told: tries again with the same key.
    const retried = await store.move(movement);
    assert.equal(retried.replayed, true);
    assert.equal(retried.item.quantity, 70);
    assert.equal((await store.getItem(RED))?.quantity, 70);
    assert.equal(await store.countMovements(), 1);
  } finally {
    await dropSchema(POSTGRES_URL, schema);
  }
});

Deno.test("claims follow the ids of committed rows: a row committed late behind a younger id is claimed after it (PostgreSQL)", async () => {
  const schema = `test_stock_${crypto.randomUUID().slice(0, 8)}`;
  try {
    await using store = await PostgresStockStore.open(POSTGRES_URL, { schema });
    await store.setItem({ color: RED, quantity: 1, reorderPoint: 1, reorderQuantity: 3 });
    await store.setItem({ color: BLUE, quantity: 1, reorderPoint: 1, reorderQuantity: 4 });
    // A movement of RED whose transaction takes its id and has not committed yet.
    await using slow = await postgresClient(POSTGRES_URL);
    await slow.query(`SET search_path = ${schema}`);
    await slow.query("BEGIN");
    const { rows: [early] } = await slow.query(
      `INSERT INTO stock_outbox (ref_code, color_code, quantity, created_at)
       VALUES ($1, $2, 3, now()) RETURNING id`,
      [crypto.randomUUID(), RED],
    );
    const late = (await store.move({ color: BLUE, delta: -1 })).request!;
    assert.ok(Number(early.id) < late.id);
    const first = await store.claimOutbox(10);
    assert.deepEqual(first.rows.map((r) => r.id), [late.id]); // the uncommitted one is not seen
    await first.finish([late.id], [], new Date());
    await slow.query("COMMIT");
    const second = await store.claimOutbox(10);
    assert.deepEqual(second.rows.map((r) => r.id), [Number(early.id)]);
    await second.abandon();
  } finally {
    await dropSchema(POSTGRES_URL, schema);
  }
});

Deno.test("a SQLite stock file made before idempotency keys gets the column and its unique index when opened", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "stock.sqlite");
  const old = new DatabaseSync(path);
  old.exec(`
    CREATE TABLE stock_movements (id INTEGER PRIMARY KEY AUTOINCREMENT, color TEXT NOT NULL,
      delta INTEGER NOT NULL, quantity_after INTEGER NOT NULL, at TEXT NOT NULL, reason TEXT,
      ref_code TEXT) STRICT;
    INSERT INTO stock_movements (color, delta, quantity_after, at) VALUES ('${RED}', 5, 5, 'x');`);
  old.close();
  await using store = await SqliteStockStore.open(path);
  await store.setItem({ color: RED, quantity: 5, reorderPoint: 0, reorderQuantity: 1 });
  const first = await store.move({ color: RED, delta: 1, idempotencyKey: "k" });
  const again = await store.move({ color: RED, delta: 1, idempotencyKey: "k" });
  assert.equal(again.movementId, first.movementId);
  assert.equal(await store.countMovements(), 2);
  assert.equal((await store.getItem(RED))?.quantity, 6);
});
