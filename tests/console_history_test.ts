/**
 * The overview's charts: the console keeps the last hour of points in its memory (rates from
 * counters, depths, the critical time), and the page draws them with uPlot, served by the console
 * from its npm package. In real Chromium, against the real broker and a running OrdemDeProducao:
 * the rates chart shows the rate a test drives; and the console stays under 5 % of a core while a
 * page watches it idle.
 */

import { strict as assert } from "node:assert";
import { join } from "node:path";
import { FlowHistory } from "../lib/console/history.ts";
import type { Overview } from "../lib/console/overview.ts";
import { publishOrder } from "../lib/estoque.ts";
import { newOrder } from "../lib/order.ts";
import { ConfirmedPublisher } from "../lib/publisher.ts";
import { retryDelays } from "../lib/retry_policy.ts";
import { launchChromium, screenshotDir } from "../testing/browser.ts";
import { fastPolicy, tempDir, waitFor, withTopology } from "../testing/broker.ts";
import { freePort } from "../testing/postgres.ts";
import { FAST_RETRY, startConsole, startOrdem } from "../testing/console.ts";

const policy = fastPolicy(2, 100);
const tiers = { retryDelays: retryDelays(policy) };

function overview(created: number, depth: number, p99: number | null): Overview {
  return {
    at: new Date().toISOString(),
    rates: { published: 12, created: 0, retried: 0, deadLettered: 0 },
    totals: { created, retried: 0, deadLettered: 0 },
    depth: { work: depth, dlq: 0 },
    consumers: 1,
    ledgerOrders: created,
    criticalTime: {
      created: { p50: p99, p99, count: 1 },
      deadLettered: { p50: null, p99: null, count: 0 },
      windowSeconds: 60,
    },
    pause: { state: null, instances: 1, paused: 0 },
    outbox: { state: "off" },
    sources: {
      broker: "ok",
      metrics: "ok",
      management: "ok",
      ledger: "ok",
      control: "ok",
      stock: "not configured",
    },
  };
}

Deno.test("FlowHistory takes rates from the counters between its own points, keeps an hour, and gives what came after a time", async () => {
  let now = 1_000_000;
  let next = overview(100, 5, 0.02);
  const history = new FlowHistory({ sample: () => Promise.resolve(next), now: () => now });
  await history.take();
  now += 5_000;
  next = overview(600, 7, 0.03);
  await history.take();
  const [first, second] = history.points();
  assert.equal(first!.created, null, "no rate before a second point");
  assert.equal(second!.created, 100, "500 orders in 5 s");
  assert.equal(second!.published, 12);
  assert.deepEqual(second!.depth, { work: 7, dlq: 0 });
  assert.equal(second!.p99, 0.03);
  // An instance restarted: its counter starts again.
  now += 5_000;
  next = overview(50, 7, null);
  await history.take();
  assert.equal(history.points().at(-1)!.created, 10);
  assert.deepEqual(history.points(second!.at).map((p) => p.at), [now]);
  now += 3_600_000;
  await history.take();
  assert.deepEqual(history.points().map((p) => p.at), [now - 3_600_000, now], "an hour kept");
  // A failed overview is a missing point, not a stopped history.
  const failing = new FlowHistory({ sample: () => Promise.reject(new Error("down")) });
  await failing.take();
  assert.deepEqual(failing.points(), []);
});

/** The console's CPU time so far (user + system), in seconds, from /proc. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime
  return ticks / 100; // USER_HZ
}

/** The process whose command line holds `marker` (a path only this test uses). */
async function pidOf(marker: string): Promise<number> {
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const cmdline = await Deno.readTextFile(`/proc/${entry.name}/cmdline`).catch(() => "");
    if (cmdline.includes(marker) && cmdline.includes("console.ts")) return Number(entry.name);
  }
  throw new Error(`no process with ${marker}`);
}

Deno.test("in Chromium, the overview's charts show the rate a test drives, the queues and the critical time; the console idles under 5 % of a core with the page open", async () => {
  await withTopology("console-charts", tiers, async (ctx) => {
    await using dir = await tempDir();
    const shots = await screenshotDir(dir.path);
    const metricsPort = freePort();
    await using _ordem = await startOrdem(ctx, {
      ledgerPath: join(dir.path, "ledger.sqlite"),
      port: metricsPort,
    });
    const auditLog = join(dir.path, "audit.jsonl");
    const { peer, url } = await startConsole(ctx, dir.path, {
      metricsPort,
      args: ["--audit-log", auditLog],
      env: { ...FAST_RETRY, CONSOLE_HISTORY_INTERVAL_MS: "1000" },
    });
    await using _console = peer;
    await using browser = await launchChromium();
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 1100 } }))
      .newPage();
    const errors: string[] = [];
    page.on("pageerror", (error) => errors.push(String(error)));
    await page.goto(`${url}#/overview`);
    await page.locator("[data-testid=chart-rates] canvas").waitFor();

    // 100 orders a second for 6 s.
    const publisher = new ConfirmedPublisher(await ctx.broker.confirmChannel());
    const started = performance.now();
    let sent = 0;
    while (performance.now() - started < 6_000) {
      const due = Math.floor((performance.now() - started) / 10);
      const batch: Promise<void>[] = [];
      for (; sent < due; sent++) {
        const order = newOrder({ quantity: 3 });
        batch.push(publishOrder(publisher, ctx.topo, order));
      }
      await Promise.all(batch);
      await new Promise((resolve) => setTimeout(resolve, 20)); // the pace, not a wait for an event
    }
    const rates = page.locator("[data-testid=chart-rates]");
    const shown = await waitFor("the rates chart showing about 100 created a second", async () => {
      const value = Number(await rates.getAttribute("data-lastcreated"));
      return value >= 70 && value <= 130 ? value : undefined;
    }, 15_000);
    assert.ok(await page.locator("[data-testid=chart-depths]").getAttribute("data-lastwork"));
    const p99 = Number(
      await page.locator("[data-testid=chart-critical]").getAttribute("data-lastp99"),
    );
    assert.ok(p99 > 0 && p99 < 1, `critical time p99 ${p99} s`);
    await page.screenshot({ path: join(shots, "overview-charts.png"), fullPage: true });

    // Idle, the page open (pushed every second, charts every second here): the console's CPU.
    const pid = await pidOf(auditLog);
    const cpuBefore = await cpuSeconds(pid);
    const wallBefore = performance.now();
    await new Promise((resolve) => setTimeout(resolve, 20_000)); // the span measured
    const share = (await cpuSeconds(pid) - cpuBefore) / ((performance.now() - wallBefore) / 1000);
    assert.deepEqual(errors, [], "no error in the page");
    // deno-lint-ignore no-console
    globalThis.console.log(
      `charts: the rates chart showed ${shown.toFixed(1)} created/s of 100 driven; console CPU ` +
        `while idle with the page open: ${(share * 100).toFixed(2)} % of a core`,
    );
    assert.ok(share < 0.05, `the console used ${(share * 100).toFixed(1)} % of a core`);
  });
});
