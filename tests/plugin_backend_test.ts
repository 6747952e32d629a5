/**
 * The plugin retry backend against a broker with the delayed-message plugin, which
 * scripts/services.sh builds and enables for the test task (Debian's RabbitMQ lacks it). Without
 * the plugin these tests fail; the start-up error for that case is tested in topology_test.ts.
 */

import { strict as assert } from "node:assert";
import { publishOrder } from "../lib/estoque.ts";
import { newOrder } from "../lib/order.ts";
import { HEADER } from "../lib/retry_headers.ts";
import {
  fastPolicy,
  startConsumer,
  takeMessages,
  tapHeaderTypes,
  withTopology,
} from "../testing/broker.ts";

const policy = fastPolicy(3, 100);

Deno.test({
  name: "plugin backend: an over-limit order is retried with x-delay 3 times, then dead-lettered",
  fn: async () => {
    await withTopology("plugin", { backend: "plugin" }, async (ctx) => {
      const wireTypes = tapHeaderTypes(ctx.broker);
      const { broker, topo } = ctx;
      const { consumer, outcomes, ledger, publisher } = await startConsumer(ctx, policy);
      await publishOrder(publisher, topo, newOrder({ quantity: 501 }));
      await outcomes.until("dead letter", (o) => o.kind === "dead-lettered");
      const delays = outcomes.outcomes.flatMap((o) => o.kind === "retried" ? [o.delayMs] : []);
      assert.deepEqual(delays, [100, 200, 300]);
      const gaps = outcomes.times.slice(1).map((t, i) => t - outcomes.times[i]!);
      gaps.forEach((gap, i) => assert.ok(gap >= delays[i]! - 5, `gap ${gap} < ${delays[i]}`));
      const [dead] = await takeMessages(broker, topo.deadLetterQueue, 1);
      assert.equal(dead!.properties.headers![HEADER.reason], "exhausted");
      assert.equal(dead!.properties.headers![HEADER.retryCount], 3);
      // The plugin hands x-delay back negated, keeping its type: a signed 32-bit integer, as the
      // Go consumer reads it.
      assert.deepEqual(wireTypes(HEADER.delay), ["I", "I", "I"]);
      assert.deepEqual(wireTypes(HEADER.retryCount), ["I", "I", "I", "I"]);
      await consumer.stop();
      await ledger.close();
    });
  },
});
