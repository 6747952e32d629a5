import { Buffer } from "node:buffer";
import { join } from "node:path";
import { strict as assert } from "node:assert";
import { Broker } from "../lib/broker.ts";
import { FatalError, REPLY_CODE, replyCode } from "../lib/errors.ts";
import {
  DELAYED_MESSAGE_PLUGIN,
  pluginBackendRuns,
  queueDeclarations,
  retryTierFor,
  topology,
} from "../lib/topology.ts";
import { checkTopology, declareTopology, deleteTopology } from "../lib/declare_topology.ts";
import { serverVersionAtLeast } from "../lib/server_version.ts";
import {
  RABBITMQ_URL,
  runScript,
  tapSent,
  tempDir,
  uniquePrefix,
  waitFor,
  withTopology,
} from "../testing/broker.ts";
import {
  type BrokerUnderTest,
  connectTo,
  DEFAULT_BROKER,
  EVERY_BROKER,
  hasDelayedMessagePlugin,
  otherBroker,
  queueInfo,
} from "../testing/other_brokers.ts";

Deno.test("topology() derives every name from the prefix", () => {
  const topo = topology({ prefix: "demo.", retryDelays: [10_000, 5_000, 5_000] });
  assert.equal(topo.exchange, "demo.productionorder");
  assert.equal(topo.queue, "demo.create.productionorder");
  assert.equal(topo.deadLetterExchange, "demo.productionorder.dlx");
  assert.equal(topo.deadLetterQueue, "demo.create.productionorder.dlx");
  assert.deepEqual(topo.retryTiers, [
    { delayMs: 5_000, queue: "demo.create.productionorder.retry.5000ms" },
    { delayMs: 10_000, queue: "demo.create.productionorder.retry.10000ms" },
  ]);
});

Deno.test("topology() on the plugin backend uses a delayed-message exchange and no tiers", () => {
  const topo = topology({ backend: "plugin", retryDelays: [5_000] });
  assert.equal(topo.exchangeType, "x-delayed-message");
  assert.deepEqual(topo.retryTiers, []);
});

Deno.test("retryTierFor() picks the shortest tier that waits long enough", () => {
  const topo = topology({ retryDelays: [100, 200, 300] });
  assert.equal(retryTierFor(topo, 150).delayMs, 200);
  assert.equal(retryTierFor(topo, 100).delayMs, 100);
  assert.equal(retryTierFor(topo, 900).delayMs, 300);
});

Deno.test("queueDeclarations() sends expired retries back to the work exchange", () => {
  const topo = topology({ retryDelays: [100] });
  const tier = queueDeclarations(topo).find((q) => q.name === topo.retryTiers[0]!.queue);
  assert.deepEqual(tier?.arguments, {
    "x-message-ttl": 100,
    "x-dead-letter-exchange": "productionorder",
    "x-dead-letter-routing-key": "create",
    "x-queue-mode": "lazy",
  });
});

Deno.test("declareTopology() makes durable queues bound as the Go services expect", async () => {
  await withTopology("declare", { retryDelays: [50] }, async ({ broker, topo }) => {
    await declareTopology(broker, topo); // a second declare is a no-op
    const channel = await broker.confirmChannel();
    try {
      channel.publish(topo.exchange, topo.routingKey, Buffer.from("a"));
      channel.publish(topo.deadLetterExchange, topo.routingKey, Buffer.from("b"));
      await channel.waitForConfirms();
      assert.equal((await channel.checkQueue(topo.queue)).messageCount, 1);
      assert.equal((await channel.checkQueue(topo.deadLetterQueue)).messageCount, 1);
      assert.equal((await channel.checkQueue(topo.retryTiers[0]!.queue)).messageCount, 0);
    } finally {
      await channel.close();
    }
  });
});

Deno.test("declareTopology() explains a queue that exists with other settings", async () => {
  const broker = await Broker.connect(RABBITMQ_URL);
  const topo = topology({ prefix: uniquePrefix("mismatch"), retryDelays: [50] });
  try {
    await declareTopology(broker, topo);
    const changed = topology({ prefix: topo.prefix, retryDelays: [50] });
    const conflicting = {
      ...changed,
      retryTiers: [{ delayMs: 60, queue: topo.retryTiers[0]!.queue }],
    };
    await assert.rejects(
      () => declareTopology(broker, conflicting),
      /other settings .*x-message-ttl.*use another --prefix/s,
    );
  } finally {
    const cleaner = await Broker.connect(RABBITMQ_URL);
    await deleteTopology(cleaner, topo);
    await cleaner.close();
    await broker.close();
  }
});

Deno.test("declareTopology() of the plugin backend on the broker under test: its delayed-message exchange where the plugin runs (before 4.3), plugin_unsupported from 4.3", async () => {
  // Before 4.3 the broker under test has the plugin (scripts/services.sh enables it on 3.10 and
  // 4.0): the declaration must succeed, whatever the code does without it (the next test).
  const broker = await connectTo(DEFAULT_BROKER, "test plugin");
  const topo = topology({ prefix: uniquePrefix("plugin"), backend: "plugin" });
  try {
    if (!pluginBackendRuns(broker.serverVersion)) {
      const error = await declareTopology(broker, topo).then(() => undefined, (e) => e);
      assert.ok(error instanceof FatalError, `declared on ${broker.serverVersion}: ${error}`);
      assert.equal(error.code, "plugin_unsupported");
      return;
    }
    assert.ok(
      await hasDelayedMessagePlugin(DEFAULT_BROKER),
      `${broker.safeUrl} knows no x-delayed-message exchange: enable ${DELAYED_MESSAGE_PLUGIN} ` +
        `(scripts/services.sh does)`,
    );
    await declareTopology(broker, topo);
    const channel = await broker.channel();
    await channel.checkExchange(topo.exchange);
    await channel.close();
  } finally {
    await deleteTopology(broker, topo).catch(() => {});
    await broker.close();
  }
});

const noPlugin = otherBroker("NO_PLUGIN");

Deno.test({
  name:
    "declareTopology() on a broker without the delayed-message plugin names it and the ttl alternative: plugin_missing before 4.3, told by the broker's reply code (503 on 3.x; 406 on 4.x, then 404 for the exchange), plugin_unsupported from 4.3 (RABBITMQ_URL_NO_PLUGIN)",
  fn: async () => {
    const target = noPlugin;
    const broker = await connectTo(target, "test no plugin");
    const topo = topology({ prefix: uniquePrefix("no-plugin"), backend: "plugin" });
    const ttl = topology({ prefix: topo.prefix, retryDelays: [50] });
    const cleaner = await connectTo(target, "test no plugin cleanup");
    try {
      assert.equal(
        await hasDelayedMessagePlugin(target),
        false,
        `RABBITMQ_URL_NO_PLUGIN (${broker.safeUrl}) has the delayed-message plugin`,
      );
      const error = await declareTopology(broker, topo).then(() => undefined, (e) => e);
      assert.ok(error instanceof FatalError, `declared without the plugin: ${error}`);
      /** The reply code of the refused exchange type on this broker's release. */
      const refused = serverVersionAtLeast(broker.serverVersion, "4.0")
        ? REPLY_CODE.preconditionFailed
        : REPLY_CODE.commandInvalid;
      if (pluginBackendRuns(broker.serverVersion)) {
        assert.equal(error.code, "plugin_missing");
        assert.equal(replyCode(error), refused);
        assert.match(
          error.message,
          /lacks the delayed-message plugin \(rabbitmq_delayed_message_exchange\).*rabbitmq-plugins enable rabbitmq_delayed_message_exchange.*--retry-backend ttl/,
        );
      } else {
        // Enabling the plugin is no advice on 4.3: the node would not boot again.
        assert.equal(error.code, "plugin_unsupported");
        assert.doesNotMatch(error.message, /rabbitmq-plugins enable/);
        assert.match(error.message, /--retry-backend ttl/);
        // Let past that check (a node without the plugin only refuses the exchange), the
        // declare is told from one of an exchange declared otherwise by the reply codes alone.
        const past = await declareTopology(broker, { ...topo, backend: "ttl" })
          .then(() => undefined, (e) => e);
        assert.ok(past instanceof FatalError, `declared without the plugin: ${past}`);
        assert.equal(past.code, "plugin_missing", past.message);
        assert.equal(replyCode(past), refused);
      }
      assert.ok(!error.message.includes("guest:guest"), "no password in the message");
      // The alternative it names works on the same broker.
      await declareTopology(cleaner, ttl);
    } finally {
      await deleteTopology(cleaner, ttl).catch(() => {});
      await cleaner.close();
      await broker.close();
    }
  },
});

Deno.test("declareTopology() of the plugin backend on a prefix whose exchange the ttl backend declared says topology_mismatch (406, and the exchange exists), not plugin_missing", async () => {
  const broker = await connectTo(DEFAULT_BROKER, "test backend switch");
  const prefix = uniquePrefix("backend-switch");
  const ttl = topology({ prefix, retryDelays: [50] });
  try {
    await declareTopology(broker, ttl);
    const error = await declareTopology(broker, topology({ prefix, backend: "plugin" }))
      .then(() => undefined, (e) => e);
    assert.ok(error instanceof FatalError, String(error));
    if (!pluginBackendRuns(broker.serverVersion)) {
      assert.equal(error.code, "plugin_unsupported");
      return;
    }
    assert.equal(error.code, "topology_mismatch", error.message);
    assert.equal(replyCode(error), REPLY_CODE.preconditionFailed);
    assert.match(error.message, /inequivalent arg 'type' for exchange/);
  } finally {
    await deleteTopology(broker, ttl).catch(() => {});
    await broker.close();
  }
});

Deno.test({
  name:
    "on RabbitMQ 4.3 the plugin backend stops with plugin_unsupported, naming --retry-backend ttl, before anything is sent to the broker (RABBITMQ_URL_4_3)",
  fn: async () => {
    const target = otherBroker("4_3");
    const broker = await connectTo(target, "test plugin on 4.3");
    const topo = topology({ prefix: uniquePrefix("plugin-43"), backend: "plugin" });
    try {
      assert.ok(
        serverVersionAtLeast(broker.serverVersion, "4.3"),
        `RABBITMQ_URL_4_3 (${broker.safeUrl}) is RabbitMQ ${broker.serverVersion}`,
      );
      const sent = tapSent(broker);
      for (const prepare of [declareTopology, checkTopology]) {
        const error = await prepare(broker, topo).then(() => undefined, (e) => e);
        assert.ok(error instanceof FatalError, `${prepare.name}: ${error}`);
        assert.equal(error.code, "plugin_unsupported", `${prepare.name}: ${error.message}`);
        assert.match(
          error.message,
          new RegExp(`RabbitMQ ${broker.serverVersion.replaceAll(".", "\\.")}`),
        );
        assert.match(error.message, /--retry-backend ttl/);
        assert.ok(!error.message.includes("guest:guest"), "no password in the message");
      }
      // Decided from the connection's server properties: no declare, not even a passive one.
      assert.equal(sent(topo.prefix), false, "a method naming the topology went to the broker");
      assert.ok(broker.isOpen);
      // The commands say the same and exit 1, before declaring anything.
      await using dir = await tempDir();
      const ordem = ["--no-http", "--ledger", join(dir.path, "ledger.sqlite")];
      for (const [script, args] of [["estoque.ts", []], ["ordem_de_producao.ts", ordem]] as const) {
        const run = await runScript(
          script,
          ["--retry-backend", "plugin", "--prefix", topo.prefix, ...args],
          { RABBITMQ_URL: target.url },
        );
        assert.equal(run.code, 1, `${script}: ${run.stderr}`);
        assert.match(run.stderr, /--retry-backend ttl/, script);
        assert.match(run.stderr, /4\.3 and later/, script);
      }
      const channel = await broker.channel();
      const exchange = await channel.checkExchange(topo.exchange).then(() => true, () => false);
      assert.equal(exchange, false, "the delayed-message exchange was declared");
    } finally {
      await broker.close();
    }
  },
});

Deno.test("queueDeclarations() makes quorum queues dead-letter at-least-once with an explicit delivery limit, and the DLQ unlimited", () => {
  const topo = topology({ retryDelays: [100], queueType: "quorum", deliveryLimit: 7 });
  const [work, dlq, tier] = queueDeclarations(topo);
  assert.deepEqual(work!.arguments, {
    "x-queue-type": "quorum",
    "x-delivery-limit": 7,
    "x-dead-letter-exchange": topo.deadLetterExchange,
    "x-dead-letter-routing-key": "create",
    "x-dead-letter-strategy": "at-least-once",
    "x-overflow": "reject-publish",
  });
  // No reachable limit on the DLQ, the same on every version.
  assert.deepEqual(dlq!.arguments, { "x-queue-type": "quorum", "x-delivery-limit": 2_147_483_647 });
  assert.equal(tier!.arguments["x-dead-letter-strategy"], "at-least-once");
  assert.equal(tier!.arguments["x-overflow"], "reject-publish");
  assert.equal(tier!.arguments["x-queue-mode"], undefined);
  assert.throws(
    () => topology({ queueType: "quorum", backend: "plugin" }),
    /quorum queues need the ttl retry backend/,
  );
});

Deno.test("declareTopology() declares quorum queues the broker accepts, and a retry comes back through one", async () => {
  await withTopology(
    "quorum",
    { retryDelays: [50], queueType: "quorum" },
    async ({ broker, topo }) => {
      const channel = await broker.channel();
      try {
        const [tier] = topo.retryTiers;
        channel.sendToQueue(tier!.queue, Buffer.from("{}"), { persistent: true, messageId: "q1" });
        // The tier's TTL expires the message back to the exchange, into the work queue.
        const deadline = Date.now() + 10_000;
        let message: false | { properties: { messageId?: string } } = false;
        while (!message && Date.now() < deadline) {
          message = await channel.get(topo.queue, { noAck: true });
          if (!message) await new Promise((resolve) => setTimeout(resolve, 20));
        }
        assert.ok(message, "the retry never came back to the work queue");
        assert.equal(message.properties.messageId, "q1");
      } finally {
        await channel.close();
      }
    },
  );
});

Deno.test("declareTopology() on a quorum DLQ left with a delivery limit stops with what to do, naming the DLQ", async () => {
  const broker = await Broker.connect(RABBITMQ_URL, { name: "test limited dlq" });
  const topo = topology({ prefix: uniquePrefix("limited-dlq"), queueType: "quorum" });
  try {
    // As an earlier version declared it.
    const channel = await broker.channel();
    await channel.assertQueue(topo.deadLetterQueue, {
      durable: true,
      arguments: { "x-queue-type": "quorum", "x-delivery-limit": 20 },
    });
    await channel.close();
    const error = await declareTopology(broker, topo).catch((e) => e);
    assert.ok(error instanceof FatalError, String(error));
    assert.equal(error.code, "topology_mismatch");
    assert.equal(replyCode(error), REPLY_CODE.preconditionFailed);
    assert.match(error.message, new RegExp(`dead-letter queue ${topo.deadLetterQueue}`));
    assert.match(error.message, /delivery limit.*docs\/operations\.md/);
  } finally {
    await deleteTopology(broker, topo).catch(() => {});
    await broker.close();
  }
});

/**
 * Declares the quorum topology on `target` and reads the delivery limits back from its
 * management API: 20 on the work queue and each tier, declared (and, on 4.x, in effect); on the
 * DLQ the largest 32-bit integer on every version (where 4.x would otherwise set 20).
 */
async function quorumLimitsOn(target: BrokerUnderTest, release?: string): Promise<void> {
  const broker = await connectTo(target, "test quorum limits");
  const topo = topology({
    prefix: uniquePrefix("quorum-limits"),
    retryDelays: [100, 200],
    queueType: "quorum",
  });
  try {
    const version = broker.serverVersion;
    if (release !== undefined) {
      assert.ok(version.startsWith(`${release}.`), `${target.url} is RabbitMQ ${version}`);
    }
    await declareTopology(broker, topo);
    const limited = [topo.queue, ...topo.retryTiers.map((t) => t.queue)];
    for (const name of limited) {
      const queue = await target.management.queue(name);
      assert.equal(queue?.type, "quorum", name);
      assert.equal(queue?.arguments["x-delivery-limit"], 20, `${name} on ${version}`);
    }
    const dlq = await target.management.queue(topo.deadLetterQueue);
    assert.equal(dlq?.type, "quorum");
    assert.equal(dlq?.arguments["x-delivery-limit"], 2_147_483_647, `the DLQ on ${version}`);
    if (serverVersionAtLeast(version, "4.0")) {
      // What the broker enforces, from its statistics (emitted every 5 s).
      const effective = await waitFor(`the delivery limits ${version} enforces`, async () => {
        const queues = [...limited, topo.deadLetterQueue];
        const limits = await Promise.all(
          queues.map(async (q) => (await queueInfo(target, q)).delivery_limit),
        );
        return limits.every((l) => l !== undefined) ? limits : undefined;
      }, 15_000);
      assert.deepEqual(effective, [...limited.map(() => 20), 2_147_483_647]);
    }
  } finally {
    await deleteTopology(broker, topo).catch(() => {});
    await broker.close();
  }
}

Deno.test("declareTopology() on quorum queues of the broker under test: x-delivery-limit 20 on the work queue and tiers, the DLQ unlimited", async () => {
  await quorumLimitsOn(DEFAULT_BROKER);
});

for (const release of ["4.0", "4.3"] as const) {
  const name = release === "4.0" ? "4_0" : "4_3";
  const target = otherBroker(name);
  Deno.test({
    name:
      `declareTopology() on quorum queues of RabbitMQ ${release}: x-delivery-limit 20 on the work queue and tiers, 2^31-1 on the DLQ (RABBITMQ_URL_${name})`,
    fn: () => quorumLimitsOn(target, release),
  });
}

/**
 * Why the DLQ's limit is 2147483647 and not 4.x's "unlimited": `x-delivery-limit: -1` keeps a
 * letter looked at on 4.x, and drops it at its first return on 3.x.
 */
async function minusOneOn(target: BrokerUnderTest): Promise<void> {
  const broker = await connectTo(target, "test delivery limit -1");
  const queue = `${uniquePrefix("limit-minus-one")}q`;
  const channel = await broker.confirmChannel();
  try {
    await channel.assertQueue(queue, {
      durable: true,
      arguments: { "x-queue-type": "quorum", "x-delivery-limit": -1 },
    });
    channel.sendToQueue(queue, Buffer.from("letter"), { persistent: true });
    await channel.waitForConfirms();
    const look = await broker.channel();
    const letter = await waitFor("the letter", async () => (await look.get(queue)) || undefined);
    look.nack(letter, false, true); // a look, given back
    await look.close();
    const kept = serverVersionAtLeast(broker.serverVersion, "4.0");
    const count = await waitFor(
      "the letter back, or gone",
      async () => {
        const { messageCount, consumerCount } = await channel.checkQueue(queue);
        return consumerCount === 0 && (messageCount === 1) === kept ? messageCount : undefined;
      },
    );
    assert.equal(count, kept ? 1 : 0, `x-delivery-limit -1 on ${broker.serverVersion}`);
  } finally {
    await channel.deleteQueue(queue).catch(() => {});
    await channel.close().catch(() => {});
    await broker.close();
  }
}

for (const [label, target] of EVERY_BROKER) {
  Deno.test(`x-delivery-limit -1 keeps a letter looked at on 4.x and drops it on 3.x (${label})`, () =>
    minusOneOn(target));
}
