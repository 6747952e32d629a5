/**
 * The plugin retry backend against a broker that has the delayed-message plugin. On a broker
 * without it (Debian's RabbitMQ) these tests are skipped with the reason printed; the start-up
 * error for that case is tested in topology_test.ts.
 */

import { strict as assert } from "node:assert";
import { Broker } from "../lib/broker.ts";
import { publishOrder } from "../lib/estoque.ts";
import { newOrder } from "../lib/order.ts";
import { HEADER } from "../lib/retry_headers.ts";
import { declareTopology, deleteTopology, topology } from "../lib/topology.ts";
import {
  fastPolicy,
  RABBITMQ_URL,
  startConsumer,
  takeMessages,
  uniquePrefix,
  withTopology,
} from "./_broker.ts";

async function pluginMissing(): Promise<string | undefined> {
  const broker = await Broker.connect(RABBITMQ_URL, { name: "test plugin probe" });
  const probe = topology({ prefix: uniquePrefix("probe"), backend: "plugin" });
  try {
    await declareTopology(broker, probe);
    await deleteTopology(broker, probe);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  } finally {
    await broker.close();
  }
}

const missing = await pluginMissing();
if (missing) console.log(`skipping plugin-backend broker tests: ${missing}`);

const policy = fastPolicy(3, 100);

Deno.test({
  name: "plugin backend: an over-limit order is retried with x-delay 3 times, then dead-lettered",
  ignore: missing !== undefined,
  fn: async () => {
    await withTopology("plugin", { backend: "plugin" }, async (ctx) => {
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
      await consumer.stop();
      await ledger.close();
    });
  },
});
