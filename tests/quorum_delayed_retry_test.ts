/**
 * RabbitMQ 4.3's quorum-queue delayed retry (`x-delayed-retry-type`, `-min`, `-max`), as the 4.3
 * node does it: why it is not a retry backend here (docs/delayed-retry.md). Each test shows one
 * fact the verdict rests on, with amqplib through {@linkcode Broker}: the delay grows linearly with
 * the broker's delivery count; a consumer process that crashes, or a channel that closes, with a
 * delivery unacked counts as a failed try and waits the delay; `basic.nack` with requeue is not
 * counted at all; past the limit the broker dead-letters the message itself, unexplained; a delay
 * cannot be set per message; a passive declare does not count a message while it waits.
 *
 * Timing: the broker delays a requeued message by a timer of its own. The probe behind these tests
 * (40-odd reject and nack gaps on loopback) saw each within +6 ms of min × count; the tests allow
 * ±150 ms, half of the 300 ms step between one count's delay and the next, the widest band that
 * still tells two counts apart, so a loaded CI machine does not fail them.
 */

import { strict as assert } from "node:assert";
import { Buffer } from "node:buffer";
import type { Channel, ConsumeMessage } from "amqplib";
import { Broker } from "../lib/broker.ts";
import { HEADER } from "../lib/retry_headers.ts";
import { uniquePrefix, waitFor } from "../testing/broker.ts";
import { connectTo, otherBroker } from "../testing/other_brokers.ts";

const TARGET = otherBroker("4_3");

/** The delay after a requeue counted once; each count adds as much, up to {@linkcode MAX_MS}. */
const MIN_MS = 300;
/** The longest delay. */
const MAX_MS = 900;
/** How far a measured gap may be from the expected one: half a step (see the module doc). */
const TOLERANCE_MS = 150;

/** A message as it arrived, and when (`performance.now()`). */
interface Arrival {
  readonly message: ConsumeMessage;
  readonly at: number;
}

/** The deliveries of one consumer, in order, for a test to take one at a time with a deadline. */
class Arrivals {
  readonly #waiting: Arrival[] = [];

  /** Pass this to `channel.consume`. */
  readonly push = (message: ConsumeMessage | null): void => {
    if (message !== null) this.#waiting.push({ message, at: performance.now() });
  };

  /** The next delivery; rejects after `timeoutMs`. */
  next(what: string, timeoutMs = 5_000): Promise<Arrival> {
    return waitFor(what, () => this.#waiting.shift(), timeoutMs);
  }

  /** How many deliveries arrived and were not taken yet. */
  get pending(): number {
    return this.#waiting.length;
  }
}

/** What a test gets: the 4.3 node, and ways to make things on it that are deleted afterwards. */
interface Context {
  /** A connection for declaring, publishing and looking (never for the consumer under test). */
  readonly admin: Broker;
  /** Declares a quorum queue named after the test with these (delayed-retry) arguments. */
  queue(suffix: string, args: Record<string, unknown>): Promise<string>;
  /** Declares a fanout dead-letter exchange and a quorum queue bound to it. */
  deadLetters(suffix: string): Promise<{ exchange: string; queue: string }>;
  /** Publishes one persistent message to `queue`, confirmed. */
  publish(queue: string, messageId: string, headers?: Record<string, unknown>): Promise<void>;
  /** A new connection, for a consumer the test may close or drop; closed afterwards. */
  connect(): Promise<Broker>;
}

/**
 * Connects to the 4.3 node (failing when it cannot), checks that it is 4.3.x, runs `fn`, then
 * deletes what `fn` declared and closes every connection, whatever happened.
 */
async function onRabbitMq43(name: string, fn: (ctx: Context) => Promise<void>): Promise<void> {
  const admin = await connectTo(TARGET, `test ${name}`);
  const prefix = uniquePrefix(name);
  const queues: string[] = [];
  const exchanges: string[] = [];
  const connections: Broker[] = [];
  const channel = await admin.confirmChannel();
  const ctx: Context = {
    admin,
    async queue(suffix, args) {
      const queue = `${prefix}${suffix}`;
      queues.push(queue);
      await channel.assertQueue(queue, {
        durable: true,
        arguments: { "x-queue-type": "quorum", ...args },
      });
      return queue;
    },
    async deadLetters(suffix) {
      const exchange = `${prefix}${suffix}.dlx`;
      exchanges.push(exchange);
      await channel.assertExchange(exchange, "fanout", { durable: true });
      const queue = await ctx.queue(`${suffix}.dlq`, {});
      await channel.bindQueue(queue, exchange, "");
      return { exchange, queue };
    },
    async publish(queue, messageId, headers = {}) {
      channel.sendToQueue(queue, Buffer.from(JSON.stringify({ RefCode: messageId })), {
        persistent: true,
        messageId,
        contentType: "application/json",
        headers,
      });
      await channel.waitForConfirms();
    },
    async connect() {
      const broker = await Broker.connect(TARGET.url, { name: `test ${name} consumer` });
      connections.push(broker);
      return broker;
    },
  };
  try {
    assert.match(
      admin.serverVersion,
      /^4\.3\./,
      `RABBITMQ_URL_4_3 (${admin.safeUrl}) is RabbitMQ ${admin.serverVersion}, not 4.3.x`,
    );
    await fn(ctx);
  } finally {
    for (const broker of connections) await broker.close().catch(() => {});
    for (const queue of queues) await channel.deleteQueue(queue).catch(() => {});
    for (const exchange of exchanges) await channel.deleteExchange(exchange).catch(() => {});
    await channel.close().catch(() => {});
    await admin.close();
  }
}

/** The broker's count of failed tries on a delivery (`x-delivery-count`), if it set one. */
function deliveryCount(message: ConsumeMessage): unknown {
  return message.properties.headers?.["x-delivery-count"];
}

/** Asserts that `gap` ms is `expected` ms give or take {@linkcode TOLERANCE_MS}. */
function assertGap(gap: number, expected: number, what: string): void {
  assert.ok(
    Math.abs(gap - expected) <= TOLERANCE_MS,
    `${what}: came back after ${gap.toFixed(0)} ms, expected ${expected} ± ${TOLERANCE_MS} ms`,
  );
}

/** Starts consuming `queue` on a new channel of `broker`, one unacked delivery at a time. */
async function consume(
  broker: Broker,
  queue: string,
): Promise<{ channel: Channel; arrivals: Arrivals }> {
  const channel = await broker.channel();
  await channel.prefetch(1);
  const arrivals = new Arrivals();
  await channel.consume(queue, arrivals.push, { noAck: false });
  return { channel, arrivals };
}

const DELAYED_ALL = {
  "x-delayed-retry-type": "all",
  "x-delayed-retry-min": MIN_MS,
  "x-delayed-retry-max": MAX_MS,
} as const;

Deno.test("on RabbitMQ 4.3 a quorum queue's delayed retry waits min × x-delivery-count after each reject(requeue), capped at max, and counts 1, 2, 3, 4", async () => {
  await onRabbitMq43("qdr-reject", async (ctx) => {
    const queue = await ctx.queue("work", { ...DELAYED_ALL, "x-delivery-limit": 10 });
    await ctx.publish(queue, "order-1");
    const { channel, arrivals } = await consume(await ctx.connect(), queue);

    let arrival = await arrivals.next("the first delivery");
    assert.equal(deliveryCount(arrival.message), undefined, "a first delivery has no count");
    const expected = [300, 600, 900, 900]; // min × count, the last capped at max
    for (const [i, delay] of expected.entries()) {
      channel.reject(arrival.message, true);
      const rejectedAt = performance.now();
      arrival = await arrivals.next(`redelivery ${i + 1}`);
      assertGap(arrival.at - rejectedAt, delay, `after reject ${i + 1}`);
      assert.equal(deliveryCount(arrival.message), i + 1, `x-delivery-count after reject ${i + 1}`);
      assert.equal(arrival.message.fields.redelivered, true);
    }
    channel.ack(arrival.message);
  });
});

/**
 * A consumer process that crashes (exits at once, no close handshake, its socket closed by the
 * kernel) when the first delivery of `queue` reaches it; resolves, once it has exited, with the
 * `x-delivery-count` it saw (null for none).
 */
async function crashOnDelivery(queue: string): Promise<unknown> {
  const code = `
    import amqp from "npm:amqplib@2.3.1";
    const connection = await amqp.connect(Deno.env.get("AMQP_URL"));
    const channel = await connection.createChannel();
    await channel.prefetch(1);
    await channel.consume(Deno.env.get("QUEUE"), (message) => {
      if (message === null) return;
      console.log(JSON.stringify(message.properties.headers?.["x-delivery-count"] ?? null));
      Deno.exit(1);
    });
    setTimeout(() => Deno.exit(2), 15_000);
  `;
  const { code: exitCode, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", "--no-lock", code],
    env: { AMQP_URL: TARGET.url, QUEUE: queue },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(20_000),
  }).output();
  const text = new TextDecoder().decode(stdout).trim();
  assert.equal(
    exitCode,
    1,
    `the consumer did not crash on a delivery: ${text}
${new TextDecoder().decode(stderr)}`,
  );
  return JSON.parse(text);
}

Deno.test("on RabbitMQ 4.3 a delivery left unacked by a consumer process that crashes, or by a channel that closes, counts as a failed try and waits the delay: an infrastructure failure spends a retry", async () => {
  await onRabbitMq43("qdr-crash", async (ctx) => {
    const queue = await ctx.queue("work", { ...DELAYED_ALL, "x-delivery-limit": 10 });
    await ctx.publish(queue, "order-2");

    // A consumer process crashes holding the first delivery.
    assert.equal(await crashOnDelivery(queue), null, "the crashed consumer had the first delivery");
    const crashedAt = performance.now();
    const consumer = await ctx.connect();
    const first = await consume(consumer, queue);
    const afterCrash = await first.arrivals.next("the delivery after the crash");
    // Measured from when the parent saw the exit, a little after the socket closed: never more.
    assertGap(afterCrash.at - crashedAt, MIN_MS, "after the crash");
    assert.equal(deliveryCount(afterCrash.message), 1, "the crash counted as a try");

    // A channel closes (a channel error, a consumer shut down) with the delivery unacked.
    const closedAt = performance.now();
    await first.channel.close();
    const second = await consume(consumer, queue);
    const afterClose = await second.arrivals.next("the delivery after the channel closed");
    assertGap(afterClose.at - closedAt, 2 * MIN_MS, "after the channel closed");
    assert.equal(deliveryCount(afterClose.message), 2, "the closed channel counted as a try");
    second.channel.ack(afterClose.message);
  });
});

Deno.test("on RabbitMQ 4.3 nack(requeue) is not counted: past a delivery limit of 1 the message comes back a fourth time, never dead-lettered, each time after the minimum delay", async () => {
  await onRabbitMq43("qdr-nack", async (ctx) => {
    const dead = await ctx.deadLetters("nack");
    const queue = await ctx.queue("work", {
      ...DELAYED_ALL,
      "x-delivery-limit": 1,
      "x-dead-letter-exchange": dead.exchange,
      "x-dead-letter-strategy": "at-least-once",
      "x-overflow": "reject-publish",
    });
    await ctx.publish(queue, "order-3");
    const { channel, arrivals } = await consume(await ctx.connect(), queue);

    let arrival = await arrivals.next("the first delivery");
    for (let i = 1; i <= 3; i++) {
      channel.nack(arrival.message, false, true);
      const nackedAt = performance.now();
      arrival = await arrivals.next(`delivery ${i + 1} after nack ${i}`);
      // Never counted, so never longer than min × 1.
      assertGap(arrival.at - nackedAt, MIN_MS, `after nack ${i}`);
      assert.equal(deliveryCount(arrival.message), undefined, `x-delivery-count after nack ${i}`);
      assert.equal(arrival.message.properties.headers?.["x-acquired-count"], i);
    }
    channel.ack(arrival.message);
    assert.equal(await ctx.admin.messageCount(dead.queue), 0, "nothing was dead-lettered");
  });
});

/**
 * Takes `messageId` through a queue with a delivery limit of 1: rejected once (a business
 * failure), then its last try ends with `lastTry`; resolves with the broker's dead letter.
 */
async function deadLetterAfter(
  ctx: Context,
  lastTry: "reject" | "channel close",
): Promise<ConsumeMessage> {
  const suffix = lastTry === "reject" ? "rejected" : "crashed";
  const dead = await ctx.deadLetters(suffix);
  const queue = await ctx.queue(suffix, {
    ...DELAYED_ALL,
    "x-delivery-limit": 1,
    "x-dead-letter-exchange": dead.exchange,
    "x-dead-letter-strategy": "at-least-once",
    "x-overflow": "reject-publish",
  });
  await ctx.publish(queue, `order-${suffix}`, { "x-custom": "kept" });
  const consumer = await ctx.connect();
  const { channel, arrivals } = await consume(consumer, queue);
  const first = await arrivals.next(`the first delivery (${suffix})`);
  channel.reject(first.message, true);
  const last = await arrivals.next(`the last try (${suffix})`);
  assert.equal(deliveryCount(last.message), 1);
  if (lastTry === "reject") channel.reject(last.message, true);
  else await channel.close();

  const letters = await consume(ctx.admin, dead.queue);
  const letter = await letters.arrivals.next(`the dead letter (${suffix})`);
  letters.channel.ack(letter.message);
  await letters.channel.close();
  assert.equal(arrivals.pending, 0, `the message came back after its last try (${suffix})`);
  return letter.message;
}

Deno.test("on RabbitMQ 4.3 the broker's own dead letter past the delivery limit says only x-death reason delivery_limit, with none of our explanation headers, the same after a crash as after a business failure", async () => {
  await onRabbitMq43("qdr-dead", async (ctx) => {
    const [rejected, crashed] = await Promise.all([
      deadLetterAfter(ctx, "reject"),
      deadLetterAfter(ctx, "channel close"),
    ]);
    for (const [what, letter] of [["rejected", rejected], ["crashed", crashed]] as const) {
      const headers = letter.properties.headers ?? {};
      const deaths = letter.properties.headers?.["x-death"];
      assert.equal(deaths?.length, 1, `${what}: one x-death entry`);
      assert.equal(deaths?.[0]?.reason, "delivery_limit", `${what}: x-death reason`);
      assert.equal(headers["x-last-death-reason"], "delivery_limit", what);
      assert.equal(headers["x-delivery-count"], 2, `${what}: x-delivery-count`);
      assert.equal(headers["x-custom"], "kept", `${what}: the original headers ride along`);
      for (const ours of [HEADER.reason, HEADER.lastError, HEADER.retryCount]) {
        assert.ok(!(ours in headers), `${what}: the dead letter has ${ours}`);
      }
    }
    // Nothing tells the crash from the business failure: the same headers, the same values
    // (bar the queue names and time).
    const shape = (letter: ConsumeMessage) => {
      const headers = { ...letter.properties.headers };
      const death = letter.properties.headers?.["x-death"]?.[0];
      return {
        keys: Object.keys(headers).sort(),
        reason: death?.reason,
        count: death?.count,
        deliveryCount: headers["x-delivery-count"],
        acquiredCount: headers["x-acquired-count"],
      };
    };
    assert.deepEqual(shape(crashed), shape(rejected));
  });
});

Deno.test("on RabbitMQ 4.3 a delay cannot be set per message over AMQP 0.9.1: x-delay and x-opt-delivery-time headers are ignored and the queue's minimum applies", async () => {
  await onRabbitMq43("qdr-header", async (ctx) => {
    const queue = await ctx.queue("work", { ...DELAYED_ALL, "x-delivery-limit": 10 });
    await ctx.publish(queue, "order-5", {
      [HEADER.delay]: 5_000,
      "x-opt-delivery-time": Date.now() + 5_000,
      "x-delayed-retry-min": 5_000,
    });
    const { channel, arrivals } = await consume(await ctx.connect(), queue);
    const first = await arrivals.next("the first delivery");
    channel.reject(first.message, true);
    const rejectedAt = performance.now();
    const again = await arrivals.next("the redelivery");
    assertGap(again.at - rejectedAt, MIN_MS, "with 5 s asked for in the headers");
    channel.ack(again.message);
  });
});

Deno.test("on RabbitMQ 4.3 a passive declare's message count leaves out a message while it waits its delay", async () => {
  await onRabbitMq43("qdr-count", async (ctx) => {
    const delay = 2_000;
    const queue = await ctx.queue("work", {
      "x-delayed-retry-type": "all",
      "x-delayed-retry-min": delay,
      "x-delayed-retry-max": delay,
      "x-delivery-limit": 10,
    });
    await ctx.publish(queue, "waits");
    await ctx.publish(queue, "ready");
    const channel = await ctx.admin.confirmChannel();
    try {
      const waits = await waitFor(
        "the first message",
        async () => (await channel.get(queue)) || undefined,
      );
      assert.equal(waits.properties.messageId, "waits");
      channel.reject(waits, true);
      const rejectedAt = performance.now();
      // A publish confirmed after the reject, on the same channel: the queue applies the two in
      // the order they were sent, so by the confirm "waits" is back in the queue, waiting.
      channel.sendToQueue(queue, Buffer.from("{}"), { persistent: true, messageId: "after" });
      await channel.waitForConfirms();
      assert.equal((await channel.checkQueue(queue)).messageCount, 2, "ready and after only");
      const taken: string[] = [];
      for (let m = await channel.get(queue); m !== false; m = await channel.get(queue)) {
        taken.push(m.properties.messageId);
        channel.ack(m);
      }
      assert.deepEqual(taken, ["ready", "after"]);
      assert.equal((await channel.checkQueue(queue)).messageCount, 0, "an empty queue, it says");
      const countedAt = performance.now() - rejectedAt;
      assert.ok(countedAt < delay - TOLERANCE_MS, `counted ${countedAt.toFixed(0)} ms after`);
      // Yet the message was there all along: it comes back with nothing published.
      const back = await waitFor(
        "the delayed message",
        async () => (await channel.get(queue)) || undefined,
      );
      assert.equal(back.properties.messageId, "waits");
      assert.ok(performance.now() - rejectedAt >= delay - TOLERANCE_MS);
      channel.ack(back);
    } finally {
      await channel.close().catch(() => {});
    }
  });
});
