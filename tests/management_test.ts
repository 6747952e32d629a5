// managementUrlFor() and vhostOf() on the plain cases, and the client as the doctor uses it, are in
// doctor_test.ts; here the edge cases and each ManagementClient call against the real broker.
import { strict as assert } from "node:assert";
import { Buffer } from "node:buffer";
import { Broker } from "../lib/broker.ts";
import {
  ManagementClient,
  managementUrlFor,
  managementUrlWithLogin,
  vhostOf,
} from "../lib/management.ts";
import { RABBITMQ_URL, waitFor } from "../testing/broker.ts";
import { DEFAULT_BROKER, managementRequest } from "../testing/other_brokers.ts";
import { freePort } from "../testing/postgres.ts";

Deno.test("managementUrlFor() logs in as guest when the AMQP URL has no login, and keeps an encoded one as it is", () => {
  assert.equal(managementUrlFor("amqp://rabbit"), "http://guest:guest@rabbit:15672");
  assert.equal(managementUrlFor("amqp://rabbit:5673/prod"), "http://guest:guest@rabbit:15672");
  assert.equal(
    managementUrlFor("amqp://ops%40corp:p%40ss%2Fw@rabbit"),
    "http://ops%40corp:p%40ss%2Fw@rabbit:15672",
  );
  assert.equal(managementUrlFor("amqp://u:p@[::1]:5672"), "http://u:p@[::1]:15672");
  assert.equal(
    managementUrlFor("amqps://u:p@rabbit.example:5671"),
    "https://u:p@rabbit.example:15672",
  );
});

Deno.test("managementUrlWithLogin() keeps the management URL's own login, path and port", () => {
  assert.equal(
    managementUrlWithLogin("https://mgmt.example/rabbitmq/", "amqps://u:p@rabbit"),
    "https://u:p@mgmt.example/rabbitmq/",
  );
  assert.equal(
    managementUrlWithLogin("http://admin:secret@m:15672", "amqp://u:p@rabbit"),
    "http://admin:secret@m:15672/",
  );
  assert.equal(
    managementUrlWithLogin("http://m:15672", "amqp://rabbit"),
    "http://guest:guest@m:15672/",
  );
});

Deno.test("vhostOf() decodes the path, and takes an empty or bare one as /", () => {
  assert.equal(vhostOf("amqp://rabbit/"), "/");
  assert.equal(vhostOf("amqp://rabbit/%2F"), "/");
  assert.equal(vhostOf("amqp://rabbit/prod"), "prod");
  assert.equal(vhostOf("amqp://rabbit/a%20b"), "a b");
});

Deno.test("ManagementClient keeps the login out of safeUrl and the base URL's trailing slash off", () => {
  const client = new ManagementClient("http://ops:s3cret@rabbit:15672/", "/");
  assert.equal(client.safeUrl, "http://rabbit:15672");
  const proxied = new ManagementClient("https://u:p@mgmt.example/rabbitmq/", "prod");
  assert.equal(proxied.safeUrl, "https://mgmt.example/rabbitmq");
});

/** Names no other test uses, deleted afterwards with everything bound to them. */
async function withObjects(
  fn: (names: { queue: string; exchange: string; broker: Broker }) => Promise<void>,
): Promise<void> {
  const id = crypto.randomUUID();
  const queue = `test.management.${id}`;
  const exchange = `test.management.${id}.x`;
  await using broker = await Broker.connect(RABBITMQ_URL, { name: "test management" });
  const channel = await broker.channel();
  try {
    await fn({ queue, exchange, broker });
  } finally {
    await channel.deleteQueue(queue);
    await channel.deleteExchange(exchange);
    await channel.close();
  }
}

const client = DEFAULT_BROKER.management;

Deno.test("ManagementClient.queue() describes a queue's type, arguments and durability, and is undefined for none", async () => {
  await withObjects(async ({ queue, broker }) => {
    assert.equal(await client.queue(queue), undefined);
    const channel = await broker.channel();
    await channel.assertQueue(queue, {
      durable: true,
      arguments: { "x-max-length": 10, "x-overflow": "reject-publish" },
    });
    await channel.close();
    const described = await client.queue(queue);
    // RabbitMQ 4.x lists the type among the arguments as well, though none was declared.
    const { "x-queue-type": listedType, ...declared } = described?.arguments ?? {};
    assert.ok(listedType === undefined || listedType === "classic", String(listedType));
    assert.deepEqual({ ...described, arguments: declared }, {
      type: "classic",
      arguments: { "x-max-length": 10, "x-overflow": "reject-publish" },
      durable: true,
    });
    assert.ok((await client.queueNames()).includes(queue));
  });
});

Deno.test("ManagementClient.bindings() lists a queue's bindings by exchange and routing key, the default exchange's left out", async () => {
  await withObjects(async ({ queue, exchange, broker }) => {
    const channel = await broker.channel();
    await channel.assertQueue(queue, { durable: true });
    await channel.assertExchange(exchange, "direct", { durable: true });
    assert.deepEqual(await client.bindings(queue), []);
    await channel.bindQueue(queue, exchange, "create");
    await channel.bindQueue(queue, exchange, "");
    await channel.close();
    const bindings = await client.bindings(queue);
    assert.deepEqual(
      bindings.toSorted((a, b) => a.routingKey.localeCompare(b.routingKey)),
      [{ source: exchange, routingKey: "" }, { source: exchange, routingKey: "create" }],
    );
    // A queue that does not exist has none.
    assert.deepEqual(await client.bindings(`${queue}.missing`), []);
  });
});

Deno.test("ManagementClient.consumerArguments() lists each consumer's arguments on one queue, none on another", async () => {
  await withObjects(async ({ queue, broker }) => {
    const channel = await broker.channel();
    await channel.assertQueue(queue, { durable: true });
    const other = `${queue}.other`;
    await channel.assertQueue(other, { durable: true });
    try {
      await channel.consume(queue, () => {}, { arguments: { "x-productionorder-retry": "a" } });
      await channel.consume(queue, () => {}, { arguments: {} });
      await channel.consume(other, () => {}, { arguments: { "x-productionorder-retry": "b" } });
      // The management API's statistics lag the broker by up to 5 s.
      const seen = await waitFor("both consumers in the management API", async () => {
        const found = await client.consumerArguments(queue);
        return found.length === 2 ? found : undefined;
      }, 15_000);
      assert.deepEqual(
        seen.map((a) => JSON.stringify(a)).toSorted(),
        ['{"x-productionorder-retry":"a"}', "{}"].toSorted(),
      );
      assert.deepEqual(await client.consumerArguments(`${queue}.none`), []);
    } finally {
      await channel.deleteQueue(other);
      await channel.close();
    }
  });
});

Deno.test("ManagementClient.publishRate() is undefined for an exchange that does not exist, 0 before anything was published", async () => {
  await withObjects(async ({ exchange, broker }) => {
    assert.equal(await client.publishRate(exchange), undefined);
    const channel = await broker.channel();
    await channel.assertExchange(exchange, "fanout", { durable: true });
    await channel.close();
    assert.equal(await client.publishRate(exchange), 0);
  });
});

Deno.test("ManagementClient.exchangeTypes() names the built-in exchange types", async () => {
  const types = await client.exchangeTypes();
  for (const type of ["direct", "fanout", "topic", "headers"]) {
    assert.ok(types.includes(type), type);
  }
});

Deno.test("ManagementClient works in a vhost whose name holds a slash", async () => {
  const vhost = `test/management.${crypto.randomUUID()}`;
  const path = encodeURIComponent(vhost);
  await managementRequest(DEFAULT_BROKER, "PUT", `vhosts/${path}`, {});
  try {
    const login = new URL(DEFAULT_BROKER.url);
    await managementRequest(
      DEFAULT_BROKER,
      "PUT",
      `permissions/${path}/${encodeURIComponent(decodeURIComponent(login.username))}`,
      { configure: ".*", write: ".*", read: ".*" },
    );
    login.pathname = `/${path}`;
    assert.equal(vhostOf(login.href), vhost);
    const queue = "test.management.in-vhost";
    {
      await using broker = await Broker.connect(login.href, { name: "test management vhost" });
      const channel = await broker.channel();
      await channel.assertQueue(queue, { durable: true });
      await channel.close();
    }
    const inVhost = new ManagementClient(DEFAULT_BROKER.managementUrl, vhost);
    assert.deepEqual(await inVhost.queueNames(), [queue]);
    assert.equal((await inVhost.queue(queue))?.durable, true);
    assert.equal(await client.queue(queue), undefined, "not in the default vhost");
  } finally {
    await managementRequest(DEFAULT_BROKER, "DELETE", `vhosts/${path}`);
  }
});

Deno.test("ManagementClient names the API, never the password, when it refuses the login or cannot be reached", async () => {
  const url = new URL(DEFAULT_BROKER.managementUrl);
  url.password = "not-the-password-7f3a";
  const refused = new ManagementClient(url.href, "/");
  await assert.rejects(
    refused.exchangeTypes(),
    (e: Error) =>
      e.message === `${refused.safeUrl}/api/overview answered 401` &&
      !e.message.includes("not-the-password-7f3a"),
  );
  const nowhere = new ManagementClient(
    `http://u:not-the-password-7f3a@127.0.0.1:${freePort()}`,
    "/",
  );
  await assert.rejects(
    nowhere.queue("q"),
    (e: Error) => !String(e).includes("not-the-password-7f3a"),
  );
});

Deno.test("ManagementClient.publishRate() reads a rate once messages flow", async () => {
  await withObjects(async ({ exchange, queue, broker }) => {
    const channel = await broker.confirmChannel();
    await channel.assertExchange(exchange, "fanout", { durable: true });
    await channel.assertQueue(queue, { durable: true, arguments: { "x-max-length": 1 } });
    await channel.bindQueue(queue, exchange, "");
    // The broker samples every 5 s: publish until a sample shows a rate.
    const rate = await waitFor("a publish rate", async () => {
      for (let i = 0; i < 5; i++) channel.publish(exchange, "", Buffer.from("x"));
      await channel.waitForConfirms();
      const found = await client.publishRate(exchange);
      return found !== undefined && found > 0 ? found : undefined;
    }, 20_000);
    assert.ok(rate > 0);
    await channel.close();
  });
});
