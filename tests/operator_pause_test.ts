/**
 * Pausing and resuming a fleet of OrdemDeProducao consumers through the broker, against the real
 * broker: three consumers, each on its own connection with its own ear on the control plane (as
 * three processes would be), one ledger. Under 2,000 orders/s, a pause reaches all three within
 * 2 s (the broker then sends none of them anything), an instance restarted while paused starts
 * paused, a resume brings the rate back, and every order is created exactly once. Deliveries in
 * flight when the pause comes finish; the ledger's breaker and an operator's pause never undo
 * each other.
 */

import { strict as assert } from "node:assert";
import { Broker } from "../lib/broker.ts";
import { OrderConsumer } from "../lib/consumer.ts";
import { type InstanceAnswer } from "../lib/control.ts";
import { ControlListener } from "../lib/control_listener.ts";
import { publishOrder } from "../lib/estoque.ts";
import { ControlClient } from "../lib/control_store.ts";
import type { Ledger } from "../lib/ledger.ts";
import { newOrder, type Order } from "../lib/order.ts";
import { OperatorPause } from "../lib/operator_pause.ts";
import type { Outcome } from "../lib/outcome.ts";
import { ConfirmedPublisher } from "../lib/publisher.ts";
import { retryDelays } from "../lib/retry_policy.ts";
import { SqliteLedger } from "../lib/sqlite_ledger.ts";
import { declareControl } from "../lib/control_topology.ts";
import type { Topology } from "../lib/topology.ts";
import {
  type BrokerContext,
  fastPolicy,
  OutcomeLog,
  RABBITMQ_URL,
  waitFor,
  withTopology,
} from "../testing/broker.ts";
import { ControlledLedger } from "../testing/ledger.ts";

const policy = fastPolicy(2, 100);
const tiers = { retryDelays: retryDelays(policy) };

/** One OrdemDeProducao as its process would run it: a connection, its pause, its ear, a consumer. */
interface Member {
  readonly name: string;
  readonly broker: Broker;
  readonly pause: OperatorPause;
  readonly listener: ControlListener;
  readonly consumer: OrderConsumer;
}

async function startMember(
  name: string,
  topo: Topology,
  ledger: Ledger,
  outcomes: OutcomeLog,
  options: { probeDelay?: () => number } = {},
): Promise<Member> {
  const broker = await Broker.connect(RABBITMQ_URL, { name: `test ${name}` });
  const pause = new OperatorPause();
  const running: { consumer?: OrderConsumer } = {};
  const listener = await ControlListener.start({
    broker,
    topology: topo,
    name,
    onState: (state) => pause.apply(state),
    answer: () => ({
      instanceId: name,
      paused: pause.paused,
      seq: pause.state.seq,
      consuming: running.consumer?.consuming ?? false,
      inFlight: running.consumer?.inFlight ?? 0,
      at: new Date().toISOString(),
    }),
  });
  const consumer = running.consumer = await OrderConsumer.start({
    broker,
    topology: topo,
    ledger,
    policy,
    maxQuantity: 500,
    onOutcome: outcomes.record,
    pause,
    ...options,
  });
  return { name, broker, pause, listener, consumer };
}

async function stopMember(member: Member): Promise<void> {
  await member.consumer.stop();
  await member.listener.close();
  await member.broker.close();
}

/** The work queue's consumers, as the broker counts them. */
async function consumersOf(broker: Broker, queue: string): Promise<number> {
  const channel = await broker.channel();
  try {
    return (await channel.checkQueue(queue)).consumerCount;
  } finally {
    await channel.close().catch(() => {});
  }
}

/** Publishes `rate` orders a second (each confirmed) until stopped; what was confirmed. */
function publishAtRate(ctx: BrokerContext, rate: number) {
  const confirmed: Order[] = [];
  let failed = 0;
  let stopping = false;
  const done = (async () => {
    const publisher = new ConfirmedPublisher(await ctx.broker.confirmChannel());
    const started = performance.now();
    let sent = 0;
    const pending = new Set<Promise<void>>();
    while (!stopping) {
      const due = Math.floor((performance.now() - started) / 1000 * rate);
      for (; sent < due; sent++) {
        const order = newOrder({ quantity: 7 });
        const p = publishOrder(publisher, ctx.topo, order).then(
          () => void confirmed.push(order),
          () => void failed++,
        );
        pending.add(p);
        p.finally(() => pending.delete(p));
      }
      await new Promise((resolve) => setTimeout(resolve, 5)); // the pace, not a wait for an event
    }
    await Promise.all(pending);
  })();
  return {
    confirmed,
    get failed() {
      return failed;
    },
    stop: async () => {
      stopping = true;
      await done;
    },
  };
}

const created = (o: Outcome) => o.kind === "created";

/** Created orders per second in `[from, to)` (performance.now() times). */
function rateIn(outcomes: OutcomeLog, from: number, to: number): number {
  let n = 0;
  for (let i = 0; i < outcomes.outcomes.length; i++) {
    const at = outcomes.times[i]!;
    if (at >= from && at < to && outcomes.outcomes[i]!.kind === "created") n++;
  }
  return n / ((to - from) / 1000);
}

Deno.test("3 consumers under 2,000 orders/s: a pause reaches all within 2 s and survives a restart, a resume brings the rate back within 2 s, 0 lost and 0 duplicated", async () => {
  await withTopology("pause-fleet", tiers, async (ctx) => {
    await declareControl(ctx.broker, ctx.topo);
    await using ledger = await SqliteLedger.open(":memory:", { instanceId: "fleet" });
    const outcomes = new OutcomeLog();
    const members = await Promise.all(
      [1, 2, 3].map((i) => startMember(`ordem-${i}`, ctx.topo, ledger, outcomes)),
    );
    const answers: { answer: InstanceAnswer; at: number }[] = [];
    await using client = await ControlClient.open(ctx.broker, ctx.topo, {
      onAnswer: (answer) => answers.push({ answer, at: performance.now() }),
    });
    const load = publishAtRate(ctx, 2_000);
    try {
      await outcomes.until("3,000 orders created", created, 3_000, 20_000);
      const beforeAt = performance.now();
      const rateBefore = rateIn(outcomes, beforeAt - 1_000, beforeAt);

      // Pause: every instance answers once the broker confirmed its cancel.
      const pausedAt = performance.now();
      await client.change({ paused: true, by: "test", reason: "ERP maintenance" });
      const paused = await waitFor("3 instances paused", () => {
        const got = answers.filter((a) => a.answer.paused);
        return got.length === 3 ? got : undefined;
      }, 2_000);
      const reachMs = Math.max(...paused.map((a) => a.at - pausedAt));
      assert.ok(reachMs < 2_000, `reached all in ${reachMs} ms`);
      assert.deepEqual(paused.map((a) => a.answer.consuming), [false, false, false]);
      assert.equal(await consumersOf(ctx.broker, ctx.topo.queue), 0, "the broker sends nothing");
      // In-flight deliveries finish; nothing comes after them.
      await waitFor(
        "in-flight work finished",
        () => members.every((m) => m.consumer.inFlight === 0) || undefined,
      );
      const createdAtPause = outcomes.outcomes.filter(created).length;
      await waitFor(
        "1,000 orders waiting in the work queue",
        async () => (await ctx.broker.messageCount(ctx.topo.queue)) >= 1_000 || undefined,
        10_000,
      );
      assert.equal(outcomes.outcomes.filter(created).length, createdAtPause, "none while paused");

      // An instance restarted while paused starts paused.
      await stopMember(members[2]!);
      members[2] = await startMember("ordem-3-restarted", ctx.topo, ledger, outcomes);
      assert.equal(members[2].pause.paused, true);
      assert.equal(members[2].consumer.consuming, false);
      assert.equal(members[2].consumer.ready, true, "ready: doing what it was told");
      assert.equal(await consumersOf(ctx.broker, ctx.topo.queue), 0);

      // Resume: every instance, the restarted one too, consumes again.
      answers.length = 0;
      const resumedAt = performance.now();
      await client.change({ paused: false, by: "test", reason: "done" });
      const resumed = await waitFor("3 instances resumed", () => {
        const got = answers.filter((a) => !a.answer.paused);
        return got.length === 3 ? got : undefined;
      }, 2_000);
      const resumeReachMs = Math.max(...resumed.map((a) => a.at - resumedAt));
      // (Each consumes again; "consuming" may read false in an answer while a consumer grows
      // its prefetch, which cancels and consumes again.)
      await waitFor(
        "3 consumers of the work queue",
        async () => (await consumersOf(ctx.broker, ctx.topo.queue)) === 3 || undefined,
      );
      await outcomes.until("orders created after the resume", created, createdAtPause + 2_000);
      await load.stop();
      const published = load.confirmed;
      assert.equal(load.failed, 0, "every publish confirmed");
      await outcomes.until("every order created", created, published.length, 60_000);

      // The rate: the first 250-ms window after the resume at >= 0.9 of the rate before.
      let backAfterMs: number | undefined;
      for (let end = resumedAt + 250; end <= resumedAt + 2_000; end += 50) {
        if (rateIn(outcomes, end - 250, end) >= 0.9 * rateBefore) {
          backAfterMs = end - resumedAt;
          break;
        }
      }
      assert.ok(backAfterMs !== undefined, `rate back to 0.9 x ${rateBefore}/s within 2 s`);

      // 0 lost, 0 duplicated.
      const refs = outcomes.outcomes.filter(created).map((o) => (o as { refCode: string }).refCode);
      assert.equal(new Set(refs).size, refs.length, "no order created twice");
      assert.deepEqual(new Set(refs), new Set(published.map((o) => o.refCode)), "none lost");
      const other = outcomes.outcomes.filter((o) => o.kind !== "created");
      assert.deepEqual(other, [], "nothing retried, dead-lettered, requeued or duplicated");
      assert.equal(await ledger.countOrders(), published.length);
      assert.equal(await ctx.broker.messageCount(ctx.topo.queue), 0);
      console.log(
        `pause: ${published.length} orders at 2,000/s; before the pause ${
          Math.round(rateBefore)
        }/s; the pause reached 3 instances in ${reachMs.toFixed(1)} ms, the resume in ${
          resumeReachMs.toFixed(1)
        } ms; rate >= 0.9 x before ${backAfterMs} ms after the resume; lost 0, duplicated 0`,
      );
    } finally {
      await load.stop();
      await Promise.all(members.map(stopMember));
    }
  });
});

Deno.test("a pause lets deliveries in flight finish: the broker sends no more, those held in the ledger complete and are acked", async () => {
  await withTopology("pause-inflight", tiers, async (ctx) => {
    await declareControl(ctx.broker, ctx.topo);
    const ledger = new ControlledLedger(await SqliteLedger.open(":memory:", { instanceId: "t" }));
    const outcomes = new OutcomeLog();
    const member = await startMember("inflight", ctx.topo, ledger, outcomes);
    try {
      const publisher = new ConfirmedPublisher(await ctx.broker.confirmChannel());
      ledger.hold();
      const orders = Array.from({ length: 20 }, () => newOrder({ quantity: 3 }));
      await Promise.all(
        orders.map((o) => publishOrder(publisher, ctx.topo, o)),
      );
      await ledger.untilHeld(1);
      await using client = await ControlClient.open(ctx.broker, ctx.topo);
      await client.change({ paused: true, by: "test", reason: "in flight" });
      await waitFor("paused", () => !member.consumer.consuming || undefined);
      assert.ok(member.consumer.inFlight > 0, "work still in flight");
      assert.equal(await consumersOf(ctx.broker, ctx.topo.queue), 0);
      const inFlight = member.consumer.inFlight;
      ledger.release();
      await outcomes.until("the in-flight orders created", created, inFlight);
      await waitFor("nothing in flight", () => member.consumer.inFlight === 0 || undefined);
      // Acked: the broker holds only what was never delivered, all ready.
      assert.equal(
        await ctx.broker.messageCount(ctx.topo.queue),
        orders.length - inFlight,
        "the rest waits in the queue, nothing unacked",
      );
      assert.deepEqual(outcomes.outcomes.filter((o) => !created(o)), []);
      await client.change({ paused: false, by: "test", reason: "" });
      await outcomes.until("every order created", created, orders.length);
    } finally {
      await stopMember(member);
    }
  });
});

Deno.test("the ledger coming back does not end an operator's pause, and a resume during an outage waits for the ledger", async () => {
  await withTopology("pause-breaker", tiers, async (ctx) => {
    await declareControl(ctx.broker, ctx.topo);
    const ledger = new ControlledLedger(await SqliteLedger.open(":memory:", { instanceId: "t" }));
    const outcomes = new OutcomeLog();
    const member = await startMember("breaker", ctx.topo, ledger, outcomes, {
      probeDelay: () => 20,
    });
    const publisher = new ConfirmedPublisher(await ctx.broker.confirmChannel());
    const publish = async () => {
      const order = newOrder({ quantity: 1 });
      await publishOrder(publisher, ctx.topo, order);
    };
    await using client = await ControlClient.open(ctx.broker, ctx.topo);
    try {
      // The ledger goes: the breaker opens on the first order.
      ledger.away = true;
      await publish();
      await waitFor("paused for the ledger", () => member.consumer.paused || undefined);
      // An operator pauses too; then the ledger comes back: the operator's pause holds.
      await client.change({ paused: true, by: "test", reason: "both" });
      await waitFor("the pause applied", () => member.pause.paused || undefined);
      ledger.away = false;
      await waitFor("the breaker closed", () => !member.consumer.paused || undefined);
      assert.equal(member.consumer.consuming, false, "the ledger back did not undo the pause");
      assert.equal(await consumersOf(ctx.broker, ctx.topo.queue), 0);

      // The other way round: resumed during an outage, it waits for the ledger.
      await client.change({ paused: false, by: "test", reason: "" });
      await outcomes.until("the order created", created, 1);
      ledger.away = true;
      await publish();
      await waitFor("paused for the ledger again", () => member.consumer.paused || undefined);
      await client.change({ paused: true, by: "test", reason: "again" });
      await waitFor("the pause applied", () => member.pause.paused || undefined);
      await client.change({ paused: false, by: "test", reason: "" });
      await waitFor("the resume applied", () => !member.pause.paused || undefined);
      assert.equal(member.consumer.consuming, false, "the resume did not undo the outage");
      assert.equal(await consumersOf(ctx.broker, ctx.topo.queue), 0);
      ledger.away = false;
      await outcomes.until("the second order created", created, 2);
      assert.equal(member.consumer.consuming, true);
    } finally {
      await stopMember(member);
    }
  });
});
