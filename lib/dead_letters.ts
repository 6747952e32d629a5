/**
 * Operating the dead-letter queue: look at dead letters without losing them, send them back for
 * processing, or purge them. Every operation reads the queue with `basic.get` and leaves what it
 * does not take unacknowledged until it is done, so the broker puts those messages back in their
 * places when the channel closes; a message is only removed after what replaces it is confirmed.
 *
 * @module
 */

import type { Channel, GetMessage } from "amqplib";
import type { Broker } from "./broker.ts";
import { peekRefCode } from "./order.ts";
import { ConfirmedPublisher, copyProperties } from "./publisher.ts";
import { HEADER, readIntegerHeader, replayHeaders } from "./retry_headers.ts";
import type { Topology } from "./topology.ts";

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
  /** The body, byte for byte. */
  readonly body: Uint8Array;
}

/** Which dead letters an operation applies to; every given field must match. */
export interface DeadLetterFilter {
  /** Only this reason. */
  readonly reason?: string | undefined;
  /** Only those dead-lettered at or after this time. */
  readonly since?: Date | undefined;
  /** Only this RefCode (message id), compared without case. */
  readonly ref?: string | undefined;
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

/** Reads a message taken from the dead-letter queue. Pure; never throws. */
export function toDeadLetter(message: Pick<GetMessage, "content" | "properties">): DeadLetter {
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
    // The message id, or for a dead letter without one (the Go services set none) its body's.
    refCode: typeof properties.messageId === "string" && properties.messageId !== ""
      ? properties.messageId
      : peekRefCode(message.content),
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
    body: new Uint8Array(message.content),
  };
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

/** Options shared by the operations. */
export interface DeadLetterScan {
  /** Which dead letters. */
  readonly filter?: DeadLetterFilter;
  /** At most this many matching dead letters. */
  readonly limit?: number;
  /** Stops early when aborted; nothing is lost. */
  readonly signal?: AbortSignal;
}

/**
 * Walks the dead-letter queue once, front to back, calling `visit` for each message; `visit`
 * returns whether it took the message (acked it). Messages it did not take return to the queue in
 * their places when the walk ends. Messages that arrive during the walk are not visited.
 */
async function walk(
  broker: Broker,
  topo: Topology,
  signal: AbortSignal | undefined,
  visit: (message: GetMessage, channel: Channel) => Promise<boolean | "stop">,
): Promise<void> {
  const channel = await broker.channel();
  try {
    const { messageCount } = await channel.checkQueue(topo.deadLetterQueue);
    for (let i = 0; i < messageCount; i++) {
      if (signal?.aborted) break;
      const message = await channel.get(topo.deadLetterQueue, { noAck: false });
      if (message === false) break;
      if ((await visit(message, channel)) === "stop") break;
    }
  } finally {
    await channel.close().catch(() => {}); // what was not taken goes back, in order
  }
}

/** Lists dead letters without consuming them: every one looked at goes back to its place. */
export async function inspectDeadLetters(
  broker: Broker,
  topo: Topology,
  options: DeadLetterScan = {},
): Promise<DeadLetter[]> {
  const found: DeadLetter[] = [];
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  await walk(broker, topo, options.signal, (message) => {
    const letter = toDeadLetter(message);
    if (matchesFilter(letter, options.filter ?? {})) found.push(letter);
    return Promise.resolve(found.length >= limit ? "stop" : false);
  });
  return found;
}

/** Options for {@linkcode replayDeadLetters}. */
export interface ReplayOptions extends DeadLetterScan {
  /** Count what would be replayed, and move nothing. */
  readonly dryRun?: boolean;
  /** At most this many messages a second. */
  readonly ratePerSecond?: number;
  /** How long to wait for each confirm, in milliseconds. @default {10000} */
  readonly confirmTimeoutMs?: number;
  /** Called after each replayed message with the number so far. */
  readonly onProgress?: (replayed: number) => void;
  /** A clock. @default {() => new Date()} */
  readonly now?: () => Date;
}

/** What a replay did. */
export interface ReplaySummary {
  /** Dead letters that matched the filter (up to the limit). */
  readonly matched: number;
  /** Sent back and removed from the dead-letter queue. */
  readonly replayed: number;
  /** Matched but not sent (the publish failed); still in the dead-letter queue. */
  readonly failed: number;
  /** Left in the dead-letter queue because they did not match. */
  readonly kept: number;
}

/**
 * Sends matching dead letters back to the work exchange with the retry count reset and
 * `x-replay-count`/`x-replayed-at` set. Each one is acked from the dead-letter queue only after
 * its republish is confirmed, so an interrupted replay loses nothing (at worst one message is in
 * both queues, and the ledger absorbs the duplicate).
 */
export async function replayDeadLetters(
  broker: Broker,
  topo: Topology,
  options: ReplayOptions = {},
): Promise<ReplaySummary> {
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  const now = options.now ?? (() => new Date());
  const interval = options.ratePerSecond ? 1000 / options.ratePerSecond : 0;
  const confirmChannel = await broker.confirmChannel();
  const publisher = new ConfirmedPublisher(confirmChannel, {
    timeoutMs: options.confirmTimeoutMs ?? 10_000,
  });
  let matched = 0;
  let replayed = 0;
  let failed = 0;
  let kept = 0;
  let nextSlot = performance.now();
  try {
    await walk(broker, topo, options.signal, async (message, channel) => {
      const letter = toDeadLetter(message);
      if (matched >= limit || !matchesFilter(letter, options.filter ?? {})) {
        kept++;
        return false;
      }
      matched++;
      if (options.dryRun) return false;
      if (interval > 0) {
        const wait = nextSlot - performance.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        nextSlot = Math.max(nextSlot, performance.now() - interval) + interval;
      }
      try {
        await publisher.publish(topo.exchange, topo.routingKey, message.content, {
          ...copyProperties(message.properties, replayHeaders(message.properties.headers, now())),
          mandatory: true,
        });
      } catch {
        failed++;
        return false;
      }
      channel.ack(message);
      replayed++;
      options.onProgress?.(replayed);
      return matched >= limit ? "stop" : true;
    });
  } finally {
    await confirmChannel.close().catch(() => {});
  }
  return { matched, replayed, failed, kept };
}

/** What a purge did. */
export interface PurgeSummary {
  /** Dead letters removed. */
  readonly purged: number;
  /** Dead letters left because they did not match. */
  readonly kept: number;
}

/** Removes dead letters for good: all of them, or those matching the filter. */
export async function purgeDeadLetters(
  broker: Broker,
  topo: Topology,
  options: DeadLetterScan = {},
): Promise<PurgeSummary> {
  const filter = options.filter ?? {};
  const selective = filter.reason !== undefined || filter.since !== undefined ||
    filter.ref !== undefined || options.limit !== undefined;
  if (!selective) {
    const channel = await broker.channel();
    try {
      const { messageCount } = await channel.purgeQueue(topo.deadLetterQueue);
      return { purged: messageCount, kept: 0 };
    } finally {
      await channel.close().catch(() => {});
    }
  }
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  let purged = 0;
  let kept = 0;
  await walk(broker, topo, options.signal, (message, channel) => {
    if (purged < limit && matchesFilter(toDeadLetter(message), filter)) {
      channel.ack(message);
      purged++;
      return Promise.resolve(true);
    }
    kept++;
    return Promise.resolve(false);
  });
  return { purged, kept };
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

/** A dead letter as plain JSON; the body as text when it is UTF-8, else base64. */
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
    json.properties = letter.properties;
    json.headers = letter.headers;
    try {
      json.body = new TextDecoder("utf-8", { fatal: true }).decode(letter.body);
    } catch {
      json.bodyBase64 = btoa(String.fromCharCode(...letter.body));
    }
  }
  return json;
}
