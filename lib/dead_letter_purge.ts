/**
 * Purging dead letters for good, archived first: a purge deletes exactly what its archive holds.
 * The archive's lines are written whole (a short write carried on) as the pass walks, then the
 * file is synced (and its folder, the file being new); only then is the purge recorded (the
 * caller's `beforeDelete`: the audit entry), and only then is the first dead letter deleted. A
 * purge that cannot archive or record (a full disk) deletes nothing, and takes its archive back.
 *
 * @module
 */

import type { ConsumeMessage, Message } from "amqplib";
import { join } from "node:path";
import { DurableAppend } from "./_durable_append.ts";
import {
  type DeadLetterCounts,
  DeadLetterPassError,
  type DeadLetterScan,
} from "./_dead_letter_pass.ts";
import { walkDeadLetters } from "./_dead_letter_walk.ts";
import type { Broker } from "./broker.ts";
import { messageMatcher, toDeadLetter } from "./dead_letters.ts";
import { errorCode } from "./errors.ts";
import type { Topology } from "./topology.ts";

/** The archive file of a purge of `queue` at `at`, in `dir`: one file per purge. */
export function archivePath(dir: string, queue: string, at: Date): string {
  return join(dir, `${queue}-${at.toISOString().replace(/[:.]/g, "-")}.jsonl`);
}

/** Where a purge writes what it deletes (JSON Lines), or `undefined` to keep nothing. */
export interface PurgeOptions extends DeadLetterScan {
  /** The archive file (its folder made if missing); written and synced before anything is deleted. */
  readonly archive: string | undefined;
  /**
   * Called once the archive is written and synced, before the first dead letter is deleted, with
   * the counts the purge is about to make true (`left`: what the queue will hold of what it held
   * when the purge began). If it throws, nothing is deleted and the archive is taken back. This
   * is where the audit entry is written.
   */
  readonly beforeDelete?: (counts: DeadLetterCounts) => Promise<void>;
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

/** A purge that deleted nothing; what it archived was taken back. */
export class PurgeError extends Error {
  /** The code of what stopped it (`disk_full`, `write_failed`, `channel_closed`, …) or `failed`. */
  readonly code: string;

  /** Wraps what stopped a purge of `queue` before it deleted anything. */
  constructor(queue: string, cause: unknown) {
    super(`nothing was purged from ${queue}`, { cause });
    this.name = "PurgeError";
    this.code = errorCode(cause) ?? "failed";
  }
}

function archiveLine(message: ConsumeMessage, at: string): string {
  const letter = toDeadLetter(message, { previewBytes: 0 });
  const { headers: _headers, ...properties } = message.properties;
  const line: ArchivedDeadLetter = {
    refCode: letter.refCode ?? null,
    reason: letter.reason,
    archivedAt: at,
    properties,
    headers: { ...letter.headers },
    body: message.content.toString("base64"),
  };
  return `${JSON.stringify(line)}\n`;
}

/**
 * The archive as a purge writes it: lines appended one after the other as they come (each
 * append resolves once its bytes are in the file), made on the first line.
 */
class ArchiveWriter {
  readonly #path: string;
  #file: DurableAppend | undefined;
  #queue: { bytes: Uint8Array; written: PromiseWithResolvers<void> }[] = [];
  #writing: Promise<void> | undefined;
  #draining = false;
  #error: unknown;

  constructor(path: string) {
    this.#path = path;
  }

  /** Appends a line; resolves once it is all in the file (not yet synced). */
  append(line: string): Promise<void> {
    if (this.#error !== undefined) return Promise.reject(this.#error);
    const written = Promise.withResolvers<void>();
    this.#queue.push({ bytes: new TextEncoder().encode(line), written });
    if (!this.#draining) {
      this.#draining = true;
      this.#writing = this.#drain();
    }
    return written.promise;
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const next = this.#queue.shift()!;
        try {
          this.#file ??= await DurableAppend.open(this.#path, "the archive");
          await this.#file.write(next.bytes);
          next.written.resolve();
        } catch (error) {
          this.#error = error;
          for (const { written } of [next, ...this.#queue.splice(0)]) written.reject(error);
        }
      }
    } finally {
      this.#draining = false; // at once, with the queue seen empty: the next append drains again
    }
  }

  /** Syncs the archive (and its folder), once every line is in it. */
  async commit(): Promise<void> {
    await this.#writing;
    if (this.#error !== undefined) throw this.#error;
    await this.#file?.commit();
  }

  /** Takes the archive back: removed (it is new), so it holds nothing of a purge that was not. */
  async discard(): Promise<void> {
    await this.#writing;
    await this.#file?.discard();
  }

  close(): void {
    this.#file?.close();
  }
}

/**
 * Removes matching dead letters for good, having first written them to `archive` and synced it,
 * and called `beforeDelete`; then deletes exactly those (at most `limit`, among the first
 * `within`). Without an archive it still walks the queue: it deletes only dead letters that were
 * there when it began, never one that arrived since. It returns once the queue applied the
 * deletes and took back what it left (`left` counts it).
 *
 * @throws {PurgeError} when it stopped before deleting anything (a full disk, a `beforeDelete`
 * that threw, a channel that closed): every dead letter is still in the queue and the archive
 * holds nothing of it.
 * @throws {DeadLetterPassError} when the channel closed while it deleted: those not deleted are
 * back in the queue (and in the archive too).
 */
export async function purgeDeadLetters(
  broker: Broker,
  topo: Topology,
  options: PurgeOptions,
): Promise<DeadLetterCounts> {
  const queue = topo.deadLetterQueue;
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  const matches = messageMatcher(options.filter);
  const at = new Date().toISOString();
  const archive = options.archive === undefined ? undefined : new ArchiveWriter(options.archive);
  const taken: Pick<Message, "fields">[] = [];
  let matched = 0;
  let deleting = false;
  let total: number;
  try {
    total = await walkDeadLetters(broker, topo, options, {
      visit: (message) => {
        if (!matches(message)) return;
        matched++;
        if (taken.length >= limit) return;
        taken.push({ fields: message.fields });
        return archive?.append(archiveLine(message, at));
      },
      finish: async (pass) => {
        await archive?.commit();
        await options.beforeDelete?.({
          total: pass.total,
          matched,
          done: taken.length,
          failed: 0,
          left: pass.total - taken.length,
        });
        deleting = true;
        for (const [i, message] of taken.entries()) {
          if (pass.ack(message)) continue;
          throw new DeadLetterPassError(
            `the channel closed while the purge deleted: up to ${taken.length - i} of the ` +
              `${taken.length} archived dead letter(s) may still be in ${queue} (the archive ` +
              "holds them all)",
            { code: "channel_closed" },
          );
        }
      },
    });
    if (!deleting) {
      // Aborted before deleting: the archive holds nothing of what stays.
      await archive?.discard();
      taken.length = 0;
    }
  } catch (error) {
    if (deleting) throw error;
    await archive?.discard().catch(() => {}); // the error says nothing was purged either way
    throw new PurgeError(queue, error);
  } finally {
    archive?.close();
  }
  return {
    total,
    matched,
    done: taken.length,
    failed: 0,
    left: await broker.messageCount(queue),
  };
}
