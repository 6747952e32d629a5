import { strict as assert } from "node:assert";
import { Buffer } from "node:buffer";
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

Deno.test("redactUrl() hides a password given in a URL's query string too", () => {
  assert.equal(
    redactUrl("postgres://app@db:5432/orders?password=hunter2&sslmode=require"),
    "postgres://app@db:5432/orders?password=***&sslmode=require",
  );
  assert.equal(
    redactUrl("cannot open postgres://db/orders?sslmode=disable&PassWord=p%40ss:x refused"),
    "cannot open postgres://db/orders?sslmode=disable&PassWord=*** refused",
  );
  assert.equal(
    redactUrl("postgresql://u:one@db/o?sslpassword=two"),
    "postgresql://u:***@db/o?sslpassword=***",
  );
  // Only a parameter named for a password: others, and the words in plain text, stay.
  assert.equal(
    redactUrl("postgres://db/o?user=app&passwords_seen=2"),
    "postgres://db/o?user=app&passwords_seen=2",
  );
  assert.equal(redactUrl("the password=wrong was refused"), "the password=wrong was refused");
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

/** Counts the socket's writes (`_write` and `_writev`, each one system call or so). */
function countSocketWrites(broker: Broker): () => number {
  type Writes = Record<"_write" | "_writev", ((...args: unknown[]) => unknown) | undefined>;
  const socket = (broker.model.connection as unknown as { stream: Writes }).stream;
  let writes = 0;
  for (const name of ["_write", "_writev"] as const) {
    const original = socket[name];
    if (original === undefined) continue;
    socket[name] = function (this: unknown, ...args: unknown[]) {
      writes++;
      return original.apply(this, args);
    };
  }
  return () => writes;
}

/**
 * Publishes `count` messages of 4 KB in one turn and reads them back; returns the socket writes
 * the publishes took.
 */
async function publishInOneTurn(broker: Broker, count: number): Promise<number> {
  const queue = `test.coalesce.${crypto.randomUUID()}`;
  const channel = await broker.confirmChannel();
  await channel.assertQueue(queue, { durable: false });
  try {
    const writes = countSocketWrites(broker);
    const padding = "x".repeat(4096);
    for (let i = 0; i < count; i++) {
      channel.sendToQueue(queue, Buffer.from(`${i} ${padding}`));
    }
    await channel.waitForConfirms();
    const published = writes();
    const seen: number[] = [];
    for (let i = 0; i < count; i++) {
      const message = await channel.get(queue, { noAck: true });
      assert.ok(message, `message ${i} arrived`);
      seen.push(Number(message.content.toString().split(" ")[0]));
    }
    assert.deepEqual(seen, Array.from({ length: count }, (_, i) => i), "in the order published");
    return published;
  } finally {
    await channel.deleteQueue(queue);
    await channel.close();
  }
}

Deno.test("Broker.connect() sends a turn's frames as few socket writes, in order, past the high-water mark", async () => {
  // 1,000 publishes of 4 KB (4 MB) in one turn: far past the socket's high-water mark, so the
  // multiplexer waits for `drain` between batches.
  await using coalesced = await Broker.connect(RABBITMQ_URL);
  const fewer = await publishInOneTurn(coalesced, 1_000);
  await using plain = await Broker.connect(RABBITMQ_URL, { coalesceWrites: false });
  const each = await publishInOneTurn(plain, 1_000);
  assert.ok(each >= 1_000, `amqplib as it comes writes at least once a message (${each})`);
  assert.ok(fewer <= each / 10, `coalesced: ${fewer} writes against ${each}`);
});
