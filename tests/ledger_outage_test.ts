/**
 * The ledger going away under a running OrdemDeProducao (a real process, on a throwaway
 * PostgreSQL that is really stopped): it stays alive, reports itself not ready, puts deliveries
 * back without spending their retries, and resumes on its own within 2 s of the database
 * answering again.
 */

import { strict as assert } from "node:assert";
import { publishOrder } from "../lib/estoque.ts";
import { openLedgerReader } from "../lib/open_ledger.ts";
import { newOrder } from "../lib/order.ts";
import { HEADER } from "../lib/retry_headers.ts";
import { retryDelays } from "../lib/retry_policy.ts";
import { fastPolicy, takeMessages, waitFor, withTopology } from "../testing/broker.ts";
import { freePort, scratchPostgres } from "../testing/postgres.ts";
import { ourService } from "../testing/process.ts";
import { metric } from "../testing/scrape.ts";
import { ConfirmedPublisher } from "../lib/publisher.ts";

const policy = fastPolicy(2, 100);

async function readyz(port: number): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${port}/readyz`);
  await response.body?.cancel();
  return response.status;
}

Deno.test("a PostgreSQL ledger stopped (immediate, then fast) under load: no crash, no retry spent, not ready while down, back within 2 s", async () => {
  await using pg = await scratchPostgres();
  await withTopology("ledger-outage", { retryDelays: retryDelays(policy) }, async (ctx) => {
    const port = freePort();
    await using ordem = ourService("OrdemDeProducao", "ordem_de_producao.ts", [], {
      TOPOLOGY_PREFIX: ctx.topo.prefix,
      LEDGER_URL: pg.url,
      HTTP_PORT: String(port),
      RETRY_MAX: "2",
      RETRY_DELAY_MS: "100",
      NO_COLOR: "1",
    });
    await ordem.until("ready", /msg=ready/);
    const publisher = new ConfirmedPublisher(await ctx.broker.confirmChannel());
    const valid: string[] = [];
    const over: string[] = [];
    let publishing = true;
    // About 200 orders a second, one in five over the limit, for as long as the test runs.
    const load = (async () => {
      for (let i = 0; publishing; i++) {
        const order = newOrder({ quantity: i % 5 === 4 ? 900 : 1 });
        (order.quantity > 500 ? over : valid).push(order.refCode);
        await publishOrder(publisher, ctx.topo, order);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    const recoveries: number[] = [];
    try {
      await outages();
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${ordem}`, { cause: error });
    } finally {
      publishing = false;
      await load;
    }
    async function outages(): Promise<void> {
      for (const [round, mode] of [[1, "immediate"], [2, "fast"]] as const) {
        await waitFor("production orders before the outage", async () => {
          const created = await metric(port, "productionorder_orders_created_total");
          return created >= 50 * round ? true : undefined;
        });
        await pg.stop(mode);
        await ordem.until(`ledger unavailable (${mode})`, /ledger unavailable/, round, 15_000);
        assert.equal(await readyz(port), 503, "not ready while the ledger is away");
        // The outage lasts a while with orders still arriving.
        await new Promise((resolve) => setTimeout(resolve, 3_000));
        assert.ok(ordem.running, `alive through the outage:\n${ordem}`);
        await pg.start();
        const back = performance.now();
        await ordem.until(`ledger back (${mode})`, /ledger back/, round, 10_000);
        const recovery = performance.now() - back;
        recoveries.push(recovery);
        assert.ok(recovery <= 2_000, `consuming again ${recovery} ms after the database`);
        await waitFor("ready again", async () => (await readyz(port)) === 200 ? true : undefined);
      }
    }
    for (const ms of recoveries) {
      assert.ok(ms <= 2_000, `consuming again ${ms} ms after the database`);
    }

    // Everything settles where it belongs: valid orders in the ledger once, over-limit ones in
    // the DLQ with their own error, nothing retried or dead-lettered because of the outage.
    await using ledger = await openLedgerReader(pg.url);
    await waitFor(
      "every valid order in the ledger",
      async () => (await ledger.countOrders()) >= valid.length ? true : undefined,
      30_000,
    );
    assert.equal(await ledger.countOrders(), valid.length);
    const dead = await takeMessages(ctx.broker, ctx.topo.deadLetterQueue, over.length, 30_000);
    for (const message of dead) {
      assert.equal(message.properties.headers![HEADER.reason], "exhausted");
      assert.match(String(message.properties.headers![HEADER.lastError]), /^maximum quantity/);
    }
    const spent = ordem.grep(/retry scheduled|dead-lettered/).filter((line) =>
      !/maximum quantity exceeded/.test(line)
    );
    assert.deepEqual(spent, [], "no retry or dead letter because of the outage");
    assert.ok(ordem.running, `alive at the end:\n${ordem}`);
    assert.ok(await metric(port, "productionorder_ledger_errors_total") > 0);
    assert.ok(await metric(port, "productionorder_ledger_paused_seconds_total") >= 5);
    assert.equal(await metric(port, "productionorder_ledger_available"), 1);
    const status = await ordem.stop();
    assert.equal(status.code, 0, `${ordem}`);
    console.log(
      `ledger outage: ${valid.length} valid orders created once, ${over.length} dead-lettered ` +
        `for their quantity; consuming again ${
          recoveries.map((ms) => `${Math.round(ms)} ms`).join(" and ")
        } after the database answered`,
    );
  });
});
