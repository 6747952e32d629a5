/**
 * The test helper that takes messages from a queue: it waits for the count asked for, and asking
 * for none (a run whose random orders left nothing to dead-letter) returns at once, the queue
 * untouched.
 */

import { strict as assert } from "node:assert";
import { ConfirmedPublisher } from "../lib/publisher.ts";
import { takeMessages, within, withTopology } from "../testing/broker.ts";

Deno.test("takeMessages of none returns at once with nothing, and leaves the queue's messages where they are", async () => {
  await withTopology("take-none", {}, async (ctx) => {
    const publisher = new ConfirmedPublisher(await ctx.broker.confirmChannel());
    await publisher.publish("", ctx.topo.queue, new TextEncoder().encode("{}"), {});
    const taken = await within(takeMessages(ctx.broker, ctx.topo.queue, 0), 2_000, "none taken");
    assert.deepEqual(taken, []);
    assert.equal(await ctx.broker.messageCount(ctx.topo.queue), 1);
    const [one] = await takeMessages(ctx.broker, ctx.topo.queue, 1);
    assert.equal(new TextDecoder().decode(one!.content), "{}");
  });
});
