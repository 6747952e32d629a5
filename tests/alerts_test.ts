/**
 * The alert rules in prometheus/: promtool accepts them, their unit tests pass, and every metric
 * they use is one a running OrdemDeProducao really exposes (scraped from the process).
 */

import { strict as assert } from "node:assert";
import { join } from "node:path";
import { publishOrder } from "../lib/estoque.ts";
import { newOrder } from "../lib/order.ts";
import { ConfirmedPublisher } from "../lib/publisher.ts";
import { retryDelays } from "../lib/retry_policy.ts";
import { fastPolicy, tempDir, waitFor, withTopology } from "../testing/broker.ts";
import { freePort } from "../testing/postgres.ts";
import { ourService } from "../testing/process.ts";

const root = new URL("..", import.meta.url).pathname;
const rules = join(root, "prometheus/alerts.yml");

async function promtool(...args: string[]): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command("promtool", {
    args,
    cwd: join(root, "prometheus"),
  }).output();
  const text = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  assert.equal(code, 0, text);
  return text;
}

Deno.test("promtool accepts the alert rules and their unit tests pass", async () => {
  assert.match(await promtool("check", "rules", rules), /SUCCESS: 8 rules found/);
  assert.match(await promtool("test", "rules", "alerts_test.yml"), /SUCCESS/);
});

Deno.test("every metric the alert rules use is exposed by a running OrdemDeProducao", async () => {
  const used = new Set((await Deno.readTextFile(rules)).match(/productionorder_[a-z_]+/g));
  const policy = fastPolicy(0, 100);
  await withTopology("alerts", { retryDelays: retryDelays(policy) }, async (ctx) => {
    await using dir = await tempDir();
    const port = freePort();
    await using ordem = ourService("OrdemDeProducao", "ordem_de_producao.ts", [], {
      TOPOLOGY_PREFIX: ctx.topo.prefix,
      LEDGER_PATH: join(dir.path, "ledger.sqlite"),
      HTTP_PORT: String(port),
      RETRY_MAX: "0",
      RETRY_DELAY_MS: "100",
    });
    await ordem.until("ready", /msg=ready/);
    // One dead letter, so that the DLQ's depth and its oldest age are there to see.
    const publisher = new ConfirmedPublisher(await ctx.broker.confirmChannel());
    await publishOrder(publisher, ctx.topo, newOrder({ quantity: 900 }));
    const text = await waitFor("a scrape with the dead letter", async () => {
      const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      // The queue gauge can see the dead letter before the consumer has counted it (the
      // counter moves after the broker confirms the dead-letter publish): wait for both. The
      // consumer count is read at most every 5 s, and can be read while the consumer grows its
      // prefetch (it cancels and consumes again): wait for a read that sees it.
      const seen = /productionorder_queue_messages\{queue="dlq"[^}]*\} 1/.test(body) &&
        /^productionorder_messages_dead_lettered_total\{[^}]*\} 1/m.test(body) &&
        /productionorder_queue_consumers\{queue="work"[^}]*\} 1/.test(body);
      return seen ? body : undefined;
    }, 15_000);
    const exposed = new Set(text.match(/^productionorder_[a-z_]+/gm));
    const missing = [...used].filter((name) => !exposed.has(name));
    assert.deepEqual(missing, [], `used by the rules, not exposed: ${missing.join(", ")}`);
    assert.match(text, /productionorder_queue_consumers\{queue="work"[^}]*\} 1/);
    assert.match(text, /productionorder_dead_letter_oldest_age_seconds\{[^}]*\} \d/);
    assert.match(text, /productionorder_ledger_available\{[^}]*\} 1/);
  });
});
