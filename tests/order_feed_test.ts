import { strict as assert } from "node:assert";
import { newOrder, parseOrder } from "../lib/order.ts";
import { failedCount, OrderFeed, publishFeed, publishOrders } from "../lib/order_feed.ts";
import { ConfirmedPublisher } from "../lib/publisher.ts";
import { Broker } from "../lib/broker.ts";
import { RABBITMQ_URL, takeMessages, withTopology } from "../testing/broker.ts";
import { HoldingProxy } from "../testing/proxy.ts";

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

Deno.test("publishFeed() with a rate sends the orders waiting to be sent again at once and paces only the new ones", async () => {
  await withTopology("estoque-resend-rate", {}, async ({ broker, topo }) => {
    const feed = new OrderFeed({ count: 25, makeOrder: () => newOrder({ quantity: 1 }) });
    // A session before this one sent 20 that were never confirmed (its connection dropped).
    const resends = Array.from({ length: 20 }, () => feed.next()!);
    for (const order of resends) assert.equal(feed.failed(order, "closed"), true);
    const resent = new Set(resends.map((order) => order.refCode));
    const at = new Map<string, number>();
    const started = performance.now();
    const finished = await publishFeed({
      publisher: new ConfirmedPublisher(await broker.confirmChannel()),
      topology: topo,
      feed,
      rate: 10,
      onConfirmed: (order) => at.set(order.refCode, performance.now() - started),
    });
    assert.equal(finished, true);
    const again = [...at].filter(([refCode]) => resent.has(refCode)).map(([, ms]) => ms);
    const fresh = [...at].filter(([refCode]) => !resent.has(refCode)).map(([, ms]) => ms);
    assert.equal(again.length, 20);
    assert.equal(fresh.length, 5);
    // Paced at 10/s, the 20 sent again would take 2 s and hold the new ones back behind them.
    assert.ok(Math.max(...again) < 1_000, `the last order sent again confirmed at ${again}`);
    // The new ones at 10/s: the fifth no sooner than 400 ms after the first was sent.
    assert.ok(Math.max(...fresh) >= 380, `the new orders were paced: ${fresh}`);
  });
});

Deno.test("publishFeed() with a rate does not take the time its resends took for a backlog: the new orders after them still go at the rate", async () => {
  await using proxy = HoldingProxy.start(RABBITMQ_URL);
  await withTopology("estoque-resend-burst", {}, async ({ topo }) => {
    const feed = new OrderFeed({ count: 30, makeOrder: () => newOrder({ quantity: 1 }) });
    const resends = Array.from({ length: 20 }, () => feed.next()!);
    for (const order of resends) feed.failed(order, "closed");
    const resent = new Set(resends.map((order) => order.refCode));
    await using broker = await Broker.connect(proxy.url, { name: "test resend burst" });
    const publisher = new ConfirmedPublisher(await broker.confirmChannel());
    const at = new Map<string, number>();
    // The broker's confirms of the resends take a second (a slow link): the window (20) is full
    // of them until then.
    proxy.hold();
    const release = setTimeout(() => proxy.release(), 1_000);
    try {
      const finished = await publishFeed({
        publisher,
        topology: topo,
        feed,
        window: 20,
        rate: 10,
        onConfirmed: (order) => at.set(order.refCode, performance.now()),
      });
      assert.equal(finished, true);
    } finally {
      clearTimeout(release);
    }
    const fresh = [...at].filter(([refCode]) => !resent.has(refCode)).map(([, t]) => t);
    assert.equal(fresh.length, 10);
    // 10 new orders at 10/s: 900 ms from the first to the last, not a burst of those "due" while
    // the resends waited.
    const span = Math.max(...fresh) - Math.min(...fresh);
    assert.ok(span >= 800, `the 10 new orders went out within ${Math.round(span)} ms`);
  });
});

Deno.test("publishFeed() with a rate does not catch up after a stall in the middle of a session: the orders after it still go at the rate", async () => {
  await using proxy = HoldingProxy.start(RABBITMQ_URL);
  await withTopology("estoque-stall-burst", {}, async ({ topo }) => {
    const feed = new OrderFeed({ count: 30, makeOrder: () => newOrder({ quantity: 1 }) });
    await using broker = await Broker.connect(proxy.url, { name: "test stall burst" });
    const publisher = new ConfirmedPublisher(await broker.confirmChannel());
    const at: number[] = [];
    // The broker's confirms are held for 2 s (a slow link, a busy broker): the window (10) is full
    // after the first 10 orders, half a second in, and 30 more orders are "due" by the release.
    proxy.hold();
    const release = setTimeout(() => proxy.release(), 2_000);
    try {
      const finished = await publishFeed({
        publisher,
        topology: topo,
        feed,
        window: 10,
        rate: 20,
        onConfirmed: () => at.push(performance.now()),
      });
      assert.equal(finished, true);
    } finally {
      clearTimeout(release);
    }
    assert.equal(at.length, 30);
    // The 20 after the stall at 20/s: 950 ms from the first to the last, not a burst.
    const after = at.slice(10);
    const span = Math.max(...after) - Math.min(...after);
    assert.ok(span >= 800, `the 20 orders after the stall went out within ${Math.round(span)} ms`);
  });
});
