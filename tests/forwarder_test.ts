import { strict as assert } from "node:assert";
import { Broker } from "../lib/broker.ts";
import { FatalError, TransientError } from "../lib/errors.ts";
import { type Delivery, readDelivery } from "../lib/delivery.ts";
import { publishOrder } from "../lib/estoque.ts";
import { type Failure, failureOf, Forwarder } from "../lib/forwarder.ts";
import { newOrder } from "../lib/order.ts";
import { ConfirmedPublisher, PublishError } from "../lib/publisher.ts";
import { HEADER } from "../lib/retry_headers.ts";
import type { RetryDecision } from "../lib/retry_policy.ts";
import { type Topology, topology } from "../lib/topology.ts";
import {
  type BrokerContext,
  RABBITMQ_URL,
  takeMessages,
  uniquePrefix,
  withTopology,
} from "../testing/broker.ts";
import { withRefusingQueue } from "../testing/refusing_queue.ts";
import { HoldingProxy } from "../testing/proxy.ts";
import { settlesWithin } from "../lib/settles_within.ts";

const tiers = { retryDelays: [60_000] }; // copies stay in the tier while the test looks
const retry: RetryDecision = { action: "retry", retry: 1, delayMs: 60_000 };

/** Publishes an order and takes it back unacknowledged, as the consumer would hold it. */
async function oneDelivery(ctx: BrokerContext): Promise<Delivery> {
  const publisher = new ConfirmedPublisher(await ctx.broker.confirmChannel());
  await publishOrder(publisher, ctx.topo, newOrder({ quantity: 900 }));
  const channel = await ctx.broker.channel();
  const message = await channel.get(ctx.topo.queue, { noAck: true });
  await channel.close();
  assert.ok(message, "the order never reached the work queue");
  return readDelivery({ ...message, fields: { ...message.fields, consumerTag: "test" } }).delivery;
}

function overLimit(topo: Topology, copyId: string): Failure {
  const error = new TransientError("maximum quantity exceeded", { code: "quantity_exceeded" });
  return failureOf(error, { now: new Date(), ...topo }, copyId);
}

Deno.test("failureOf() says the error with its causes and carries its code and copy id", () => {
  const now = new Date(0);
  const cause = Object.assign(new Error("connection reset"), { code: "ECONNRESET" });
  const failure = failureOf(
    new TransientError("cannot write", { cause }),
    { now, exchange: "x", routingKey: "k" },
    "c:1/0",
  );
  assert.equal(failure.text, "cannot write: connection reset");
  assert.equal(failure.code, "ECONNRESET");
  assert.deepEqual(
    [failure.now, failure.exchange, failure.routingKey, failure.copyId],
    [now, "x", "k", "c:1/0"],
  );
  const bare = failureOf("text", { now, exchange: "", routingKey: "k" });
  assert.deepEqual([bare.text, bare.code, "copyId" in bare], ["text", undefined, false]);
});

Deno.test("passOn() fails as nacked when the tier refuses the retry copy; passOnUntilTaken() publishes it again until the tier takes it", async () => {
  const topo = topology({ prefix: uniquePrefix("forward-nacked"), ...tiers });
  const tier = topo.retryTiers[0]!.queue;
  await withRefusingQueue(topo, tier, async (ctx) => {
    const forwarder = await Forwarder.open({
      broker: ctx.broker,
      topology: topo,
      confirmTimeoutMs: 5_000,
      onLost: () => {},
    });
    try {
      const delivery = await oneDelivery(ctx);
      const failure = overLimit(topo, "c:nacked");
      const error = await forwarder.passOn(delivery, failure, retry).then(
        () => undefined,
        (e) => e,
      );
      assert.ok(error instanceof PublishError, `not refused: ${error}`);
      assert.equal(error.code, "nacked");
      assert.match(error.message, new RegExp(`refused \\(nacked\\) a message to /${tier}`));
      assert.equal(await ctx.broker.messageCount(tier), 0);

      const attempts: number[] = [];
      const passed = await forwarder.passOnUntilTaken(delivery, failure, retry, {
        delay: (attempt) => {
          attempts.push(attempt);
          if (attempt === 3) void ctx.accept(); // the tier has room again
          return 20;
        },
        stopping: () => false,
      });
      assert.equal(passed.kind, "retried");
      assert.ok(attempts.length >= 3, `published again ${attempts.length} times`);
      assert.deepEqual(attempts, attempts.map((_, i) => i + 1));
      const [copy] = await takeMessages(ctx.broker, tier, 1);
      assert.equal(copy!.properties.headers![HEADER.retryCount], 1);
      assert.equal(copy!.properties.headers![HEADER.copyId], "c:nacked");
    } finally {
      await forwarder.close();
    }
  });
});

Deno.test("passOn() fails as timed out when no confirm comes in confirmTimeoutMs, and a copy made again carries the same x-copy-id", async () => {
  await withTopology("forward-timeout", tiers, async (ctx) => {
    const { topo } = ctx;
    const tier = topo.retryTiers[0]!.queue;
    await using proxy = HoldingProxy.start(RABBITMQ_URL);
    const held = await Broker.connect(proxy.url, { name: "test forwarder behind a proxy" });
    const forwarder = await Forwarder.open({
      broker: held,
      topology: topo,
      confirmTimeoutMs: 200,
      onLost: () => {},
    });
    try {
      const delivery = await oneDelivery(ctx);
      const failure = overLimit(topo, "c:timeout");
      proxy.hold(); // the broker's confirms (and every other answer) stop reaching the forwarder
      const started = performance.now();
      const refused = forwarder.passOn(delivery, failure, retry).then(
        () => undefined,
        (e) => e,
      );
      // The copy reached the broker: only its confirm is missing.
      await waitForCount(ctx.broker, tier, 1);
      await new Promise((resolve) => setTimeout(resolve, 500));
      proxy.release(); // its new channel needs the broker's answer to open
      const error = await refused;
      assert.ok(performance.now() - started >= 200, "failed before its timeout");
      assert.ok(error instanceof PublishError, `not refused: ${error}`);
      assert.equal(error.code, "timeout");
      assert.match(error.message, /no confirm from the broker within 200 ms/);
      const passed = await forwarder.passOn(delivery, failure, retry);
      assert.equal(passed.kind, "retried");
      // The broker took both: the next consumer drops the second by its x-copy-id.
      const copies = await takeMessages(ctx.broker, tier, 2);
      assert.deepEqual(copies.map((c) => c.properties.headers![HEADER.copyId]), [
        "c:timeout",
        "c:timeout",
      ]);
    } finally {
      await forwarder.close();
      await held.close();
    }
  });
});

/** Waits until `queue` holds `count` ready messages. */
async function waitForCount(broker: Broker, queue: string, count: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((await broker.messageCount(queue)) !== count) {
    if (Date.now() > deadline) throw new Error(`${queue} never held ${count} messages`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

Deno.test("passOnUntilTaken() gives a copy up as refused at once when the topology's declare beside the work failed, publishing nothing", async () => {
  await withTopology("forward-fatal-ready", tiers, async (ctx) => {
    const { topo } = ctx;
    const tier = topo.retryTiers[0]!.queue;
    const changed = new FatalError("the retry queue exists with other settings", {
      code: "topology_changed",
    });
    const ready = Promise.reject(changed);
    ready.catch(() => {});
    const forwarder = await Forwarder.open({
      broker: ctx.broker,
      topology: topo,
      confirmTimeoutMs: 5_000,
      onLost: () => {},
      ready,
    });
    try {
      const delivery = await oneDelivery(ctx);
      const attempts: number[] = [];
      const passing = forwarder.passOnUntilTaken(delivery, overLimit(topo, "c:fatal"), retry, {
        delay: (attempt) => (attempts.push(attempt), 60_000),
        stopping: () => false,
      });
      assert.ok(await settlesWithin(passing, 5_000), "still waiting to publish it again");
      const passed = await passing;
      assert.deepEqual(passed, {
        kind: "refused",
        error: "the retry queue exists with other settings",
      });
      assert.deepEqual(attempts, [], "it waited to publish again");
      assert.equal(await ctx.broker.messageCount(tier), 0);
    } finally {
      await forwarder.close();
    }
  });
});
