/**
 * The plugin retry backend on the brokers where the delayed-message plugin runs, which
 * scripts/services.sh builds and enables (RabbitMQ 3.10 and 4.0; none works on 4.3), and what each
 * release's plugin hands back: the wire type of `x-delay` and which integer types it honours.
 * On RabbitMQ 4.3 and later the backend is refused before anything is declared (the start-up
 * errors are tested in topology_test.ts).
 */

import { strict as assert } from "node:assert";
import { INTEGER_TYPES } from "../testing/amqp_types.ts";
import { Broker } from "../lib/broker.ts";
import { FatalError } from "../lib/errors.ts";
import { publishOrder } from "../lib/estoque.ts";
import { encodeOrder, newOrder } from "../lib/order.ts";
import { HEADER } from "../lib/retry_headers.ts";
import { serverVersionAtLeast } from "../lib/server_version.ts";
import { pluginBackendRuns, topology } from "../lib/topology.ts";
import { declareTopology } from "../lib/declare_topology.ts";
import {
  fastPolicy,
  startConsumer,
  takeMessages,
  tapHeaderTypes,
  uniquePrefix,
  withTopology,
} from "../testing/broker.ts";
import {
  type BrokerUnderTest,
  connectTo,
  DEFAULT_BROKER,
  otherBroker,
} from "../testing/other_brokers.ts";

const policy = fastPolicy(3, 100);

/** The RabbitMQ release of `target`, from a connection. */
async function versionOf(target: BrokerUnderTest): Promise<string> {
  const broker = await connectTo(target, "test plugin version");
  try {
    return broker.serverVersion;
  } finally {
    await broker.close();
  }
}

/**
 * The wire type `x-delay` comes back as from the plugin of RabbitMQ `version`, for what we
 * publish (a signed 32-bit integer, `I`): kept on 3.x; a signed 64-bit integer (`l`) from 4.0,
 * whose plugin sets the header anew (the Go consumer's `.(int32)` panics on it).
 */
function delayTypeBack(version: string): string {
  return serverVersionAtLeast(version, "4.0") ? "l" : "I";
}

/** Asserts that the plugin backend is refused on `target` (RabbitMQ 4.3 and later). */
async function assertRefused(target: BrokerUnderTest, version: string): Promise<void> {
  const broker = await Broker.connect(target.url, { name: "test plugin refused" });
  try {
    const topo = topology({ prefix: uniquePrefix("plugin-refused"), backend: "plugin" });
    const error = await declareTopology(broker, topo).then(() => undefined, (e) => e);
    assert.ok(error instanceof FatalError, `RabbitMQ ${version} declared the plugin backend`);
    assert.equal(error.code, "plugin_unsupported", error.message);
  } finally {
    await broker.close();
  }
}

Deno.test("plugin backend on the broker under test: an over-limit order is retried with x-delay 3 times, then dead-lettered (x-delay back as I on 3.x, l from 4.0); refused from 4.3", async () => {
  const version = await versionOf(DEFAULT_BROKER);
  if (!pluginBackendRuns(version)) return await assertRefused(DEFAULT_BROKER, version);
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
    // We publish x-delay and x-retry-count as signed 32-bit integers (I).
    const back = delayTypeBack(version);
    assert.deepEqual(wireTypes(HEADER.delay), [back, back, back], `x-delay on ${version}`);
    assert.deepEqual(wireTypes(HEADER.retryCount), ["I", "I", "I", "I"]);
    await consumer.stop();
    await ledger.close();
  });
});

/**
 * Publishes through the plugin of `target` one over-limit order per AMQP integer type, its
 * `x-delay` (120 ms) and `x-retry-count` (1) of that type, to our consumer; checks which were
 * delayed, the types they came back as, and that the consumer read every one: each order's next
 * retry is number 2, and it ends dead-lettered after 3.
 */
async function integerTypesThroughThePlugin(target: BrokerUnderTest): Promise<void> {
  const version = await versionOf(target);
  if (!pluginBackendRuns(version)) return await assertRefused(target, version);
  // 3.x honours every integer type and hands the header back as it came; 4.0's plugin (4.0.7)
  // ignores a signed byte (the message is not delayed, the header comes back untouched) and sets
  // every other one anew as a negated signed 64-bit integer.
  const from4 = serverVersionAtLeast(version, "4.0");
  const expected = INTEGER_TYPES.map(([, tag]) => ({
    delayed: !(from4 && tag === "b"),
    back: from4 && tag !== "b" ? "l" : tag,
  }));
  await withTopology("plugin-types", { backend: "plugin" }, async (ctx) => {
    const wireTypes = tapHeaderTypes(ctx.broker);
    const { consumer, outcomes, ledger, publisher } = await startConsumer(ctx, policy);
    const sentAt: number[] = [];
    const refs: string[] = [];
    for (const [type] of INTEGER_TYPES) {
      const order = newOrder({ quantity: 900 });
      refs.push(order.refCode);
      sentAt.push(performance.now());
      await publisher.publish(ctx.topo.exchange, ctx.topo.routingKey, encodeOrder(order), {
        messageId: order.refCode,
        persistent: true, // not mandatory: the plugin returns every message it delays
        headers: {
          [HEADER.delay]: { "!": type, value: 120 },
          [HEADER.retryCount]: { "!": type, value: 1 },
        },
      });
    }
    await outcomes.until("every order dead-lettered", (o) => o.kind === "dead-lettered", 7);
    const ofRef = (ref: string) =>
      outcomes.outcomes.flatMap((o, i) =>
        "messageKey" in o && o.messageKey === ref ? [{ o, at: outcomes.times[i]! }] : []
      );
    const seen = refs.map((ref, i) => {
      const [first] = ofRef(ref);
      return {
        delayed: first!.at - sentAt[i]! >= 115,
        retry: first!.o.kind === "retried" ? first!.o.retry : undefined,
        end: ofRef(ref).map(({ o }) => o.kind).join(","),
      };
    });
    assert.deepEqual(
      seen.map((s) => s.delayed),
      expected.map((e) => e.delayed),
      `delayed on ${version}, by type (${INTEGER_TYPES.map(([t]) => t).join(" ")})`,
    );
    assert.deepEqual(seen.map((s) => s.retry), refs.map(() => 2), "x-retry-count read: 1");
    assert.deepEqual(seen.map((s) => s.end), refs.map(() => "retried,retried,dead-lettered"));
    // The first copy of each as it came back from the plugin (the retries after it are ours: I).
    assert.deepEqual(
      wireTypes(HEADER.delay).slice(0, 7).sort(),
      expected.map((e) => e.back).sort(),
      `x-delay back on ${version}`,
    );
    assert.deepEqual(
      wireTypes(HEADER.retryCount).slice(0, 7).sort(),
      INTEGER_TYPES.map(([, tag]) => tag).sort(),
      `x-retry-count back on ${version}: as published`,
    );
    await consumer.stop();
    await ledger.close();
  }, target.url);
}

Deno.test("x-delay and x-retry-count of every AMQP integer type (b B s u I i l) through the plugin of the broker under test: which are delayed, what comes back, all read by our consumer; refused from 4.3", async () => {
  await integerTypesThroughThePlugin(DEFAULT_BROKER);
});

Deno.test({
  name:
    "x-delay and x-retry-count of every AMQP integer type through the plugin of RabbitMQ 4.0: a signed byte is not delayed, the others come back as l; all read by our consumer (RABBITMQ_URL_4_0)",
  fn: async () => {
    const target = otherBroker("4_0");
    const version = await versionOf(target);
    assert.ok(
      serverVersionAtLeast(version, "4.0") && pluginBackendRuns(version),
      `RABBITMQ_URL_4_0 is RabbitMQ ${version}`,
    );
    await integerTypesThroughThePlugin(target);
  },
});
