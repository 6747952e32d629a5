/**
 * Sending dead letters back for processing: from the dead-letter queue (each one removed only
 * once its copy is confirmed) or from a purge's archive. A letter that cannot be replayed (its
 * headers cannot be rewritten, or the broker refuses its copy) fails alone: it is counted, its
 * reason reported, and it stays where it was. Every copy sent is confirmed or failed before the
 * channels close, whatever else happened.
 *
 * @module
 */

import type { MessageProperties } from "amqplib";
import type { Span } from "@opentelemetry/api";
import { Buffer } from "node:buffer";
import {
  type DeadLetterCounts,
  DeadLetterPassError,
  type DeadLetterScan,
} from "./_dead_letter_pass.ts";
import { walkDeadLetters } from "./_dead_letter_walk.ts";
import type { Broker } from "./broker.ts";
import type { ArchivedDeadLetter } from "./dead_letter_purge.ts";
import { messageMatcher, plainValue, refCodeOf } from "./dead_letters.ts";
import { describeError, errorCode } from "./errors.ts";
import { ConfirmedPublisher, copyProperties, type PublishProperties } from "./publisher.ts";
import { HEADER, replayHeaders } from "./retry_headers.ts";
import type { Topology } from "./topology.ts";
import { endPublishSpan, startPublishSpan } from "./tracing.ts";

/** Options for {@linkcode replayDeadLetters}. */
export interface ReplayOptions extends DeadLetterScan {
  /** Count what would be replayed, and move nothing (a look: the queue's order is kept). */
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

/** A dead letter that was not replayed, and why; it stays where it was. */
export interface ReplayFailure {
  /** Its RefCode, if it has one. */
  readonly refCode: string | undefined;
  /** Why it was not replayed (the error, its causes included). */
  readonly reason: string;
  /** The error's code, where it has one (`nacked`, `returned`, `timeout`, `closed`, …). */
  readonly code: string | undefined;
}

/** What a replay found and did, with the dead letters it could not replay. */
export interface ReplayCounts extends DeadLetterCounts {
  /** The first {@linkcode MAX_REPORTED_FAILURES} of the `failed` ones, in the order they failed. */
  readonly failures: readonly ReplayFailure[];
}

/** The most failures a replay lists (its `failed` count is exact whatever their number). */
export const MAX_REPORTED_FAILURES = 100;

/** The failures of a replay: every one counted, the first ones kept. */
class Failures {
  count = 0;
  readonly list: ReplayFailure[] = [];

  add(refCode: string | undefined, error: unknown): void {
    this.count++;
    if (this.list.length < MAX_REPORTED_FAILURES) {
      this.list.push({ refCode, reason: describeError(error), code: errorCode(error) });
    }
  }
}

/** What becomes of one copy: exactly one of these is called, once. */
interface SendOutcome {
  confirmed(): void;
  failed(error: unknown): void;
}

/**
 * Publishes copies to the work exchange of `topo`, in order, with a window of confirms in flight,
 * and at most `ratePerSecond`.
 */
class Republisher {
  readonly #publisher: ConfirmedPublisher;
  readonly #topo: Topology;
  readonly #window: number;
  readonly #interval: number;
  #inFlight = 0;
  #waiting: Array<() => void> = [];
  #nextSlot = performance.now();
  /** The sends asked for, one after the other. */
  #turns: Promise<unknown> = Promise.resolve();
  /** Copies awaiting their confirm. */
  readonly #confirming = new Set<Promise<void>>();

  constructor(
    publisher: ConfirmedPublisher,
    topo: Topology,
    window: number,
    ratePerSecond: number | undefined,
  ) {
    this.#publisher = publisher;
    this.#topo = topo;
    this.#window = window;
    this.#interval = ratePerSecond ? 1000 / ratePerSecond : 0;
  }

  /**
   * Sends one copy once the copies asked for before it went, the window and the rate allow, and
   * `go()` still says so; `outcome` hears what the broker answers. Resolves when the copy is on
   * its way (true; not when it is confirmed), or was not sent because `go()` said no (false).
   */
  send(
    body: Uint8Array,
    properties: PublishProperties,
    go: () => boolean,
    outcome: SendOutcome,
  ): Promise<boolean> {
    const turn = this.#turns.then(() => this.#sendNow(body, properties, go, outcome));
    this.#turns = turn.catch(() => {});
    return turn;
  }

  async #sendNow(
    body: Uint8Array,
    properties: PublishProperties,
    go: () => boolean,
    outcome: SendOutcome,
  ): Promise<boolean> {
    while (this.#inFlight >= this.#window) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
    if (this.#interval > 0) {
      const wait = this.#nextSlot - performance.now();
      this.#nextSlot = Math.max(this.#nextSlot, performance.now()) + this.#interval;
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
    if (!go()) return false;
    this.#inFlight++;
    const confirming: Promise<void> = this.#publisher.publish(
      this.#topo.exchange,
      this.#topo.routingKey,
      body,
      properties,
    )
      .then(() => outcome.confirmed(), (error: unknown) => outcome.failed(error))
      .catch((error: unknown) => outcome.failed(error)) // an outcome that threw is a failure too
      .finally(() => {
        this.#confirming.delete(confirming);
        this.#inFlight--;
        this.#waiting.shift()?.();
      })
      .catch(() => {}); // the outcome was told; nothing is left to reject
    this.#confirming.add(confirming);
    return true;
  }

  /** Resolves when every copy asked for so far was sent (or not) and is confirmed or failed. */
  async settled(): Promise<void> {
    await this.#turns;
    while (this.#confirming.size > 0) await Promise.allSettled([...this.#confirming]);
  }
}

/**
 * Sends matching dead letters back to the work exchange with the retry count reset and
 * `x-replay-count`/`x-replayed-at` set, with up to `window` confirms in flight. Each one is acked
 * from the dead-letter queue only after its republish is confirmed, so an interrupted replay loses
 * nothing (at worst a message is in both queues, and the ledger absorbs the duplicate). One that
 * cannot be replayed (say its `x-replay-count` is already the largest 32-bit integer, or the
 * broker refuses its copy) stays in the dead-letter queue and is counted in `failed`, with its
 * reason in `failures`.
 *
 * It returns once the dead-letter queue applied what it removed and gave back: the letters left
 * are counted in `left`, in their order (on a quorum queue of RabbitMQ before 4.3, behind those
 * that arrived meanwhile).
 *
 * @throws {DeadLetterPassError} when the pass's channel closes under it (every copy sent is
 * confirmed or failed first; what was not removed is back in the dead-letter queue).
 */
export async function replayDeadLetters(
  broker: Broker,
  topo: Topology,
  options: ReplayOptions = {},
): Promise<ReplayCounts> {
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  const now = options.now ?? (() => new Date());
  const matches = messageMatcher(options.filter);
  const confirmChannel = await broker.confirmChannel();
  const republisher = new Republisher(
    new ConfirmedPublisher(confirmChannel, { timeoutMs: options.confirmTimeoutMs ?? 10_000 }),
    topo,
    options.window ?? 5_000,
    options.ratePerSecond,
  );
  const failures = new Failures();
  let matched = 0;
  let taken = 0;
  let replayed = 0;
  let total: number;
  try {
    total = await walkDeadLetters(broker, topo, options, {
      looksOnly: options.dryRun === true,
      visit: async (message, pass) => {
        if (!matches(message)) return;
        matched++;
        if (options.dryRun || taken >= limit || !pass.active) return;
        taken++;
        const refCode = refCodeOf(message);
        let properties: PublishProperties;
        let span: Span | undefined;
        try {
          const headers = replayCopyHeaders(message.properties.headers, now());
          properties = copyProperties(message.properties, headers, { mandatory: true });
          span = replaySpan(topo, message.content, message.properties, headers);
        } catch (error) {
          failures.add(refCode, error); // it stays in the dead-letter queue
          return;
        }
        // Only what the ack needs outlives the send: the body is let go once it is on its way.
        const { fields } = message;
        const sent = await republisher.send(
          message.content,
          properties,
          () => pass.active,
          {
            confirmed: () => {
              endPublishSpan(span);
              if (pass.ack({ fields })) {
                replayed++;
                options.onProgress?.(replayed);
              } else {
                failures.add(
                  refCode,
                  new Error(
                    "its copy was confirmed, but the pass's channel closed before the dead letter " +
                      "was removed: it is in both queues",
                  ),
                );
              }
            },
            failed: (error) => {
              endPublishSpan(span, error);
              failures.add(refCode, error);
            },
          },
        );
        if (!sent) endPublishSpan(span, new Error("not sent: the pass ended first"));
      },
      settle: () => republisher.settled(),
    });
  } catch (error) {
    if (error instanceof DeadLetterPassError) {
      throw new DeadLetterPassError(`${error.message}; ${replayed} replayed before it ended`, {
        code: error.code,
        cause: error.cause,
      });
    }
    throw error;
  } finally {
    await confirmChannel.close().catch(() => {});
  }
  const done = options.dryRun ? Math.min(matched, limit) : replayed;
  return {
    total,
    matched,
    done,
    failed: failures.count,
    left: await broker.messageCount(topo.deadLetterQueue),
    failures: failures.list,
  };
}

/**
 * The headers of a replayed copy ({@linkcode replayHeaders}).
 *
 * @throws {RangeError} naming `x-replay-count` and its value when one more replay cannot be
 * counted (the count is already the largest 32-bit integer).
 */
function replayCopyHeaders(
  headers: Record<string, unknown> | undefined,
  now: Date,
): Record<string, unknown> {
  try {
    return replayHeaders(headers, now);
  } catch (error) {
    const count = JSON.stringify(plainValue(headers?.[HEADER.replayCount]));
    throw new RangeError(`cannot count one more replay on ${HEADER.replayCount} ${count}`, {
      cause: error,
    });
  }
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

/** Options for {@linkcode replayArchive}. */
export interface ArchiveReplayOptions
  extends Pick<ReplayOptions, "ratePerSecond" | "window" | "onProgress" | "now"> {
  readonly dryRun?: boolean;
}

/**
 * Publishes the dead letters of an archive (written by a purge) back to the work exchange, as a
 * replay: body byte for byte, properties and headers as archived, the retry count reset. One that
 * cannot be replayed is counted in `failed`, with its reason.
 *
 * @throws {Error} naming the file and line of a line that is not an archived dead letter.
 */
export async function replayArchive(
  broker: Broker,
  topo: Topology,
  path: string,
  options: ArchiveReplayOptions = {},
): Promise<ReplayCounts> {
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
  const total = entries.length;
  if (options.dryRun) {
    return { total, matched: total, done: 0, failed: 0, left: 0, failures: [] };
  }
  const confirmChannel = await broker.confirmChannel();
  const republisher = new Republisher(
    new ConfirmedPublisher(confirmChannel),
    topo,
    options.window ?? 5_000,
    options.ratePerSecond,
  );
  const failures = new Failures();
  let done = 0;
  try {
    for (const entry of entries) {
      let body: Uint8Array;
      let properties: PublishProperties;
      let span: Span | undefined;
      try {
        body = new Uint8Array(Buffer.from(entry.body, "base64"));
        const original = entry.properties as unknown as MessageProperties;
        const headers = replayCopyHeaders(entry.headers, now());
        span = replaySpan(topo, body, { ...original, headers: entry.headers }, headers);
        properties = copyProperties(original, headers, { mandatory: true });
      } catch (error) {
        failures.add(entry.refCode ?? undefined, error);
        continue;
      }
      await republisher.send(body, properties, () => true, {
        confirmed: () => {
          endPublishSpan(span);
          done++;
          options.onProgress?.(done);
        },
        failed: (error) => {
          endPublishSpan(span, error);
          failures.add(entry.refCode ?? undefined, error);
        },
      });
    }
  } finally {
    await republisher.settled();
    await confirmChannel.close().catch(() => {});
  }
  return { total, matched: total, done, failed: failures.count, left: 0, failures: failures.list };
}
