/**
 * When to retry a failed message, after how long, and when to give up. Pure functions: time and
 * randomness come in as arguments, so every decision can be tested exactly.
 *
 * @module
 */

import { PermanentError } from "./errors.ts";

/** How delays grow from one retry to the next. */
export type BackoffStrategy = "linear" | "exponential";

/** The retry settings of OrdemDeProducao. */
export interface RetryPolicy {
  /** How many times a message is retried before it is dead-lettered. */
  readonly maxRetries: number;
  /** The delay before the first retry, in milliseconds; also the linear step. */
  readonly delayMs: number;
  /** `linear`: delay × n. `exponential`: delay × 2^(n-1). */
  readonly strategy: BackoffStrategy;
  /** No delay is longer than this, in milliseconds. */
  readonly maxDelayMs: number;
  /**
   * The spread applied to each delay, from 0 (none) to 1: a delay d becomes a value drawn from
   * d × (1 − jitter) to d × (1 + jitter). Only the plugin backend can honour it, since the TTL
   * backend's delays are fixed per queue.
   */
  readonly jitter: number;
}

/**
 * The defaults, those of the Go original: a message runs at most 3 times (2 retries), waiting 5 s
 * more each time, no jitter. `x-retry-count` counts the retries so far on both sides, so a copy
 * arriving with count 2 is dead-lettered by either consumer.
 *
 * | run | `x-retry-count` | then               |
 * | --- | --------------- | ------------------ |
 * | 1   | 0 (or absent)   | retry 1 after 5 s  |
 * | 2   | 1               | retry 2 after 10 s |
 * | 3   | 2               | dead-lettered      |
 */
export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  maxRetries: 2,
  delayMs: 5_000,
  strategy: "linear",
  maxDelayMs: 3_600_000,
  jitter: 0,
});

/**
 * The delay before retry number `retry` (1 for the first retry), in whole milliseconds.
 *
 * `random` returns a number in [0, 1); with 0.5, or with no jitter, the delay is exact.
 *
 * @example
 * ```ts
 * backoff(DEFAULT_RETRY_POLICY, 2); // 10000
 * backoff({ ...DEFAULT_RETRY_POLICY, strategy: "exponential" }, 3); // 20000
 * ```
 */
export function backoff(policy: RetryPolicy, retry: number, random: () => number = () => 0.5) {
  if (!Number.isInteger(retry) || retry < 1) {
    throw new RangeError(`retry must be an integer of at least 1, got ${retry}`);
  }
  const base = policy.strategy === "linear"
    ? policy.delayMs * retry
    : policy.delayMs * 2 ** (retry - 1);
  const capped = Math.min(base, policy.maxDelayMs);
  const spread = policy.jitter * (2 * random() - 1);
  return Math.max(0, Math.min(Math.round(capped * (1 + spread)), policy.maxDelayMs));
}

/** The delays of retries 1 to `maxRetries` without jitter, each once, in increasing order. */
export function retryDelays(policy: RetryPolicy): number[] {
  const delays = new Set<number>();
  for (let retry = 1; retry <= policy.maxRetries; retry++) delays.add(backoff(policy, retry));
  return [...delays].sort((a, b) => a - b);
}

/**
 * Why a message was dead-lettered (the `x-dead-letter-reason` header): `unsupported-version` for a
 * message whose major version this OrdemDeProducao does not read (lib/order.ts); replay it once
 * one that reads it runs.
 */
export type DeadLetterReason =
  | "exhausted"
  | "invalid"
  | "unroutable"
  | "rejected"
  | "unsupported-version";

/** Every reason this project dead-letters with, for checking a `--reason` given. */
export const DEAD_LETTER_REASONS: readonly DeadLetterReason[] = Object.freeze([
  "exhausted",
  "invalid",
  "unroutable",
  "rejected",
  "unsupported-version",
]);

/** The {@linkcode PermanentError} codes that are a dead-letter reason of their own. */
const PERMANENT_REASONS: ReadonlySet<string> = new Set(["invalid", "unsupported-version"]);

/** What to do with a message whose processing failed. */
export type RetryDecision =
  | { readonly action: "retry"; readonly retry: number; readonly delayMs: number }
  | { readonly action: "dead-letter"; readonly reason: DeadLetterReason };

/**
 * Decides the fate of a failed message from the retries it has had so far and the error.
 *
 * A {@linkcode PermanentError} is dead-lettered at once (reason `invalid` or `unsupported-version`
 * when its code says so, `rejected` otherwise). Anything else is retried until `maxRetries`
 * retries have been made, then dead-lettered as `exhausted`.
 */
export function decideRetry(
  policy: RetryPolicy,
  retriesSoFar: number,
  error: unknown,
  random: () => number = () => 0.5,
): RetryDecision {
  if (error instanceof PermanentError) {
    const code = error.code ?? "";
    return {
      action: "dead-letter",
      reason: PERMANENT_REASONS.has(code) ? code as DeadLetterReason : "rejected",
    };
  }
  if (retriesSoFar >= policy.maxRetries) return { action: "dead-letter", reason: "exhausted" };
  const retry = retriesSoFar + 1;
  return { action: "retry", retry, delayMs: backoff(policy, retry, random) };
}

/** How often a retry copy may come back unroutable before the message is dead-lettered. */
export const UNROUTABLE_ATTEMPTS = 5;

/**
 * What to publish after the broker refused the copy `decision` asked for, on attempt `attempt`
 * (1 for the first): the same copy again (after a delay), or, once a retry copy has come back
 * unroutable {@linkcode UNROUTABLE_ATTEMPTS} times (its retry queue is gone; a cluster node holding
 * it may be restarting), a dead letter with reason `unroutable` instead.
 *
 * @example
 * ```ts
 * const retry = { action: "retry", retry: 1, delayMs: 5000 } as const;
 * decideAfterRefusal(retry, "returned", 4); // retry (the same copy again)
 * decideAfterRefusal(retry, "returned", 5); // { action: "dead-letter", reason: "unroutable" }
 * decideAfterRefusal(retry, "nacked", 9); // retry: only an unroutable copy changes the decision
 * ```
 */
export function decideAfterRefusal(
  decision: RetryDecision,
  refusal: "returned" | "nacked" | "timeout" | "closed",
  attempt: number,
): RetryDecision {
  if (decision.action === "retry" && refusal === "returned" && attempt >= UNROUTABLE_ATTEMPTS) {
    return { action: "dead-letter", reason: "unroutable" };
  }
  return decision;
}

/**
 * The consumer argument in which each OrdemDeProducao states its retry settings, so that the
 * doctor can tell when instances, or the doctor's own settings, disagree.
 */
export const RETRY_POLICY_ARGUMENT = "x-productionorder-retry";

/** A retry policy in one line, for {@linkcode RETRY_POLICY_ARGUMENT}. */
export function policyTag(policy: RetryPolicy): string {
  return `max=${policy.maxRetries} delay=${policy.delayMs} strategy=${policy.strategy} ` +
    `max-delay=${policy.maxDelayMs} jitter=${policy.jitter}`;
}
