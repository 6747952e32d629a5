import { strict as assert } from "node:assert";
import { Buffer } from "node:buffer";
import { inspectDeadLetters } from "../lib/dead_letter_ops.ts";
import { readQueueStats } from "../lib/queue_stats.ts";
import { HEADER } from "../lib/retry_headers.ts";
import { topology } from "../lib/topology.ts";
import { declareTopology, deleteTopology } from "../lib/declare_topology.ts";
import { uniquePrefix, waitFor } from "../testing/broker.ts";
import { type BrokerUnderTest, connectTo, EVERY_BROKER } from "../testing/other_brokers.ts";

/**
 * Five dead letters in a quorum DLQ, looked at 50 times and read by the metrics 50 times. A
 * delivery limit of 3 on the work queue and tiers: were it on the DLQ too, every look (a
 * delivery given back) would bring a letter nearer to being dropped; 4.x would drop them at its
 * default of 20.
 */
async function lookFiftyTimes(target: BrokerUnderTest): Promise<void> {
  const broker = await connectTo(target, "test quorum looks");
  const topo = topology({
    prefix: uniquePrefix("quorum-looks"),
    retryDelays: [100],
    queueType: "quorum",
    deliveryLimit: 3,
  });
  const lettersBack = () =>
    waitFor(
      "the letters back",
      async () => await broker.messageCount(topo.deadLetterQueue) === 5 || undefined,
    );
  try {
    await declareTopology(broker, topo);
    const channel = await broker.confirmChannel();
    const at = new Date(Date.now() - 60_000).toISOString();
    for (let i = 0; i < 5; i++) {
      channel.publish(topo.deadLetterExchange, topo.routingKey, Buffer.from(`{"n":${i}}`), {
        persistent: true,
        messageId: `letter-${i}`,
        headers: { [HEADER.reason]: "invalid", [HEADER.deadLetteredAt]: at },
      });
    }
    await channel.waitForConfirms();
    await channel.close();
    const version = broker.serverVersion;
    for (let i = 0; i < 50; i++) {
      await lettersBack();
      const { letters } = await inspectDeadLetters(broker, topo);
      assert.equal(letters.length, 5, `look ${i + 1} on ${version} saw ${letters.length} letters`);
    }
    for (let i = 0; i < 51; i++) {
      // The peek's letter is back at the head a moment after it is returned. (51: a peek that
      // moved the head letter to the back would bring the order round again after 50.)
      await lettersBack();
      const stats = await readQueueStats(broker, topo);
      assert.equal(stats.depth.dlq, 5, `metrics read ${i + 1} on ${version}: ${stats.depth.dlq}`);
      assert.equal(
        stats.oldestDeadLetterSeconds,
        undefined,
        "a quorum DLQ's head is not peeked at",
      );
    }
    await lettersBack();
    const { letters } = await inspectDeadLetters(broker, topo);
    assert.deepEqual(
      letters.map((l) => l.refCode),
      [0, 1, 2, 3, 4].map((i) => `letter-${i}`),
      `the letters' order on ${version}`,
    );
  } finally {
    await deleteTopology(broker, topo).catch(() => {});
    await broker.close();
  }
}

for (const [label, target] of EVERY_BROKER) {
  Deno.test(`looking at a quorum DLQ 50 times and reading its metrics 51 times spends none of its dead letters and keeps their order (${label})`, () =>
    lookFiftyTimes(target));
}
