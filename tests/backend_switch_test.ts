/**
 * Moving a running fleet from the plugin retry backend to the ttl backend, as docs/migration.md
 * says, on the brokers where the delayed-message plugin runs (the broker under test, RabbitMQ 3.10
 * by default, and RabbitMQ 4.0): OrdemDeProducao consumers on the plugin backend with orders in
 * flight, over-limit ones among them waiting in the delayed exchange for their next try, then the
 * guide's steps one by one; every order must end exactly once: a valid one in the ledger, a failing
 * one in a dead-letter queue with its reason after its 4 runs, nothing left in a queue or in the
 * delayed exchange.
 */

import { strict as assert } from "node:assert";
import { FatalError } from "../lib/errors.ts";
import { publishOrder } from "../lib/estoque.ts";
import { newOrder } from "../lib/order.ts";
import { ConfirmedPublisher } from "../lib/publisher.ts";
import { HEADER } from "../lib/retry_headers.ts";
import { retryDelays } from "../lib/retry_policy.ts";
import { serverVersionAtLeast } from "../lib/server_version.ts";
import { pluginBackendRuns, type Topology, topology } from "../lib/topology.ts";
import { declareTopology } from "../lib/declare_topology.ts";
import { fastPolicy, takeMessages, uniquePrefix } from "../testing/broker.ts";
import {
  type FleetMember,
  type FleetRun,
  messagesDelayed,
  poll,
  type SentOrder,
  withFleet,
} from "../testing/fleet.ts";
import {
  type BrokerUnderTest,
  connectTo,
  DEFAULT_BROKER,
  hasDelayedMessagePlugin,
  otherBroker,
} from "../testing/other_brokers.ts";

/** Retries after 300, 600 and 900 ms, then the dead-letter queue: 4 runs in all. */
const policy = fastPolicy(3, 300);
const LIMIT = 500;

/**
 * Waits until the plugin fleet is well under way: orders retried a second time, and several
 * waiting in the delayed exchange now. Resolves with how many wait there.
 */
function underWay(run: FleetRun, topo: Topology): Promise<number> {
  return poll("retries waiting in the delayed exchange", async () => {
    const second = run.journal.entries.some(({ outcome }) =>
      outcome.kind === "retried" && outcome.retry >= 2
    );
    const delayed = await messagesDelayed(run.target, topo.exchange);
    return second && delayed >= 4 ? delayed : undefined;
  }, 20_000);
}

/** The end a sent order must reach: created, or dead-lettered after 3 retries. */
function isOverLimit(sent: SentOrder): boolean {
  return sent.order.quantity > LIMIT;
}

/**
 * Waits until every order sent has ended (created, or dead-lettered), then asserts each ended
 * exactly once, as it should: a valid one created once in the ledger, a failing one retried 3
 * times and then in the dead-letter queue once, with its reason and error, nothing else there.
 * `where` is the topology whose dead-letter queue holds the letters of each exchange's orders.
 */
async function assertEveryOrderEndedOnce(
  run: FleetRun,
  sent: readonly SentOrder[],
  where: (exchange: string) => Topology,
): Promise<void> {
  const ended = (o: SentOrder) =>
    run.journal.of(o.order.refCode).some(({ outcome }) =>
      outcome.kind === (isOverLimit(o) ? "dead-lettered" : "created")
    );
  await poll("every order's end", () => sent.every(ended) ? true : undefined, 30_000)
    .catch(() => {
      const lost = sent.filter((o) => !ended(o));
      const seen = lost.slice(0, 5).map((o) =>
        `${o.order.refCode} (quantity ${o.order.quantity}: ${
          run.journal.of(o.order.refCode).map((e) => `${e.group} ${e.outcome.kind}`).join(", ") ||
          "never delivered"
        })`
      );
      throw new assert.AssertionError({
        message: `${lost.length} of ${sent.length} orders never ended (lost): ${seen.join("; ")}`,
      });
    });

  for (const o of sent) {
    const journey = run.journal.of(o.order.refCode).map(({ outcome }) => outcome);
    if (isOverLimit(o)) {
      assert.deepEqual(
        journey.map((e) =>
          e.kind === "retried"
            ? `retry ${e.retry}`
            : e.kind === "dead-lettered"
            ? `dead-lettered ${e.reason} after ${e.retries}`
            : e.kind
        ),
        ["retry 1", "retry 2", "retry 3", "dead-lettered exhausted after 3"],
        `order ${o.order.refCode} over the limit`,
      );
    } else {
      assert.deepEqual(journey.map((e) => e.kind), ["created"], `order ${o.order.refCode}`);
      assert.equal((await run.ledger.findOrder(o.order.refCode))?.quantity, o.order.quantity);
    }
  }
  const valid = sent.filter((o) => !isOverLimit(o));
  assert.equal(await run.ledger.countOrders(), valid.length, "production orders in the ledger");

  // Each dead-letter queue holds the failing orders sent to its topology, once each.
  const byQueue = new Map<string, SentOrder[]>();
  for (const o of sent.filter(isOverLimit)) {
    const queue = where(o.exchange).deadLetterQueue;
    byQueue.set(queue, [...byQueue.get(queue) ?? [], o]);
  }
  for (const [queue, expected] of byQueue) {
    const letters = await takeMessages(run.broker, queue, expected.length);
    assert.equal(await run.broker.messageCount(queue), 0, `nothing more in ${queue}`);
    const quantities = new Map(expected.map((o) => [o.order.refCode, o.order.quantity]));
    assert.deepEqual(
      letters.map((m) => m.properties.messageId).sort(),
      [...quantities.keys()].sort(),
      `the dead letters in ${queue}`,
    );
    for (const letter of letters) {
      const headers = letter.properties.headers ?? {};
      const quantity = quantities.get(letter.properties.messageId);
      assert.equal(headers[HEADER.reason], "exhausted");
      assert.equal(headers[HEADER.retryCount], 3);
      assert.equal(headers[HEADER.lastError], `maximum quantity exceeded: ${quantity} > ${LIMIT}`);
    }
  }
}

/** Nothing waits in the work queue or the retry queues of `topo`. */
async function assertEmpty(run: FleetRun, topo: Topology): Promise<void> {
  for (const queue of [topo.queue, ...topo.retryTiers.map((t) => t.queue)]) {
    assert.equal(await run.broker.messageCount(queue), 0, `nothing left in ${queue}`);
  }
}

function summary(run: FleetRun, how: string, sent: readonly SentOrder[], delayed: number): void {
  const over = sent.filter(isOverLimit).length;
  console.log(
    `backend switch (${how}) on RabbitMQ ${run.version}: ${sent.length} orders (${
      sent.length - over
    } valid, ${over} over the limit), ${delayed} waiting in the delayed exchange at the switch; ` +
      `lost 0, duplicated 0`,
  );
}

/**
 * Waits, the plugin consumers still running, until the plugin topology holds nothing: its work
 * queue empty, no delivery in flight and its exchange delaying nothing, seen twice in a row with
 * no delivery in between (docs/migration.md: `rabbitmqctl list_queues name messages` and
 * `rabbitmqadmin list exchanges name messages_delayed` both 0, twice). A drain that looked at the
 * work queue alone ended while retries still waited in the exchange (drained() now waits for them).
 */
async function untilPluginTopologyEmpty(
  run: FleetRun,
  topo: Topology,
  fleet: readonly FleetMember[],
): Promise<void> {
  let quiet = 0;
  let deliveries = -1;
  await poll(
    "the plugin topology empty",
    async () => {
      const now = fleet.reduce((n, { consumer }) => n + consumer.deliveries, 0);
      const waiting = await run.broker.messageCount(topo.queue) +
        fleet.reduce((n, { consumer }) => n + consumer.inFlight, 0) +
        await messagesDelayed(run.target, topo.exchange);
      quiet = waiting === 0 && now === deliveries ? quiet + 1 : 0;
      deliveries = now;
      return quiet >= 2 ? true : undefined;
    },
    20_000,
    250,
  );
}

/** Deletes the plugin topology's exchange and work queue, which must be empty. */
async function deleteExchangeAndQueue(run: FleetRun, topo: Topology): Promise<void> {
  assert.equal(await messagesDelayed(run.target, topo.exchange), 0, `${topo.exchange} delays none`);
  const channel = await run.broker.channel();
  try {
    // `rabbitmqctl delete_queue --if-empty`: refused if a message came in after all.
    await channel.deleteQueue(topo.queue, { ifEmpty: true });
    await channel.deleteExchange(topo.exchange);
  } finally {
    await channel.close().catch(() => {});
  }
}

/**
 * docs/migration.md, "Switching to the ttl backend", in place (the names stay): stop Estoque;
 * the plugin consumers go on until the work queue is empty and the exchange delays nothing; stop
 * them; delete the exchange and the work queue; start the services with `--retry-backend ttl`,
 * then Estoque.
 */
async function switchInPlace(run: FleetRun): Promise<void> {
  const prefix = uniquePrefix("switch-in-place");
  const plugin = topology({ prefix, backend: "plugin" });
  const ttl = topology({ prefix, backend: "ttl", retryDelays: retryDelays(policy) });
  await run.declare(plugin);
  const pluginFleet = await run.consumers(plugin, "plugin");
  const before = await run.estoque(plugin);
  const delayed = await underWay(run, plugin);

  // 1. Stop Estoque.
  await run.stopEstoque(before);
  // 2. Let the plugin consumers finish what the topology holds, the delayed exchange included.
  await untilPluginTopologyEmpty(run, plugin, pluginFleet);
  // 3. Stop them.
  await run.stop(pluginFleet);
  // 4. Delete the exchange and the work queue.
  await deleteExchangeAndQueue(run, plugin);
  // 5. Start the services with --retry-backend ttl: they declare the exchange as direct.
  await run.declare(ttl);
  await run.consumers(ttl, "ttl");
  const after = await run.estoque(ttl);
  await poll("orders sent to the ttl topology", () => after.sent.length >= 20 || undefined, 10_000);
  await run.stopEstoque(after);

  const sent = [...before.sent, ...after.sent];
  await assertEveryOrderEndedOnce(run, sent, () => ttl);
  await assertEmpty(run, ttl);
  summary(run, "in place", sent, delayed);
}

/**
 * docs/migration.md, "Switching to the ttl backend", live under a new prefix: start ttl
 * consumers on a new prefix (they declare its topology); point Estoque at it; the plugin
 * consumers go on until their topology is empty, delayed exchange included; stop them; delete
 * the old exchange and work queue. Orders are published and retried on both sides all along;
 * the old dead-letter queue keeps the letters of the orders sent to the old topology.
 */
async function switchToNewPrefix(run: FleetRun): Promise<void> {
  const plugin = topology({ prefix: uniquePrefix("switch-from-plugin"), backend: "plugin" });
  const ttl = topology({
    prefix: uniquePrefix("switch-to-ttl"),
    backend: "ttl",
    retryDelays: retryDelays(policy),
  });
  await run.declare(plugin);
  const pluginFleet = await run.consumers(plugin, "plugin");
  const publisher = await run.estoque(plugin);
  await underWay(run, plugin);

  // 1. Start the ttl consumers under the new prefix: they declare its topology.
  await run.declare(ttl);
  await run.consumers(ttl, "ttl");
  // 2. Point Estoque at the new prefix (restart it with --prefix).
  publisher.pointAt(ttl);
  const switchedAt = publisher.sent.length;
  const delayed = await messagesDelayed(run.target, plugin.exchange);
  assert.ok(delayed > 0, "retries wait in the delayed exchange as Estoque switches");
  const switched = performance.now();
  // 3. Let the plugin consumers finish what the old topology holds, the delayed exchange included.
  await untilPluginTopologyEmpty(run, plugin, pluginFleet);
  // 4. Stop them, and delete the old exchange and work queue (the old DLQ stays).
  await run.stop(pluginFleet);
  const stopped = performance.now();
  const retriedBetween = (group: string) =>
    run.journal.entries.some((e) =>
      e.group === group && e.outcome.kind === "retried" && e.at > switched && e.at < stopped
    );
  assert.ok(retriedBetween("plugin") && retriedBetween("ttl"), "both backends retried at once");
  await deleteExchangeAndQueue(run, plugin);
  // Estoque goes on a while after the switch, then stops.
  await poll(
    "orders sent to the ttl topology after the plugin consumers stopped",
    () => publisher.sent.length >= switchedAt + 40 || undefined,
    20_000,
  );
  await run.stopEstoque(publisher);

  const sent = publisher.sent;
  assert.ok(sent.some((o) => o.exchange === plugin.exchange), "orders sent to the old topology");
  assert.ok(sent.some((o) => o.exchange === ttl.exchange), "orders sent to the new topology");
  await assertEveryOrderEndedOnce(
    run,
    sent,
    (exchange) => exchange === ttl.exchange ? ttl : plugin,
  );
  await assertEmpty(run, ttl);
  summary(run, "to a new prefix, Estoque publishing", sent, delayed);
}

/** Runs `procedure` on `target`, or checks that the plugin backend is refused there (4.3 on). */
async function onPluginBroker(
  target: BrokerUnderTest,
  procedure: (run: FleetRun) => Promise<void>,
): Promise<void> {
  const probe = await connectTo(target, "test backend switch version");
  const version = probe.serverVersion;
  try {
    if (!pluginBackendRuns(version)) {
      const topo = topology({ prefix: uniquePrefix("switch-refused"), backend: "plugin" });
      const error = await declareTopology(probe, topo).then(() => undefined, (e) => e);
      assert.ok(error instanceof FatalError, `RabbitMQ ${version} declared the plugin backend`);
      assert.equal(error.code, "plugin_unsupported", error.message);
      return;
    }
  } finally {
    await probe.close();
  }
  assert.ok(await hasDelayedMessagePlugin(target), `RabbitMQ ${version} lacks the plugin`);
  await withFleet(target, "backend switch", { policy, maxQuantity: LIMIT, size: 2 }, procedure);
}

/** Runs `procedure` as {@linkcode onPluginBroker} does on RABBITMQ_URL_4_0, checked to be 4.0. */
function onRabbitMq40(procedure: (run: FleetRun) => Promise<void>): Promise<void> {
  return onPluginBroker(otherBroker("4_0"), async (run) => {
    assert.ok(
      serverVersionAtLeast(run.version, "4.0"),
      `RABBITMQ_URL_4_0 is RabbitMQ ${run.version}`,
    );
    await procedure(run);
  });
}

Deno.test("switching a live fleet from the plugin backend to ttl in place, as docs/migration.md says, loses and duplicates no order on the broker under test (refused from 4.3)", async () => {
  await onPluginBroker(DEFAULT_BROKER, switchInPlace);
});

Deno.test("switching a live fleet from the plugin backend to ttl in place, as docs/migration.md says, loses and duplicates no order on RabbitMQ 4.0 (RABBITMQ_URL_4_0)", async () => {
  await onRabbitMq40(switchInPlace);
});

Deno.test("switching a live fleet from the plugin backend to ttl under a new prefix while Estoque publishes, as docs/migration.md says, loses and duplicates no order on the broker under test (refused from 4.3)", async () => {
  await onPluginBroker(DEFAULT_BROKER, switchToNewPrefix);
});

Deno.test("switching a live fleet from the plugin backend to ttl under a new prefix while Estoque publishes, as docs/migration.md says, loses and duplicates no order on RabbitMQ 4.0 (RABBITMQ_URL_4_0)", async () => {
  await onRabbitMq40(switchToNewPrefix);
});

Deno.test("on the plugin backend, drained() (what --drain waits for) waits for the retries the consumer scheduled in the delayed exchange, which no queue counts (refused from 4.3)", async () => {
  await onPluginBroker(DEFAULT_BROKER, async (run) => {
    const plugin = topology({ prefix: uniquePrefix("switch-drain"), backend: "plugin" });
    await run.declare(plugin);
    // One retry, 1 s later: a drain that looks at the queues alone ends long before it comes back.
    const fleet = await run.consumers(plugin, "plugin", fastPolicy(1, 1_000));
    const order = newOrder({ quantity: LIMIT + 1 });
    await publishOrder(new ConfirmedPublisher(await run.broker.confirmChannel()), plugin, order);
    await poll("the retry", () => run.journal.of(order.refCode).length > 0 || undefined, 10_000);
    await Promise.all(fleet.map(({ consumer }) => consumer.drained()));
    assert.equal(await messagesDelayed(run.target, plugin.exchange), 0, "a retry still waits");
    assert.deepEqual(run.journal.of(order.refCode).map((e) => e.outcome.kind), [
      "retried",
      "dead-lettered",
    ]);
    await untilPluginTopologyEmpty(run, plugin, fleet);
    const [letter] = await takeMessages(run.broker, plugin.deadLetterQueue, 1);
    assert.equal(letter!.properties.messageId, order.refCode);
  });
});
