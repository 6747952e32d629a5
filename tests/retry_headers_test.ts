import { strict as assert } from "node:assert";
import { PermanentError, TransientError } from "../lib/errors.ts";
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
