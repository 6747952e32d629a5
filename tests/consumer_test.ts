import { strict as assert } from "node:assert";
import { Buffer } from "node:buffer";
import { Broker } from "../lib/broker.ts";
import { FatalError } from "../lib/errors.ts";
import { type ConsumerOptions, OrderConsumer } from "../lib/consumer.ts";
import type { PauseSource } from "../lib/operator_pause.ts";
import type { Outcome } from "../lib/outcome.ts";
import { publishOrder } from "../lib/estoque.ts";
import type { Ledger } from "../lib/ledger.ts";
import { SqliteLedger } from "../lib/sqlite_ledger.ts";
import { encodeOrder, MESSAGE_VERSION_HEADER, newOrder, type Order } from "../lib/order.ts";
import { ConfirmedPublisher } from "../lib/publisher.ts";
import { HEADER } from "../lib/retry_headers.ts";
import { retryDelays } from "../lib/retry_policy.ts";
import { type Topology, topology } from "../lib/topology.ts";
import {
  type BrokerContext,
  fastPolicy,
  RABBITMQ_URL,
  type RunningConsumer,
  startConsumer,
  takeMessages,
  tapHeaderTypes,
  uniquePrefix,
  waitFor,
  within,
  withTopology,
} from "../testing/broker.ts";
import { ControlledLedger } from "../testing/ledger.ts";
import { HoldingProxy } from "../testing/proxy.ts";
import { withRefusingQueue } from "../testing/refusing_queue.ts";

const policy = fastPolicy(3, 100);
const tiers = { retryDelays: retryDelays(policy) };

function start(
  ctx: BrokerContext,
  options: Partial<ConsumerOptions> & { ledger?: SqliteLedger } = {},
): Promise<RunningConsumer> {
  return startConsumer(ctx, policy, options);
}

function publishRaw(
  publisher: ConfirmedPublisher,
  topo: Topology,
  body: string | Uint8Array,
  properties: Record<string, unknown> = {},
): Promise<void> {
  const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
  return publisher.publish(topo.exchange, topo.routingKey, bytes, {
    persistent: true,
    mandatory: true,
    ...properties,
  });
}

const isFor = (ref: string) => (o: Outcome) =>
  ("refCode" in o && o.refCode === ref) || ("messageKey" in o && o.messageKey === ref);

Deno.test("a valid order becomes one production order and is acked", async () => {
  await withTopology("valid", tiers, async (ctx) => {
    const { consumer, outcomes, ledger, publisher } = await start(ctx);
    const order = newOrder({ quantity: 500 });
    await publishOrder(publisher, ctx.topo, order);
    const [outcome] = await outcomes.until("created", (o) => o.kind === "created");
    assert.deepEqual(outcome, { kind: "created", refCode: order.refCode, attempt: 0 });
    const row = await ledger.findOrder(order.refCode);
    assert.equal(row?.quantity, 500);
    assert.equal(row?.colorCode, order.colorCode);
    await consumer.stop();
    assert.equal(await ctx.broker.messageCount(ctx.topo.queue), 0, "the message was acked");
    await ledger.close();
  });
});

Deno.test("an over-limit order is retried exactly 3 times with growing delays, then dead-lettered with its history", async () => {
  await withTopology("exhausted", tiers, async (ctx) => {
    const wireTypes = tapHeaderTypes(ctx.broker);
    const { consumer, outcomes, ledger, publisher } = await start(ctx);
    const order = newOrder({ quantity: 501 });
    await publishOrder(publisher, ctx.topo, order);
    await outcomes.until("dead-lettered", (o) => o.kind === "dead-lettered");
    const mine = outcomes.outcomes.map((o, i) => ({ o, at: outcomes.times[i]! }))
      .filter(({ o }) => isFor(order.refCode)(o));
    assert.deepEqual(mine.map(({ o }) => o.kind), [
      "retried",
      "retried",
      "retried",
      "dead-lettered",
    ]);
    assert.deepEqual(
      mine.slice(0, 3).map(({ o }) => o.kind === "retried" ? [o.retry, o.delayMs] : []),
      [[1, 100], [2, 200], [3, 300]],
    );
    const gaps = [1, 2, 3].map((i) => mine[i]!.at - mine[i - 1]!.at);
    gaps.forEach((gap, i) => {
      const expected = (i + 1) * 100;
      assert.ok(
        gap >= expected - 5,
        `retry ${i + 1} came after ${gap} ms, before its ${expected} ms`,
      );
      assert.ok(
        gap < expected + 1_000,
        `retry ${i + 1} came after ${gap} ms, far past ${expected} ms`,
      );
    });

    const [dead] = await takeMessages(ctx.broker, ctx.topo.deadLetterQueue, 1);
    const headers = dead!.properties.headers!;
    assert.equal(headers[HEADER.retryCount], 3);
    assert.equal(headers[HEADER.reason], "exhausted");
    assert.equal(headers[HEADER.lastError], "maximum quantity exceeded: 501 > 500");
    assert.match(String(headers[HEADER.firstFailedAt]), /^\d{4}-\d\d-\d\dT/);
    assert.equal(headers[HEADER.originalExchange], ctx.topo.exchange);
    assert.equal(headers[HEADER.originalRoutingKey], "create");
    assert.equal(dead!.properties.messageId, order.refCode);
    assert.equal(dead!.properties.contentType, "application/json");
    assert.equal(dead!.properties.deliveryMode, 2);
    // Each retry copy delivered back, and the dead letter, carried x-retry-count as a signed
    // 32-bit integer, the only type the Go consumer reads.
    assert.deepEqual(wireTypes(HEADER.retryCount), ["I", "I", "I", "I"]);
    assert.equal(
      Buffer.from(dead!.content).toString(),
      `{"RefCode":"${order.refCode}","ColorCode":"${order.colorCode}","Quantity":501,"EventType":"CREATE"}`,
    );
    assert.equal(await ledger.countOrders(), 0);
    await consumer.stop();
    await ledger.close();
  });
});

Deno.test("an invalid body is dead-lettered at once as invalid, byte for byte, and the consumer goes on", async () => {
  await withTopology("invalid", tiers, async (ctx) => {
    const { consumer, outcomes, ledger, publisher } = await start(ctx);
    const body = new Uint8Array([0x7b, 0x22, 0xff, 0x00, 0x7d]);
    await publishRaw(publisher, ctx.topo, body, { messageId: "bad-1" });
    await publishRaw(publisher, ctx.topo, '{"RefCode":"nope"}', { messageId: "bad-2" });
    const good = newOrder({ quantity: 1 });
    await publishOrder(publisher, ctx.topo, good);
    await outcomes.until("two dead letters", (o) => o.kind === "dead-lettered", 2);
    await outcomes.until("the valid order", (o) => o.kind === "created");
    assert.equal(outcomes.outcomes.filter((o) => o.kind === "retried").length, 0, "never retried");
    const dead = await takeMessages(ctx.broker, ctx.topo.deadLetterQueue, 2);
    const byId = new Map(dead.map((m) => [m.properties.messageId, m]));
    const first = byId.get("bad-1")!;
    assert.deepEqual(new Uint8Array(first.content), body);
    assert.equal(first.properties.headers![HEADER.reason], "invalid");
    assert.equal(first.properties.headers![HEADER.retryCount], 0);
    assert.match(String(first.properties.headers![HEADER.lastError]), /not valid UTF-8/);
    assert.match(
      String(byId.get("bad-2")!.properties.headers![HEADER.lastError]),
      /invalid order: (unknown field|field ColorCode is missing|RefCode must be a UUID)/,
    );
    await consumer.stop();
    await ledger.close();
  });
});

Deno.test("retry headers of the wrong type (x-retry-count, x-delay) are invalid, and a Go int32 count is honoured", async () => {
  await withTopology("headers", tiers, async (ctx) => {
    const { consumer, outcomes, ledger, publisher } = await start(ctx);
    const wrong = newOrder({ quantity: 1 });
    await publishRaw(
      publisher,
      ctx.topo,
      JSON.stringify({
        RefCode: wrong.refCode,
        ColorCode: wrong.colorCode,
        Quantity: 1,
        EventType: "CREATE",
      }),
      { messageId: wrong.refCode, headers: { [HEADER.retryCount]: "two" } },
    );
    const [invalid] = await outcomes.until("invalid", isFor(wrong.refCode));
    assert.equal(invalid?.kind === "dead-lettered" && invalid.reason, "invalid");

    const badDelay = newOrder({ quantity: 1 });
    await publishRaw(publisher, ctx.topo, new TextDecoder().decode(encodeOrder(badDelay)), {
      messageId: badDelay.refCode,
      headers: { [HEADER.delay]: "soon" },
    });
    const [delayed] = await outcomes.until("invalid x-delay", isFor(badDelay.refCode));
    assert.equal(delayed?.kind === "dead-lettered" && delayed.reason, "invalid");
    assert.match(
      delayed?.kind === "dead-lettered" ? delayed.error : "",
      /x-delay must be an integer/,
    );

    const goOrder = newOrder({ quantity: 900 });
    await publishRaw(
      publisher,
      ctx.topo,
      JSON.stringify({
        RefCode: goOrder.refCode,
        ColorCode: goOrder.colorCode,
        Quantity: 900,
        EventType: "CREATE",
      }),
      { messageId: goOrder.refCode, headers: { [HEADER.retryCount]: { "!": "int32", value: 2 } } },
    );
    await outcomes.until(
      "the Go order's dead letter",
      (o) => isFor(goOrder.refCode)(o) && o.kind === "dead-lettered",
    );
    assert.deepEqual(
      outcomes.outcomes.filter(isFor(goOrder.refCode)).map((o) => o.kind),
      ["retried", "dead-lettered"],
    );
    await consumer.stop();
    await ledger.close();
  });
});

Deno.test("the same message delivered twice creates one production order", async () => {
  await withTopology("duplicate", tiers, async (ctx) => {
    const { consumer, outcomes, ledger, publisher } = await start(ctx);
    const order = newOrder({ quantity: 10 });
    await publishOrder(publisher, ctx.topo, order);
    await publishOrder(publisher, ctx.topo, order);
    const seen = await outcomes.until("two outcomes", isFor(order.refCode), 2);
    assert.deepEqual(seen.map((o) => o.kind).sort(), ["created", "duplicate"]);
    assert.equal(await ledger.countOrders(), 1);
    await consumer.stop();
    assert.equal(await ctx.broker.messageCount(ctx.topo.queue), 0);
    await ledger.close();
  });
});

Deno.test("an original whose hop was passed on but that now succeeds creates its order once, and its retry copy is a duplicate", async () => {
  await withTopology("passed-on-succeeds", tiers, async (ctx) => {
    const ledger = await SqliteLedger.open(":memory:", { instanceId: "passed-on" });
    const order = newOrder({ quantity: 10 });
    // Its first attempt was passed on (failed under a lower limit), as the ledger remembers.
    await ledger.commit([{
      kind: "forward",
      messageKey: order.refCode,
      hop: "0:0",
      outcome: "retried",
    }]);
    const { consumer, outcomes, publisher } = await start(ctx, { ledger });
    const original = { messageId: order.refCode };
    await publishRaw(publisher, ctx.topo, encodeOrder(order), original);
    const [first] = await outcomes.until("the original", isFor(order.refCode), 1);
    assert.equal(first!.kind, "created");
    const retryCopy = { messageId: order.refCode, headers: { [HEADER.retryCount]: 1 } };
    await publishRaw(publisher, ctx.topo, encodeOrder(order), retryCopy);
    const both = await outcomes.until("the retry copy", isFor(order.refCode), 2);
    assert.deepEqual(both.map((o) => o.kind), ["created", "duplicate"]);
    assert.equal(await ledger.countOrders(), 1);
    await consumer.stop();
    await ledger.close();
  });
});

Deno.test("a consumer killed between the retry publish and the ack loses nothing: the original comes back and is passed on again, an extra copy at most", async () => {
  await withTopology("crash", tiers, async (ctx) => {
    const ledger = await SqliteLedger.open(":memory:", { instanceId: "crash" });
    const crashing = await Broker.connect(RABBITMQ_URL, { name: "test crashing consumer" });
    const crashed = Promise.withResolvers<void>();
    const first = await start({ broker: crashing, topo: ctx.topo }, {
      ledger,
      beforeAck: (outcome) => {
        if (outcome.kind !== "retried") return;
        // Cut the TCP connection as a kill -9 would: no ack, no close handshake.
        (crashing.model.connection as unknown as { stream: { destroy(): void } }).stream.destroy();
        crashed.resolve();
        return new Promise<void>(() => {}); // this process never gets to ack
      },
    });
    const order = newOrder({ quantity: 700 });
    await publishOrder(first.publisher, ctx.topo, order);
    await crashed.promise;

    const second = await start(ctx, { ledger });
    await second.outcomes.until("the dead letter", (o) => o.kind === "dead-lettered");
    await second.consumer.drained();
    await second.outcomes.until("both dead letters", (o) => o.kind === "dead-lettered", 2);
    await second.consumer.drained();
    // The copy the killed consumer published (its chain: 2 more retries, then the dead letter),
    // and the original, delivered again and passed on again (a new chain: 3 retries, then the
    // dead letter): nothing it carries tells it from another order alike, so it is not dropped.
    const kinds = second.outcomes.outcomes.filter(isFor(order.refCode)).map((o) => o.kind);
    assert.deepEqual(kinds.sort(), [
      ...["dead-lettered", "dead-lettered"],
      ...["retried", "retried", "retried", "retried", "retried"],
    ]);
    const letters = await takeMessages(ctx.broker, ctx.topo.deadLetterQueue, 2);
    assert.deepEqual(letters.map((m) => m.properties.headers![HEADER.retryCount]), [3, 3]);
    const chains = letters.map((m) => String(m.properties.headers![HEADER.copyId]).split("/")[0]);
    assert.notEqual(chains[0], chains[1], "two chains, one extra dead letter, nothing lost");
    await second.consumer.stop();
    void crashing.close();
    await ledger.close();
  });
});

Deno.test("a retry whose tier is gone is dead-lettered as unroutable, not lost", async () => {
  await withTopology("unroutable", tiers, async (ctx) => {
    const channel = await ctx.broker.channel();
    await channel.deleteQueue(ctx.topo.retryTiers[0]!.queue);
    await channel.close();
    const attempts: number[] = [];
    const { consumer, outcomes, ledger, publisher } = await start(ctx, {
      passOnDelay: (attempt) => (attempts.push(attempt), 10),
    });
    await publishOrder(publisher, ctx.topo, newOrder({ quantity: 501 }));
    const [outcome] = await outcomes.until("dead letter", (o) => o.kind === "dead-lettered");
    assert.deepEqual(attempts, [1, 2, 3, 4], "returned four times, dead-lettered at the fifth");
    assert.equal(outcome?.kind === "dead-lettered" && outcome.reason, "unroutable");
    const [dead] = await takeMessages(ctx.broker, ctx.topo.deadLetterQueue, 1);
    assert.match(String(dead!.properties.headers![HEADER.lastError]), /returned as unroutable/);
    await consumer.stop();
    await ledger.close();
  });
});

Deno.test("a dead letter the broker does not take is published again, the original held, until the DLQ is back", async () => {
  await withTopology("pass-on-again", tiers, async (ctx) => {
    const channel = await ctx.broker.channel();
    await channel.unbindQueue(ctx.topo.deadLetterQueue, ctx.topo.deadLetterExchange, "create");
    const failed = Promise.withResolvers<void>();
    const { consumer, outcomes, ledger, publisher } = await start(ctx, {
      passOnDelay: (attempt) => {
        if (attempt === 2) failed.resolve();
        return 20;
      },
    });
    await publishRaw(publisher, ctx.topo, "not json", { messageId: "hold-me" });
    await failed.promise;
    // Held, not requeued: the work queue has nothing ready, the consumer has it in flight.
    assert.equal(await ctx.broker.messageCount(ctx.topo.queue), 0);
    assert.equal(consumer.inFlight, 1);
    await channel.bindQueue(ctx.topo.deadLetterQueue, ctx.topo.deadLetterExchange, "create");
    await channel.close();
    await outcomes.until("dead-lettered", (o) => o.kind === "dead-lettered");
    assert.ok(!outcomes.outcomes.some((o) => o.kind === "requeued"));
    const [dead] = await takeMessages(ctx.broker, ctx.topo.deadLetterQueue, 1);
    assert.equal(dead!.properties.messageId, "hold-me");
    await consumer.stop();
    await ledger.close();
  });
});

// A copy the broker does not confirm (nacked: its queue full; or no confirm in confirmTimeoutMs)
// is published again while the original stays unacknowledged: acked before the confirm, the
// message would be lost with the copy.

/** The hops the ledger recorded a message as passed on at, and how: `0:1 retried`. */
async function hopsPassedOn(ledger: Ledger, key: string): Promise<string[]> {
  const { forwards } = await ledger.journey(key);
  return forwards.map((f) => `${f.hop.split("@")[0]} ${f.outcome}`);
}

/** A publisher on the test's own connection (not the one a fault is injected on). */
async function directPublisher(ctx: BrokerContext): Promise<ConfirmedPublisher> {
  return new ConfirmedPublisher(await ctx.broker.confirmChannel());
}

Deno.test("a retry copy the broker nacks (its tier full) is published again, the original held and acked only once the tier takes it", async () => {
  const topo = topology({ prefix: uniquePrefix("nacked-retry"), ...tiers });
  await withRefusingQueue(topo, topo.retryTiers[0]!.queue, async (ctx) => {
    const attempts: number[] = [];
    const { consumer, outcomes, ledger, publisher } = await start(ctx, {
      passOnDelay: (attempt) => (attempts.push(attempt), 20),
    });
    const order = newOrder({ quantity: 501 });
    await publishOrder(publisher, topo, order);
    await waitFor("the copy refused twice", () => attempts.length >= 2 || undefined);
    // Held: in flight, not settled, not requeued, not recorded as passed on.
    assert.equal(consumer.inFlight, 1);
    assert.equal(outcomes.outcomes.length, 0, "not settled");
    assert.equal(await ctx.broker.messageCount(topo.queue), 0);
    assert.deepEqual(await hopsPassedOn(ledger, order.refCode), []);
    await ctx.accept();
    await outcomes.until("the dead letter", (o) => o.kind === "dead-lettered");
    await consumer.drained();
    // Each hop passed on once: nothing lost, nothing twice.
    assert.deepEqual(outcomes.outcomes.filter(isFor(order.refCode)).map((o) => o.kind), [
      "retried",
      "retried",
      "retried",
      "dead-lettered",
    ]);
    assert.deepEqual(await hopsPassedOn(ledger, order.refCode), [
      "0:0 retried",
      "0:1 retried",
      "0:2 retried",
      "0:3 dead-lettered",
    ]);
    assert.equal(await ctx.broker.messageCount(topo.deadLetterQueue), 1);
    await consumer.stop();
    await ledger.close();
  });
});

Deno.test("a consumer that dies while the broker nacks its dead-letter copy leaves the original unacked: delivered again, it is dead-lettered", async () => {
  const topo = topology({ prefix: uniquePrefix("nacked-dead-letter"), ...tiers });
  await withRefusingQueue(topo, topo.deadLetterQueue, async (ctx) => {
    await using proxy = HoldingProxy.start(RABBITMQ_URL);
    const dying = await Broker.connect(proxy.url, { name: "test consumer dying while nacked" });
    let refusals = 0;
    const first = await start({ broker: dying, topo }, {
      passOnDelay: () => (refusals++, 20),
    });
    await publishRaw(await directPublisher(ctx), topo, "not json", { messageId: "nacked-dl" });
    await waitFor("the copy refused twice", () => refusals >= 2 || undefined);
    assert.equal(await ctx.broker.messageCount(topo.queue), 0, "held by the consumer");
    proxy.cut(); // the consumer's connection drops, as it would with its process
    // Had it been acked, it would be gone: the broker requeues only what was not.
    await waitFor("the original back in the work queue", async () => {
      return (await ctx.broker.messageCount(topo.queue)) === 1 || undefined;
    });
    assert.equal(await ctx.broker.messageCount(topo.deadLetterQueue), 0);
    await first.consumer.done.catch(() => {});
    await first.ledger.close();
    await dying.close();
    await ctx.accept();
    const second = await start(ctx);
    const [outcome] = await second.outcomes.until("the dead letter", isFor("nacked-dl"));
    assert.equal(outcome?.kind === "dead-lettered" && outcome.reason, "invalid");
    const [dead] = await takeMessages(ctx.broker, topo.deadLetterQueue, 1);
    assert.equal(dead!.properties.messageId, "nacked-dl");
    assert.equal(await ctx.broker.messageCount(topo.deadLetterQueue), 0, "one dead letter");
    await second.consumer.stop();
    await second.ledger.close();
  });
});

Deno.test("a retry copy whose confirm does not come in confirmTimeoutMs is published again, the original held and acked after the confirm", async () => {
  // Copies stay in the tier while the test looks at them.
  await withTopology("timeout-retry", { retryDelays: [60_000] }, async (ctx) => {
    const tier = ctx.topo.retryTiers[0]!.queue;
    await using proxy = HoldingProxy.start(RABBITMQ_URL);
    const behind = await Broker.connect(proxy.url, { name: "test consumer behind a proxy" });
    let holdAtNextPassOn = true;
    const attempts: number[] = [];
    const { consumer, outcomes, ledger } = await start({ broker: behind, topo: ctx.topo }, {
      confirmTimeoutMs: 200,
      passOnDelay: (attempt) => (attempts.push(attempt), 20),
      // Called as the consumer makes its copy: from then on the broker's answers (the copy's
      // confirm first) are held.
      now: () => {
        if (holdAtNextPassOn) proxy.hold();
        holdAtNextPassOn = false;
        return new Date();
      },
    });
    try {
      const order = newOrder({ quantity: 501 });
      await publishOrder(await directPublisher(ctx), ctx.topo, order);
      await waitFor("the copy in the tier", async () => {
        return (await ctx.broker.messageCount(tier)) === 1 || undefined;
      });
      assert.equal(proxy.holding, true);
      // Past the timeout: held, not settled, not requeued.
      await new Promise((resolve) => setTimeout(resolve, 600));
      assert.equal(consumer.inFlight, 1);
      assert.equal(outcomes.outcomes.length, 0, "not settled");
      assert.equal(await ctx.broker.messageCount(ctx.topo.queue), 0);
      proxy.release();
      const [retried] = await outcomes.until("the retry", isFor(order.refCode));
      assert.equal(retried?.kind === "retried" && retried.retry, 1);
      assert.deepEqual(attempts, [1], "published again once");
      assert.match(String(retried?.kind === "retried" && retried.error), /maximum quantity/);
      // The broker took both copies; they are one copy (same x-copy-id): the next consumer
      // drops the second.
      const copies = await takeMessages(ctx.broker, tier, 2);
      const ids = copies.map((c) => c.properties.headers![HEADER.copyId]);
      assert.equal(ids[0], ids[1]);
      assert.equal(await ctx.broker.messageCount(ctx.topo.queue), 0, "acked, not requeued");
      assert.deepEqual(await hopsPassedOn(ledger, order.refCode), ["0:0 retried"]);
    } finally {
      await consumer.stop();
      await ledger.close();
      await behind.close();
    }
  });
});

Deno.test("a consumer cut off while its dead-letter copy awaits a confirm leaves the original unacked: delivered again, it is dead-lettered", async () => {
  await withTopology("timeout-dead-letter", tiers, async (ctx) => {
    await using proxy = HoldingProxy.start(RABBITMQ_URL);
    const behind = await Broker.connect(proxy.url, { name: "test consumer cut off" });
    const first = await start({ broker: behind, topo: ctx.topo }, {
      confirmTimeoutMs: 200,
      now: () => (proxy.hold(), new Date()),
    });
    await publishRaw(await directPublisher(ctx), ctx.topo, "not json", { messageId: "cut-dl" });
    await waitFor("the dead-letter copy in the DLQ", async () => {
      return (await ctx.broker.messageCount(ctx.topo.deadLetterQueue)) === 1 || undefined;
    });
    await new Promise((resolve) => setTimeout(resolve, 600)); // past the confirm timeout
    assert.equal(first.consumer.inFlight, 1, "held");
    assert.equal(await ctx.broker.messageCount(ctx.topo.queue), 0);
    proxy.cut();
    // Had it been acked, it would be gone: the broker requeues only what was not.
    await waitFor("the original back in the work queue", async () => {
      return (await ctx.broker.messageCount(ctx.topo.queue)) === 1 || undefined;
    });
    await first.consumer.done.catch(() => {});
    await first.ledger.close();
    await behind.close();
    const second = await start(ctx);
    const [outcome] = await second.outcomes.until("the dead letter", isFor("cut-dl"));
    assert.equal(outcome?.kind === "dead-lettered" && outcome.reason, "invalid");
    // The first copy, whose confirm was lost, and this one: an extra dead letter, never a loss.
    // An original passed on again starts a new chain (copy_identity.ts), so they differ.
    const letters = await takeMessages(ctx.broker, ctx.topo.deadLetterQueue, 2);
    assert.deepEqual(letters.map((m) => m.properties.messageId), ["cut-dl", "cut-dl"]);
    const ids = letters.map((m) => String(m.properties.headers![HEADER.copyId]));
    assert.ok(ids.every((id) => /^c:[0-9a-f]{32}\/0:0$/.test(id)), ids.join(", "));
    await second.consumer.stop();
    await second.ledger.close();
  });
});

Deno.test("stop() lets in-flight deliveries finish and leaves nothing unacked", async () => {
  await withTopology("shutdown", tiers, async (ctx) => {
    // Commits held until stop() has been called: the deliveries in flight then can only be
    // finished (created and acked) by a stop that waits, or abandoned (requeued) by one that
    // does not.
    const ledger = new ControlledLedger(
      await SqliteLedger.open(":memory:", { instanceId: "shutdown" }),
    );
    const { consumer, outcomes, publisher } = await startConsumer(ctx, policy, {
      ledger,
      prefetch: 10,
    });
    ledger.hold();
    const orders: Order[] = Array.from({ length: 20 }, () => newOrder({ quantity: 5 }));
    await Promise.all(orders.map((o) => publishOrder(publisher, ctx.topo, o)));
    await ledger.untilHeld(1);
    await waitFor("the deliveries the prefetch allows", () => {
      return consumer.inFlight > 0 && consumer.inFlight === consumer.deliveries || undefined;
    });
    let stopped = false;
    const stopping = consumer.stop(10_000).then(() => (stopped = true));
    // Once the broker no longer sends it anything, the consumer still waits for its work.
    await waitFor("the consumer cancelled", async () => {
      const channel = await ctx.broker.channel();
      const { consumerCount } = await channel.checkQueue(ctx.topo.queue);
      await channel.close();
      return consumerCount === 0 || undefined;
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(stopped, false, "stop() returned with deliveries in flight");
    assert.equal(outcomes.outcomes.length, 0, "nothing settled while the ledger was held");
    const inFlight = consumer.deliveries;
    ledger.release();
    await stopping;

    assert.ok(inFlight > 0 && inFlight < orders.length, `${inFlight} in flight`);
    assert.equal(outcomes.outcomes.length, inFlight);
    assert.ok(outcomes.outcomes.every((o) => o.kind === "created"), JSON.stringify(outcomes));
    assert.equal(await ledger.countOrders(), inFlight);
    // Acked before the channel closed: none went back to the queue. What waits there was never
    // delivered.
    assert.equal(await ctx.broker.messageCount(ctx.topo.queue), orders.length - inFlight);
    const rest = await takeMessages(ctx.broker, ctx.topo.queue, orders.length - inFlight);
    assert.deepEqual(rest.filter((m) => m.fields.redelivered), [], "requeued deliveries");
    const created = new Set(outcomes.outcomes.map((o) => "refCode" in o ? o.refCode : ""));
    assert.deepEqual(rest.filter((m) => created.has(String(m.properties.messageId))), []);
    await ledger.close();
  });
});

Deno.test("drained() resolves once the work queue and the retry tiers are empty", async () => {
  await withTopology("drain", tiers, async (ctx) => {
    const { consumer, outcomes, ledger, publisher } = await start(ctx);
    await publishOrder(publisher, ctx.topo, newOrder({ quantity: 501 }));
    await publishOrder(publisher, ctx.topo, newOrder({ quantity: 5 }));
    await outcomes.until("first outcome", () => true);
    await consumer.drained();
    assert.equal(outcomes.outcomes.filter((o) => o.kind === "dead-lettered").length, 1);
    assert.equal(outcomes.outcomes.filter((o) => o.kind === "created").length, 1);
    await consumer.stop();
    await ledger.close();
  });
});

Deno.test("two copies of one retry processed at once become one dead letter and one skip", async () => {
  await withTopology("twin-copies", tiers, async (ctx) => {
    const { consumer, outcomes, ledger, publisher } = await start(ctx, { prefetch: 10 });
    const order = newOrder({ quantity: 900 });
    // A retry copy published twice (its first confirm was lost): same message id, same hop,
    // same x-copy-id.
    const copy = {
      messageId: order.refCode,
      headers: { [HEADER.retryCount]: 3, [HEADER.copyId]: "c:twin" },
    };
    await Promise.all([
      publishRaw(publisher, ctx.topo, encodeOrder(order), copy),
      publishRaw(publisher, ctx.topo, encodeOrder(order), copy),
    ]);
    const settled = await outcomes.until("both copies", isFor(order.refCode), 2);
    assert.deepEqual(settled.map((o) => o.kind).sort(), ["dead-lettered", "skipped"]);
    await consumer.stop();
    assert.equal(await ctx.broker.messageCount(ctx.topo.deadLetterQueue), 1);
    await ledger.close();
  });
});

// A failing message must end in the ledger, a retry tier or the DLQ, always: the record that a
// hop was passed on may drop only a copy of that very message, never a later one that shares its
// key and hop.

Deno.test("a message sent again after its dead letter was purged is dead-lettered again, not dropped", async () => {
  await withTopology("sent-again", tiers, async (ctx) => {
    const { consumer, outcomes, ledger, publisher } = await start(ctx);
    const resend = () => publishRaw(publisher, ctx.topo, "not json", { messageId: "again-1" });
    await resend();
    await outcomes.until("the first dead letter", (o) => o.kind === "dead-lettered");
    await takeMessages(ctx.broker, ctx.topo.deadLetterQueue, 1); // an operator purges it
    await resend(); // the producer sends the same message again
    const both = await outcomes.until("the second", isFor("again-1"), 2);
    assert.deepEqual(both.map((o) => o.kind), ["dead-lettered", "dead-lettered"]);
    assert.equal(await ctx.broker.messageCount(ctx.topo.deadLetterQueue), 1);
    await consumer.stop();
    await ledger.close();
  });
});

Deno.test("a producer that reuses a message id for another failing order gets both dead-lettered", async () => {
  await withTopology("reused-id", tiers, async (ctx) => {
    const { consumer, outcomes, ledger, publisher } = await start(ctx);
    await publishRaw(publisher, ctx.topo, '{"RefCode":', { messageId: "reused" });
    await outcomes.until("the first", isFor("reused"));
    await publishRaw(publisher, ctx.topo, '{"ColorCode":', { messageId: "reused" });
    const both = await outcomes.until("the second", isFor("reused"), 2);
    assert.deepEqual(both.map((o) => o.kind), ["dead-lettered", "dead-lettered"]);
    const letters = await takeMessages(ctx.broker, ctx.topo.deadLetterQueue, 2);
    assert.deepEqual(letters.map((m) => m.content.toString()).sort(), [
      '{"ColorCode":',
      '{"RefCode":',
    ]);
    await consumer.stop();
    await ledger.close();
  });
});

Deno.test("the Go consumer's retry copy of a replayed order is retried, though an earlier life passed on the same hop", async () => {
  await withTopology("go-copy-after-replay", tiers, async (ctx) => {
    const { consumer, outcomes, ledger, publisher } = await start(ctx);
    const order = newOrder({ quantity: 900 });
    // The Go OrdemDeProducao's retry copy: no message id, only x-retry-count and x-delay (our
    // x-replay-count and the rest dropped). Its first life was retried by us (hop 0:1 recorded);
    // after a dead letter and a replay, the Go consumer makes the very same copy again.
    const goCopy = () =>
      publishRaw(publisher, ctx.topo, encodeOrder(order), {
        headers: { [HEADER.retryCount]: 1, [HEADER.delay]: 5000 },
      });
    await goCopy();
    await outcomes.until("its first life", isFor(order.refCode));
    await goCopy();
    const lives = await outcomes.until("its second life", isFor(order.refCode), 2);
    assert.deepEqual(lives.map((o) => o.kind), ["retried", "retried"]);
    await consumer.stop();
    await ledger.close();
  });
});

Deno.test("an over-limit order sent again, byte for byte, after its dead letter was purged goes through every retry again", async () => {
  await withTopology("resent-retried", tiers, async (ctx) => {
    const { consumer, outcomes, ledger, publisher } = await start(ctx);
    const order = newOrder({ quantity: 900 });
    // A Go-style producer: no timestamp, the same message id and body both times.
    const send = () =>
      publishRaw(publisher, ctx.topo, encodeOrder(order), { messageId: order.refCode });
    await send();
    await outcomes.until("the first dead letter", (o) => o.kind === "dead-lettered");
    await takeMessages(ctx.broker, ctx.topo.deadLetterQueue, 1); // an operator purges it
    await send();
    await outcomes.until("the second dead letter", (o) => o.kind === "dead-lettered", 2);
    const kinds = outcomes.outcomes.filter(isFor(order.refCode)).map((o) => o.kind);
    assert.deepEqual(kinds, [
      ...["retried", "retried", "retried", "dead-lettered"],
      ...["retried", "retried", "retried", "dead-lettered"],
    ]);
    assert.equal(await ctx.broker.messageCount(ctx.topo.deadLetterQueue), 1);
    await consumer.stop();
    await ledger.close();
  });
});

Deno.test("stop() returns within its timeout when the broker stops answering", async () => {
  await withTopology("stop-silent", tiers, async (ctx) => {
    await using proxy = HoldingProxy.start(RABBITMQ_URL);
    const behind = await Broker.connect(proxy.url, { name: "test consumer stopping, unheard" });
    const { consumer, ledger, outcomes } = await start({ broker: behind, topo: ctx.topo });
    try {
      const order = newOrder({ quantity: 5 });
      await publishOrder(await directPublisher(ctx), ctx.topo, order);
      await outcomes.until("the order", isFor(order.refCode));
      proxy.hold(); // the link goes silent: no cancel-ok, no close-ok comes back
      const started = performance.now();
      await within(consumer.stop(300), 5_000, "stop() on a silent link");
      assert.ok(performance.now() - started < 2_000, "stop() waited past its timeout");
    } finally {
      proxy.cut();
      await ledger.close();
      await behind.close().catch(() => {});
    }
  });
});

Deno.test("a consumer whose start fails stops following the operator's pause", async () => {
  await withTopology("start-fails", tiers, async (ctx) => {
    await using ledger = await SqliteLedger.open(":memory:", { instanceId: "t" });
    const listeners = new Set<unknown>();
    const pause: PauseSource = {
      paused: false,
      onChange(listener) {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
    };
    // A work queue that is not there: the broker refuses the consume.
    const missing = { ...ctx.topo, queue: `${ctx.topo.prefix}not-there` };
    const error = await OrderConsumer.start({
      broker: ctx.broker,
      topology: missing,
      ledger,
      policy,
      maxQuantity: 500,
      pause,
    }).then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof Error, "the start failed");
    assert.equal(listeners.size, 0, "nothing left following the pause");
  });
});

/**
 * Waits until `event` happens or 500 ms have passed: the window a stop that does not wait for a
 * held cancel needs to reach what comes after it (it gets there within microtasks, or a broker's
 * round trip).
 */
async function eventOrWindow(event: Promise<void>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([event, new Promise((r) => (timer = setTimeout(r, 500)))]);
  clearTimeout(timer);
}

/**
 * Wraps the next channel the broker opens: its `cancel` waits for `gate`, and `events` records the
 * cancel sent, the cancel done, each nack that requeues and the close, in order.
 */
function gateNextChannel(broker: Broker, gate: Promise<void>) {
  const events: string[] = [];
  const closeCalled = Promise.withResolvers<void>();
  const requeued = Promise.withResolvers<void>();
  const open = broker.channel.bind(broker);
  broker.channel = async () => {
    broker.channel = open;
    const channel = await open();
    const cancel = channel.cancel.bind(channel);
    const close = channel.close.bind(channel);
    const nack = channel.nack.bind(channel);
    channel.cancel = async (tag: string) => {
      events.push("cancel sent");
      await gate;
      const ok = await cancel(tag);
      events.push("cancelled");
      return ok;
    };
    channel.nack = (message, allUpTo, requeue) => {
      if (requeue !== false) {
        events.push("requeue");
        requeued.resolve();
      }
      return nack(message, allUpTo, requeue);
    };
    channel.close = () => {
      events.push("close");
      closeCalled.resolve();
      return close();
    };
    return channel;
  };
  return { events, closeCalled: closeCalled.promise, requeued: requeued.promise };
}

Deno.test("two stops at once: the second waits for the first one's cancel before it closes the channel", async () => {
  await withTopology("stop-twice", tiers, async (ctx) => {
    const cancelGate = Promise.withResolvers<void>();
    const gated = gateNextChannel(ctx.broker, cancelGate.promise);
    const { consumer, ledger } = await start(ctx);
    try {
      const first = consumer.stop(10_000);
      const second = consumer.stop(10_000);
      await eventOrWindow(gated.closeCalled);
      cancelGate.resolve();
      await within(Promise.all([first, second]), 10_000, "both stops");
      assert.equal(gated.events.indexOf("cancelled"), 1, gated.events.join(", "));
      assert.ok(gated.events.indexOf("close") > 1, gated.events.join(", "));
    } finally {
      cancelGate.resolve();
      await consumer.stop();
      await ledger.close();
    }
  });
});

Deno.test("a stop after the consumer ended on a failed declare waits for the cancel that ending sent before it closes the channel", async () => {
  await withTopology("declare-fails-stop", tiers, async (ctx) => {
    // The consumer's channel, its cancel held until the test lets it go, and the order of events.
    const cancelGate = Promise.withResolvers<void>();
    const { events, closeCalled } = gateNextChannel(ctx.broker, cancelGate.promise);
    const declared = Promise.withResolvers<void>();
    const { consumer, ledger } = await start(ctx, { topologyDeclared: declared.promise });
    try {
      declared.reject(new FatalError("the retry queue changed", { code: "topology_changed" }));
      await within(consumer.done.catch(() => {}), 5_000, "the consumer to end");
      const stopping = consumer.stop(10_000);
      await eventOrWindow(closeCalled);
      cancelGate.resolve();
      await within(stopping, 10_000, "the stop");
      assert.deepEqual(events, ["cancel sent", "cancelled", "close"]);
    } finally {
      cancelGate.resolve();
      await consumer.stop();
      await ledger.close();
    }
  });
});

Deno.test("a stop whose cancel goes out late requeues what it gives up only after the cancel: the broker does not deliver it again to the stopping consumer", async () => {
  await withTopology("stop-requeue-after-cancel", tiers, async (ctx) => {
    // The DLQ unbound: the invalid message's dead letter is returned, and published again while
    // the consumer runs; once it stops, the original is given up and requeued.
    const admin = await ctx.broker.channel();
    await admin.unbindQueue(ctx.topo.deadLetterQueue, ctx.topo.deadLetterExchange, "create");
    await admin.close();
    // The cancel held, as a prefetch switch under way would hold it (lib/intake.ts: cancel,
    // prefetch, consume, one after the other; a stop's cancel waits for the consume).
    const cancelGate = Promise.withResolvers<void>();
    const { events, requeued } = gateNextChannel(ctx.broker, cancelGate.promise);
    const refused = Promise.withResolvers<void>();
    const { consumer, outcomes, ledger, publisher } = await start(ctx, {
      passOnDelay: (attempt) => (attempt === 2 && refused.resolve(), 20),
    });
    try {
      await publishRaw(publisher, ctx.topo, "not json", { messageId: "given-up" });
      await within(refused.promise, 10_000, "the dead letter refused twice");
      const stopping = consumer.stop(10_000);
      // A requeue sent now reaches the broker while this consumer still consumes: it would be
      // delivered straight back, a delivery spent (a quorum queue's delivery limit).
      await eventOrWindow(requeued);
      cancelGate.resolve();
      await within(stopping, 10_000, "the stop");
      assert.deepEqual(events, ["cancel sent", "cancelled", "requeue", "close"]);
      assert.equal(consumer.deliveries, 1, "delivered again to the stopping consumer");
      assert.deepEqual(outcomes.outcomes.map((o) => o.kind), ["requeued"]);
    } finally {
      cancelGate.resolve();
      await consumer.stop();
      await ledger.close();
    }
    const [back] = await takeMessages(ctx.broker, ctx.topo.queue, 1);
    assert.equal(back!.properties.messageId, "given-up");
    assert.equal(await ctx.broker.messageCount(ctx.topo.deadLetterQueue), 0);
  });
});

Deno.test("an order put back for a ledger outage is requeued once the breaker's cancel is done: never delivered again to the paused consumer", async () => {
  await withTopology("put-back-after-cancel", tiers, async (ctx) => {
    const cancelGate = Promise.withResolvers<void>();
    const { events, requeued } = gateNextChannel(ctx.broker, cancelGate.promise);
    const ledger = new ControlledLedger(
      await SqliteLedger.open(":memory:", { instanceId: "put-back" }),
    );
    const { consumer, outcomes, publisher } = await startConsumer(ctx, policy, {
      ledger,
      probeDelay: () => 50,
    });
    try {
      ledger.away = true;
      const order = newOrder({ quantity: 5 });
      await publishOrder(publisher, ctx.topo, order);
      await waitFor("paused for the ledger", () => consumer.paused || undefined);
      // A nack sent before the broker has the cancel brings the order straight back.
      await eventOrWindow(requeued);
      cancelGate.resolve();
      await outcomes.until("put back", (o) => o.kind === "requeued");
      assert.deepEqual(events, ["cancel sent", "cancelled", "requeue"]);
      assert.equal(consumer.deliveries, 1, "delivered again to the paused consumer");
      assert.equal(await ctx.broker.messageCount(ctx.topo.queue), 1);
      ledger.away = false;
      await outcomes.until("created", (o) => o.kind === "created" && o.refCode === order.refCode);
      assert.deepEqual(outcomes.outcomes.map((o) => o.kind), ["requeued", "created"]);
    } finally {
      cancelGate.resolve();
      ledger.away = false;
      await consumer.stop();
      await ledger.close();
    }
  });
});

Deno.test("a consumer whose copies' channel the broker closed stops taking deliveries before it requeues: what it gives back is not delivered to it again", async () => {
  await withTopology("copies-channel-lost", tiers, async (ctx) => {
    // The dead-letter exchange gone: publishing the dead letter of an invalid message closes the
    // copies' channel (404), and the consumer ends on it while its own channel is still open.
    const admin = await ctx.broker.channel();
    await admin.deleteExchange(ctx.topo.deadLetterExchange);
    await admin.close();
    // Prefetch 1: no prefetch grows (whose cancel would stop the consumption by chance).
    const { consumer, outcomes, ledger, publisher } = await start(ctx, { prefetch: 1 });
    try {
      await publishRaw(publisher, ctx.topo, "not json", { messageId: "copies-lost" });
      await within(consumer.done.catch(() => {}), 10_000, "the consumer to end");
      await outcomes.until("given back", (o) => o.kind === "requeued");
      // Given back while it still consumed, it comes straight back and is given back again.
      await eventOrWindow(
        outcomes.until("given back twice", (o) => o.kind === "requeued", 2, 500)
          .then(() => {}, () => {}),
      );
      await within(consumer.stop(5_000), 10_000, "the stop");
      assert.equal(consumer.deliveries, 1, "delivered again to the consumer that had ended");
      assert.deepEqual(outcomes.outcomes.map((o) => o.kind), ["requeued"]);
    } finally {
      await consumer.stop();
      await ledger.close();
    }
    const [back] = await takeMessages(ctx.broker, ctx.topo.queue, 1);
    assert.equal(back!.properties.messageId, "copies-lost");
  });
});

Deno.test("a v1.1 order with a field this reader does not know is created, the field kept with its production order", async () => {
  await withTopology("extra-fields", tiers, async (ctx) => {
    const { consumer, outcomes, ledger } = await start(ctx);
    try {
      const order = newOrder({ quantity: 5 });
      const body = JSON.parse(new TextDecoder().decode(encodeOrder(order)));
      await publishRaw(
        await directPublisher(ctx),
        ctx.topo,
        JSON.stringify({ ...body, Plant: "Jundiaí", Priority: 2 }),
        { messageId: order.refCode, headers: { [MESSAGE_VERSION_HEADER]: "1.1" } },
      );
      const [outcome] = await outcomes.until("the order", isFor(order.refCode));
      assert.equal(outcome?.kind, "created");
      const stored = await ledger.findOrder(order.refCode);
      assert.deepEqual(stored?.extra, { Plant: "Jundiaí", Priority: 2 });
    } finally {
      await consumer.stop();
      await ledger.close();
    }
  });
});

Deno.test("a consumer whose topology's declare beside the work fails ends on that error; the failing order it held goes back to the queue once, no copy published", async () => {
  await withTopology("declare-fails", tiers, async (ctx) => {
    const declared = Promise.withResolvers<void>();
    const { consumer, outcomes, publisher, ledger } = await start(ctx, {
      topologyDeclared: declared.promise,
    });
    try {
      const order = newOrder({ quantity: 900 });
      await publishOrder(publisher, ctx.topo, order);
      // Its retry copy waits for the declare.
      await waitFor("the order in flight", () => consumer.inFlight === 1 || undefined);
      const changed = new FatalError("the retry queue exists with other settings", {
        code: "topology_changed",
      });
      declared.reject(changed);
      const ended = await within(
        consumer.done.then(() => "resolved", (error) => error),
        5_000,
        "the consumer to end",
      );
      assert.equal(ended, changed);
      await waitFor("the order settled", () => consumer.inFlight === 0 || undefined);
      assert.deepEqual(outcomes.outcomes.filter(isFor(order.refCode)).map((o) => o.kind), [
        "requeued",
      ]);
    } finally {
      await consumer.stop();
      await ledger.close();
    }
    assert.equal(await ctx.broker.messageCount(ctx.topo.queue), 1);
    for (const tier of ctx.topo.retryTiers) {
      assert.equal(await ctx.broker.messageCount(tier.queue), 0, `a copy in ${tier.queue}`);
    }
  });
});
