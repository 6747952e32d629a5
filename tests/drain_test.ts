// What --drain waits for through the consumer (retries scheduled in the delayed exchange) is in
// backend_switch_test.ts; here waitUntilDrained() itself, against the real broker.
import { strict as assert } from "node:assert";
import { Buffer } from "node:buffer";
import type { Channel } from "amqplib";
import { Broker } from "../lib/broker.ts";
import { type DrainWatch, waitUntilDrained } from "../lib/drain.ts";
import { REPLY_CODE, replyCode } from "../lib/errors.ts";
import { RABBITMQ_URL, waitFor, within } from "../testing/broker.ts";

/** Looks taken 20 ms apart: the checks the tests count, sooner than the default 100 ms. */
const INTERVAL_MS = 20;

/** What a test gets: a connection, a queue of its own on it (deleted afterwards), and a channel. */
interface QueueContext {
  readonly broker: Broker;
  readonly queue: string;
  readonly channel: Channel;
  /** Each channel opened through `broker.channel()` while the test ran, and whether it closed. */
  readonly channels: { closed: boolean }[];
}

/** Connects, declares a queue no other test uses, runs `fn`, then deletes the queue. */
async function withQueue(name: string, fn: (ctx: QueueContext) => Promise<void>): Promise<void> {
  const broker = await Broker.connect(RABBITMQ_URL, { name: `test ${name}` });
  const queue = `test.${name}.${crypto.randomUUID()}`;
  try {
    const channel = await broker.channel();
    await channel.assertQueue(queue, { durable: true });
    const open = broker.channel.bind(broker);
    const channels: { closed: boolean }[] = [];
    broker.channel = async () => {
      const opened = await open();
      const record = { closed: false };
      channels.push(record);
      opened.on("close", () => record.closed = true);
      return opened;
    };
    try {
      await fn({ broker, queue, channel, channels });
    } finally {
      await channel.deleteQueue(queue);
      await channel.close();
    }
  } finally {
    await broker.close();
  }
}

/** A watch of `queue` with nothing busy and no delivery, counting its looks (busy() is read at each). */
function watchOf(
  ctx: QueueContext,
  overrides: Partial<DrainWatch> = {},
): { watch: DrainWatch; readonly looks: number } {
  let looks = 0;
  const busy = overrides.busy ?? (() => 0);
  return {
    watch: {
      broker: ctx.broker,
      queues: [ctx.queue],
      deliveries: () => 0,
      stopped: () => false,
      intervalMs: INTERVAL_MS,
      ...overrides,
      busy: () => (looks++, busy()),
    },
    get looks() {
      return looks;
    },
  };
}

/** Publishes one message to `queue` and waits until the broker counts it. */
async function oneMessage(ctx: QueueContext): Promise<void> {
  ctx.channel.sendToQueue(ctx.queue, Buffer.from("work"), { persistent: true });
  await waitFor("the message in the queue", async () => {
    return (await ctx.channel.checkQueue(ctx.queue)).messageCount === 1 || undefined;
  });
}

/** Records whether `promise` settled yet. */
function track(
  promise: Promise<void>,
): { readonly settled: boolean; readonly promise: Promise<void> } {
  let settled = false;
  const tracked = promise.finally(() => settled = true);
  tracked.catch(() => {});
  return {
    promise: tracked,
    get settled() {
      return settled;
    },
  };
}

Deno.test("waitUntilDrained() resolves after three looks at an empty queue and an idle consumer: the first has no delivery count to compare", async () => {
  await withQueue("drain-empty", async (ctx) => {
    const watched = watchOf(ctx);
    await within(waitUntilDrained(watched.watch), 5_000, "the drain");
    assert.equal(watched.looks, 3);
    assert.deepEqual(ctx.channels, [{ closed: true }], "its probe channel is closed");
  });
});

Deno.test("waitUntilDrained() waits while a queue holds a message, and resolves once it is taken", async () => {
  await withQueue("drain-message", async (ctx) => {
    await oneMessage(ctx);
    const watched = watchOf(ctx);
    const drained = track(waitUntilDrained(watched.watch));
    await waitFor("five looks at the queue", () => watched.looks >= 5 || undefined);
    assert.equal(drained.settled, false, "drained with a message in the queue");
    assert.ok(await ctx.channel.get(ctx.queue, { noAck: true }), "the message was there");
    const looksWhenTaken = watched.looks;
    await within(drained.promise, 5_000, "the drain once the queue is empty");
    assert.ok(watched.looks >= looksWhenTaken + 2, "two quiet looks after the queue emptied");
  });
});

Deno.test("waitUntilDrained() counts every queue it is given", async () => {
  await withQueue("drain-queues", async (ctx) => {
    const empty = `test.drain-queues-empty.${crypto.randomUUID()}`;
    await ctx.channel.assertQueue(empty, { durable: true });
    try {
      await oneMessage(ctx);
      const watched = watchOf(ctx, { queues: [empty, ctx.queue] });
      const drained = track(waitUntilDrained(watched.watch));
      await waitFor("five looks", () => watched.looks >= 5 || undefined);
      assert.equal(drained.settled, false, "the second queue's message was not counted");
      await ctx.channel.purgeQueue(ctx.queue);
      await within(drained.promise, 5_000, "the drain once both queues are empty");
    } finally {
      await ctx.channel.deleteQueue(empty);
    }
  });
});

Deno.test("waitUntilDrained() waits while the consumer holds work, deliveries in flight or writes pending", async () => {
  await withQueue("drain-busy", async (ctx) => {
    let held = 2;
    const watched = watchOf(ctx, { busy: () => held });
    const drained = track(waitUntilDrained(watched.watch));
    await waitFor("five looks", () => watched.looks >= 5 || undefined);
    held = 1;
    const looksAtOne = watched.looks;
    await waitFor("five more looks", () => watched.looks >= looksAtOne + 5 || undefined);
    assert.equal(drained.settled, false, "drained with work held");
    held = 0;
    await within(drained.promise, 5_000, "the drain once the consumer holds nothing");
  });
});

Deno.test("waitUntilDrained() starts counting again after a delivery between two looks", async () => {
  await withQueue("drain-deliveries", async (ctx) => {
    // A delivery is counted between each of the first five looks; then none.
    let reads = 0;
    const watched = watchOf(ctx, { deliveries: () => Math.min(++reads, 5) });
    await within(waitUntilDrained(watched.watch), 5_000, "the drain");
    // Looks 1 to 5 each saw a new count; looks 6 and 7 saw none.
    assert.equal(watched.looks, 7);
  });
});

Deno.test("waitUntilDrained() does not resolve before notBefore(), when a retry scheduled in the delayed exchange is due", async () => {
  await withQueue("drain-not-before", async (ctx) => {
    const due = Date.now() + 300;
    const watched = watchOf(ctx, { notBefore: () => due });
    await within(waitUntilDrained(watched.watch), 5_000, "the drain");
    assert.ok(Date.now() >= due, `drained ${due - Date.now()} ms before the retry was due`);
    assert.ok(watched.looks > 3, `${watched.looks} looks`);
  });
});

Deno.test("waitUntilDrained() fails when the consumer stops first, and closes its probe channel", async () => {
  await withQueue("drain-stopped", async (ctx) => {
    await oneMessage(ctx);
    const watched = watchOf(ctx);
    await assert.rejects(
      waitUntilDrained({ ...watched.watch, stopped: () => watched.looks >= 2 }),
      /^Error: the consumer stopped before the queues drained$/,
    );
    assert.equal(watched.looks, 2);
    assert.deepEqual(ctx.channels, [{ closed: true }]);
  });
});

Deno.test("waitUntilDrained() rejects with the abort reason when its signal aborts, before a look or between two", async () => {
  await withQueue("drain-abort", async (ctx) => {
    await oneMessage(ctx);
    const reason = new Error("interrupted");
    const before = watchOf(ctx, { signal: AbortSignal.abort(reason) });
    await assert.rejects(waitUntilDrained(before.watch), (e) => e === reason);
    assert.equal(before.looks, 0);
    const controller = new AbortController();
    const between = watchOf(ctx, { signal: controller.signal });
    const drained = waitUntilDrained(between.watch);
    await waitFor("two looks", () => between.looks >= 2 || undefined);
    controller.abort(reason);
    await assert.rejects(within(drained, 5_000, "the abort"), (e) => e === reason);
    assert.deepEqual(ctx.channels, [{ closed: true }, { closed: true }]);
  });
});

Deno.test("waitUntilDrained() fails with 404 for a queue that does not exist", async () => {
  await withQueue("drain-missing", async (ctx) => {
    const watched = watchOf(ctx, {
      queues: [ctx.queue, `test.drain-missing.${crypto.randomUUID()}`],
    });
    const error = await waitUntilDrained(watched.watch).then(() => undefined, (e: unknown) => e);
    assert.equal(replyCode(error), REPLY_CODE.notFound, String(error));
    assert.equal(ctx.broker.isOpen, true, "only the probe channel was closed by the broker");
  });
});
