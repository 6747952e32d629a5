/**
 * The doctor's look at Estoque's outbox: read only (a SQLite file opened read-only, PostgreSQL in
 * read-only sessions; nothing created), and the verdict on what it shows: requests waiting longer
 * than the relay should let them, or publishes failing again and again, are a stuck outbox.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { postgresPool, postgresTarget } from "./_postgres.ts";
import { describeError } from "./errors.ts";
import { redactUrl } from "./redact.ts";
import type { OutboxStats } from "./stock_store.ts";

/** Publish attempts of one request past which the outbox is stuck, whatever its age. */
export const STUCK_ATTEMPTS = 5;

/**
 * The outbox's depth, oldest unsent request and most attempts, read without writing from the
 * stock store a `sqlite:PATH` or `postgres://` URL names.
 *
 * @throws {Error} naming the store (no password) when it cannot be read, or has no outbox yet.
 */
export async function readOutboxStats(url: string): Promise<OutboxStats> {
  const name = redactUrl(url);
  const sql = `SELECT count(*) AS depth, min(created_at) AS oldest,
                      coalesce(max(attempts), 0) AS attempts
               FROM stock_outbox WHERE sent_at IS NULL`;
  try {
    if (url.startsWith("sqlite:")) {
      const db = new DatabaseSync(url.slice("sqlite:".length), { readOnly: true });
      try {
        db.exec("PRAGMA busy_timeout = 5000");
        const row = db.prepare(sql).get() as Record<string, number | string | null>;
        return statsOf(row.depth, row.oldest, row.attempts);
      } finally {
        db.close();
      }
    }
    const pool = postgresPool(postgresTarget(url, undefined), {
      applicationName: "doctor",
      max: 1,
      statementTimeoutMs: 10_000,
      readOnly: true,
    });
    try {
      const { rows: [row] } = await pool.query(sql);
      return statsOf(row.depth, row.oldest, row.attempts);
    } finally {
      await pool.end().catch(() => {});
    }
  } catch (error) {
    throw new Error(`cannot read the outbox of ${name}: ${redactUrl(describeError(error))}`, {
      cause: error,
    });
  }
}

function statsOf(depth: unknown, oldest: unknown, attempts: unknown): OutboxStats {
  return {
    depth: Number(depth),
    oldestUnsentAt: oldest === null || oldest === undefined
      ? undefined
      : oldest instanceof Date
      ? oldest
      : new Date(String(oldest)),
    maxAttempts: Number(attempts),
  };
}

/** What the doctor says of an outbox: fine, or stuck, and why. */
export interface OutboxVerdict {
  readonly stuck: boolean;
  readonly detail: string;
}

/**
 * Whether an outbox is stuck: its oldest unsent request waited past `maxAgeMs`, or one was tried
 * {@linkcode STUCK_ATTEMPTS} times or more. Pure.
 *
 * @example
 * ```ts
 * outboxVerdict({ depth: 0, oldestUnsentAt: undefined, maxAttempts: 0 }, new Date(), 60_000);
 * // { stuck: false, detail: "empty: every request published" }
 * ```
 */
export function outboxVerdict(stats: OutboxStats, now: Date, maxAgeMs: number): OutboxVerdict {
  if (stats.depth === 0) return { stuck: false, detail: "empty: every request published" };
  const ageMs = stats.oldestUnsentAt === undefined
    ? 0
    : Math.max(0, now.getTime() - stats.oldestUnsentAt.getTime());
  const waiting = `${stats.depth} request${stats.depth === 1 ? "" : "s"} unsent, the oldest ${
    Math.round(ageMs / 1000)
  } s old, at most ${stats.maxAttempts} publish attempt${stats.maxAttempts === 1 ? "" : "s"}`;
  if (ageMs > maxAgeMs || stats.maxAttempts >= STUCK_ATTEMPTS) {
    return {
      stuck: true,
      detail:
        `stuck: ${waiting}; is a relay running (estoque serve or estoque relay), and can it ` +
        `reach the broker? Its log and estoque_outbox_* metrics say why`,
    };
  }
  return { stuck: false, detail: waiting };
}
