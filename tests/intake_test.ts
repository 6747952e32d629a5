import { strict as assert } from "node:assert";
import type { ConsumeMessage } from "amqplib";
import { publishOrder } from "../lib/estoque.ts";
import { ConsumeUnansweredError, Intake, type IntakeOptions } from "../lib/intake.ts";
import { newOrder } from "../lib/order.ts";
import { ConfirmedPublisher } from "../lib/publisher.ts";
import { Broker } from "../lib/broker.ts";
import {
  type BrokerContext,
  RABBITMQ_URL,
  waitFor,
  within,
  withTopology,
} from "../testing/broker.ts";
import { HoldingProxy } from "../testing/proxy.ts";

type Reasons = { stopping?: boolean; ledgerAway?: boolean; held?: boolean };

/** An intake on the test topology's work queue whose reasons to stop the test sets. */
async function intakeOn(
  ctx: BrokerContext,
  reasons: Reasons,
  options: Partial<IntakeOptions> = {},
) {
  const channel = await ctx.broker.channel();
  const received: ConsumeMessage[] = [];
  let broken = 0;
  const intake = new Intake({
    channel,
    queue: ctx.topo.queue,
    onMessage: (message) => {
      if (message !== null) received.push(message);
    },
    consumerArguments: {},
    prefetch: 10,
    prefetchBytes: 1 << 20,
    explain: (error) => error instanceof Error ? error : new Error(String(error)),
    stopping: () => reasons.stopping ?? false,
    ledgerAway: () => reasons.ledgerAway ?? false,
    held: () => reasons.held ?? false,
    onBroken: () => broken++,
    ...options,
  });
  return { intake, channel, received, broken: () => broken };
}

async function publishOne(ctx: BrokerContext): Promise<void> {
  const publisher = new ConfirmedPublisher(await ctx.broker.confirmChannel());
  await publishOrder(publisher, ctx.topo, newOrder({ quantity: 1 }));
}

type OnIntake = Awaited<ReturnType<typeof intakeOn>> & { readonly ctx: BrokerContext };

/** Runs `fn` with an intake on a fresh topology, whose reasons to stop are `reasons`. */
function withIntake(name: string, reasons: Reasons, fn: (on: OnIntake) => Promise<void>) {
  return withTopology(name, {}, async (ctx) => {
    const on = await intakeOn(ctx, reasons);
    try {
      await fn({ ...on, ctx });
    } finally {
      await on.channel.close();
    }
  });
}

/** Once nothing says no: resume() takes deliveries again, and the one waiting arrives. */
async function takesAgain({ intake, received, broken }: OnIntake): Promise<void> {
  await intake.resume();
  assert.equal(intake.active, true);
  await waitFor("the delivery", () => received.length === 1 || undefined);
  assert.equal(broken(), 0);
}

Deno.test("Intake: under an operator's pause, start() only sets the prefetch, and neither the ledger coming back nor a resume takes deliveries until the pause ends", async () => {
  const reasons = { held: true, ledgerAway: false };
  await withIntake("intake-held", reasons, async (on) => {
    const { intake, channel, ctx } = on;
    await intake.start();
    assert.equal(intake.active, false);
    assert.equal(intake.held, true);
    // The breaker closing calls resume(): the pause still holds.
    await intake.resume();
    assert.equal(intake.active, false);
    await publishOne(ctx);
    assert.equal((await channel.checkQueue(ctx.topo.queue)).consumerCount, 0);
    reasons.held = false;
    await takesAgain(on);
  });
});

Deno.test("Intake: while the ledger is away or the consumer stops, resume() takes nothing; after a cancel the ledger's return takes deliveries again", async () => {
  const reasons = { ledgerAway: false, stopping: false };
  await withIntake("intake-ledger", reasons, async (on) => {
    const { intake, channel, ctx } = on;
    await intake.start();
    assert.equal(intake.active, true);
    reasons.ledgerAway = true;
    await intake.cancel();
    assert.equal(intake.active, false);
    await intake.resume(); // an operator's resume while the ledger is away
    assert.equal(intake.active, false);
    await publishOne(ctx);
    assert.equal((await channel.checkQueue(ctx.topo.queue)).messageCount, 1);
    reasons.ledgerAway = false;
    reasons.stopping = true;
    await intake.resume();
    assert.equal(intake.active, false, "took deliveries while stopping");
    reasons.stopping = false;
    await takesAgain(on);
  });
});

Deno.test("Intake: a start on a closed channel reports it once through onBroken", async () => {
  await withTopology("intake-broken", {}, async (ctx) => {
    const { intake, channel, broken } = await intakeOn(ctx, {});
    await intake.start();
    await intake.cancel();
    await channel.close();
    await intake.resume();
    assert.equal(intake.active, false);
    assert.equal(broken(), 1);
  });
});

Deno.test("Intake: a first start whose consume the broker does not answer within answerTimeoutMs rejects with ConsumeUnansweredError; what it sends later is not taken", async () => {
  // What a channel opened on the majority meets after a partition while the queue's record still
  // names the cut-off leader (RabbitMQ 4.3, docs/guarantees.md): its consume is not answered. Here
  // a proxy lets the prefetch's answer through, then holds what the real broker sends.
  await withTopology("intake-unanswered", { queueType: "quorum" }, async (ctx) => {
    await publishOne(ctx);
    await using proxy = HoldingProxy.start(RABBITMQ_URL);
    // No heartbeat: the connection must stay up for the start's own timeout to show.
    const broker = await Broker.connect(proxy.url, { heartbeatSeconds: 0 });
    try {
      const on = await intakeOn({ broker, topo: ctx.topo }, {});
      proxy.holdAfter(1); // qos-ok goes through; consume-ok and the delivery wait
      const started = performance.now();
      const error = await within(
        on.intake.start(300).then(() => undefined, (error: unknown) => error),
        5_000,
        "the start given up",
      );
      const waited = performance.now() - started;
      assert.ok(error instanceof ConsumeUnansweredError, String(error));
      assert.equal(error.code, "consume_unanswered");
      assert.match(error.message, /did not answer the consume on .*intake-unanswered.* in 0\.3 s/);
      assert.ok(waited >= 300 && waited < 1_500, `gave up after ${waited} ms`);
      assert.ok(proxy.holding, "the broker's answers are held");
      // The broker got the consume (its answer is what is held): the queue has the consumer.
      const look = await ctx.broker.channel();
      try {
        await waitFor("the held consumer on the queue", async () => {
          const { consumerCount } = await look.checkQueue(ctx.topo.queue);
          return consumerCount === 1 ? true : undefined;
        }, 5_000);
      } finally {
        await look.close();
      }
      // The channel is given up, as OrderConsumer does; then the late consume-ok and delivery
      // arrive at a channel that is closing.
      const closing = on.channel.close().catch(() => {});
      proxy.release();
      await closing;
      assert.equal(on.received.length, 0, "nothing taken on the channel given up");
    } finally {
      await broker.close(500);
    }
    // The consume the broker did get went with its channel: the order waits in the queue again.
    await waitFor("the order back in the queue", async () => {
      return await ctx.broker.messageCount(ctx.topo.queue) === 1 ? true : undefined;
    }, 5_000);
  });
});
