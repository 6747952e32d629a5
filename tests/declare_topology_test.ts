/**
 * sessionTopology() on the broker under test: the first session declares before the work; one
 * after a reconnect checks with passive declares and starts the work, declaring beside it. A
 * declare that waits (on RabbitMQ 3.x, a Mnesia transaction while a cluster node is cut off: see
 * faults/partition.ts) is made to wait here by a connection whose declares are held.
 */

import { strict as assert } from "node:assert";
import type { Channel } from "amqplib";
import { Buffer } from "node:buffer";
import type { Broker } from "../lib/broker.ts";
import { sessionTopology } from "../lib/declare_topology.ts";
import { within, withTopology } from "../testing/broker.ts";

/** `broker` whose channels hold every declare and bind until `gate` resolves. */
function declaresHeld(broker: Broker, gate: Promise<void>, bound: () => void): Broker {
  const held = new Set(["assertExchange", "assertQueue", "bindQueue"]);
  const holdingChannel = async (): Promise<Channel> => {
    const channel = await broker.channel();
    return new Proxy(channel, {
      get(target, property) {
        const value = Reflect.get(target, property, target);
        if (typeof value !== "function") return value;
        if (!held.has(String(property))) return value.bind(target);
        return async (...args: unknown[]) => {
          await gate;
          const result = await value.apply(target, args);
          if (property === "bindQueue") bound();
          return result;
        };
      },
    });
  };
  return new Proxy(broker, {
    get(target, property) {
      if (property === "channel") return holdingChannel;
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

async function onChannel<T>(broker: Broker, fn: (channel: Channel) => Promise<T>): Promise<T> {
  const channel = await broker.channel();
  try {
    return await fn(channel);
  } finally {
    await channel.close().catch(() => {});
  }
}

Deno.test("sessionTopology(): after a reconnect the work starts once passive checks pass while the declare waits, and the declare beside it binds again what was unbound", async () => {
  await withTopology("session-topology", {}, async ({ broker, topo }) => {
    const prepare = sessionTopology(topo, { declare: true });
    await prepare(broker); // the first session: declares (all of it exists already: a no-op)
    // While the process was away its work queue lost its binding.
    await onChannel(broker, (ch) => ch.unbindQueue(topo.queue, topo.exchange, topo.routingKey));
    const gate = Promise.withResolvers<void>();
    const rebound = Promise.withResolvers<void>();
    let binds = 0;
    const held = declaresHeld(broker, gate.promise, () => {
      if (++binds === 2) rebound.resolve();
    });
    await within(prepare(held), 5_000, "the second session's preparation, its declares held");
    gate.resolve();
    await within(rebound.promise, 5_000, "the declare beside the work");
    // The binding is back: an order published to the exchange reaches the work queue.
    await onChannel(broker, async (ch) => {
      ch.publish(topo.exchange, topo.routingKey, Buffer.from("{}"));
      await ch.checkQueue(topo.queue); // a round trip after the publish: it has been routed
      const got = await ch.get(topo.queue, { noAck: true });
      assert.ok(got, "the order reached the work queue through the binding declared again");
    });
  });
});

Deno.test("sessionTopology(): a session after a reconnect declares before the work what was deleted while the process was away", async () => {
  await withTopology("session-topology-gone", {}, async ({ broker, topo }) => {
    const prepare = sessionTopology(topo, { declare: true });
    await prepare(broker);
    await onChannel(broker, (ch) => ch.deleteQueue(topo.queue));
    await prepare(broker);
    const { messageCount } = await onChannel(broker, (ch) => ch.checkQueue(topo.queue));
    assert.equal(messageCount, 0, "the work queue is there again, before the work starts");
    await onChannel(broker, async (ch) => {
      ch.publish(topo.exchange, topo.routingKey, Buffer.from("{}"));
      await ch.checkQueue(topo.queue);
      assert.ok(await ch.get(topo.queue, { noAck: true }), "and bound");
    });
  });
});

Deno.test("sessionTopology(): without declare every session only checks, and a missing queue stops it", async () => {
  await withTopology("session-topology-check", {}, async ({ broker, topo }) => {
    const prepare = sessionTopology(topo, { declare: false });
    await prepare(broker);
    await onChannel(broker, (ch) => ch.deleteQueue(topo.queue));
    await assert.rejects(prepare(broker), { code: "topology_missing" });
  });
});

Deno.test("sessionTopology(): a retry queue declared again with other settings while the process was away ends the later session's work with topology_mismatch, as a first session's declare would", async () => {
  await withTopology(
    "session-topology-changed",
    { retryDelays: [1_000] },
    async ({ broker, topo }) => {
      const prepare = sessionTopology(topo, { declare: true });
      await prepare(broker);
      // Someone recreates the retry queue without its TTL and dead-letter routing: retried orders
      // would wait there for good.
      const tier = topo.retryTiers[0]!.queue;
      await onChannel(broker, async (ch) => {
        await ch.deleteQueue(tier);
        await ch.assertQueue(tier, { durable: true });
      });
      const { failed } = await within(prepare(broker), 5_000, "the later session's preparation");
      await assert.rejects(within(failed, 5_000, "the declare beside the work"), {
        code: "topology_mismatch",
      });
    },
  );
});
