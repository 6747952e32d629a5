import { strict as assert } from "node:assert";
import { allConfirmed, type EstoqueResult, publishOrder, summaryLine } from "../lib/estoque.ts";
import { newOrder } from "../lib/order.ts";
import { publishOrders, type PublishSummary } from "../lib/order_feed.ts";
import { ConfirmedPublisher, PublishError } from "../lib/publisher.ts";
import { withTopology } from "../testing/broker.ts";

Deno.test("an order that no queue receives fails as returned and is counted", async () => {
  await withTopology("estoque-unroutable", {}, async ({ broker, topo }) => {
    const channel = await broker.channel();
    await channel.unbindQueue(topo.queue, topo.exchange, topo.routingKey);
    await channel.close();
    const publisher = new ConfirmedPublisher(await broker.confirmChannel());
    await assert.rejects(
      () => publishOrder(publisher, topo, newOrder()),
      (e: unknown) =>
        e instanceof PublishError && e.code === "returned" && /NO_ROUTE/.test(e.message),
    );
    const summary = await publishOrders({ publisher, topology: topo, count: 5 });
    assert.equal(summary.confirmed, 0);
    assert.equal(summary.failed.returned, 5);
  });
});

Deno.test("a publish to a missing exchange fails as closed, not silently", async () => {
  await withTopology("estoque-closed", {}, async ({ broker, topo }) => {
    const publisher = new ConfirmedPublisher(await broker.confirmChannel());
    const missing = { ...topo, exchange: `${topo.exchange}.missing` };
    await assert.rejects(
      () => publishOrder(publisher, missing, newOrder()),
      (e: unknown) => e instanceof PublishError && e.code === "closed",
    );
  });
});

/** A run of 10 orders on `orders`, 2 s long, with what `summary` changes. */
function run(summary: Partial<PublishSummary> = {}): EstoqueResult {
  return {
    count: 10,
    exchange: "orders",
    summary: {
      attempted: 10,
      confirmed: 10,
      failed: { nacked: 0, returned: 0, timeout: 0, closed: 0 },
      resent: 0,
      elapsedMs: 2_000,
      ...summary,
    },
  };
}

Deno.test("summaryLine() of a clean run names the confirmed orders, the exchange, the time and the rate", () => {
  assert.equal(summaryLine(run()), "estoque: 10/10 orders confirmed on orders in 2.00 s (5 msg/s)");
  assert.equal(allConfirmed(run()), true);
});

Deno.test("summaryLine() adds the failed by cause, the sent again and the not sent, only where there are any", () => {
  const result = run({
    attempted: 9,
    confirmed: 6,
    failed: { nacked: 1, returned: 0, timeout: 2, closed: 0 },
    resent: 3,
  });
  assert.equal(
    summaryLine(result),
    "estoque: 6/10 orders confirmed on orders, 3 failed (1 nacked, 2 timeout), 3 sent again, " +
      "1 not sent (interrupted) in 2.00 s (3 msg/s)",
  );
  assert.equal(allConfirmed(result), false);
});

Deno.test("summaryLine() of a run that took no time gives the confirmed count as the rate", () => {
  assert.equal(
    summaryLine(run({ elapsedMs: 0 })),
    "estoque: 10/10 orders confirmed on orders in 0.00 s (10 msg/s)",
  );
});

Deno.test("allConfirmed() is false for a run interrupted before every order was sent, or with one failed", () => {
  assert.equal(allConfirmed(run({ attempted: 7, confirmed: 7 })), false);
  assert.equal(
    allConfirmed(run({ confirmed: 9, failed: { nacked: 0, returned: 1, timeout: 0, closed: 0 } })),
    false,
  );
});
