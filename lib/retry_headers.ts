/**
 * Reading and writing the headers that carry a message's retry history.
 *
 * A dead-lettered message carries:
 *
 * | header                   | value                                          |
 * | ------------------------ | ---------------------------------------------- |
 * | `x-retry-count`          | retries made before it was dead-lettered       |
 * | `x-dead-letter-reason`   | `exhausted`, `invalid`, `unroutable`, …        |
 * | `x-last-error`           | the last error's message, at most 512 chars    |
 * | `x-first-failed-at`      | ISO 8601 time of the first failure             |
 * | `x-original-exchange`    | the exchange it was first published to         |
 * | `x-original-routing-key` | the routing key it was first published with    |
 * | `x-dead-lettered-at`     | ISO 8601 time it was dead-lettered              |
 * | `x-copy-id`              | which copy this is (copy_identity.ts)          |
 *
 * A retry copy carries the same history headers but the reason, plus `x-delay` on the plugin
 * backend.
 *
 * Every integer header written here (`x-retry-count`, `x-delay`, `x-replay-count`) goes out as a
 * signed 32-bit integer (AMQP type `I`), as the Go services write and read them: amqplib would
 * otherwise pick the smallest type that fits (`b` for 2, `s` for 5000), and the Go consumer's
 * unchecked `.(int32)` panics on those. Reading accepts any integer type.
 *
 * @module
 */

import { PermanentError } from "./errors.ts";
import type { DeadLetterReason } from "./retry_policy.ts";

/** Header names, in one place. */
export const HEADER = Object.freeze({
  retryCount: "x-retry-count",
  delay: "x-delay",
  reason: "x-dead-letter-reason",
  lastError: "x-last-error",
  firstFailedAt: "x-first-failed-at",
  originalExchange: "x-original-exchange",
  originalRoutingKey: "x-original-routing-key",
  death: "x-death",
  replayCount: "x-replay-count",
  replayedAt: "x-replayed-at",
  deadLetteredAt: "x-dead-lettered-at",
  copyId: "x-copy-id",
});

/** The longest `x-last-error` written; longer messages are cut and end in `…`. */
export const MAX_ERROR_LENGTH = 512;

/** A retry count above this is not a count but garbage, and the message is invalid. */
export const MAX_RETRY_COUNT = 1_000;

/** AMQP headers as amqplib hands them over. */
export type Headers = Record<string, unknown>;

/** A header value with its AMQP type spelt out, in amqplib's `{"!": type, value}` notation. */
export interface TypedHeaderValue {
  readonly "!": "int";
  readonly value: number;
}

/**
 * A signed 32-bit integer header value (AMQP field type `I`), whatever its size: what Go's
 * streadway/amqp writes for an `int32` and what the Go consumer reads back.
 *
 * @throws {RangeError} when `value` is not an integer from -2^31 to 2^31-1.
 * @example
 * ```ts
 * int32(2); // { "!": "int", value: 2 }, encoded as 'I' 00 00 00 02 (not as the byte 'b' 02)
 * ```
 */
export function int32(value: number): TypedHeaderValue {
  if (!Number.isInteger(value) || value < -0x8000_0000 || value > 0x7fff_ffff) {
    throw new RangeError(`a 32-bit header value must be an integer in range, got ${value}`);
  }
  return { "!": "int", value };
}

/** The value of a header given as `{"!": type, value}`, or the value itself. */
function untyped(value: unknown): unknown {
  return typeof value === "object" && value !== null && Object.hasOwn(value, "!")
    ? (value as { value: unknown }).value
    : value;
}

/**
 * Reads an integer header whatever numeric type it arrived as (byte, short, int32, int64, or a
 * double holding an integer). Returns `undefined` when absent, and throws a
 * {@linkcode PermanentError} with code `invalid` when present but not an integer.
 */
export function readIntegerHeader(headers: Headers | undefined, name: string): number | undefined {
  const value = untyped(headers?.[name]);
  if (value === undefined || value === null) return undefined;
  const number = typeof value === "bigint" ? Number(value) : value;
  if (typeof number !== "number" || !Number.isSafeInteger(number)) {
    throw new PermanentError(`header ${name} must be an integer, got ${describe(value)}`, {
      code: "invalid",
    });
  }
  return number;
}

/**
 * The number of retries a message has had (`x-retry-count`), 0 when absent.
 *
 * @throws {PermanentError} with code `invalid` when the header is not an integer from 0 to
 * {@linkcode MAX_RETRY_COUNT}.
 */
export function readRetryCount(headers: Headers | undefined): number {
  const count = readIntegerHeader(headers, HEADER.retryCount) ?? 0;
  if (count < 0 || count > MAX_RETRY_COUNT) {
    throw new PermanentError(
      `header ${HEADER.retryCount} must be from 0 to ${MAX_RETRY_COUNT}, got ${count}`,
      { code: "invalid" },
    );
  }
  return count;
}

/**
 * The delay a message was published with (`x-delay`), in milliseconds, or `undefined`. The
 * delayed-message plugin hands the header back negated, so the sign is dropped.
 */
export function readDelay(headers: Headers | undefined): number | undefined {
  const delay = readIntegerHeader(headers, HEADER.delay);
  return delay === undefined ? undefined : Math.abs(delay);
}

/** What happened to a message, for the headers of its retry or dead-letter copy. */
export interface FailureRecord {
  /** The error that made this attempt fail. */
  readonly error: unknown;
  /** When it failed. */
  readonly now: Date;
  /** The exchange the message was delivered from. */
  readonly exchange: string;
  /** The routing key the message was delivered with. */
  readonly routingKey: string;
  /**
   * The copy's `x-copy-id` (copy_identity.ts): the same for every copy made of one delivery and
   * decision, so a second copy is known as one.
   */
  readonly copyId?: string;
}

/** Cuts an error message to {@linkcode MAX_ERROR_LENGTH} characters. */
export function truncateError(message: string): string {
  return message.length > MAX_ERROR_LENGTH ? `${message.slice(0, MAX_ERROR_LENGTH - 1)}…` : message;
}

function errorMessage(error: unknown): string {
  return truncateError(error instanceof Error ? error.message : String(error));
}

function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.slice(0, 40));
  if (value instanceof Uint8Array) return `${value.byteLength} bytes`;
  if (typeof value === "object" && value !== null) {
    return JSON.stringify(value)?.slice(0, 60) ?? typeof value;
  }
  return String(value);
}

/**
 * The broker's dead-lettering headers: `x-death`, `x-first-death-*` and, from RabbitMQ 3.13,
 * `x-last-death-*`. They describe one hop; nothing here decides on them.
 */
const BROKER_DEATH_HEADER = /^x-(death|first-death-|last-death-)/;

/** Copies the headers worth keeping: everything but the broker's and our per-hop ones. */
function carriedHeaders(headers: Headers | undefined): Headers {
  const carried: Headers = {};
  if (headers === undefined) return carried;
  for (const key of Object.keys(headers)) {
    if (key === HEADER.delay || key === HEADER.reason || key === HEADER.copyId) continue;
    if (BROKER_DEATH_HEADER.test(key)) continue;
    carried[key] = headers[key];
  }
  return carried;
}

/**
 * Adds the history to `next`: the last error, and when the message first failed, from which
 * exchange and with which routing key (kept from an earlier copy's headers); `at` is
 * `failure.now` as ISO text, made once by the caller.
 */
function withHistory(
  next: Headers,
  headers: Headers | undefined,
  failure: FailureRecord,
  at: string,
): Headers {
  const firstFailedAt = headers?.[HEADER.firstFailedAt];
  const originalExchange = headers?.[HEADER.originalExchange];
  const originalRoutingKey = headers?.[HEADER.originalRoutingKey];
  next[HEADER.lastError] = errorMessage(failure.error);
  next[HEADER.firstFailedAt] = typeof firstFailedAt === "string" ? firstFailedAt : at;
  next[HEADER.originalExchange] = typeof originalExchange === "string"
    ? originalExchange
    : failure.exchange;
  next[HEADER.originalRoutingKey] = typeof originalRoutingKey === "string"
    ? originalRoutingKey
    : failure.routingKey;
  if (failure.copyId !== undefined) next[HEADER.copyId] = failure.copyId;
  return next;
}

/**
 * The headers of a retry copy: the original's, the history, the new `x-retry-count`, and
 * `x-delay` when `delayMs` is given (plugin backend).
 */
export function retryHeaders(
  headers: Headers | undefined,
  failure: FailureRecord,
  retry: number,
  delayMs?: number,
): Headers {
  const next = withHistory(carriedHeaders(headers), headers, failure, failure.now.toISOString());
  next[HEADER.retryCount] = int32(retry);
  if (delayMs !== undefined) next[HEADER.delay] = int32(delayMs);
  return next;
}

/** The headers of a dead-letter copy: the original's, the history, the count and the reason. */
export function deadLetterHeaders(
  headers: Headers | undefined,
  failure: FailureRecord,
  retriesSoFar: number,
  reason: DeadLetterReason,
): Headers {
  const at = failure.now.toISOString();
  const next = withHistory(carriedHeaders(headers), headers, failure, at);
  next[HEADER.retryCount] = int32(retriesSoFar);
  next[HEADER.reason] = reason;
  next[HEADER.deadLetteredAt] = at;
  return next;
}

/**
 * The headers of a dead letter sent back for processing: the retry count starts again from 0,
 * the reason is dropped, `x-replay-count` goes up by one and `x-replayed-at` is set. The failure
 * history (`x-first-failed-at`, `x-last-error`, the original route) is kept.
 */
export function replayHeaders(headers: Headers | undefined, now: Date): Headers {
  const replays = untyped(headers?.[HEADER.replayCount]);
  const previous = typeof replays === "number" && Number.isSafeInteger(replays) && replays >= 0
    ? replays
    : 0;
  const next = carriedHeaders(headers);
  delete next[HEADER.retryCount];
  delete next[HEADER.deadLetteredAt];
  return {
    ...next,
    [HEADER.replayCount]: int32(previous + 1),
    [HEADER.replayedAt]: now.toISOString(),
  };
}
