/**
 * The console's look at Estoque's outbox: the overview's numbers read from a real SQLite and a real
 * PostgreSQL stock store (requests unsent, the oldest one's age, the most attempts, the publish
 * lag of the requests sent in the last minute), what it says without a stock store and with one
 * it cannot read, and the overview page in a real headless Chromium showing them.
 */

import { strict as assert } from "node:assert";
import { join } from "node:path";
import { NO_STOCK_STORE, type Overview, OverviewSampler } from "../lib/console/overview.ts";
import { OutboxReader } from "../lib/outbox_check.ts";
import { PostgresStockStore } from "../lib/postgres_stock_store.ts";
import { DEFAULT_RETRY_POLICY, retryDelays } from "../lib/retry_policy.ts";
import { SqliteStockStore } from "../lib/sqlite_stock_store.ts";
import type { StockStore } from "../lib/stock_store.ts";
import { topology } from "../lib/topology.ts";
import { launchChromium, screenshotDir } from "../testing/browser.ts";
import { POSTGRES_URL, tempDir, withTopology } from "../testing/broker.ts";
import { startConsole } from "../testing/console.ts";
import { dropSchema, freePort } from "../testing/postgres.ts";

/** Four colours, each taken below its reorder point once: four requests. */
const COLORS = [
  "6f1c2a4e-8d3b-4f5a-9c7e-1b2d3e4f5a6b",
  "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
  "3f2c8a1e-5b7d-4e9a-8c61-0d4f2b7a9e13",
  "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a",
];

/**
 * Fills a store's outbox as a relay would leave it at `now`: a request sent ten minutes ago (out
 * of the lag's window), two sent in the last minute (lags 200 ms and 1.5 s), and two unsent, the
 * oldest made 45 s ago, one of them refused twice by the broker. `clock` is the store's clock.
 */
async function fill(store: StockStore, clock: { at: Date }, now: Date): Promise<void> {
  const ago = (ms: number) => new Date(now.getTime() - ms);
  for (const color of COLORS) {
    await store.setItem({ color, quantity: 10, reorderPoint: 10, reorderQuantity: 25 });
  }
  const made = [600_000, 30_000, 20_000, 45_000, 5_000];
  const ids: number[] = [];
  for (const [i, msAgo] of made.entries()) {
    clock.at = ago(msAgo);
    // The fifth movement crosses again: the first colour back to its point, then below it.
    if (i === 4) await store.move({ color: COLORS[0]!, delta: 1 });
    const moved = await store.move({ color: COLORS[i % 4]!, delta: -1 });
    assert.ok(moved.request, "the movement crossed its reorder point");
    ids.push(moved.request.id);
  }
  const mark = async (id: number, sentAt: Date) => {
    const claim = await store.claimOutbox(10);
    await claim.finish([id], [], sentAt);
  };
  await mark(ids[0]!, ago(540_000)); // ten minutes ago, sent a minute later
  await mark(ids[1]!, ago(30_000 - 200)); // 200 ms
  await mark(ids[2]!, ago(20_000 - 1_500)); // 1.5 s
  for (let i = 0; i < 2; i++) {
    const claim = await store.claimOutbox(10);
    await claim.finish([], [{ id: ids[4]!, error: "returned" }], now);
  }
}

/** The overview with only a stock store to read (nothing else answers), at `now`. */
function sampler(outbox: OutboxReader | undefined, now: Date): OverviewSampler {
  return new OverviewSampler({
    broker: () => Promise.reject(new Error("no broker in this test")),
    topology: topology({ prefix: "units." }),
    metricsUrls: [],
    management: undefined,
    ledger: () => Promise.resolve(undefined),
    ...(outbox === undefined ? {} : { outbox: (since: Date) => outbox.read(since) }),
    now: () => now,
  });
}

/** What the filled outbox reads as, on either store. */
function assertFilled(overview: Overview): void {
  assert.equal(overview.sources.stock, "ok");
  assert.deepEqual(overview.outbox, {
    state: "ok",
    depth: 2,
    oldestUnsentSeconds: 45,
    maxAttempts: 2,
    lag: { p50: 0.2, p99: 1.5, count: 2, windowSeconds: 60 },
  });
}

Deno.test("the overview reads a SQLite stock store's outbox: unsent requests, the oldest one's age, the lag of those sent in the last minute", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "stock.sqlite");
  const now = new Date("2026-12-06T12:00:00.000Z");
  const clock = { at: now };
  {
    await using store = await SqliteStockStore.open(path, { now: () => clock.at });
    await fill(store, clock, now);
  }
  await using reader = new OutboxReader(`sqlite:${path}`, { applicationName: "console" });
  assertFilled(await sampler(reader, now).sample());
});

Deno.test("the overview reads a PostgreSQL stock store's outbox, in read-only sessions", async () => {
  const schema = `test_console_${crypto.randomUUID().slice(0, 8)}`;
  const now = new Date("2026-12-06T12:00:00.000Z");
  const clock = { at: now };
  try {
    {
      await using store = await PostgresStockStore.open(POSTGRES_URL, {
        schema,
        now: () => clock.at,
      });
      await fill(store, clock, now);
    }
    await using reader = new OutboxReader(`${POSTGRES_URL}?search_path=${schema}`, {
      applicationName: "console",
    });
    assertFilled(await sampler(reader, now).sample());
  } finally {
    await dropSchema(POSTGRES_URL, schema);
  }
});

Deno.test("the overview says so when no stock store is configured, or when it cannot be read, and still gives the rest", async () => {
  await using dir = await tempDir();
  const now = new Date();
  const off = await sampler(undefined, now).sample();
  assert.deepEqual(off.outbox, { state: "off" });
  assert.equal(off.sources.stock, NO_STOCK_STORE);
  // A file that is not there (nothing is created), and a database that is not up.
  const missing = join(dir.path, "none.sqlite");
  await using noFile = new OutboxReader(`sqlite:${missing}`);
  const broken = await sampler(noFile, now).sample();
  assert.equal(broken.outbox.state, "error");
  assert.match(
    (broken.outbox as { error: string }).error,
    /^cannot read the outbox of sqlite:.*none\.sqlite: /,
  );
  assert.equal(broken.sources.stock, (broken.outbox as { error: string }).error);
  await assert.rejects(Deno.stat(missing), Deno.errors.NotFound);
  await using noServer = new OutboxReader(
    `postgres://estoque:s3cret@127.0.0.1:${freePort()}/stock`,
    { timeoutMs: 2_000 },
  );
  const down = await sampler(noServer, now).sample();
  assert.equal(down.outbox.state, "error");
  const error = (down.outbox as { error: string }).error;
  assert.match(error, /^cannot read the outbox of postgres:\/\/estoque:\*\*\*@127\.0\.0\.1:/);
  assert.doesNotMatch(error, /s3cret/);
  // The rest is there, each source saying why it is missing.
  assert.equal(down.ledgerOrders, null);
  assert.match(down.sources.broker, /no broker in this test/);
});

Deno.test("the console's overview page shows the outbox's numbers, and says when there is no stock store or it cannot be read", async () => {
  await withTopology(
    "console-outbox",
    { retryDelays: retryDelays(DEFAULT_RETRY_POLICY) },
    async (ctx) => {
      await using dir = await tempDir();
      const shots = await screenshotDir(dir.path);
      const path = join(dir.path, "stock.sqlite");
      // Filled as of now: the console reads it by its own clock.
      const now = new Date();
      const clock = { at: now };
      {
        await using store = await SqliteStockStore.open(path, { now: () => clock.at });
        await fill(store, clock, now);
      }
      await using browser = await launchChromium();
      const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
      const bodies: string[] = [];
      page.on("response", async (response) => {
        if (response.url().includes("/stream")) return;
        bodies.push(await response.text().catch(() => ""));
      });
      const open = async (stockUrl: string) => {
        const console = await startConsole(ctx, dir.path, { env: { STOCK_URL: stockUrl } });
        await page.goto(`${console.url}#/overview`);
        // The overview has loaded: the queues the broker reports are listed.
        await page.locator("[data-testid=depth-work]").waitFor({ timeout: 20_000 });
        return console.peer;
      };
      const panel = page.locator("[data-testid=outbox]");
      const state = page.locator("[data-testid=outbox-state]");
      {
        await using _console = await open(`sqlite:${path}`);
        await page.locator("[data-testid=outbox-depth]").filter({ hasText: /^2$/ }).waitFor();
        const text = async (id: string) =>
          await page.locator(`[data-testid=outbox-${id}]`).textContent();
        assert.equal(await text("lag-p50"), "200.0 ms");
        assert.equal(await text("lag-p99"), "1.50 s");
        assert.equal(await text("sent"), "2");
        assert.equal(await text("attempts"), "2");
        // 45 s old when filled, read a moment later.
        assert.match((await text("oldest"))!, /^(4[5-9]|[5-9]\d|1[01]\d) s$/);
        assert.equal(await state.textContent(), "2 request(s) waiting for the broker's confirm.");
        assert.equal(await panel.getAttribute("data-state"), "ok");
        await panel.screenshot({ path: join(shots, "overview-outbox.png") });
      }
      {
        await using _console = await open("");
        await page.locator("[data-testid=outbox][data-state=off]").waitFor();
        assert.match((await state.textContent())!, /^No stock store configured: .*--stock-url/);
        assert.equal(await page.locator("[data-testid=outbox-depth]").count(), 0);
      }
      {
        await using _console = await open(
          `postgres://estoque:s3cret@127.0.0.1:${freePort()}/stock`,
        );
        await page.locator("[data-testid=outbox][data-state=error]").waitFor({ timeout: 20_000 });
        assert.match(
          (await state.textContent())!,
          /^The stock store cannot be read: cannot read the outbox of postgres:\/\/estoque:\*\*\*@/,
        );
        // The rest of the overview still shows.
        assert.notEqual(await page.locator("[data-testid=depth-work]").textContent(), "");
      }
      assert.ok(bodies.length > 5);
      for (const body of bodies) assert.doesNotMatch(body, /s3cret/);
    },
  );
});
