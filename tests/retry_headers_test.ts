import { strict as assert } from "node:assert";
import { INTEGER_TYPES } from "../testing/amqp_types.ts";
import { inspectDeadLetters, replayDeadLetters } from "../lib/dead_letter_ops.ts";
import { PermanentError, TransientError } from "../lib/errors.ts";
import { encodeOrder, newOrder } from "../lib/order.ts";
import { ConfirmedPublisher } from "../lib/publisher.ts";
import { retryDelays } from "../lib/retry_policy.ts";
import {
  deadLetterHeaders,
  HEADER,
  int32,
  MAX_ERROR_LENGTH,
  readDelay,
  readIntegerHeader,
  readRetryCount,
  replayHeaders,
  retryHeaders,
} from "../lib/retry_headers.ts";
import {
  fastPolicy,
  startConsumer,
  takeMessages,
  tapHeaderTypes,
  withTopology,
} from "../testing/broker.ts";

Deno.test("integer headers are written as signed 32-bit values (I), as the Go consumer reads them", () => {
  const int = (value: number) => ({ "!": "int", value });
  const retry = retryHeaders({}, failure, 2, 10_000);
  const dead = deadLetterHeaders({}, failure, 2, "exhausted");
  assert.deepEqual(retry[HEADER.retryCount], int(2));
  assert.deepEqual(retry[HEADER.delay], int(10_000));
  assert.deepEqual(dead[HEADER.retryCount], int(2));
  assert.deepEqual(replayHeaders(dead, failure.now)[HEADER.replayCount], int(1));
  assert.equal(readRetryCount(retry), 2, "our own reader takes the typed form back");
  assert.equal(readDelay(retry), 10_000);
  assert.throws(() => int32(2 ** 31), RangeError);
});

const failure = {
  error: new TransientError("maximum quantity exceeded: 900 > 500"),
  now: new Date("2026-01-02T03:04:05.000Z"),
  exchange: "productionorder",
  routingKey: "create",
};

Deno.test("readRetryCount() reads the count whatever integer type it came as", () => {
  assert.equal(readRetryCount(undefined), 0);
  assert.equal(readRetryCount({}), 0);
  assert.equal(readRetryCount({ [HEADER.retryCount]: 2 }), 2); // int32 from Go, decoded
  assert.equal(readRetryCount({ [HEADER.retryCount]: 3n }), 3); // a 64-bit value as bigint
  assert.equal(readRetryCount({ [HEADER.retryCount]: 1.0 }), 1); // a double holding an integer
});

Deno.test("readRetryCount() refuses wrong types and out-of-range counts as invalid", () => {
  for (const bad of ["2", 1.5, -1, 1_001, true, { a: 1 }, Number.NaN]) {
    assert.throws(
      () => readRetryCount({ [HEADER.retryCount]: bad }),
      (error: unknown) => error instanceof PermanentError && error.code === "invalid",
      `accepted ${String(bad)}`,
    );
  }
});

Deno.test("readDelay() drops the sign the delayed-message plugin adds", () => {
  assert.equal(readDelay({ [HEADER.delay]: -5000 }), 5000);
  assert.equal(readDelay({ [HEADER.delay]: 5000 }), 5000);
  assert.equal(readDelay({}), undefined);
});

Deno.test("readIntegerHeader() says which header held what", () => {
  assert.throws(
    () => readIntegerHeader({ "x-delay": "soon" }, "x-delay"),
    /x-delay must be an integer, got "soon"/,
  );
});

Deno.test("retryHeaders() sets the count and the history, keeps user headers, drops x-death", () => {
  const headers = retryHeaders(
    { "x-trace": "abc", [HEADER.death]: [{ count: 1 }], [HEADER.retryCount]: 1 },
    failure,
    2,
  );
  assert.deepEqual(headers, {
    "x-trace": "abc",
    [HEADER.retryCount]: { "!": "int", value: 2 },
    [HEADER.lastError]: "maximum quantity exceeded: 900 > 500",
    [HEADER.firstFailedAt]: "2026-01-02T03:04:05.000Z",
    [HEADER.originalExchange]: "productionorder",
    [HEADER.originalRoutingKey]: "create",
  });
  assert.deepEqual(retryHeaders({}, failure, 1, 5000)[HEADER.delay], { "!": "int", value: 5000 });
});

Deno.test("retryHeaders() keeps the first failure time and the original route across retries", () => {
  const first = retryHeaders({}, failure, 1);
  const later = retryHeaders(first, {
    ...failure,
    now: new Date("2026-01-02T03:05:00.000Z"),
    exchange: "",
    routingKey: "create.productionorder.retry.5000ms",
  }, 2);
  assert.equal(later[HEADER.firstFailedAt], "2026-01-02T03:04:05.000Z");
  assert.equal(later[HEADER.originalExchange], "productionorder");
  assert.equal(later[HEADER.originalRoutingKey], "create");
});

Deno.test("deadLetterHeaders() carries the reason, the count and a truncated error", () => {
  const headers = deadLetterHeaders(
    {},
    { ...failure, error: new Error("x".repeat(2_000)) },
    3,
    "exhausted",
  );
  assert.equal(headers[HEADER.reason], "exhausted");
  assert.equal(readRetryCount(headers), 3);
  assert.equal((headers[HEADER.lastError] as string).length, MAX_ERROR_LENGTH);
  assert.ok((headers[HEADER.lastError] as string).endsWith("…"));
});

Deno.test("x-retry-count, x-replay-count and x-delay of every AMQP integer type (b B s u I i l), as the broker under test delivers them, are read by the consumer and the dead-letter tools", async () => {
  const policy = fastPolicy(3, 50);
  await withTopology("header-types", { retryDelays: retryDelays(policy) }, async (ctx) => {
    const wireTypes = tapHeaderTypes(ctx.broker);
    // 1. The consumer: an over-limit order per type, each header of that type.
    const { consumer, outcomes, ledger, publisher } = await startConsumer(ctx, policy);
    const refs: string[] = [];
    for (const [type] of INTEGER_TYPES) {
      const order = newOrder({ quantity: 900 });
      refs.push(order.refCode);
      await publisher.publish(ctx.topo.exchange, ctx.topo.routingKey, encodeOrder(order), {
        messageId: order.refCode,
        persistent: true,
        mandatory: true,
        headers: {
          [HEADER.retryCount]: { "!": type, value: 1 },
          [HEADER.replayCount]: { "!": type, value: 2 },
          [HEADER.delay]: { "!": type, value: 100 },
        },
      });
    }
    await outcomes.until("every order dead-lettered", (o) => o.kind === "dead-lettered", 7);
    await consumer.stop();
    await ledger.close();
    // The broker delivered each as it was published (the first 7 deliveries; our copies are I).
    for (const header of [HEADER.retryCount, HEADER.replayCount, HEADER.delay]) {
      assert.deepEqual(
        wireTypes(header).slice(0, 7),
        INTEGER_TYPES.map(([, tag]) => tag),
        `${header} as delivered`,
      );
    }
    for (const ref of refs) {
      const mine = outcomes.outcomes.filter((o) => "messageKey" in o && o.messageKey === ref);
      // x-retry-count 1 was read: the next retry is number 2, and the third is the last.
      assert.deepEqual(
        mine.map((o) => o.kind === "retried" ? `retry ${o.retry}` : o.kind),
        ["retry 2", "retry 3", "dead-lettered"],
        ref,
      );
    }

    // 2. The dead-letter tools: a dead letter per type, x-retry-count 3 and x-replay-count 2.
    const deadLetters = new ConfirmedPublisher(await ctx.broker.confirmChannel());
    await takeMessages(ctx.broker, ctx.topo.deadLetterQueue, 7);
    const letters: string[] = [];
    for (const [type] of INTEGER_TYPES) {
      const order = newOrder({ quantity: 900 });
      letters.push(order.refCode);
      await deadLetters.publish(
        ctx.topo.deadLetterExchange,
        ctx.topo.routingKey,
        encodeOrder(order),
        {
          messageId: order.refCode,
          persistent: true,
          mandatory: true,
          headers: {
            [HEADER.reason]: "exhausted",
            [HEADER.retryCount]: { "!": type, value: 3 },
            [HEADER.replayCount]: { "!": type, value: 2 },
          },
        },
      );
    }
    const seen = await inspectDeadLetters(ctx.broker, ctx.topo);
    assert.deepEqual(
      seen.letters.map((l) => [l.refCode, l.attempts, l.replays]),
      letters.map((ref) => [ref, 3, 2]),
    );
    const replaysBefore = wireTypes(HEADER.replayCount).length;
    const replayed = await replayDeadLetters(ctx.broker, ctx.topo);
    assert.deepEqual([replayed.done, replayed.failed], [7, 0]);
    const copies = await takeMessages(ctx.broker, ctx.topo.queue, 7);
    assert.deepEqual(
      copies.map((m) => m.properties.headers?.[HEADER.replayCount]),
      letters.map(() => 3),
    );
    // Counted one more, and written as a signed 32-bit integer whatever it came as.
    assert.deepEqual(
      wireTypes(HEADER.replayCount).slice(replaysBefore).slice(-7),
      letters.map(() => "I"),
    );
  });
});

Deno.test("x-death is not relied on: a forged x-death changes nothing, and no broker death header (x-death, x-first-death-*, 4.x's x-last-death-*) rides on our copies", async () => {
  const policy = fastPolicy(3, 50);
  await withTopology("x-death", { retryDelays: retryDelays(policy) }, async (ctx) => {
    const wireTypes = tapHeaderTypes(ctx.broker);
    const { consumer, outcomes, ledger, publisher } = await startConsumer(ctx, policy);
    const order = newOrder({ quantity: 900 });
    await publisher.publish(ctx.topo.exchange, ctx.topo.routingKey, encodeOrder(order), {
      messageId: order.refCode,
      persistent: true,
      mandatory: true,
      headers: {
        [HEADER.retryCount]: int32(1),
        // Someone else's history: 50 rejections. Only x-retry-count counts.
        [HEADER.death]: [{ count: 50, reason: "rejected", queue: "elsewhere", exchange: "" }],
      },
    });
    await outcomes.until("the dead letter", (o) => o.kind === "dead-lettered");
    await consumer.stop();
    await ledger.close();
    assert.deepEqual(
      outcomes.outcomes.map((o) => o.kind === "retried" ? `retry ${o.retry}` : o.kind),
      ["retry 2", "retry 3", "dead-lettered"],
    );
    // The retries came back from the tiers with the broker's own death headers (4.x adds
    // x-last-death-*), which the consumer read past.
    assert.ok(wireTypes("x-first-death-reason").length >= 2, "tier expiries seen");
    const [dead] = await takeMessages(ctx.broker, ctx.topo.deadLetterQueue, 1);
    const headers = dead!.properties.headers ?? {};
    assert.equal(headers[HEADER.reason], "exhausted");
    assert.equal(headers[HEADER.retryCount], 3);
    assert.deepEqual(
      Object.keys(headers).filter((k) => /^x-(death|first-death-|last-death-)/.test(k)),
      [],
      "broker death headers on our dead letter",
    );
  });
});
