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
import { fastPolicy, OutcomeLog, waitFor, withTopology } from "../testing/broker.ts";

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
