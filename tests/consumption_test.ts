import { strict as assert } from "node:assert";
import { Buffer } from "node:buffer";
import type { Channel, ConsumeMessage } from "amqplib";
import { Broker } from "../lib/broker.ts";
import { Consumption } from "../lib/consumption.ts";
import { RABBITMQ_URL, waitFor } from "../testing/broker.ts";
import { DEFAULT_BROKER } from "../testing/other_brokers.ts";

const ARGUMENTS = { "x-productionorder-retry": "test 3x linear 20ms" };

interface ConsumptionContext {
  readonly broker: Broker;
  readonly queue: string;
  /** The channel the consumption runs on. */
  readonly channel: Channel;
  /** Another channel, to publish and look at the queue with. */
  readonly admin: Channel;
  readonly received: (ConsumeMessage | null)[];
  readonly consumption: Consumption;
}

/** A queue of its own (deleted afterwards), and a Consumption of it that records what it gets. */
async function withConsumption(
  name: string,
  fn: (ctx: ConsumptionContext) => Promise<void>,
): Promise<void> {
  const broker = await Broker.connect(RABBITMQ_URL, { name: `test ${name}` });
  const queue = `test.${name}.${crypto.randomUUID()}`;
  try {
    const admin = await broker.channel();
    await admin.assertQueue(queue, { durable: true });
    try {
      const channel = await broker.channel();
      const received: (ConsumeMessage | null)[] = [];
      const consumption = new Consumption(channel, queue, (m) => received.push(m), ARGUMENTS);
      await fn({ broker, queue, channel, admin, received, consumption });
      await channel.close().catch(() => {});
    } finally {
      await admin.deleteQueue(queue);
      await admin.close();
    }
  } finally {
    await broker.close();
  }
}

/** Waits until the broker counts `consumers` consumers on the queue. */
async function consumers(ctx: ConsumptionContext, consumers: number): Promise<void> {
  await waitFor(`${consumers} consumer(s) on the queue`, async () => {
    return (await ctx.admin.checkQueue(ctx.queue)).consumerCount === consumers || undefined;
  });
}

function publish(ctx: ConsumptionContext, body: string): void {
  ctx.admin.sendToQueue(ctx.queue, Buffer.from(body), { persistent: true });
}

Deno.test("Consumption is not consuming until started, and then the broker delivers to it", async () => {
  await withConsumption("consumption-start", async (ctx) => {
    publish(ctx, "one");
    await waitFor("the message in the queue", async () => {
      return (await ctx.admin.checkQueue(ctx.queue)).messageCount === 1 || undefined;
    });
    assert.equal(ctx.consumption.active, false);
    assert.equal((await ctx.admin.checkQueue(ctx.queue)).consumerCount, 0);
    await ctx.consumption.start();
    assert.equal(ctx.consumption.active, true);
    await waitFor("the delivery", () => ctx.received.length === 1 || undefined);
    assert.equal(ctx.received[0]?.content.toString(), "one");
    assert.equal(ctx.received[0]?.fields.redelivered, false);
  });
});

Deno.test("Consumption takes deliveries with manual acks: one not acked goes back to the queue with its channel", async () => {
  await withConsumption("consumption-manual-ack", async (ctx) => {
    await ctx.consumption.start();
    publish(ctx, "held");
    await waitFor("the delivery", () => ctx.received.length === 1 || undefined);
    const queued = await ctx.admin.checkQueue(ctx.queue);
    assert.equal(queued.messageCount, 0, "delivered, so not ready");
    await ctx.channel.close();
    await waitFor("the unacked message back in the queue", async () => {
      return (await ctx.admin.checkQueue(ctx.queue)).messageCount === 1 || undefined;
    });
  });
});

Deno.test("Consumption.cancel() stops the deliveries, leaves those sent to be settled, and start() takes them up again", async () => {
  await withConsumption("consumption-cancel", async (ctx) => {
    await ctx.consumption.start();
    await consumers(ctx, 1);
    publish(ctx, "first");
    await waitFor("the first delivery", () => ctx.received.length === 1 || undefined);
    await ctx.consumption.cancel();
    assert.equal(ctx.consumption.active, false);
    await consumers(ctx, 0);
    // A message sent while cancelled waits in the queue.
    publish(ctx, "second");
    await waitFor("the second message waiting", async () => {
      return (await ctx.admin.checkQueue(ctx.queue)).messageCount === 1 || undefined;
    });
    assert.equal(ctx.received.length, 1);
    // The delivery already sent can still be acked on the same channel.
    ctx.channel.ack(ctx.received[0]!);
    await ctx.consumption.start();
    assert.equal(ctx.consumption.active, true);
    await consumers(ctx, 1);
    await waitFor("the second delivery", () => ctx.received.length === 2 || undefined);
    assert.equal(ctx.received[1]?.content.toString(), "second");
    ctx.channel.ack(ctx.received[1]!);
    await ctx.consumption.cancel();
    await waitFor("the queue empty, every delivery acked", async () => {
      const { messageCount, consumerCount } = await ctx.admin.checkQueue(ctx.queue);
      return messageCount === 0 && consumerCount === 0 || undefined;
    });
  });
});

Deno.test("Consumption.cancel() before start, twice, or on a closed channel does nothing and throws nothing", async () => {
  await withConsumption("consumption-cancel-twice", async (ctx) => {
    await ctx.consumption.cancel();
    assert.equal(ctx.consumption.active, false);
    await ctx.consumption.start();
    await ctx.consumption.cancel();
    await ctx.consumption.cancel();
    assert.equal(ctx.consumption.active, false);
    await ctx.consumption.start();
    await consumers(ctx, 1);
    await ctx.channel.close();
    await ctx.consumption.cancel();
    assert.equal(ctx.consumption.active, false);
  });
});

Deno.test("Consumption.start() states its arguments to the broker, where the doctor reads them", async () => {
  await withConsumption("consumption-arguments", async (ctx) => {
    await ctx.consumption.start();
    // The management API's statistics lag the broker by up to 5 s.
    const seen = await waitFor(
      "the consumer in the management API",
      async () => {
        const found = await DEFAULT_BROKER.management.consumerArguments(ctx.queue);
        return found.length > 0 ? found : undefined;
      },
      15_000,
    );
    assert.deepEqual(seen, [ARGUMENTS]);
  });
});

Deno.test("Consumption.start() on a queue that does not exist rejects with the broker's 404, and is not consuming", async () => {
  const broker = await Broker.connect(RABBITMQ_URL, { name: "test consumption-missing" });
  try {
    const channel = await broker.channel();
    const missing = `test.consumption-missing.${crypto.randomUUID()}`;
    const consumption = new Consumption(channel, missing, () => {}, {});
    await assert.rejects(consumption.start(), (e: { code?: unknown }) => e.code === 404);
    assert.equal(consumption.active, false);
    await consumption.cancel();
  } finally {
    await broker.close();
  }
});
