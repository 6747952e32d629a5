/**
 * The outbox read from outside Estoque, for the doctor and the console: read only (a SQLite file
 * opened read-only, PostgreSQL in read-only sessions; nothing created), and the doctor's verdict
 * on what it shows: requests waiting longer than the relay should let them, or publishes failing
 * again and again, are a stuck outbox.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import type pg from "pg";
import { postgresPool, postgresTarget } from "./_postgres.ts";
import { describeError } from "./errors.ts";
import { redactUrl } from "./redact.ts";
import type { OutboxStats } from "./stock_store.ts";

/** Publish attempts of one request past which the outbox is stuck, whatever its age. */
export const STUCK_ATTEMPTS = 5;

const STATS_SQL = `SELECT count(*) AS depth, min(created_at) AS oldest,
                          coalesce(max(attempts), 0) AS attempts
                   FROM stock_outbox WHERE sent_at IS NULL`;

/**
 * The publish lag of the requests sent since a time: from each one's movement (its `created_at`)
 * to the broker's confirm (its `sent_at`), as `estoque_outbox_publish_lag_seconds` measures it, but
 * read from the store, so it covers every relay.
 */
export interface OutboxLag {
  /**
   * Seconds, nearest rank, of the latest {@linkcode LAG_SAMPLE} sent at most; null when none was
   * sent since.
   */
  readonly p50: number | null;
  readonly p99: number | null;
  /** Requests sent since. */
  readonly count: number;
}

/** The lag's percentiles are those of the latest requests sent, at most this many. */
export const LAG_SAMPLE = 10_000;

const NO_LAG: OutboxLag = { p50: null, p99: null, count: 0 };

/** What {@linkcode OutboxReader.read} returns: the outbox at a glance, and its lag lately. */
export interface OutboxReading {
  readonly stats: OutboxStats;
  readonly lag: OutboxLag;
}

/** Options for {@linkcode OutboxReader}. */
export interface OutboxReaderOptions {
  /** The name its PostgreSQL sessions carry. @default {"doctor"} */
  readonly applicationName?: string;
  /**
   * How long a read may take on PostgreSQL, in milliseconds (connecting: 1 s more), and how long
   * a read of a SQLite file waits for a lock.
   * @default {10000}
   */
  readonly timeoutMs?: number;
}

/**
 * Reads a stock store's outbox, without writing, from the `sqlite:PATH` or `postgres://` URL that
 * names it: a SQLite file is opened for each read (a file made later is found), a PostgreSQL pool
 * of one session is kept until {@linkcode close}. Every error names the store, never a password.
 */
export class OutboxReader implements AsyncDisposable {
  /** The store, without a password. */
  readonly name: string;
  readonly #url: string;
  readonly #options: OutboxReaderOptions;
  #pool: pg.Pool | undefined;

  /** A reader of the store `url` names; nothing is opened until the first read. */
  constructor(url: string, options: OutboxReaderOptions = {}) {
    this.#url = url;
    this.name = redactUrl(url);
    this.#options = options;
  }

  /**
   * The outbox's depth, oldest unsent request and most attempts.
   * @throws {Error} naming the store when it cannot be read, or has no outbox yet.
   */
  async stats(): Promise<OutboxStats> {
    return (await this.#read(undefined)).stats;
  }

  /**
   * {@linkcode stats}, and the publish lag of the requests sent at or after `lagSince`.
   * @throws {Error} naming the store when it cannot be read, or has no outbox yet.
   */
  read(lagSince: Date): Promise<OutboxReading> {
    return this.#read(lagSince);
  }

  async #read(lagSince: Date | undefined): Promise<OutboxReading> {
    try {
      return this.#url.startsWith("sqlite:")
        ? this.#readSqlite(this.#url.slice("sqlite:".length), lagSince)
        : await this.#readPostgres(lagSince);
    } catch (error) {
      throw new Error(
        `cannot read the outbox of ${this.name}: ${redactUrl(describeError(error))}`,
        { cause: error },
      );
    }
  }

  #readSqlite(path: string, lagSince: Date | undefined): OutboxReading {
    const db = new DatabaseSync(path, { readOnly: true });
    try {
      db.exec(`PRAGMA busy_timeout = ${this.#options.timeoutMs ?? 10_000}`);
      // One read transaction: the stats and the lag see the same outbox.
      db.exec("BEGIN");
      const row = db.prepare(STATS_SQL).get() as Record<string, number | string | null>;
      const stats = statsOf(row.depth, row.oldest, row.attempts);
      if (lagSince === undefined) return { stats, lag: NO_LAG };
      const since = lagSince.toISOString();
      const count = Number(
        (db.prepare("SELECT count(*) AS n FROM stock_outbox WHERE sent_at >= ?").get(since) as {
          n: number;
        }).n,
      );
      // The lag at a rank of the latest sent, in whole milliseconds (times are kept to the ms).
      const at = db.prepare(
        `WITH recent AS (
           SELECT round((julianday(sent_at) - julianday(created_at)) * 86400000.0) AS ms
           FROM stock_outbox WHERE sent_at >= ? ORDER BY sent_at DESC LIMIT ${LAG_SAMPLE})
         SELECT ms FROM recent ORDER BY ms LIMIT 1 OFFSET ?`,
      );
      const sampled = Math.min(count, LAG_SAMPLE);
      const rank = (q: number) =>
        sampled === 0
          ? null
          : Math.max(0, Number((at.get(since, nearestRank(q, sampled)) as { ms: number }).ms)) /
            1000;
      return { stats, lag: { p50: rank(0.5), p99: rank(0.99), count } };
    } finally {
      db.close(); // ends the read transaction
    }
  }

  async #readPostgres(lagSince: Date | undefined): Promise<OutboxReading> {
    const timeoutMs = this.#options.timeoutMs ?? 10_000;
    this.#pool ??= postgresPool(postgresTarget(this.#url, undefined), {
      applicationName: this.#options.applicationName ?? "doctor",
      max: 1,
      statementTimeoutMs: timeoutMs,
      readOnly: true,
    });
    const { rows: [row] } = await this.#pool.query(STATS_SQL);
    const stats = statsOf(row.depth, row.oldest, row.attempts);
    if (lagSince === undefined) return { stats, lag: NO_LAG };
    // percentile_disc is the nearest rank, as the SQLite side reads it.
    const { rows: [lag] } = await this.#pool.query(
      `SELECT (SELECT count(*) FROM stock_outbox WHERE sent_at >= $1) AS n,
              (SELECT percentile_disc(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY seconds)
               FROM (SELECT extract(epoch FROM sent_at - created_at) AS seconds
                     FROM stock_outbox WHERE sent_at >= $1
                     ORDER BY sent_at DESC LIMIT ${LAG_SAMPLE}) AS recent) AS lags`,
      [lagSince],
    );
    const lags = (lag.lags as (string | number)[] | null) ?? [];
    const seconds = (i: number) => lags[i] === undefined ? null : Math.max(0, Number(lags[i]));
    return { stats, lag: { p50: seconds(0), p99: seconds(1), count: Number(lag.n) } };
  }

  /** Ends the PostgreSQL session, if one was made. */
  async close(): Promise<void> {
    const pool = this.#pool;
    this.#pool = undefined;
    await pool?.end().catch(() => {});
  }

  /** Closes the reader. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** The 0-based offset of the q-quantile of `n` sorted values, nearest rank. */
function nearestRank(q: number, n: number): number {
  return Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1));
}

/**
 * The outbox's depth, oldest unsent request and most attempts, read without writing from the
 * stock store a `sqlite:PATH` or `postgres://` URL names.
 *
 * @throws {Error} naming the store (no password) when it cannot be read, or has no outbox yet.
 */
export async function readOutboxStats(url: string): Promise<OutboxStats> {
  await using reader = new OutboxReader(url);
  return await reader.stats();
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
