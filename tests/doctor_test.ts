import { strict as assert } from "node:assert";
import { Broker } from "../lib/broker.ts";
import { type Check, formatChecks, runDoctor } from "../lib/doctor.ts";
import { ManagementClient, managementUrlFor, vhostOf } from "../lib/management.ts";
import { deleteTopology, type Topology, topology } from "../lib/topology.ts";
import { encodeOrder, newOrder } from "../lib/order.ts";
import { deadLetterHeaders } from "../lib/retry_headers.ts";
import { DEFAULT_RETRY_POLICY, policyTag } from "../lib/retry_policy.ts";
import {
  fastPolicy,
  RABBITMQ_URL,
  startConsumer,
  uniquePrefix,
  waitFor,
  withTopology,
} from "../testing/broker.ts";

const management = new ManagementClient(managementUrlFor(RABBITMQ_URL), vhostOf(RABBITMQ_URL));
const tiers = { retryDelays: [5_000, 10_000] };

function find(checks: Check[], subject: string): Check {
  const check = checks.find((c) => c.subject === subject);
  assert.ok(check, `no check of ${subject} in:\n${formatChecks(checks)}`);
  return check;
}

/** Declares queues by hand (as someone else might have), runs `fn`, and deletes them. */
async function withForeignQueues(
  name: string,
  declare: (topo: Topology, broker: Broker) => Promise<void>,
  fn: (topo: Topology) => Promise<void>,
): Promise<void> {
  const topo = topology({ prefix: uniquePrefix(name), ...tiers });
  const broker = await Broker.connect(RABBITMQ_URL);
  try {
    await declare(topo, broker);
    await fn(topo);
  } finally {
    await deleteTopology(broker, topo).catch(() => {});
    await broker.close();
  }
}

Deno.test("management URL and vhost derive from the AMQP URL", () => {
  assert.equal(managementUrlFor("amqp://u:p@rabbit:5672/prod"), "http://u:p@rabbit:15672");
  assert.equal(managementUrlFor("amqps://u:p@rabbit"), "https://u:p@rabbit:15672");
  assert.equal(vhostOf("amqp://u:p@rabbit:5672/prod%2Fa"), "prod/a");
  assert.equal(vhostOf("amqp://rabbit"), "/");
});

Deno.test("doctor finds no problem in a topology the services declared, with a consumer on it", async () => {
  await withTopology("doctor-ok", tiers, async (ctx) => {
    const { topo } = ctx;
    const running = await startConsumer(ctx, DEFAULT_RETRY_POLICY);
    const checks = await runDoctor({
      url: RABBITMQ_URL,
      topology: topo,
      policy: DEFAULT_RETRY_POLICY,
      management,
    });
    await running.consumer.stop();
    assert.deepEqual(checks.filter((c) => c.status === "fail" || c.status === "warn"), []);
    assert.match(find(checks, "broker").detail, /RabbitMQ \d+\.\d+/);
    assert.equal(find(checks, "management API").status, "ok");
    assert.match(
      find(checks, `queue ${topo.retryTiers[0]!.queue}`).detail,
      /retry tier, TTL 5000 ms, 0 ready/,
    );
    assert.match(formatChecks(checks), /No problems found\.$/);
  });
});

Deno.test("doctor shows both sides of a queue whose arguments differ, with and without the management API", async () => {
  await withForeignQueues("doctor-args", async (topo, broker) => {
    const channel = await broker.channel();
    await channel.assertQueue(topo.retryTiers[0]!.queue, {
      durable: true,
      arguments: { "x-message-ttl": 6_000 },
    });
    await channel.close();
  }, async (topo) => {
    const checks = await runDoctor({ url: RABBITMQ_URL, topology: topo, management });
    const tier = find(checks, `queue ${topo.retryTiers[0]!.queue}`);
    assert.equal(tier.status, "fail");
    assert.match(tier.detail, /PRECONDITION_FAILED/);
    assert.match(tier.detail, /x-message-ttl: services declare 5000, broker has 6000/);
    assert.match(
      tier.detail,
      /x-dead-letter-exchange: services declare "[^"]+productionorder", broker has "\(none\)"/,
    );
    assert.equal(
      find(checks, `queue ${topo.queue}`).status,
      "fail",
      "a missing queue is a problem",
    );

    const plain = await runDoctor({ url: RABBITMQ_URL, topology: topo, management: undefined });
    const without = find(plain, `queue ${topo.retryTiers[0]!.queue}`);
    assert.equal(without.status, "fail");
    assert.match(without.detail, /inequivalent arg/);
  });
});

Deno.test("doctor flags a work queue with a drop-head length limit, and an unbound DLQ", async () => {
  await withForeignQueues("doctor-drophead", async (topo, broker) => {
    const channel = await broker.channel();
    await channel.assertExchange(topo.exchange, "direct", { durable: true });
    await channel.assertExchange(topo.deadLetterExchange, "direct", { durable: true });
    await channel.assertQueue(topo.queue, {
      durable: true,
      arguments: {
        "x-max-length": 10,
        "x-dead-letter-exchange": topo.deadLetterExchange,
        "x-dead-letter-routing-key": "create",
      },
    });
    await channel.bindQueue(topo.queue, topo.exchange, "create");
    await channel.assertQueue(topo.deadLetterQueue, { durable: true });
    await channel.close();
  }, async (topo) => {
    const checks = await runDoctor({ url: RABBITMQ_URL, topology: topo, management });
    const work = find(checks, `queue ${topo.queue}`);
    assert.equal(work.status, "fail");
    assert.match(work.detail, /length limit with drop-head overflow/);
    const dlq = find(checks, `queue ${topo.deadLetterQueue}`);
    assert.equal(dlq.status, "fail");
    assert.match(dlq.detail, /not bound to .*productionorder\.dlx with "create"/);
  });
});

Deno.test("doctor flags quorum queues without a delivery limit, a DLQ with one, and unsafe dead-lettering", async () => {
  await withForeignQueues("doctor-quorum", async (topo, broker) => {
    const channel = await broker.channel();
    await channel.assertQueue(topo.queue, {
      durable: true,
      arguments: { "x-queue-type": "quorum" },
    });
    await channel.assertQueue(topo.deadLetterQueue, {
      durable: true,
      arguments: {
        "x-queue-type": "quorum",
        "x-delivery-limit": 20,
        "x-dead-letter-strategy": "at-least-once",
        "x-dead-letter-exchange": "elsewhere",
      },
    });
    await channel.close();
  }, async (topo) => {
    const checks = await runDoctor({ url: RABBITMQ_URL, topology: topo, management });
    const work = find(checks, `queue ${topo.queue}`);
    assert.equal(work.status, "fail");
    assert.match(work.detail, /quorum queue without an explicit x-delivery-limit/);
    const dlq = find(checks, `queue ${topo.deadLetterQueue}`);
    assert.equal(dlq.status, "fail");
    assert.match(dlq.detail, /a delivery limit on the DLQ \(20\): every look at a dead letter/);
    assert.doesNotMatch(dlq.detail, /without an explicit x-delivery-limit/);
    assert.match(dlq.detail, /without x-overflow reject-publish/);
  });
});

Deno.test("doctor says whether the delayed-message plugin is there and whether the backend needs it", async () => {
  const topo = topology({ prefix: uniquePrefix("doctor-plugin"), backend: "plugin" });
  const checks = await runDoctor({ url: RABBITMQ_URL, topology: topo, management });
  const plugin = find(checks, "delayed-message plugin");
  if (plugin.status === "ok") assert.match(plugin.detail, /present/);
  else {assert.match(
      plugin.detail,
      /missing, and the plugin backend needs it: .*--retry-backend ttl/,
    );}
  const ttl = await runDoctor({
    url: RABBITMQ_URL,
    topology: topology({ prefix: topo.prefix }),
    management,
  });
  assert.equal(find(ttl, "delayed-message plugin").status, "ok");
});

Deno.test("doctor reports an unreachable broker as a problem", async () => {
  const checks = await runDoctor({
    url: "amqp://guest:guest@127.0.0.1:1",
    topology: topology(),
    management: undefined,
  });
  assert.equal(checks.length, 1);
  assert.equal(checks[0]!.status, "fail");
  assert.match(
    checks[0]!.detail,
    /cannot connect to RabbitMQ at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:1/,
  );
});

Deno.test("doctor warns on dead letters (with the oldest's age), a consumer with other retry settings, and a retry tier nobody declared", async () => {
  await withTopology("doctor-warn", tiers, async (ctx) => {
    const { topo, broker } = ctx;
    const other = fastPolicy(3, 100);
    const running = await startConsumer(ctx, other);
    const order = newOrder({ quantity: 900 });
    const failure = {
      error: new Error("x"),
      now: new Date(Date.now() - 7_200_000),
      exchange: topo.exchange,
      routingKey: "create",
    };
    await running.publisher.publish(topo.deadLetterExchange, topo.routingKey, encodeOrder(order), {
      messageId: order.refCode,
      headers: deadLetterHeaders({}, failure, 2, "exhausted"),
    });
    const stray = `${topo.queue}.retry.7000ms`;
    const channel = await broker.channel();
    await channel.assertQueue(stray, { durable: true });
    try {
      // The management API sees consumers a few seconds late: wait for the warning.
      const checks = await waitFor("the doctor to see the consumer's retry settings", async () => {
        const found = await runDoctor({
          url: RABBITMQ_URL,
          topology: topo,
          policy: DEFAULT_RETRY_POLICY,
          management,
        });
        return /other retry settings/.test(find(found, `queue ${topo.queue}`).detail)
          ? found
          : undefined;
      }, 15_000);
      const work = find(checks, `queue ${topo.queue}`);
      assert.equal(work.status, "warn");
      assert.ok(work.detail.includes(policyTag(other)), work.detail);
      const dlq = find(checks, `queue ${topo.deadLetterQueue}`);
      assert.equal(dlq.status, "warn");
      assert.match(dlq.detail, /1 dead letter\(s\), the oldest dead-lettered 2h ago/);
      assert.equal(find(checks, `queue ${stray}`).status, "warn");
      assert.equal(await broker.messageCount(topo.deadLetterQueue), 1, "the peek put it back");
    } finally {
      await running.consumer.stop();
      await running.ledger.close();
      await channel.deleteQueue(stray);
      await channel.close();
    }
  });
});

Deno.test("doctor warns on a work queue with no consumer", async () => {
  await withTopology("doctor-idle", tiers, async ({ topo }) => {
    const checks = await runDoctor({ url: RABBITMQ_URL, topology: topo, management });
    const work = find(checks, `queue ${topo.queue}`);
    assert.equal(work.status, "warn");
    assert.match(work.detail, /no consumer/);
  });
});
