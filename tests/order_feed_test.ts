import { strict as assert } from "node:assert";
import { newOrder, parseOrder } from "../lib/order.ts";
import { failedCount, OrderFeed, publishFeed, publishOrders } from "../lib/order_feed.ts";
import { ConfirmedPublisher } from "../lib/publisher.ts";
import { takeMessages, withTopology } from "../testing/broker.ts";

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
    assert.ok(parsed.order.quantity >= 0 && parsed.order.quantity <= 9_999_998);
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

Deno.test("OrderFeed sends failed orders again first, and gives up on an order sent maxSends times", () => {
  let made = 0;
  const feed = new OrderFeed({ count: 3, makeOrder: () => (made++, newOrder()), maxSends: 2 });
  const a = feed.next()!;
  const b = feed.next()!;
  assert.equal(feed.failed(a, "closed"), true);
  assert.equal(feed.failed(b, "returned"), true);
  assert.equal(feed.next(), a, "a resend goes before a fresh order");
  assert.equal(feed.failed(a, "timeout"), false, "the second failure of a is its last");
  assert.equal(feed.next(), b);
  assert.equal(feed.failed(b, "returned"), false);
  const c = feed.next()!;
  feed.confirmed(c);
  assert.equal(feed.next(), undefined);
  assert.equal(feed.done, true);
  assert.equal(made, 3);
  const summary = feed.summary();
  assert.equal(summary.attempted, 3);
  assert.equal(summary.confirmed, 1);
  assert.equal(summary.resent, 2);
  assert.deepEqual(summary.failed, { nacked: 0, returned: 1, timeout: 1, closed: 0 });
});

Deno.test("publishFeed() stops at a lost channel and a second session sends the rest, nothing lost", async () => {
  await withTopology("estoque-resend", {}, async ({ broker, topo }) => {
    const feed = new OrderFeed({ count: 2_000, makeOrder: () => newOrder({ quantity: 1 }) });
    const confirmed = new Set<string>();
    const channel = await broker.confirmChannel();
    const first = new ConfirmedPublisher(channel);
    // Close the channel under the first session once a few hundred orders are confirmed.
    const finished = await publishFeed({
      publisher: first,
      topology: topo,
      feed,
      window: 200,
      onConfirmed: (order) => {
        confirmed.add(order.refCode);
        if (confirmed.size === 300) channel.close().catch(() => {});
      },
    });
    assert.equal(finished, false, "the first session reports that orders wait to be sent again");
    assert.ok(!feed.done);
    const second = new ConfirmedPublisher(await broker.confirmChannel());
    assert.equal(
      await publishFeed({
        publisher: second,
        topology: topo,
        feed,
        onConfirmed: (order) => confirmed.add(order.refCode),
      }),
      true,
    );
    const summary = feed.summary();
    assert.equal(summary.confirmed, 2_000);
    assert.equal(failedCount(summary), 0);
    assert.ok(summary.resent > 0);
    assert.equal(confirmed.size, 2_000);
    // Every order is in the queue at least once (a resent one may be there twice).
    const queued = await broker.messageCount(topo.queue);
    assert.ok(queued >= 2_000 && queued <= 2_000 + summary.resent, String(queued));
  });
});
