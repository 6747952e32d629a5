import { strict as assert } from "node:assert";
import { Buffer } from "node:buffer";
import { inspectDeadLetters } from "../lib/dead_letter_ops.ts";
import { readQueueStats } from "../lib/queue_stats.ts";
import { HEADER } from "../lib/retry_headers.ts";
import { waitFor, withTopology } from "../testing/broker.ts";

Deno.test("looking at a quorum DLQ 50 times and reading its metrics 50 times spends none of its dead letters", async () => {
  // A delivery limit of 3 on the work queue and tiers: were it on the DLQ too, every look that
  // counts as a delivery would bring a letter nearer to being dropped.
  await withTopology("quorum-looks", {
    retryDelays: [100],
    queueType: "quorum",
    deliveryLimit: 3,
  }, async (ctx) => {
    const channel = await ctx.broker.confirmChannel();
    const at = new Date(Date.now() - 60_000).toISOString();
    for (let i = 0; i < 5; i++) {
      channel.publish(ctx.topo.deadLetterExchange, ctx.topo.routingKey, Buffer.from(`{"n":${i}}`), {
        persistent: true,
        messageId: `letter-${i}`,
        headers: { [HEADER.reason]: "invalid", [HEADER.deadLetteredAt]: at },
      });
    }
    await channel.waitForConfirms();
    await channel.close();
    for (let i = 0; i < 50; i++) {
      await waitFor(
        "the letters back",
        async () => await ctx.broker.messageCount(ctx.topo.deadLetterQueue) === 5 || undefined,
      );
      const { letters } = await inspectDeadLetters(ctx.broker, ctx.topo);
      assert.equal(letters.length, 5, `look ${i + 1} saw ${letters.length} letters`);
    }
    for (let i = 0; i < 50; i++) {
      // The peek's letter is back at the head a moment after it is returned.
      await waitFor(
        "the letters back",
        async () => await ctx.broker.messageCount(ctx.topo.deadLetterQueue) === 5 || undefined,
      );
      const stats = await readQueueStats(ctx.broker, ctx.topo);
      assert.equal(stats.depth.dlq, 5, `metrics read ${i + 1} found ${stats.depth.dlq} letters`);
      assert.ok((stats.oldestDeadLetterSeconds ?? 0) >= 59, "the oldest letter's age is read");
    }
    await waitFor(
      "the letters back",
      async () => await ctx.broker.messageCount(ctx.topo.deadLetterQueue) === 5 || undefined,
    );
    const { letters } = await inspectDeadLetters(ctx.broker, ctx.topo);
    assert.deepEqual(letters.map((l) => l.refCode), [0, 1, 2, 3, 4].map((i) => `letter-${i}`));
  });
});
