import { strict as assert } from "node:assert";
import { Buffer } from "node:buffer";
import type { Channel } from "amqplib";
import { Broker } from "../lib/broker.ts";
import { BrokerError, describeError, REPLY_CODE, replyCode } from "../lib/errors.ts";
import { RABBITMQ_URL, waitFor, within } from "../testing/broker.ts";
import { HoldingProxy } from "../testing/proxy.ts";
import {
  type BrokerUnderTest,
  connectTo,
  EVERY_BROKER,
  otherBroker,
} from "../testing/other_brokers.ts";
import { serverVersionAtLeast } from "../lib/server_version.ts";

Deno.test("Broker.connect() names the broker without its password when it cannot connect", async () => {
  await assert.rejects(
    () => Broker.connect("amqp://guest:hunter2@127.0.0.1:1"),
    (error: Error) =>
      /^cannot connect to RabbitMQ at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:1: /.test(error.message) &&
      !describeError(error).includes("hunter2"),
  );
});

Deno.test("Broker.close() on a broker that stopped answering ends the connection: closed, and what waited on it fails", async () => {
  await using proxy = HoldingProxy.start(RABBITMQ_URL);
  // No heartbeat: the silence watch (which would end it after 1.5 intervals) is not what ends it.
  const broker = await Broker.connect(`${proxy.url}?heartbeat=0`, { name: "test close unheard" });
  try {
    const channel = await broker.channel();
    proxy.hold(); // the link goes silent: no close-ok, no answer to anything
    const waiting = channel.checkQueue("amq.rabbitmq.trace.nothing").then(
      () => "answered",
      (error: Error) => error.message,
    );
    await within(broker.close(200), 5_000, "close() on a silent link");
    assert.equal(broker.isOpen, false, "the connection still counts as open");
    assert.equal(await within(broker.closed, 1_000, "closed"), undefined, "a close we asked for");
    assert.notEqual(await within(waiting, 1_000, "the pending call to fail"), "answered");
  } finally {
    proxy.cut();
  }
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

/**
 * What `target` says, through {@linkcode Broker.explain}, to a passive declare of a missing queue,
 * a queue declared again with other arguments, and an exchange of a type it does not know, each
 * on a connection of its own (a refusal may close it).
 */
async function refusalsOn(target: BrokerUnderTest): Promise<void> {
  const queue = `test.reply-code.${crypto.randomUUID()}`;
  const refusal = async (what: string, use: (channel: Channel) => Promise<unknown>) => {
    await using broker = await connectTo(target, `test reply code ${what}`);
    const channel = await broker.channel();
    const error = await use(channel).then(() => undefined, (e: unknown) => broker.explain(e));
    await channel.close().catch(() => {});
    assert.ok(error, `${broker.safeUrl} took ${what}`);
    return { error, version: broker.serverVersion, open: broker.isOpen };
  };
  const missing = await refusal("a missing queue", (ch) => ch.checkQueue(queue));
  assert.equal(replyCode(missing.error), REPLY_CODE.notFound, missing.error.message);
  assert.match(missing.error.message, /NOT_FOUND/);

  await using broker = await connectTo(target, "test reply code setup");
  const setup = await broker.channel();
  await setup.assertQueue(queue, { durable: true });
  try {
    const other = await refusal(
      "a queue declared with other arguments",
      (ch) => ch.assertQueue(queue, { durable: true, arguments: { "x-message-ttl": 5 } }),
    );
    assert.equal(replyCode(other.error), REPLY_CODE.preconditionFailed, other.error.message);
    assert.match(other.error.message, /PRECONDITION_FAILED - inequivalent arg 'x-message-ttl'/);
  } finally {
    await setup.deleteQueue(queue);
    await setup.close();
  }

  const unknown = await refusal(
    "an unknown exchange type",
    (ch) => ch.assertExchange(`${queue}.x`, "x-no-such-type", { autoDelete: true }),
  );
  assert.match(unknown.error.message, /unknown exchange type 'x-no-such-type'/);
  if (serverVersionAtLeast(unknown.version, "4.0")) {
    // 4.x closes only the channel, with the code of a declare that does not match.
    assert.equal(replyCode(unknown.error), REPLY_CODE.preconditionFailed, unknown.error.message);
    assert.equal(unknown.open, true);
  } else {
    // 3.x closes the connection: amqplib fails the declare with "Channel ended", and the code
    // comes with the connection's close, kept on the explained error.
    assert.ok(unknown.error instanceof BrokerError, String(unknown.error));
    assert.equal(unknown.error.replyCode, REPLY_CODE.commandInvalid, unknown.error.message);
    assert.match(describeError(unknown.error), /Channel ended/);
    assert.equal(unknown.open, false);
  }
}

for (const [label, target] of EVERY_BROKER) {
  Deno.test(`Broker.explain() keeps the broker's reply code: 404 for a missing queue, 406 for other arguments, and for an unknown exchange type 503 closing the connection on 3.x, 406 on the channel from 4.0 (${label})`, () =>
    refusalsOn(target));
}

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
  // Exclusive: a transient queue that is not is a deprecated feature on RabbitMQ 4.x.
  await channel.assertQueue(queue, { durable: false, exclusive: true });
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

for (const name of ["4_0", "4_3"] as const) {
  const release = name.replace("_", ".");
  Deno.test({
    name:
      `RabbitMQ ${release} here denies the deprecated features a client could use (a transient non-exclusive queue is refused, global QoS ignored), so a suite run on it shows none of ours uses one (RABBITMQ_URL_${name})`,
    fn: async () => {
      const target = otherBroker(name);
      const queue = `test.deprecated.${crypto.randomUUID()}`;
      /** What the broker says to `use` on a connection of its own (a refusal may close it). */
      const refusal = async (what: string, use: (channel: Channel) => Promise<unknown>) => {
        await using broker = await connectTo(target, `test deprecated ${what}`);
        const channel = await broker.channel();
        const error = await use(channel).then(() => undefined, (e: unknown) => broker.explain(e));
        if (!error) await channel.deleteQueue(queue);
        await channel.close().catch(() => {});
        assert.ok(
          error,
          `RabbitMQ ${broker.serverVersion} at ${broker.safeUrl} permits ${what}: restart it ` +
            `on scripts/services.sh's rabbitmq.conf (--broker ${release} --stop, then start)`,
        );
        return error.message;
      };
      // Refused by closing the whole connection (541 INTERNAL_ERROR), not only the channel.
      assert.match(
        await refusal(
          "transient non-exclusive queues",
          (ch) => ch.assertQueue(queue, { durable: false }),
        ),
        /Feature `transient_nonexcl_queues` is deprecated/,
      );
      // Global QoS denied: the broker takes basic.qos with global set, says so in its log, and
      // applies the limit to each consumer (3.10 applies it to the channel: one delivery here).
      {
        await using broker = await connectTo(target, "test deprecated global QoS");
        const channel = await broker.channel();
        await channel.assertQueue(queue, { durable: false, exclusive: true });
        for (const body of ["a", "b"]) channel.sendToQueue(queue, Buffer.from(body));
        await channel.prefetch(1, true);
        let delivered = 0;
        for (let i = 0; i < 2; i++) await channel.consume(queue, () => delivered++);
        await waitFor("a delivery to each consumer", () => delivered === 2 || undefined, 5_000)
          .catch(() =>
            assert.fail(`global QoS applies on ${broker.safeUrl}: ${delivered} delivered`)
          );
        await channel.deleteQueue(queue);
        await channel.close();
      }
    },
  });
}

/**
 * Sends `target` a body of 16 MiB and one of a byte more, and checks which it takes: RabbitMQ 4.x
 * refuses a body over 16 MiB (`max_message_size`) by closing the channel, 3.x takes up to 128 MiB.
 */
async function largestBodyOn(target: BrokerUnderTest): Promise<void> {
  await using broker = await connectTo(target, "test largest body");
  const limit = 16 * 1024 * 1024;
  const sent = async (bytes: number) => {
    const channel = await broker.confirmChannel();
    const queue = `test.largest-body.${crypto.randomUUID()}`;
    await channel.assertQueue(queue, { durable: false, exclusive: true });
    channel.sendToQueue(queue, Buffer.alloc(bytes, 0x61));
    await channel.waitForConfirms().catch(() => {}); // refused: the channel is closed
    const taken = await channel.checkQueue(queue).then((q) => q.messageCount === 1, () => false);
    if (taken) await channel.deleteQueue(queue);
    await channel.close().catch(() => {});
    return taken; // an exclusive queue left by a closed channel goes with the connection
  };
  const from4 = serverVersionAtLeast(broker.serverVersion, "4.0");
  assert.equal(await sent(limit), true, `16 MiB on ${broker.serverVersion}`);
  assert.equal(await sent(limit + 1), !from4, `16 MiB and a byte on ${broker.serverVersion}`);
}

for (const [label, target] of EVERY_BROKER) {
  Deno.test(`the largest body a broker takes: 16 MiB from RabbitMQ 4.0, 128 MiB on 3.x (${label})`, () =>
    largestBodyOn(target));
}
