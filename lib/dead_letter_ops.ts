/**
 * Operating the dead-letter queue: look at dead letters without losing them, send them back for
 * processing, purge them (archiving them first), or send back an archive. Every operation walks the
 * queue once with one consumer and keeps what it does not take unacknowledged until it is done, so
 * the broker puts those messages back in their places when the channel closes. A dead letter is
 * removed only once what replaces it is confirmed (a replay) or written and synced (an archive).
 * Counts are exact: the walk sees every message that was in the queue when it began.
 *
 * @module
 */

import type { Channel, ConsumeMessage, MessageProperties } from "amqplib";
import { dirname, join } from "node:path";
import type { Broker } from "./broker.ts";
import {
  type DeadLetter,
  type DeadLetterFilter,
  isEmptyFilter,
  matchesFilter,
  toDeadLetter,
} from "./dead_letters.ts";
import { ConfirmedPublisher, copyProperties } from "./publisher.ts";
import { replayHeaders } from "./retry_headers.ts";
import type { Topology } from "./topology.ts";
import type { Span } from "@opentelemetry/api";
import { endPublishSpan, startPublishSpan } from "./tracing.ts";

/** Whether a dead letter is one of `filter`'s; without a filter it is not even parsed. */
function matcher(filter: DeadLetterFilter = {}): (message: ConsumeMessage) => boolean {
  if (isEmptyFilter(filter)) return () => true;
  return (message) => matchesFilter(toDeadLetter(message), filter);
}

/** Options shared by the operations. */
export interface DeadLetterScan {
  /** Which dead letters. */
  readonly filter?: DeadLetterFilter;
  /** Act on at most this many matching dead letters (the rest are still counted). */
  readonly limit?: number;
  /** Stops early when aborted; nothing is lost. */
  readonly signal?: AbortSignal;
  /** Called as the walk goes, with the messages seen so far and the queue's depth when it began. */
  readonly onScan?: (seen: number, total: number) => void;
}

/** What an operation found and did; every count is exact. */
export interface DeadLetterCounts {
  /** Dead letters in the queue when the operation began. */
  readonly total: number;
  /** Of those, the ones matching the filter. */
  readonly matched: number;
  /** Matching ones acted on (replayed, purged, listed), at most `limit`. */
  readonly done: number;
  /** Matching ones whose replay failed; they stay in the dead-letter queue. */
  readonly failed: number;
  /** Dead letters in the queue afterwards. */
  readonly left: number;
}

/**
 * Walks the dead-letter queue once, front to back, calling `visit` for each message that was in it
 * when the walk began, in order. `finish` runs before the channel closes, with the walk's channel
 * (to ack what was taken). Messages nobody acked return to the queue in their places.
 */
async function walk(
  broker: Broker,
  topo: Topology,
  { signal, onScan }: DeadLetterScan,
  visit: (message: ConsumeMessage, channel: Channel) => void | Promise<void>,
  finish?: (channel: Channel) => Promise<void>,
): Promise<number> {
  const channel = await broker.channel();
  try {
    const { messageCount: total } = await channel.checkQueue(topo.deadLetterQueue);
    if (total === 0) return 0;
    const all = Promise.withResolvers<void>();
    const visits: Promise<void>[] = [];
    let seen = 0;
    const stop = () => all.resolve();
    signal?.addEventListener("abort", stop, { once: true });
    // No prefetch limit: the walk holds what it does not take until the end.
    await channel.prefetch(0);
    const { consumerTag } = await channel.consume(topo.deadLetterQueue, (message) => {
      if (message === null) return all.reject(new Error("the broker cancelled the walk"));
      if (seen >= total || signal?.aborted) return; // arrived after the walk began: stays
      seen++;
      onScan?.(seen, total);
      visits.push(Promise.resolve().then(() => visit(message, channel)));
      if (seen === total) all.resolve();
    }, { noAck: false });
    try {
      await all.promise;
    } finally {
      signal?.removeEventListener("abort", stop);
      await channel.cancel(consumerTag).catch(() => {});
      await Promise.allSettled(visits);
    }
    await Promise.all(visits);
    await finish?.(channel);
    return total;
  } finally {
    await channel.close().catch(() => {}); // what was not acked goes back, in order
  }
}

/** What {@linkcode inspectDeadLetters} found. */
export interface Inspection extends DeadLetterCounts {
  /** The matching dead letters, at most `limit`, in queue order. */
  readonly letters: DeadLetter[];
}

/** Lists dead letters without consuming them: every one looked at goes back to its place. */
export async function inspectDeadLetters(
  broker: Broker,
  topo: Topology,
  options: DeadLetterScan = {},
): Promise<Inspection> {
  const letters: DeadLetter[] = [];
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  let matched = 0;
  const total = await walk(broker, topo, options, (message) => {
    const letter = toDeadLetter(message);
    if (!matchesFilter(letter, options.filter ?? {})) return;
    matched++;
    if (letters.length < limit) letters.push(letter);
  });
  return { total, matched, done: letters.length, failed: 0, left: total, letters };
}

/** Options for {@linkcode replayDeadLetters}. */
export interface ReplayOptions extends DeadLetterScan {
  /** Count what would be replayed, and move nothing. */
  readonly dryRun?: boolean;
  /** At most this many messages a second. */
  readonly ratePerSecond?: number;
  /**
   * Republishes awaiting their confirm at once.
   * @default {5000}
   */
  readonly window?: number;
  /** How long to wait for each confirm, in milliseconds. @default {10000} */
  readonly confirmTimeoutMs?: number;
  /** Called as replays are confirmed, with the number so far. */
  readonly onProgress?: (replayed: number) => void;
  /** A clock. @default {() => new Date()} */
  readonly now?: () => Date;
}

/** Publishes copies with a window of confirms in flight, and at most `ratePerSecond`. */
class Republisher {
  readonly #publisher: ConfirmedPublisher;
  readonly #window: number;
  readonly #interval: number;
  #inFlight = 0;
  #waiting: Array<() => void> = [];
  #nextSlot = performance.now();
  readonly #sent: Promise<void>[] = [];

  constructor(publisher: ConfirmedPublisher, window: number, ratePerSecond: number | undefined) {
    this.#publisher = publisher;
    this.#window = window;
    this.#interval = ratePerSecond ? 1000 / ratePerSecond : 0;
  }

  /**
   * Sends one copy once the window and the rate allow; `onConfirmed` or `onFailed` runs when the
   * broker answers. Resolves when the copy is on its way (not when it is confirmed).
   */
  async send(
    exchange: string,
    routingKey: string,
    body: Uint8Array,
    properties: Parameters<ConfirmedPublisher["publish"]>[3],
    onConfirmed: () => void,
    onFailed: (error: unknown) => void,
  ): Promise<void> {
    while (this.#inFlight >= this.#window) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
    this.#inFlight++;
    if (this.#interval > 0) {
      const wait = this.#nextSlot - performance.now();
      this.#nextSlot = Math.max(this.#nextSlot, performance.now()) + this.#interval;
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
    this.#sent.push(
      this.#publisher.publish(exchange, routingKey, body, properties).then(onConfirmed, onFailed)
        .finally(() => {
          this.#inFlight--;
          this.#waiting.shift()?.();
        }),
    );
  }

  /** Resolves when every copy sent so far is confirmed or failed. */
  async settled(): Promise<void> {
    await Promise.all(this.#sent);
  }
}

/**
 * Sends matching dead letters back to the work exchange with the retry count reset and
 * `x-replay-count`/`x-replayed-at` set, with up to `window` confirms in flight. Each one is acked
 * from the dead-letter queue only after its republish is confirmed, so an interrupted replay loses
 * nothing (at worst a message is in both queues, and the ledger absorbs the duplicate).
 */
export async function replayDeadLetters(
  broker: Broker,
  topo: Topology,
  options: ReplayOptions = {},
): Promise<DeadLetterCounts> {
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  const now = options.now ?? (() => new Date());
  const matches = matcher(options.filter);
  const confirmChannel = await broker.confirmChannel();
  const republisher = new Republisher(
    new ConfirmedPublisher(confirmChannel, { timeoutMs: options.confirmTimeoutMs ?? 10_000 }),
    options.window ?? 5_000,
    options.ratePerSecond,
  );
  let matched = 0;
  let taken = 0;
  let replayed = 0;
  let failed = 0;
  let total: number;
  try {
    total = await walk(broker, topo, options, async (message, channel) => {
      if (!matches(message)) return;
      matched++;
      if (options.dryRun || taken >= limit || options.signal?.aborted) return;
      taken++;
      const headers = replayHeaders(message.properties.headers, now());
      const span = replaySpan(topo, message.content, message.properties, headers);
      await republisher.send(
        topo.exchange,
        topo.routingKey,
        message.content,
        copyProperties(message.properties, headers, { mandatory: true }),
        () => {
          endPublishSpan(span);
          channel.ack(message);
          replayed++;
          options.onProgress?.(replayed);
        },
        (error) => {
          endPublishSpan(span, error);
          failed++;
        },
      );
    }, () => republisher.settled());
  } finally {
    await confirmChannel.close().catch(() => {});
  }
  const done = options.dryRun ? Math.min(matched, limit) : replayed;
  return { total, matched, done, failed, left: await broker.messageCount(topo.deadLetterQueue) };
}

/**
 * With tracing on, the span of a replay: a new trace, linked to the one the dead letter carried,
 * whose context goes into the replayed copy.
 */
function replaySpan(
  topo: Topology,
  body: Uint8Array,
  original: Pick<MessageProperties, "headers" | "messageId">,
  headers: Record<string, unknown>,
): Span | undefined {
  return startPublishSpan(
    {
      operation: "publish",
      destination: topo.exchange,
      routingKey: topo.routingKey,
      messageId: original.messageId,
      bodySize: body.byteLength,
    },
    headers,
    { linkTo: original.headers ?? {}, name: `replay ${topo.exchange}` },
  );
}

/** The archive file of a purge of `queue` at `at`, in `dir`: one file per purge. */
export function archivePath(dir: string, queue: string, at: Date): string {
  return join(dir, `${queue}-${at.toISOString().replace(/[:.]/g, "-")}.jsonl`);
}

/** Where a purge writes what it deletes (JSON Lines), or `undefined` to keep nothing. */
export interface PurgeOptions extends DeadLetterScan {
  /** The archive file (its folder made if missing); written and synced before anything is deleted. */
  readonly archive: string | undefined;
}

/** One dead letter as an archive line: everything needed to publish it again, byte for byte. */
export interface ArchivedDeadLetter {
  readonly refCode: string | null;
  readonly reason: string;
  readonly archivedAt: string;
  readonly properties: Record<string, unknown>;
  readonly headers: Record<string, unknown>;
  /** The body, base64. */
  readonly body: string;
}

function archiveLine(message: ConsumeMessage, at: string): string {
  const letter = toDeadLetter(message);
  const { headers: _headers, ...properties } = message.properties;
  const line: ArchivedDeadLetter = {
    refCode: letter.refCode ?? null,
    reason: letter.reason,
    archivedAt: at,
    properties,
    headers: { ...letter.headers },
    body: btoa(Array.from(message.content, (byte) => String.fromCharCode(byte)).join("")),
  };
  return `${JSON.stringify(line)}\n`;
}

/**
 * Removes matching dead letters for good, having first written them to `archive` (appended and
 * synced before the first one is deleted). Without an archive and without a filter or limit, the
 * queue is purged in one operation.
 */
export async function purgeDeadLetters(
  broker: Broker,
  topo: Topology,
  options: PurgeOptions,
): Promise<DeadLetterCounts> {
  const filter = options.filter ?? {};
  const selective = !isEmptyFilter(filter) || options.limit !== undefined;
  if (!selective && options.archive === undefined) {
    const channel = await broker.channel();
    try {
      const { messageCount } = await channel.purgeQueue(topo.deadLetterQueue);
      return { total: messageCount, matched: messageCount, done: messageCount, failed: 0, left: 0 };
    } finally {
      await channel.close().catch(() => {});
    }
  }
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  const taken: ConsumeMessage[] = [];
  const lines: string[] = [];
  const at = new Date().toISOString();
  let matched = 0;
  const matches = matcher(filter);
  const total = await walk(broker, topo, options, (message) => {
    if (!matches(message)) return;
    matched++;
    if (taken.length >= limit) return;
    taken.push(message);
    if (options.archive !== undefined) lines.push(archiveLine(message, at));
  }, async (channel) => {
    if (options.archive !== undefined && lines.length > 0) {
      await Deno.mkdir(dirname(options.archive), { recursive: true });
      await using file = await Deno.open(options.archive, {
        append: true,
        create: true,
        write: true,
      });
      await file.write(new TextEncoder().encode(lines.join("")));
      await file.sync();
    }
    for (const message of taken) channel.ack(message);
  });
  return {
    total,
    matched,
    done: taken.length,
    failed: 0,
    left: await broker.messageCount(topo.deadLetterQueue),
  };
}

/** Options for {@linkcode replayArchive}. */
export interface ArchiveReplayOptions
  extends Pick<ReplayOptions, "ratePerSecond" | "window" | "onProgress" | "now"> {
  readonly dryRun?: boolean;
}

/**
 * Publishes the dead letters of an archive (written by a purge) back to the work exchange, as a
 * replay: body byte for byte, properties and headers as archived, the retry count reset.
 *
 * @throws {Error} naming the file and line of a line that is not an archived dead letter.
 */
export async function replayArchive(
  broker: Broker,
  topo: Topology,
  path: string,
  options: ArchiveReplayOptions = {},
): Promise<DeadLetterCounts> {
  const now = options.now ?? (() => new Date());
  const entries: ArchivedDeadLetter[] = (await Deno.readTextFile(path)).split("\n")
    .flatMap((line, i) => {
      if (line.trim() === "") return [];
      try {
        const entry = JSON.parse(line) as ArchivedDeadLetter;
        if (typeof entry.body !== "string" || typeof entry.headers !== "object") throw 0;
        return [entry];
      } catch {
        throw new Error(`${path}:${i + 1} is not an archived dead letter`);
      }
    });
  if (options.dryRun) {
    return { total: entries.length, matched: entries.length, done: 0, failed: 0, left: 0 };
  }
  const confirmChannel = await broker.confirmChannel();
  const republisher = new Republisher(
    new ConfirmedPublisher(confirmChannel),
    options.window ?? 5_000,
    options.ratePerSecond,
  );
  let done = 0;
  let failed = 0;
  try {
    for (const entry of entries) {
      const body = Uint8Array.from(atob(entry.body), (c) => c.charCodeAt(0));
      const properties = entry.properties as unknown as MessageProperties;
      const headers = replayHeaders(entry.headers, now());
      const span = replaySpan(topo, body, { ...properties, headers: entry.headers }, headers);
      await republisher.send(
        topo.exchange,
        topo.routingKey,
        body,
        copyProperties(properties, headers, { mandatory: true }),
        () => {
          endPublishSpan(span);
          done++;
          options.onProgress?.(done);
        },
        () => failed++,
      );
    }
    await republisher.settled();
  } finally {
    await confirmChannel.close().catch(() => {});
  }
  return { total: entries.length, matched: entries.length, done, failed, left: 0 };
}
