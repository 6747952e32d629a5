/**
 * A prefetch counts deliveries, not bytes: 500 deliveries of 100 MB would be 50 GB. The consumer
 * bounds what it holds by bytes too (`prefetchBytes`): past it, it stops taking deliveries until
 * enough are settled, and takes them again with a prefetch that fits the bodies it saw.
 */
import { strict as assert } from "node:assert";
import { Buffer } from "node:buffer";
import { OrderConsumer } from "../lib/consumer.ts";
import { encodeOrder, newOrder } from "../lib/order.ts";
import { ConfirmedPublisher } from "../lib/publisher.ts";
import { SqliteLedger } from "../lib/sqlite_ledger.ts";
import { publishOrder } from "../lib/estoque.ts";
import { fastPolicy, OutcomeLog, startConsumer, waitFor, withTopology } from "../testing/broker.ts";

const MB = 1024 * 1024;

Deno.test("a consumer holds at most about prefetchBytes of bodies, however deep its prefetch, and loses nothing", async () => {
  await withTopology("prefetch-bytes", { retryDelays: [100] }, async (ctx) => {
    const ledger = await SqliteLedger.open(":memory:", { instanceId: "bytes" });
    // Each dead letter's original is held unacked until the test lets them go, so deliveries
    // pile up unsettled.
    const gate = Promise.withResolvers<void>();
    const publisher = new ConfirmedPublisher(await ctx.broker.confirmChannel());
    const orders = Array.from({ length: 24 }, () => newOrder({ quantity: 5 }));
    const padding = " ".repeat(4 * MB); // over the body limit: each is dead-lettered as invalid
    for (const order of orders) {
      const body = Buffer.concat([Buffer.from(encodeOrder(order)), Buffer.from(padding)]);
      await publisher.publish(ctx.topo.exchange, ctx.topo.routingKey, body, {
        persistent: true,
        mandatory: true,
        messageId: order.refCode,
      });
    }
    const outcomes = new OutcomeLog();
    const consumer = await OrderConsumer.start({
      broker: ctx.broker,
      topology: ctx.topo,
      ledger,
      policy: fastPolicy(3, 100),
      maxQuantity: 500,
      prefetch: 500,
      prefetchBytes: 16 * MB,
      onOutcome: outcomes.record,
      beforeAck: () => gate.promise,
    });
    try {
      // Nothing is acked: the consumer takes what the broker sends until it stops
      // taking more; every delivery it took is in flight, and the rest wait in the queue.
      const ready = await waitFor("every message received or waiting", async () => {
        const waiting = await ctx.broker.messageCount(ctx.topo.queue);
        return waiting + consumer.deliveries === 24 ? waiting : undefined;
      });
      const held = consumer.inFlight * 4 * MB;
      assert.ok(
        held <= 24 * MB,
        `held ${
          held / MB
        } MB of bodies (${consumer.inFlight} deliveries; ${ready} waiting in the queue) with prefetchBytes 16 MB`,
      );
      gate.resolve();
      const dead = await outcomes.until("every dead letter", (o) => o.kind === "dead-lettered", 24);
      assert.equal(dead.length, 24);
      await waitFor("the originals acked", () => consumer.inFlight === 0 || undefined);
      assert.equal(consumer.heldBytes, 0);
      assert.equal(await ctx.broker.messageCount(ctx.topo.deadLetterQueue), 24, "nothing lost");
    } finally {
      gate.resolve();
      await consumer.stop();
      await ledger.close();
    }
  });
});

Deno.test("after a window of small orders, a burst of large bodies stops the consumer; it resumes taking them one at a time, and nothing is lost", async () => {
  await withTopology("prefetch-burst", { retryDelays: [100] }, async (ctx) => {
    const gate = Promise.withResolvers<void>();
    const large = (o: { kind: string }) => o.kind === "dead-lettered";
    const { consumer, outcomes, ledger, publisher } = await startConsumer(ctx, fastPolicy(3, 100), {
      prefetch: 500,
      prefetchBytes: 64 * 1024,
      // Only the large bodies (invalid: over the body limit) wait for the gate.
      beforeAck: (outcome) => large(outcome) ? gate.promise : undefined,
    });
    try {
      const small = Array.from({ length: 300 }, () => newOrder({ quantity: 5 }));
      for (const order of small) await publishOrder(publisher, ctx.topo, order);
      await outcomes.until("the small orders", (o) => o.kind === "created", 300);
      const body = Buffer.alloc(20 * 1024, 0x20); // 20 KiB: four of them pass 64 KiB
      const burst = async (n: number, tag: string) => {
        for (let i = 0; i < n; i++) {
          await publisher.publish(ctx.topo.exchange, ctx.topo.routingKey, body, {
            persistent: true,
            mandatory: true,
            messageId: `${tag}-${i}`,
          });
        }
      };
      await burst(20, "first");
      // The prefetch had grown with the small orders: the broker sends the burst at once; past
      // 64 KiB the consumer stops taking deliveries (no consumer on the queue).
      const channel = await ctx.broker.channel();
      await waitFor("the consumer to stop taking deliveries", async () => {
        const { consumerCount } = await channel.checkQueue(ctx.topo.queue);
        return consumer.heldBytes > 64 * 1024 && consumerCount === 0 ? true : undefined;
      });
      await channel.close();
      gate.resolve();
      await outcomes.until("the first burst", large, 20);
      // Taking them again with a prefetch that fits 20 KiB bodies in half the budget: one.
      const held: number[] = [];
      const watching = setInterval(() => held.push(consumer.inFlight), 1);
      await burst(20, "second");
      await outcomes.until("the second burst", large, 40);
      clearInterval(watching);
      assert.ok(Math.max(...held) <= 2, `at most ${Math.max(...held)} large bodies at once`);
      assert.equal(await ctx.broker.messageCount(ctx.topo.deadLetterQueue), 40, "nothing lost");
      assert.equal(await ledger.countOrders(), 300);
    } finally {
      gate.resolve();
      await consumer.stop();
      await ledger.close();
    }
  });
});
