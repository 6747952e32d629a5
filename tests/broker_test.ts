import { strict as assert } from "node:assert";
import { Broker, redactUrl } from "../lib/broker.ts";
import { describeError } from "../lib/errors.ts";
import { RABBITMQ_URL } from "../testing/broker.ts";

Deno.test("redactUrl() hides the password, and only the password", () => {
  assert.equal(
    redactUrl("amqp://guest:secret@rabbit:5672/prod"),
    "amqp://guest:***@rabbit:5672/prod",
  );
  assert.equal(redactUrl("amqps://u:p%40ss@h"), "amqps://u:***@h");
  assert.equal(redactUrl("amqp://rabbit:5672"), "amqp://rabbit:5672");
  assert.equal(
    redactUrl("a=amqp://x:1@h, b=amqp://y:2@k"),
    "a=amqp://x:***@h, b=amqp://y:***@k",
  );
});

Deno.test("Broker.connect() names the broker without its password when it cannot connect", async () => {
  await assert.rejects(
    () => Broker.connect("amqp://guest:hunter2@127.0.0.1:1"),
    (error: Error) =>
      /^cannot connect to RabbitMQ at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:1: /.test(error.message) &&
      !describeError(error).includes("hunter2"),
  );
});

Deno.test("Broker reports its version and state, and closes twice without complaint", async () => {
  const broker = await Broker.connect(RABBITMQ_URL, { name: "test broker" });
  assert.match(broker.serverVersion, /^\d+\.\d+/);
  assert.equal(broker.isOpen, true);
  await broker.close();
  await broker.close();
  assert.equal(await broker.closed, undefined, "a close we asked for is not an error");
  assert.equal(broker.isOpen, false);
});

Deno.test("Broker.explain() gives the broker's reason for a closed channel", async () => {
  await using broker = await Broker.connect(RABBITMQ_URL);
  const channel = await broker.channel();
  const error = await channel.checkQueue(`test.missing.${crypto.randomUUID()}`).then(
    () => undefined,
    (e: unknown) => broker.explain(e),
  );
  assert.match(error?.message ?? "", /NOT_FOUND/);
});
