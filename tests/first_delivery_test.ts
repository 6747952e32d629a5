/**
 * A consumer the broker says is consuming but sends nothing (lib/first_delivery_watch.ts), and a
 * publisher whose channel's first confirm never comes (lib/publisher.ts `firstConfirmTimeoutMs`):
 * on RabbitMQ 3.10 both happen on a channel opened, after a partition, on a node that still names
 * a quorum queue's cut-off leader (docs/guarantees.md). Here the broker shows the same from the
 * client's side by other means: a standby consumer of a single-active-consumer queue is sent
 * nothing while the queue holds ready messages, and a proxy that holds what the broker sends keeps
 * every confirm from coming.
 */

import { strict as assert } from "node:assert";
import { Broker } from "../lib/broker.ts";
import { publishOrder } from "../lib/estoque.ts";
import { ConsumerStuckError, watchFirstDelivery } from "../lib/first_delivery_watch.ts";
import { newOrder } from "../lib/order.ts";
import { ConfirmedPublisher, PublishError } from "../lib/publisher.ts";
import {
  fastPolicy,
  RABBITMQ_URL,
  startConsumer,
  waitFor,
  within,
  withTopology,
} from "../testing/broker.ts";
import { HoldingProxy } from "../testing/proxy.ts";

Deno.test("a consumer sent nothing while its queue holds ready messages is taken for stuck: done rejects with ConsumerStuckError, nothing is taken from the queue", async () => {
  await withTopology("first-delivery-stuck", {}, async (ctx) => {
    const { broker, topo } = ctx;
    // The work queue made single-active-consumer, its active consumer another one that holds its
    // one delivery: the queue then sends ours nothing, however many messages wait.
    const admin = await broker.channel();
    await admin.deleteQueue(topo.queue);
    await admin.assertQueue(topo.queue, {
      durable: true,
      arguments: { "x-single-active-consumer": true },
    });
    await admin.bindQueue(topo.queue, topo.exchange, topo.routingKey);
    const active = await broker.channel();
    await active.prefetch(1);
    const held = Promise.withResolvers<void>();
    await active.consume(topo.queue, () => held.resolve(), { noAck: false });
    const running = await startConsumer(ctx, fastPolicy(3, 100), { firstDeliveryTimeoutMs: 600 });
    try {
      for (let i = 0; i < 10; i++) {
        await publishOrder(running.publisher, topo, newOrder({ quantity: 1 }));
      }
      await held.promise;
      const error = await within(
        running.consumer.done.then(() => undefined, (error: unknown) => error),
        10_000,
        "the consumer taken for stuck",
      );
      assert.ok(error instanceof ConsumerStuckError, String(error));
      assert.equal(error.code, "consumer_stuck");
      assert.match(error.message, /was sent nothing [\d.]+ s after it started consuming/);
      assert.match(error.message, /held 9 ready messages/);
      assert.equal(running.consumer.deliveries, 0);
      assert.equal(await broker.messageCount(topo.queue), 9, "nothing taken");
    } finally {
      await running.consumer.stop();
      await running.ledger.close();
      await admin.close();
      await active.close().catch(() => {});
    }
  });
});

Deno.test("a consumer on an empty queue, or one paused, is never taken for stuck; its first delivery ends the watch", async () => {
  let ready = 0;
  let expecting = true;
  let deliveries = 0;
  const looks: (number | undefined)[] = [];
  let stuck = false;
  const looked = () => looks.length;
  const watch = watchFirstDelivery({
    timeoutMs: 20,
    deliveries: () => deliveries,
    expecting: () => expecting,
    ended: () => false,
    readyMessages: () => Promise.resolve(ready),
    onStuck: () => (stuck = true),
    onLook: (seen) => looks.push(seen),
  });
  try {
    await waitFor("five looks at an empty queue", () => looked() >= 5 || undefined);
    assert.ok(!stuck, "an empty queue is not a stuck consumer");
    // Paused (by the ledger's breaker, an operator, its byte budget): messages wait, rightly.
    expecting = false;
    ready = 100;
    const before = looked();
    await waitFor("five looks while paused", () => looked() >= before + 5 || undefined);
    assert.ok(!stuck, "a paused consumer is not a stuck one");
    assert.ok(
      looks.slice(before).every((seen) => seen === undefined),
      "nothing asked while paused",
    );
    // Resumed, and sent its first delivery: the watch ends before it would take it for stuck.
    expecting = true;
    deliveries = 1;
    const last = looked();
    // Two more of its periods with nothing looked at: the watch has ended.
    await new Promise((resolve) => setTimeout(resolve, 40));
    assert.equal(looked(), last);
    assert.ok(!stuck);
  } finally {
    watch.stop();
  }
});

Deno.test("ConfirmedPublisher: publishes sent before a channel's first confirm time out after firstConfirmTimeoutMs; after it, after timeoutMs", async () => {
  await using proxy = HoldingProxy.start(RABBITMQ_URL);
  await withTopology("first-confirm", {}, async ({ topo }) => {
    const broker = await Broker.connect(proxy.url, { name: "test first confirm" });
    try {
      const options = { timeoutMs: 4_000, firstConfirmTimeoutMs: 300 };
      // A channel whose first publish the broker never answers.
      const unheard = new ConfirmedPublisher(await broker.confirmChannel(), options);
      proxy.hold();
      let started = performance.now();
      const error = await publishOrder(unheard, topo, newOrder({ quantity: 1 })).then(
        () => undefined,
        (error: unknown) => error,
      );
      const firstTook = performance.now() - started;
      assert.ok(error instanceof PublishError, String(error));
      assert.equal(error.code, "timeout");
      assert.match(error.message, /no first confirm on the channel from the broker within 300 ms/);
      assert.ok(firstTook < 2_000, `the first publish failed after ${firstTook} ms`);
      proxy.release();
      // A channel that had its first confirm: a publish the broker then does not answer gets the
      // whole timeout.
      const heard = new ConfirmedPublisher(await broker.confirmChannel(), options);
      await publishOrder(heard, topo, newOrder({ quantity: 1 }));
      proxy.hold();
      started = performance.now();
      const late = await publishOrder(heard, topo, newOrder({ quantity: 1 })).then(
        () => undefined,
        (error: unknown) => error,
      );
      const took = performance.now() - started;
      assert.ok(late instanceof PublishError, String(late));
      assert.match(late.message, /no confirm from the broker within 4000 ms/);
      assert.ok(took >= 3_900, `timed out after ${took} ms, not the whole timeout`);
    } finally {
      proxy.release();
      await broker.close();
    }
  });
});

Deno.test("ConfirmedPublisher: a burst sent before the first confirm is not timed out by the first confirm's timeout once the broker answers", async () => {
  await withTopology("first-confirm-burst", {}, async ({ broker, topo }) => {
    // 30,000 sent at once: the broker confirms them over a second or more, far past 200 ms.
    const publisher = new ConfirmedPublisher(await broker.confirmChannel(), {
      timeoutMs: 30_000,
      firstConfirmTimeoutMs: 200,
    });
    const count = 30_000;
    const body = new TextEncoder().encode("{}");
    let confirmed = 0;
    const failures: string[] = [];
    const all = Promise.withResolvers<void>();
    let settled = 0;
    for (let i = 0; i < count; i++) {
      publisher.send(topo.exchange, topo.routingKey, body, { persistent: true }, (error) => {
        if (error) failures.push(error.message);
        else confirmed++;
        if (++settled === count) all.resolve();
      });
    }
    await within(all.promise, 60_000, "every publish settled");
    assert.deepEqual(failures.slice(0, 1), []);
    assert.equal(confirmed, count);
  });
});
