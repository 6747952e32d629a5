import { strict as assert } from "node:assert";
import { join } from "node:path";
import { SqliteStockStore } from "../lib/sqlite_stock_store.ts";
import { Broker } from "../lib/broker.ts";
import { parseCommandLine, UsageError } from "../lib/cli.ts";
import { type Check, formatChecks, runDoctor } from "../lib/doctor.ts";
import { doctorConfig } from "../lib/doctor_config.ts";
import { DOCTOR_OPTIONS } from "../lib/options.ts";
import {
  type ManagementClient,
  managementUrlFor,
  managementUrlWithLogin,
  vhostOf,
} from "../lib/management.ts";
import { pluginBackendRuns, type Topology, topology } from "../lib/topology.ts";
import { deleteTopology } from "../lib/declare_topology.ts";
import { encodeOrder, newOrder } from "../lib/order.ts";
import { deadLetterHeaders } from "../lib/retry_headers.ts";
import { DEFAULT_RETRY_POLICY, policyTag } from "../lib/retry_policy.ts";
import {
  fastPolicy,
  RABBITMQ_URL,
  startConsumer,
  tempDir,
  uniquePrefix,
  waitFor,
  withTopology,
} from "../testing/broker.ts";
import {
  connectTo,
  DEFAULT_BROKER,
  hasDelayedMessagePlugin,
  otherBroker,
} from "../testing/other_brokers.ts";

/** The management API of the broker under test (RABBITMQ_MANAGEMENT_URL). */
const management = DEFAULT_BROKER.management;
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
  // A management URL without a login takes the broker's; one with a login keeps it.
  assert.equal(
    managementUrlWithLogin("http://rabbit:15673", "amqp://u:p%40ss@rabbit:5673/prod"),
    "http://u:p%40ss@rabbit:15673/",
  );
  assert.equal(
    managementUrlWithLogin("http://m:n@rabbit:15673/", "amqp://u:p@rabbit:5673"),
    "http://m:n@rabbit:15673/",
  );
  assert.equal(vhostOf("amqp://rabbit"), "/");
});

Deno.test("doctorConfig() reads the management API and --json once, with the services' options", () => {
  const config = (args: string[], env: Record<string, string> = {}) =>
    doctorConfig(parseCommandLine(DOCTOR_OPTIONS, args, env));
  const plain = config(["--prefix", "demo."], { RABBITMQ_URL: "amqp://u:p@rabbit:5672/prod" });
  assert.equal(plain.managementUrl, "http://u:p@rabbit:15672");
  assert.equal(plain.json, false);
  assert.equal(plain.topology.queue, "demo.create.productionorder");
  const given = config(["--management-url", "http://m:15673", "--json"], {
    RABBITMQ_URL: "amqp://u:p@rabbit:5672",
  });
  assert.equal(given.managementUrl, "http://u:p@m:15673/");
  assert.equal(given.json, true);
  assert.equal(config(["--no-management"]).managementUrl, undefined);
  // A bad management URL stops the doctor before it connects, --no-management or not.
  assert.throws(
    () => config(["--no-management", "--management-url", "rabbit:15672"]),
    (e: unknown) =>
      e instanceof UsageError &&
      /^--management-url must be an http:\/\/ or https:\/\/ URL, got "rabbit:15672"$/.test(
        e.message,
      ),
  );
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

/** The doctor's plugin check of `topo` on `url`, with `mgmt` or (undefined) by an AMQP probe. */
async function pluginCheck(
  url: string,
  topo: Topology,
  mgmt: ManagementClient | undefined,
): Promise<Pick<Check, "status" | "detail">> {
  const { status, detail } = find(
    await runDoctor({ url, topology: topo, management: mgmt }),
    "delayed-message plugin",
  );
  return { status, detail };
}

Deno.test("doctor on the broker under test: the delayed-message plugin present before RabbitMQ 4.3, the plugin backend refused from 4.3, with and without the management API", async () => {
  const broker = await connectTo(DEFAULT_BROKER, "test doctor plugin");
  const version = broker.serverVersion;
  await broker.close();
  const plugin = topology({ prefix: uniquePrefix("doctor-plugin"), backend: "plugin" });
  const ttl = topology({ prefix: plugin.prefix });
  for (const mgmt of [management, undefined]) {
    const how = `${mgmt ? "with the management API" : "by an AMQP probe"} on ${version}`;
    if (pluginBackendRuns(version)) {
      // scripts/services.sh enables the plugin on 3.10 and 4.0: the doctor must say so.
      assert.ok(await hasDelayedMessagePlugin(DEFAULT_BROKER), `RabbitMQ ${version} lacks it`);
      assert.deepEqual(
        await pluginCheck(RABBITMQ_URL, plugin, mgmt),
        { status: "ok", detail: "present (needed by the plugin backend)" },
        how,
      );
      assert.deepEqual(await pluginCheck(RABBITMQ_URL, ttl, mgmt), {
        status: "ok",
        detail: "present",
      }, how);
    } else {
      assert.deepEqual(
        await pluginCheck(RABBITMQ_URL, plugin, mgmt),
        unsupportedOn(version, mgmt),
        how,
      );
      assert.deepEqual(await pluginCheck(RABBITMQ_URL, ttl, mgmt), {
        status: "ok",
        detail: `${lookedFor(mgmt)} (the ttl backend does not need it)`,
      }, how);
    }
  }
});

/** What the doctor says of the plugin on RabbitMQ 4.3 and later, where none works. */
function lookedFor(mgmt: ManagementClient | undefined): string {
  return mgmt
    ? "absent: none works on RabbitMQ 4.3 and later"
    : "not looked for: none works on RabbitMQ 4.3 and later";
}

/** The doctor's verdict on the plugin backend on RabbitMQ `version` (4.3 and later). */
function unsupportedOn(
  version: string,
  mgmt: ManagementClient | undefined,
): Pick<Check, "status" | "detail"> {
  return {
    status: "fail",
    detail: `${lookedFor(mgmt)}; the plugin backend cannot run on RabbitMQ ${version}: ` +
      `use --retry-backend ttl (docs/migration.md)`,
  };
}

const noPlugin = otherBroker("NO_PLUGIN");

Deno.test({
  name:
    "doctor on a broker without the delayed-message plugin: a problem for the plugin backend (enable it before 4.3; refused from 4.3), none for the ttl backend (RABBITMQ_URL_NO_PLUGIN)",
  fn: async () => {
    const target = noPlugin;
    const broker = await connectTo(target, "test doctor no plugin");
    const version = broker.serverVersion;
    await broker.close();
    assert.equal(
      await hasDelayedMessagePlugin(target),
      false,
      `RABBITMQ_URL_NO_PLUGIN (${target.management.safeUrl}) has the delayed-message plugin`,
    );
    const plugin = topology({ prefix: uniquePrefix("doctor-no-plugin"), backend: "plugin" });
    const ttl = topology({ prefix: plugin.prefix });
    for (const mgmt of [target.management, undefined]) {
      const how = `${mgmt ? "with the management API" : "by an AMQP probe"} on ${version}`;
      if (pluginBackendRuns(version)) {
        assert.deepEqual(await pluginCheck(target.url, plugin, mgmt), {
          status: "fail",
          detail: `missing, and the plugin backend needs it: "rabbitmq-plugins enable ` +
            `rabbitmq_delayed_message_exchange", or use --retry-backend ttl`,
        }, how);
        assert.deepEqual(await pluginCheck(target.url, ttl, mgmt), {
          status: "ok",
          detail: "absent (the ttl backend does not need it)",
        }, how);
      } else {
        assert.deepEqual(
          await pluginCheck(target.url, plugin, mgmt),
          unsupportedOn(version, mgmt),
          how,
        );
        assert.deepEqual(await pluginCheck(target.url, ttl, mgmt), {
          status: "ok",
          detail: `${lookedFor(mgmt)} (the ttl backend does not need it)`,
        }, how);
      }
    }
  },
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
      // The management API lists a consumer a few seconds late: wait until it does.
      await waitFor(
        "the management API to list the consumer",
        async () => (await management.consumerArguments(topo.queue)).length > 0 || undefined,
        15_000,
      );
      const checks = await runDoctor({
        url: RABBITMQ_URL,
        topology: topo,
        policy: DEFAULT_RETRY_POLICY,
        management,
      });
      assert.match(find(checks, `queue ${topo.queue}`).detail, /other retry settings/);
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

Deno.test({
  name:
    "the management client waits out RabbitMQ 4.x's /api/overview, which now and then takes 5 s: 60 reads in a row all answer (RABBITMQ_URL_4_3)",
  fn: async () => {
    const target = otherBroker("4_3");
    let slowest = 0;
    for (let i = 0; i < 60; i++) {
      const started = performance.now();
      const types = await target.management.exchangeTypes().catch((error: Error) => {
        throw new Error(
          `read ${i + 1} failed after ${Math.round(performance.now() - started)} ms`,
          {
            cause: error,
          },
        );
      });
      assert.ok(types.includes("direct"));
      slowest = Math.max(slowest, performance.now() - started);
    }
    console.log(`the slowest of 60 reads of /api/overview took ${Math.round(slowest)} ms`);
  },
});

Deno.test("doctor checks Estoque's outbox when given its stock store: a request left unsent past --outbox-max-age is a problem, none given is skipped", async () => {
  await withTopology("doctor-outbox", tiers, async (ctx) => {
    await using dir = await tempDir();
    const path = join(dir.path, "stock.sqlite");
    {
      // A request written ten minutes ago that no relay published.
      const long = new Date(Date.now() - 600_000);
      await using store = await SqliteStockStore.open(path, { now: () => long });
      const color = "a81d4c6e-2f93-4b05-9e7a-6c3b1d8f0a42";
      await store.setItem({ color, quantity: 50, reorderPoint: 40, reorderQuantity: 100 });
      await store.move({ color, delta: -20 });
    }
    const doctor = (stockUrl?: string) =>
      runDoctor({ url: RABBITMQ_URL, topology: ctx.topo, management: undefined, stockUrl });
    const stuck = find(await doctor(`sqlite:${path}`), "outbox");
    assert.equal(stuck.status, "fail");
    // Ten minutes, and the second or so the doctor's run took on a loaded machine.
    assert.match(stuck.detail, /^stuck: 1 request unsent, the oldest 60[0-2] s old/);
    assert.equal(find(await doctor(), "outbox").status, "skip");
  });
});
