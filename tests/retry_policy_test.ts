import { strict as assert } from "node:assert";
import { PermanentError, TransientError } from "../lib/errors.ts";
import {
  backoff,
  decideRetry,
  DEFAULT_RETRY_POLICY,
  retryDelays,
  type RetryPolicy,
} from "../lib/retry_policy.ts";

const linear: RetryPolicy = { ...DEFAULT_RETRY_POLICY, maxRetries: 3 };
const exponential: RetryPolicy = { ...linear, strategy: "exponential", maxRetries: 5 };

Deno.test("the default policy is the Go original's: 2 retries (3 runs), 5 s then 10 s", () => {
  assert.equal(DEFAULT_RETRY_POLICY.maxRetries, 2);
  assert.deepEqual(retryDelays(DEFAULT_RETRY_POLICY), [5_000, 10_000]);
  const error = new TransientError("Maximum quantity exceeded");
  assert.equal(decideRetry(DEFAULT_RETRY_POLICY, 1, error).action, "retry");
  assert.deepEqual(decideRetry(DEFAULT_RETRY_POLICY, 2, error), {
    action: "dead-letter",
    reason: "exhausted",
  });
});

Deno.test("backoff() grows linearly by 5 s per attempt by default", () => {
  assert.deepEqual([1, 2, 3].map((n) => backoff(linear, n)), [5_000, 10_000, 15_000]);
});

Deno.test("backoff() doubles on the exponential strategy and stops at the cap", () => {
  const capped = { ...exponential, maxDelayMs: 30_000 };
  assert.deepEqual([1, 2, 3, 4, 5].map((n) => backoff(capped, n)), [
    5_000,
    10_000,
    20_000,
    30_000,
    30_000,
  ]);
});

Deno.test("backoff() spreads by the jitter and never passes the cap", () => {
  const jittery = { ...linear, jitter: 0.2 };
  assert.equal(backoff(jittery, 1, () => 0), 4_000);
  assert.equal(backoff(jittery, 1, () => 0.5), 5_000);
  assert.equal(backoff(jittery, 1, () => 0.999_999), 6_000);
  assert.equal(backoff({ ...jittery, maxDelayMs: 5_000 }, 1, () => 0.999_999), 5_000);
});

Deno.test("backoff() refuses retry numbers below 1", () => {
  assert.throws(() => backoff(linear, 0), RangeError);
});

Deno.test("retryDelays() lists each distinct delay once, shortest first", () => {
  assert.deepEqual(retryDelays(linear), [5_000, 10_000, 15_000]);
  assert.deepEqual(retryDelays({ ...exponential, maxDelayMs: 20_000 }), [5_000, 10_000, 20_000]);
  assert.deepEqual(retryDelays({ ...linear, maxRetries: 0 }), []);
});

Deno.test("decideRetry() retries a transient failure until the limit, then gives up as exhausted", () => {
  const error = new TransientError("maximum quantity exceeded");
  assert.deepEqual(decideRetry(linear, 0, error), { action: "retry", retry: 1, delayMs: 5_000 });
  assert.deepEqual(decideRetry(linear, 2, error), { action: "retry", retry: 3, delayMs: 15_000 });
  assert.deepEqual(decideRetry(linear, 3, error), { action: "dead-letter", reason: "exhausted" });
});

Deno.test("decideRetry() treats an unknown error as transient", () => {
  assert.equal(decideRetry(linear, 0, new Error("disk full")).action, "retry");
  assert.equal(decideRetry(linear, 0, "a string").action, "retry");
});

Deno.test("decideRetry() dead-letters a permanent failure at once", () => {
  assert.deepEqual(decideRetry(linear, 0, new PermanentError("bad", { code: "invalid" })), {
    action: "dead-letter",
    reason: "invalid",
  });
  assert.deepEqual(decideRetry(linear, 0, new PermanentError("no")), {
    action: "dead-letter",
    reason: "rejected",
  });
});

Deno.test("decideRetry() dead-letters a permanent failure at once: invalid, unsupported-version, else rejected", () => {
  const reason = (code: string | undefined) => {
    const decision = decideRetry(DEFAULT_RETRY_POLICY, 0, new PermanentError("no", { code }));
    assert.equal(decision.action, "dead-letter");
    return (decision as { reason: string }).reason;
  };
  assert.equal(reason("invalid"), "invalid");
  assert.equal(reason("unsupported-version"), "unsupported-version");
  assert.equal(reason("quantity_exceeded"), "rejected");
  assert.equal(reason(undefined), "rejected");
});

Deno.test("every reason this project dead-letters with is one `dlq --reason` takes", async () => {
  // Fails until lib/dlq_command.ts takes its KNOWN_REASONS from DEAD_LETTER_REASONS: without it,
  // `dlq replay --reason unsupported-version` exits 2.
  const { KNOWN_REASONS } = await import("../lib/dlq_command.ts");
  const { DEAD_LETTER_REASONS } = await import("../lib/retry_policy.ts");
  const missing = DEAD_LETTER_REASONS.filter((reason) => !KNOWN_REASONS.includes(reason));
  assert.deepEqual(missing, [], `dlq --reason refuses ${missing.join(", ")}`);
});
