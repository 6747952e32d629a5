/**
 * The console in a real headless Chromium, against the real broker and a running
 * OrdemDeProducao: the overview updates as orders flow; failures are grouped right for a known
 * mix; the journey of a dead-lettered order and of one retried, dead-lettered, replayed and
 * created is complete; replaying a group after the limit is raised creates those orders exactly
 * once; a purge archives first; the audit trail names the console user; no credential reaches
 * the page. Screenshots of each page go to SCREENSHOT_DIR (docs/console for the committed ones).
 */

import { strict as assert } from "node:assert";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { publishOrder } from "../lib/estoque.ts";
import { encodeOrder, newOrder, type Order } from "../lib/order.ts";
import { ConfirmedPublisher } from "../lib/publisher.ts";
import { retryDelays } from "../lib/retry_policy.ts";
import { SqliteLedgerReader } from "../lib/sqlite_ledger_reader.ts";
import { launchChromium, screenshotDir } from "../testing/browser.ts";
import {
  type BrokerContext,
  fastPolicy,
  tempDir,
  waitFor,
  withTopology,
} from "../testing/broker.ts";
import type { Peer } from "../testing/process.ts";
import { FAST_RETRY, startConsole, startOrdem } from "../testing/console.ts";
import { freePort } from "../testing/postgres.ts";

const policy = fastPolicy(2, 100);
const RETRY = { ...FAST_RETRY, RETRY_STRATEGY: "linear" };

/** OrdemDeProducao on the test's topology with a quantity limit, ready. */
function startOrdemWithLimit(
  ctx: BrokerContext,
  ledgerPath: string,
  port: number,
  maxQuantity: number,
): Promise<Peer> {
  return startOrdem(ctx, {
    ledgerPath,
    port,
    id: `ordem-limit-${maxQuantity}`,
    env: { ...RETRY, MAX_QUANTITY: String(maxQuantity) },
  });
}

/** Polls `check` on the page, reloading with `reload`, until it holds. */
async function until(
  what: string,
  reload: () => Promise<unknown>,
  check: () => Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  await waitFor(what, async () => {
    await reload();
    return (await check()) ? true : undefined;
  }, timeoutMs);
}

async function groupCount(page: Page, text: string): Promise<number | undefined> {
  const row = page.locator("[data-testid=group]", { hasText: text });
  if (await row.count() !== 1) return undefined;
  return Number((await row.locator("[data-testid=group-count]").textContent())?.replace(/,/g, ""));
}

async function failuresPage(page: Page, url: string, hash = "#/failures"): Promise<void> {
  await page.goto(`${url}${hash}`);
  await page.locator("[data-testid=index-status]").filter({ hasText: "as of" }).waitFor();
}

Deno.test("the console shows the flow, groups failures, tells journeys, replays and purges", async () => {
  await withTopology("console", { retryDelays: retryDelays(policy) }, async (ctx) => {
    await using dir = await tempDir();
    const shots = await screenshotDir(dir.path);
    const ledgerPath = join(dir.path, "ledger.sqlite");
    const metricsPort = freePort();
    let ordem = await startOrdemWithLimit(ctx, ledgerPath, metricsPort, 500);
    const console = await startConsole(ctx, dir.path, {
      metricsPort,
      env: { ...RETRY, CONSOLE_INDEX_MAX_AGE_MS: "0", USER: "ana" },
    });
    await using _console = console.peer;
    await using browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const bodies: string[] = [];
    page.on("response", async (response) => {
      if (response.url().includes("/stream")) return;
      bodies.push(await response.text().catch(() => ""));
    });
    try {
      // Overview: live, without reloading.
      await page.goto(`${console.url}#/overview`);
      const created = page.locator("[data-testid=total-created]");
      await created.filter({ hasText: "0" }).waitFor();
      const publisher = new ConfirmedPublisher(await ctx.broker.confirmChannel());
      const good = newOrder({ quantity: 10 });
      const tooMany: Order[] = [700, 800, 900].map((quantity) => newOrder({ quantity }));
      await publishOrder(publisher, ctx.topo, good);
      for (const order of tooMany) await publishOrder(publisher, ctx.topo, order);
      // Two bodies that are not orders, with one cause.
      const invalid = ["not json", "still not json"];
      for (const [i, body] of invalid.entries()) {
        await publisher.publish(
          ctx.topo.exchange,
          ctx.topo.routingKey,
          new TextEncoder().encode(body),
          {
            messageId: `BAD-${i}`,
            persistent: true,
            contentType: "application/json",
          },
        );
      }
      await created.filter({ hasText: /^1$/ }).waitFor({ timeout: 20_000 });
      await page.locator("[data-testid=depth-dlq]").filter({ hasText: /^5$/ }).waitFor({
        timeout: 20_000,
      });
      assert.notEqual(await page.locator("[data-testid=consumers]").textContent(), "–");
      await page.screenshot({ path: join(shots, "overview.png"), fullPage: true });

      // Failures by cause: three over the limit, two invalid.
      await until(
        "the groups",
        () => failuresPage(page, console.url),
        async () =>
          (await groupCount(page, "maximum quantity exceeded")) === 3 &&
          (await groupCount(page, "invalid")) === 2,
      );
      assert.equal(await page.locator("[data-testid=group]").count(), 2);
      assert.match(
        (await page.locator("[data-testid=group]", { hasText: "maximum quantity" }).textContent())!,
        /exhausted.*maximum quantity exceeded: <n> > <n>/,
      );
      assert.equal(await page.locator("[data-testid=letter]").count(), 5);
      await page.screenshot({ path: join(shots, "failures.png"), fullPage: true });

      // A filter that is not one: a clear message, nothing else.
      await page.goto(`${console.url}#/failures?since=yesterday-ish`);
      await page.locator("#message").filter({ hasText: "since must be a duration" }).waitFor();

      // The journey of a dead-lettered order: both attempts with their errors and delays, the
      // dead-lettering, the dead letter's headers and body byte for byte.
      const [first] = tooMany;
      await page.goto(`${console.url}#/journey?ref=${first!.refCode}`);
      const steps = page.locator("[data-testid=steps] li");
      await steps.first().waitFor();
      const kinds = await steps.evaluateAll((items) =>
        items.map((i) => i.getAttribute("data-kind"))
      );
      assert.deepEqual(kinds, ["published", "retried", "retried", "dead-lettered", "in-dlq"]);
      const text = await page.locator("[data-testid=steps]").textContent();
      assert.match(text!, /maximum quantity exceeded: 700 > 500; retried after 0\.1 s/);
      assert.match(text!, /retried after 0\.2 s/);
      const body = await page.locator("[data-testid=body-text]").textContent();
      assert.equal(body, new TextDecoder().decode(encodeOrder(first!)));
      assert.match((await page.locator("[data-testid=headers]").textContent())!, /x-retry-count/);
      await page.screenshot({ path: join(shots, "journey-dead-lettered.png"), fullPage: true });

      // An unknown RefCode: a clear message.
      await page.goto(`${console.url}#/journey?ref=NO-SUCH-REF`);
      await page.locator("#message").filter({ hasText: "nothing is known of RefCode" }).waitFor();

      // Raise the limit, then replay the group from the page: preview, confirm, progress.
      await ordem.stop();
      ordem = await startOrdemWithLimit(ctx, ledgerPath, metricsPort, 1000);
      await failuresPage(page, console.url);
      const group = page.locator("[data-testid=group]", { hasText: "maximum quantity" });
      await group.locator("[data-action=replay-group]").click();
      await page.locator("#confirm-text").filter({ hasText: "Replay 3 dead letter(s)" }).waitFor();
      await page.locator("#confirm-ok").click();
      const done = JSON.parse(
        (await page.locator("[data-testid=job-done]").textContent({
          timeout: 20_000,
        }))!,
      );
      assert.equal(done.done, 3);
      assert.equal(done.left, 2);
      await waitFor("the replayed orders in the ledger", async () => {
        await using reader = SqliteLedgerReader.open(ledgerPath);
        return (await reader.countOrders()) === 4 ? true : undefined;
      }, 20_000);
      {
        await using reader = SqliteLedgerReader.open(ledgerPath);
        for (const order of tooMany) {
          const { order: made } = await reader.journey(order.refCode);
          assert.equal(made?.instanceId, "ordem-limit-1000");
        }
      }
      // Exactly once: the new instance created the three and saw no second copy of any.
      const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      assert.match(metrics, /^productionorder_orders_created_total\{[^}]*\} 3$/m);
      assert.match(metrics, /^productionorder_orders_duplicate_total\{[^}]*\} 0$/m);
      assert.match(metrics, /^productionorder_messages_consumed_total\{[^}]*\} 3$/m);

      // Its journey now: failed twice, dead-lettered, replayed, created by the new instance.
      await page.goto(`${console.url}#/journey?ref=${first!.refCode}`);
      await page.locator("[data-testid=journey-order]").waitFor();
      const after = await page.locator("[data-testid=steps] li").evaluateAll((items) =>
        items.map((i) => i.getAttribute("data-kind"))
      );
      assert.deepEqual(after, ["retried", "retried", "dead-lettered", "created"]);
      assert.match(
        (await page.locator("[data-testid=journey-order]").textContent())!,
        /700 of colour .* by ordem-limit-1000 at attempt 0/,
      );
      await page.screenshot({ path: join(shots, "journey-created.png"), fullPage: true });

      // Purge the invalid ones: archived first, then gone.
      await failuresPage(page, console.url);
      await page.locator("[data-testid=group]", { hasText: "invalid" })
        .locator("[data-action=purge-group]").click();
      await page.locator("#confirm-text").filter({ hasText: "Purge 2 dead letter(s)" }).waitFor();
      await page.locator("#confirm-ok").click();
      await page.locator("[data-testid=job-done]").filter({ hasText: '"done":2' }).waitFor({
        state: "attached",
        timeout: 20_000,
      });
      // A fresh walk (the console's walks take turns, so none hides a message from it).
      const left = await (await page.request.get(`${console.url}api/dead-letters?fresh=1`)).json();
      assert.equal(left.total, 0);
      const [archive] = [...Deno.readDirSync(join(dir.path, "archive"))];
      const archived = Deno.readTextFileSync(join(dir.path, "archive", archive!.name)).trim()
        .split("\n").map((line) => JSON.parse(line));
      assert.deepEqual(archived.map((a) => atob(a.body)).sort(), [...invalid].sort());

      // The audit trail: previews as dry runs, then the actions, naming the console user.
      const audit = Deno.readTextFileSync(join(dir.path, "audit.jsonl")).trim().split("\n")
        .map((line) => JSON.parse(line));
      assert.deepEqual(
        audit.map((a) => `${a.action}${a.dryRun ? " (dry run)" : ""} ${a.counts.done}`),
        ["replay (dry run) 0", "replay 3", "purge (dry run) 0", "purge 2"],
      );
      assert.ok(audit.every((a) => a.who === `ana@${Deno.hostname()} (console)`));

      // Nothing the page received holds a broker login.
      assert.ok(bodies.length > 10);
      for (const text of bodies) assert.doesNotMatch(text, /guest|amqp:\/\//);
      await context.close();
    } finally {
      await ordem.stop();
    }
  });
});
