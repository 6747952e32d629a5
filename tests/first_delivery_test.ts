/**
 * A consumer the broker says is consuming but sends nothing (lib/first_delivery_watch.ts), and a
 * publisher whose channel's first confirm never comes (lib/publisher.ts `firstConfirmTimeoutMs`):
 * on RabbitMQ 3.10 both happen on a channel opened, after a partition, on a node that still names
 * a quorum queue's cut-off leader (docs/guarantees.md). Here the broker shows the same from the
 * client's side by other means: a standby consumer of a single-active-consumer queue is sent
 * nothing while the queue holds ready messages, and a proxy that holds what the broker sends keeps
 * every confirm from coming.
 */

import { strict as assert } from "node:assert";
import { EventEmitter } from "node:events";
import type { Channel, ConfirmChannel } from "amqplib";
import type { Topology } from "../lib/topology.ts";
import { Broker } from "../lib/broker.ts";
import { publishOrder } from "../lib/estoque.ts";
import { ConsumerStuckError, watchFirstDelivery } from "../lib/first_delivery_watch.ts";
import { newOrder } from "../lib/order.ts";
import { FIRST_WINDOW, OrderFeed, publishFeed } from "../lib/order_feed.ts";
import { ConfirmedPublisher, PublishError } from "../lib/publisher.ts";
import {
  fastPolicy,
  RABBITMQ_URL,
  startConsumer,
  waitFor,
  within,
  withTopology,
} from "../testing/broker.ts";
import { HoldingProxy } from "../testing/proxy.ts";
import { ourService } from "../testing/process.ts";
import { freePort } from "../testing/postgres.ts";
import { DEFAULT_RETRY_POLICY, retryDelays } from "../lib/retry_policy.ts";
import { tempDir } from "../testing/broker.ts";

/**
 * Makes the topology's work queue a single-active-consumer queue (quorum unless told) and takes its active slot
 * with a consumer of the test's that holds its one delivery (`held` resolves when it has it):
 * the queue then sends any other consumer nothing, however many messages wait. Close `active`
 * afterwards.
 */
async function standbyOnly(
  broker: Broker,
  topo: Topology,
  queueType: "quorum" | "classic" = "quorum",
): Promise<{ active: Channel; held: Promise<void> }> {
  const admin = await broker.channel();
  try {
    await admin.deleteQueue(topo.queue);
    await admin.assertQueue(topo.queue, {
      durable: true,
      arguments: { "x-queue-type": queueType, "x-single-active-consumer": true },
    });
    await admin.bindQueue(topo.queue, topo.exchange, topo.routingKey);
  } finally {
    await admin.close();
  }
  const active = await broker.channel();
  await active.prefetch(1);
  const held = Promise.withResolvers<void>();
  await active.consume(topo.queue, () => held.resolve(), { noAck: false });
  return { active, held: held.promise };
}

Deno.test("a consumer sent nothing while its queue holds ready messages is taken for stuck: done rejects with ConsumerStuckError, nothing is taken from the queue", async () => {
  await withTopology("first-delivery-stuck", { queueType: "quorum" }, async (ctx) => {
    const { broker, topo } = ctx;
    const { active, held } = await standbyOnly(broker, topo);
    const running = await startConsumer(ctx, fastPolicy(3, 100), { firstDeliveryTimeoutMs: 600 });
    try {
      for (let i = 0; i < 10; i++) {
        await publishOrder(running.publisher, topo, newOrder({ quantity: 1 }));
      }
      await held;
      const error = await within(
        running.consumer.done.then(() => undefined, (error: unknown) => error),
        10_000,
        "the consumer taken for stuck",
      );
      assert.ok(error instanceof ConsumerStuckError, String(error));
      assert.equal(error.code, "consumer_stuck");
      assert.match(error.message, /was sent nothing [\d.]+ s after it started consuming/);
      assert.match(error.message, /ready messages \(9 at the last look\)/);
      assert.equal(running.consumer.deliveries, 0);
      assert.equal(await broker.messageCount(topo.queue), 9, "nothing taken");
    } finally {
      await running.consumer.stop();
      await running.ledger.close();
      await active.close().catch(() => {});
    }
  });
});

Deno.test("on a classic queue the watch is off: a standby consumer there is not taken for stuck when one on a quorum queue, started after it, is", async () => {
  await withTopology("first-delivery-classic", {}, async (classicCtx) => {
    await withTopology("first-delivery-quorum", { queueType: "quorum" }, async (quorumCtx) => {
      const classicQueue = await standbyOnly(classicCtx.broker, classicCtx.topo, "classic");
      const quorumQueue = await standbyOnly(quorumCtx.broker, quorumCtx.topo);
      const options = { firstDeliveryTimeoutMs: 400 };
      const classic = await startConsumer(classicCtx, fastPolicy(3, 100), options);
      const quorum = await startConsumer(quorumCtx, fastPolicy(3, 100), options);
      try {
        for (
          const { publisher, ctx } of [
            { publisher: classic.publisher, ctx: classicCtx },
            { publisher: quorum.publisher, ctx: quorumCtx },
          ]
        ) {
          for (let i = 0; i < 3; i++) {
            await publishOrder(publisher, ctx.topo, newOrder({ quantity: 1 }));
          }
        }
        const error = await within(
          quorum.consumer.done.then(() => undefined, (error: unknown) => error),
          10_000,
          "the quorum queue's consumer taken for stuck",
        );
        assert.ok(error instanceof ConsumerStuckError, String(error));
        // The classic one started first, with the same timeout: a watch would have fired there.
        assert.ok(classic.consumer.consuming, "the classic queue's consumer still consumes");
        assert.ok(!classic.consumer.stuck);
      } finally {
        for (const running of [classic, quorum]) {
          await running.consumer.stop();
          await running.ledger.close();
        }
        await classicQueue.active.close().catch(() => {});
        await quorumQueue.active.close().catch(() => {});
      }
    });
  });
});

Deno.test("the watch: an empty queue, a paused consumer, or one paused and resumed between two looks is never taken for stuck; the first delivery ends it", async () => {
  let ready = 0;
  let expecting = true;
  let deliveries = 0;
  let starts = 1;
  const looks: (number | undefined)[] = [];
  let stuck = false;
  const looked = () => looks.length;
  let resumeEachLook = false;
  const watch = watchFirstDelivery({
    timeoutMs: 20,
    deliveries: () => deliveries,
    expecting: () => expecting,
    starts: () => starts,
    ended: () => false,
    readyMessages: () => Promise.resolve(ready),
    onStuck: () => (stuck = true),
    onLook: (seen) => {
      looks.push(seen);
      if (resumeEachLook) starts++; // paused and resumed before the next look
    },
  });
  try {
    await waitFor("five looks at an empty queue", () => looked() >= 5 || undefined);
    assert.ok(!stuck, "an empty queue is not a stuck consumer");
    // Paused (by the ledger's breaker, an operator, its byte budget): messages wait, rightly.
    expecting = false;
    ready = 100;
    let before = looked();
    await waitFor("five looks while paused", () => looked() >= before + 5 || undefined);
    assert.ok(!stuck, "a paused consumer is not a stuck one");
    assert.ok(
      looks.slice(before).every((seen) => seen === undefined),
      "nothing asked while paused",
    );
    // Consuming, but started again between every two looks: each look is its first.
    resumeEachLook = true;
    expecting = true;
    before = looked();
    await waitFor("five looks, resumed between each", () => looked() >= before + 5 || undefined);
    assert.ok(!stuck, "a consumer that just started again is not a stuck one");
    // Sent its first delivery: the watch ends before it would take it for stuck.
    resumeEachLook = false;
    deliveries = 1;
    const last = looked();
    // Two more of its periods with nothing looked at: the watch has ended.
    await new Promise((resolve) => setTimeout(resolve, 40));
    assert.equal(looked(), last);
    assert.ok(!stuck);
  } finally {
    watch.stop();
  }
});

Deno.test("the watch: a look that does not answer says nothing, and the consumer is taken for stuck only on two looks that saw messages", async () => {
  let answer = false;
  const waiting: ((ready: number) => void)[] = [];
  let stuck: { readyMessages: number } | undefined;
  const looks: (number | undefined)[] = [];
  const watch = watchFirstDelivery({
    timeoutMs: 40,
    deliveries: () => 0,
    expecting: () => true,
    starts: () => 1,
    ended: () => false,
    // Passive declares that do not answer (a channel stuck on the cut-off node) until the node
    // answers again, late; then ones that do at once.
    readyMessages: () => {
      if (answer) return Promise.resolve(7);
      const late = Promise.withResolvers<number>();
      waiting.push(late.resolve);
      return late.promise;
    },
    onStuck: (seen) => (stuck = seen),
    onLook: (seen) => looks.push(seen),
  });
  try {
    await waitFor("three looks that got no answer", () => looks.length >= 3 || undefined);
    assert.deepEqual(looks.slice(0, 3), [undefined, undefined, undefined]);
    assert.equal(stuck, undefined);
    answer = true;
    for (const answerLate of waiting) answerLate(7); // too late to count
    await waitFor("taken for stuck", () => stuck);
    assert.equal(stuck!.readyMessages, 7);
  } finally {
    watch.stop();
  }
});

Deno.test("ConfirmedPublisher: publishes sent before a channel's first confirm time out after firstConfirmTimeoutMs; after it, after timeoutMs", async () => {
  await using proxy = HoldingProxy.start(RABBITMQ_URL);
  await withTopology("first-confirm", {}, async ({ topo }) => {
    const broker = await Broker.connect(proxy.url, { name: "test first confirm" });
    try {
      const options = { timeoutMs: 4_000, firstConfirmTimeoutMs: 300 };
      // A channel whose first publish the broker never answers.
      const unheard = new ConfirmedPublisher(await broker.confirmChannel(), options);
      proxy.hold();
      let started = performance.now();
      const error = await publishOrder(unheard, topo, newOrder({ quantity: 1 })).then(
        () => undefined,
        (error: unknown) => error,
      );
      const firstTook = performance.now() - started;
      assert.ok(error instanceof PublishError, String(error));
      assert.equal(error.code, "timeout");
      assert.match(error.message, /no first confirm on the channel from the broker within 300 ms/);
      assert.ok(firstTook < 2_000, `the first publish failed after ${firstTook} ms`);
      proxy.release();
      // A channel that had its first confirm: a publish the broker then does not answer gets the
      // whole timeout.
      const heard = new ConfirmedPublisher(await broker.confirmChannel(), options);
      await publishOrder(heard, topo, newOrder({ quantity: 1 }));
      proxy.hold();
      started = performance.now();
      const late = await publishOrder(heard, topo, newOrder({ quantity: 1 })).then(
        () => undefined,
        (error: unknown) => error,
      );
      const took = performance.now() - started;
      assert.ok(late instanceof PublishError, String(late));
      assert.match(late.message, /no confirm from the broker within 4000 ms/);
      assert.ok(took >= 3_900, `timed out after ${took} ms, not the whole timeout`);
    } finally {
      proxy.release();
      await broker.close();
    }
  });
});

/**
 * A confirm channel that confirms its first publish after `firstMs` and every other one after
 * `restMs` (as a broker under a burst does: the first confirm soon, the last ones seconds later),
 * so that the publisher's deadlines are seen apart from the broker's speed.
 */
class TimedConfirms extends EventEmitter {
  #published = 0;
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  constructor(readonly firstMs: number, readonly restMs: number) {
    super();
  }
  publish(
    _exchange: string,
    _routingKey: string,
    _content: Uint8Array,
    _properties: unknown,
    confirmed: (error: unknown) => void,
  ): boolean {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      confirmed(null);
    }, this.#published++ === 0 ? this.firstMs : this.restMs);
    this.#timers.add(timer);
    return true;
  }
  close(): void {
    for (const timer of this.#timers) clearTimeout(timer);
  }
}

Deno.test("ConfirmedPublisher: publishes sent before the first confirm get the whole timeout once it comes, not the first confirm's", async () => {
  const channel = new TimedConfirms(100, 1_500);
  const publisher = new ConfirmedPublisher(channel as unknown as ConfirmChannel, {
    timeoutMs: 10_000,
    firstConfirmTimeoutMs: 500,
  });
  try {
    const body = new TextEncoder().encode("{}");
    // All sent before the first confirm; all but the first confirmed 1.5 s after their send.
    const results = await within(
      Promise.all(
        Array.from(
          { length: 50 },
          () => publisher.publish("x", "k", body).then(() => "confirmed", (error) => String(error)),
        ),
      ),
      10_000,
      "every publish settled",
    );
    assert.deepEqual(new Set(results), new Set(["confirmed"]));
  } finally {
    channel.close();
  }
});

Deno.test("Estoque's feed sends a channel no more than FIRST_WINDOW publishes before its first confirm; with none coming, the session ends to send them again", async () => {
  await using proxy = HoldingProxy.start(RABBITMQ_URL);
  await withTopology("first-window", {}, async ({ broker: direct, topo }) => {
    const broker = await Broker.connect(proxy.url, { name: "test first window" });
    try {
      const feed = new OrderFeed({ count: 1_000, makeOrder: () => newOrder({ quantity: 1 }) });
      const publisher = new ConfirmedPublisher(await broker.confirmChannel(), {
        timeoutMs: 5_000,
        firstConfirmTimeoutMs: 300,
      });
      proxy.hold(); // what the broker sends (its confirms) stops; what the client sends goes on
      const finished = await within(
        publishFeed({ publisher, topology: topo, feed, window: 20_000 }),
        10_000,
        "the session ending",
      );
      assert.equal(finished, false, "the session ends for its publishes to be sent again");
      assert.ok(feed.resending, "the publishes wait to be sent again");
      // Every publish the session sent reached the broker (only its confirm was held).
      await waitFor(
        `${FIRST_WINDOW} in the queue`,
        async () => (await direct.messageCount(topo.queue)) === FIRST_WINDOW || undefined,
      );
    } finally {
      proxy.release();
      await broker.close();
    }
  });
});

Deno.test("OrdemDeProducao taken for stuck again and again waits twice as long each session (FIRST_DELIVERY_TIMEOUT_MS), and says so", async () => {
  await using dir = await tempDir();
  const options = { queueType: "quorum" as const, retryDelays: retryDelays(DEFAULT_RETRY_POLICY) };
  await withTopology("first-delivery-backoff", options, async ({ broker, topo }) => {
    const { active } = await standbyOnly(broker, topo);
    const publisher = new ConfirmedPublisher(await broker.confirmChannel());
    for (let i = 0; i < 5; i++) await publishOrder(publisher, topo, newOrder({ quantity: 1 }));
    await using ordem = ourService("OrdemDeProducao", "ordem_de_producao.ts", ["--no-declare"], {
      TOPOLOGY_PREFIX: topo.prefix,
      QUEUE_TYPE: "quorum",
      LEDGER_URL: `sqlite:${dir.path}/ledger.sqlite`,
      HTTP_PORT: String(freePort()),
      FIRST_DELIVERY_TIMEOUT_MS: "400",
    });
    try {
      const lines = await ordem.until("taken for stuck three times", /consumer taken for stuck/, 3);
      const waited = lines.map((line) => Number(/waitedMs=([\d.]+)/.exec(line)![1]));
      // Each wait is the timeout and the two looks' own time (a channel opened, a passive
      // declare): at least the timeout, and each at least twice the timeout before it.
      assert.ok(waited[0]! >= 400 && waited[0]! < 1_600, `first: ${waited[0]} ms`);
      assert.ok(waited[1]! >= 800, `second: ${waited[1]} ms, not twice the first timeout`);
      assert.ok(waited[2]! >= 1_600, `third: ${waited[2]} ms, not four times the first timeout`);
      assert.ok(waited[0]! < waited[1]! && waited[1]! < waited[2]!, `waits: ${waited}`);
      assert.ok(ordem.running, "it keeps running");
      assert.equal(await broker.messageCount(topo.queue), 4, "nothing taken");
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${ordem}`, { cause: error });
    } finally {
      await active.close().catch(() => {});
    }
  });
});
