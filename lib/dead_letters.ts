/**
 * Reading dead letters: what one is (reason, attempts, last error, when), which ones a filter
 * takes, and how to show them. The operations on the queue are in dead_letter_ops.ts.
 *
 * @module
 */

import type { GetMessage } from "amqplib";
import { Buffer } from "node:buffer";
import { peekRefCode } from "./order.ts";
import { HEADER, readIntegerHeader } from "./retry_headers.ts";

/** One dead-lettered message, as read from the queue. */
export interface DeadLetter {
  /** The message id: the order's RefCode for orders, or whatever the publisher set. */
  readonly refCode: string | undefined;
  /** `x-dead-letter-reason`, or the broker's `x-death` reason, or `unknown`. */
  readonly reason: string;
  /** `x-retry-count`: retries before it was dead-lettered. */
  readonly attempts: number;
  /** `x-last-error`, or empty. */
  readonly lastError: string;
  /** `x-first-failed-at`, if present and valid. */
  readonly firstFailedAt: Date | undefined;
  /** When it was dead-lettered (`x-dead-lettered-at`, else the first failure, else the timestamp). */
  readonly deadLetteredAt: Date | undefined;
  /** `x-replay-count`: how often it was replayed before. */
  readonly replays: number;
  /** All headers. */
  readonly headers: Readonly<Record<string, unknown>>;
  /** The other properties (content type, timestamp, …), without the headers. */
  readonly properties: Readonly<Record<string, unknown>>;
  /**
   * The body, byte for byte; or only its first bytes (a preview, cut where a UTF-8 character
   * begins) when it was read with a `previewBytes` smaller than it: then `size` is larger.
   */
  readonly body: Uint8Array;
  /** The body's size in bytes, whole. */
  readonly size: number;
}

/** How {@linkcode toDeadLetter} reads a message. */
export interface ReadOptions {
  /**
   * Keep at most this many bytes of the body (a preview); the whole body when not given. The
   * RefCode is still read from the whole body.
   */
  readonly previewBytes?: number | undefined;
}

/** Which dead letters an operation applies to; every given field must match. */
export interface DeadLetterFilter {
  /** Only this reason. */
  readonly reason?: string | undefined;
  /** Only those dead-lettered at or after this time. */
  readonly since?: Date | undefined;
  /** Only this RefCode (message id), compared without case. */
  readonly ref?: string | undefined;
  /** Only those dead-lettered before this time. */
  readonly until?: Date | undefined;
  /** Only those whose RefCode, reason or last error contains this text, compared without case. */
  readonly text?: string | undefined;
  /** Only one failure group: those whose last error reads this once normalised. */
  readonly errorGroup?: string | undefined;
  /** Only these RefCodes (a selection), lower-cased. */
  readonly refs?: ReadonlySet<string> | undefined;
}

/** Whether a filter takes every dead letter. */
export function isEmptyFilter(filter: DeadLetterFilter): boolean {
  return Object.values(filter).every((value) => value === undefined);
}

/**
 * An error text with what varies between messages of one cause taken out: times, UUIDs, long hex
 * ids, quoted values and numbers become `<time>`, `<uuid>`, `<hex>`, `"…"` and `<n>`, so that
 * `maximum quantity exceeded: 900 > 500` and `…: 7000 > 500` are one failure group.
 */
export function normaliseError(text: string): string {
  return text
    .replace(/\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?/g, "<time>")
    .replace(/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi, "<uuid>")
    .replace(/\b(?=[0-9a-f]*\d)[0-9a-f]{12,}\b/gi, "<hex>")
    .replace(/"(?:[^"\\]|\\.)*"/g, '"…"')
    .replace(/'(?:[^'\\]|\\.)*'/g, "'…'")
    .replace(/-?\b\d+(\.\d+)?\b/g, "<n>")
    .replace(/\s+/g, " ")
    .trim();
}

function date(value: unknown): Date | undefined {
  if (typeof value === "string") {
    const parsed = new Date(value);
    return Number.isNaN(parsed.getTime()) ? undefined : parsed;
  }
  return undefined;
}

function safeInteger(headers: Record<string, unknown>, name: string): number {
  try {
    return readIntegerHeader(headers, name) ?? 0;
  } catch {
    return 0;
  }
}

/**
 * A dead letter's RefCode: its message id, or for one without (the Go services set none) its
 * body's. Never throws.
 */
export function refCodeOf(message: Pick<GetMessage, "content" | "properties">): string | undefined {
  const messageId: unknown = message.properties.messageId;
  return typeof messageId === "string" && messageId !== ""
    ? messageId
    : peekRefCode(message.content);
}

/**
 * The first `max` bytes of `body` at most, cut back to where a UTF-8 character begins (a copy, so
 * that the whole body can be let go).
 */
function preview(body: Uint8Array, max: number): Uint8Array {
  if (body.byteLength <= max) return new Uint8Array(body);
  let end = Math.max(0, Math.floor(max));
  // A continuation byte (10xxxxxx) is inside a character: cut before the character instead.
  for (let back = 0; back < 3 && end > 0 && (body[end]! & 0xc0) === 0x80; back++) end--;
  return new Uint8Array(body.subarray(0, end)); // a copy (a Buffer's slice() would be a view)
}

/**
 * Reads a message taken from the dead-letter queue; with `previewBytes`, keeps only that much of
 * the body. Pure; never throws.
 */
export function toDeadLetter(
  message: Pick<GetMessage, "content" | "properties">,
  options: ReadOptions = {},
): DeadLetter {
  const { headers: rawHeaders, ...properties } = message.properties;
  const headers: Record<string, unknown> = rawHeaders ?? {};
  const death = Array.isArray(headers[HEADER.death])
    ? (headers[HEADER.death] as Record<string, unknown>[])[0]
    : undefined;
  const reason = typeof headers[HEADER.reason] === "string"
    ? headers[HEADER.reason] as string
    : typeof death?.reason === "string"
    ? `broker:${death.reason}`
    : "unknown";
  const timestamp = typeof properties.timestamp === "number"
    ? new Date(properties.timestamp * 1000)
    : undefined;
  const firstFailedAt = date(headers[HEADER.firstFailedAt]);
  return {
    refCode: refCodeOf(message),
    reason,
    attempts: safeInteger(headers, HEADER.retryCount),
    lastError: typeof headers[HEADER.lastError] === "string"
      ? headers[HEADER.lastError] as string
      : "",
    firstFailedAt,
    deadLetteredAt: date(headers[HEADER.deadLetteredAt]) ?? firstFailedAt ?? timestamp,
    replays: safeInteger(headers, HEADER.replayCount),
    headers,
    properties: properties as Record<string, unknown>,
    body: options.previewBytes === undefined
      ? new Uint8Array(message.content)
      : preview(message.content, options.previewBytes),
    size: message.content.byteLength,
  };
}

const errorGroups = new WeakMap<DeadLetter, string>();

/**
 * A dead letter's failure group: its last error normalised ({@linkcode normaliseError}), worked
 * out once per dead letter however often its group is asked (a console answers many pages from
 * one walk).
 */
export function errorGroupOf(letter: DeadLetter): string {
  let group = errorGroups.get(letter);
  if (group === undefined) {
    group = normaliseError(letter.lastError);
    errorGroups.set(letter, group);
  }
  return group;
}

/**
 * Whether a message taken from the dead-letter queue is one `filter` takes; without a filter it
 * is not even read.
 */
export function messageMatcher(
  filter: DeadLetterFilter = {},
): (message: Pick<GetMessage, "content" | "properties">) => boolean {
  if (isEmptyFilter(filter)) return () => true;
  return (message) => matchesFilter(toDeadLetter(message, { previewBytes: 0 }), filter);
}

/** Whether a dead letter passes a filter. */
export function matchesFilter(letter: DeadLetter, filter: DeadLetterFilter): boolean {
  if (filter.reason !== undefined && letter.reason !== filter.reason) return false;
  if (filter.ref !== undefined && letter.refCode?.toLowerCase() !== filter.ref.toLowerCase()) {
    return false;
  }
  if (filter.since !== undefined) {
    if (letter.deadLetteredAt === undefined || letter.deadLetteredAt < filter.since) return false;
  }
  if (filter.until !== undefined) {
    if (letter.deadLetteredAt === undefined || letter.deadLetteredAt >= filter.until) return false;
  }
  if (filter.refs !== undefined && !filter.refs.has(letter.refCode?.toLowerCase() ?? "")) {
    return false;
  }
  if (filter.errorGroup !== undefined && errorGroupOf(letter) !== filter.errorGroup) {
    return false;
  }
  if (filter.text !== undefined) {
    const text = filter.text.toLowerCase();
    const found = [letter.refCode ?? "", letter.reason, letter.lastError]
      .some((field) => field.toLowerCase().includes(text));
    if (!found) return false;
  }
  return true;
}

/**
 * Parses a `--since` value: a duration back from `now` (`90s`, `15m`, `2h`, `7d`) or an ISO 8601
 * date. Returns undefined when it is neither.
 */
export function parseSince(text: string, now: Date): Date | undefined {
  const duration = /^(\d+)\s*(s|m|h|d)$/.exec(text.trim());
  if (duration) {
    const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[duration[2] as "s"];
    return new Date(now.getTime() - Number(duration[1]) * unit);
  }
  return /^\d{4}-\d\d-\d\d/.test(text) ? date(text) : undefined;
}

/** Renders a duration in milliseconds the short way: `45s`, `12m`, `3h`, `2d`. */
export function formatAge(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7_200) return `${Math.round(seconds / 60)}m`;
  if (seconds < 172_800) return `${Math.round(seconds / 3_600)}h`;
  return `${Math.round(seconds / 86_400)}d`;
}

/** Renders dead letters as an aligned text table. */
export function formatDeadLetterTable(letters: readonly DeadLetter[], now: Date): string {
  const header = ["REF", "REASON", "ATTEMPTS", "AGE", "FIRST FAILURE", "LAST ERROR"];
  const rows = letters.map((l) => [
    l.refCode ?? "-",
    l.reason,
    String(l.attempts),
    l.deadLetteredAt ? formatAge(now.getTime() - l.deadLetteredAt.getTime()) : "-",
    l.firstFailedAt?.toISOString().replace(/\.\d{3}Z$/, "Z") ?? "-",
    l.lastError.length > 60 ? `${l.lastError.slice(0, 59)}…` : l.lastError,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

/**
 * A header or property value made plain for JSON: byte strings as text, dates as ISO 8601,
 * amqplib's typed values (`{"!": type, value}`) as their value, nested tables alike.
 */
export function plainValue(value: unknown): unknown {
  if (value instanceof Uint8Array) return new TextDecoder().decode(value);
  if (value instanceof Date) return value.toISOString();
  if (typeof value === "bigint") return value.toString();
  if (Array.isArray(value)) return value.map(plainValue);
  if (value !== null && typeof value === "object") {
    if ("!" in value && "value" in value) return plainValue((value as { value: unknown }).value);
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plainValue(v)]));
  }
  return value;
}

/**
 * A dead letter as plain JSON; with the body, its properties and headers made plain
 * ({@linkcode plainValue}) and the body as text when it is UTF-8 (a BOM kept), else base64. Of a
 * dead letter read with only a preview of its body, the preview, and `bodyTruncated: true` and
 * `bodyBytes` (the whole body's size) say so.
 */
export function deadLetterJson(letter: DeadLetter, withBody: boolean): Record<string, unknown> {
  const json: Record<string, unknown> = {
    refCode: letter.refCode ?? null,
    reason: letter.reason,
    attempts: letter.attempts,
    lastError: letter.lastError,
    firstFailedAt: letter.firstFailedAt?.toISOString() ?? null,
    deadLetteredAt: letter.deadLetteredAt?.toISOString() ?? null,
    replays: letter.replays,
  };
  if (withBody) {
    json.properties = plainValue(letter.properties);
    json.headers = plainValue(letter.headers);
    try {
      json.body = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(letter.body);
    } catch {
      json.bodyBase64 = Buffer.from(letter.body).toString("base64");
    }
    if (letter.body.byteLength < letter.size) {
      json.bodyTruncated = true;
      json.bodyBytes = letter.size;
    }
  }
  return json;
}
