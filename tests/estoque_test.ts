import { strict as assert } from "node:assert";
import { failedCount, publishOrder, publishOrders } from "../lib/estoque.ts";
import { newOrder, parseOrder } from "../lib/order.ts";
import { ConfirmedPublisher, PublishError } from "../lib/publisher.ts";
import { takeMessages, withTopology } from "./_broker.ts";

Deno.test("publishOrders() publishes confirmed, persistent JSON orders keyed by RefCode", async () => {
  await withTopology("estoque", {}, async ({ broker, topo }) => {
    const publisher = new ConfirmedPublisher(await broker.confirmChannel());
    const confirmed: string[] = [];
    const summary = await publishOrders({
      publisher,
      topology: topo,
      count: 50,
      window: 8,
      onConfirmed: (order) => confirmed.push(order.refCode),
    });
    assert.equal(summary.confirmed, 50);
    assert.equal(failedCount(summary), 0);
    assert.equal(new Set(confirmed).size, 50);
    const [message] = await takeMessages(broker, topo.queue, 1);
    const parsed = parseOrder(message!.content, { contentType: message!.properties.contentType });
    assert.ok(parsed.ok);
    assert.equal(message!.properties.contentType, "application/json");
    assert.equal(message!.properties.deliveryMode, 2);
    assert.equal(message!.properties.messageId, parsed.order.refCode);
    assert.equal(typeof message!.properties.timestamp, "number");
    assert.ok(parsed.order.quantity >= 0 && parsed.order.quantity <= 9_999_999);
    assert.equal(await broker.messageCount(topo.queue), 49);
  });
});

Deno.test("publishOrders() uses the fixed quantity when given", async () => {
  await withTopology("estoque-quantity", {}, async ({ broker, topo }) => {
    const publisher = new ConfirmedPublisher(await broker.confirmChannel());
    await publishOrders({ publisher, topology: topo, count: 3, quantity: 501 });
    const messages = await takeMessages(broker, topo.queue, 3);
    for (const m of messages) {
      const parsed = parseOrder(m.content);
      assert.ok(parsed.ok && parsed.order.quantity === 501);
    }
  });
});

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
