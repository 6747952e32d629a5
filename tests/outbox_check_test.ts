/** The doctor's look at the outbox: read without writing, and when it is stuck. */

import { strict as assert } from "node:assert";
import { join } from "node:path";
import { outboxVerdict, readOutboxStats, STUCK_ATTEMPTS } from "../lib/outbox_check.ts";
import { PostgresStockStore } from "../lib/postgres_stock_store.ts";
import { SqliteStockStore } from "../lib/sqlite_stock_store.ts";
import type { StockStore } from "../lib/stock_store.ts";
import { POSTGRES_URL, tempDir } from "../testing/broker.ts";
import { dropSchema } from "../testing/postgres.ts";

const COLOR = "3f2c8a1e-5b7d-4e9a-8c61-0d4f2b7a9e13";
const TEN_MINUTES_AGO = new Date(Date.now() - 600_000);

/** One request left unsent, written ten minutes ago: a colour taken below its reorder point. */
async function oneUnsentRequest(store: StockStore): Promise<void> {
  await store.setItem({ color: COLOR, quantity: 50, reorderPoint: 40, reorderQuantity: 100 });
  const moved = await store.move({ color: COLOR, delta: -20 });
  assert.ok(moved.request, "the movement crossed the reorder point");
}

Deno.test("outboxVerdict() calls an outbox stuck when its oldest request waited past the bound, or one was tried too often", () => {
  const now = new Date("2026-12-06T12:00:00Z");
  const at = (secondsAgo: number) => new Date(now.getTime() - secondsAgo * 1000);
  const empty = outboxVerdict({ depth: 0, oldestUnsentAt: undefined, maxAttempts: 0 }, now, 60_000);
  assert.deepEqual(empty, { stuck: false, detail: "empty: every request published" });
  const fresh = outboxVerdict({ depth: 2, oldestUnsentAt: at(5), maxAttempts: 1 }, now, 60_000);
  assert.deepEqual(fresh, {
    stuck: false,
    detail: "2 requests unsent, the oldest 5 s old, at most 1 publish attempt",
  });
  const old = outboxVerdict({ depth: 1, oldestUnsentAt: at(61), maxAttempts: 0 }, now, 60_000);
  assert.equal(old.stuck, true);
  assert.match(old.detail, /^stuck: 1 request unsent, the oldest 61 s old/);
  const retried = { depth: 1, oldestUnsentAt: at(1), maxAttempts: STUCK_ATTEMPTS };
  assert.equal(outboxVerdict(retried, now, 60_000).stuck, true);
});

Deno.test("readOutboxStats() reads a SQLite stock store's outbox read only, and refuses a path with no store, making no file", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "stock.sqlite");
  {
    await using store = await SqliteStockStore.open(path, { now: () => TEN_MINUTES_AGO });
    await oneUnsentRequest(store);
  }
  const stats = await readOutboxStats(`sqlite:${path}`);
  assert.equal(stats.depth, 1);
  assert.equal(stats.maxAttempts, 0);
  assert.equal(stats.oldestUnsentAt?.getTime(), TEN_MINUTES_AGO.getTime());
  assert.equal(outboxVerdict(stats, new Date(), 60_000).stuck, true);
  const missing = join(dir.path, "none.sqlite");
  await assert.rejects(readOutboxStats(`sqlite:${missing}`), /cannot read the outbox of sqlite:/);
  await assert.rejects(Deno.stat(missing), Deno.errors.NotFound);
});

Deno.test("readOutboxStats() reads a PostgreSQL stock store's outbox in read-only sessions", async () => {
  const schema = `test_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  const url = `${POSTGRES_URL}?search_path=${schema}`;
  try {
    {
      await using store = await PostgresStockStore.open(url, { now: () => TEN_MINUTES_AGO });
      await oneUnsentRequest(store);
    }
    const stats = await readOutboxStats(url);
    assert.deepEqual([stats.depth, stats.maxAttempts], [1, 0]);
    assert.equal(stats.oldestUnsentAt?.getTime(), TEN_MINUTES_AGO.getTime());
  } finally {
    await dropSchema(POSTGRES_URL, schema);
  }
});
