/**
 * Replay and purge from the console, through the same library as `deno task dlq`: a preview
 * counts exactly what a filter takes and moves nothing; a confirmed action acts on at most the
 * previewed count, runs as a job whose progress the page follows, purges only after archiving,
 * and appends an audit entry naming the console user (previews too, as dry runs): a purge's before
 * it deletes anything (so a purge the trail cannot record deletes nothing), a replay's when it
 * ends.
 *
 * @module
 */

import { appendAudit, auditCounts, auditFilter } from "../audit.ts";
import type { Broker } from "../broker.ts";
import {
  archivePath,
  type DeadLetterCounts,
  inspectDeadLetters,
  purgeDeadLetters,
  replayDeadLetters,
} from "../dead_letter_ops.ts";
import type { DeadLetterFilter } from "../dead_letters.ts";
import { describeError } from "../errors.ts";
import { logger } from "../log.ts";
import type { Topology } from "../topology.ts";
import type { Principal } from "./auth.ts";
import type { DeadLetterIndex, TakeTurns } from "./dead_letter_index.ts";

/** What can be done to dead letters. */
export type ActionKind = "replay" | "purge";

/** A job's state, as the page shows it. */
export interface Job {
  readonly id: string;
  readonly action: ActionKind;
  readonly who: string;
  readonly startedAt: string;
  state: "running" | "done" | "failed";
  /** Dead letters done so far (replays confirmed, or letters walked for a purge). */
  progress: number;
  /** The most it will act on (the previewed count). */
  readonly expected: number;
  counts?: DeadLetterCounts;
  /** The archive a purge wrote. */
  archive?: string;
  error?: string;
}

/** Options for {@linkcode DeadLetterActions}. */
export interface ActionsOptions {
  readonly broker: () => Promise<Broker>;
  readonly topology: Topology;
  readonly index: DeadLetterIndex;
  readonly turns: TakeTurns;
  readonly auditLog: string;
  readonly archiveDir: string;
}

const log = logger("console");

/** Previews and runs replays and purges; remembers the last jobs for the page to follow. */
export class DeadLetterActions {
  readonly #options: ActionsOptions;
  readonly #jobs = new Map<string, Job>();

  constructor(options: ActionsOptions) {
    this.#options = options;
  }

  /** A job by id. */
  job(id: string): Job | undefined {
    return this.#jobs.get(id);
  }

  /** Counts exactly what `filter` takes, moving nothing; audited as a dry run of `action`. */
  async preview(
    action: ActionKind,
    filter: DeadLetterFilter,
    who: Principal,
  ): Promise<DeadLetterCounts> {
    const o = this.#options;
    const counts = await o.turns.run(async () =>
      await inspectDeadLetters(await o.broker(), o.topology, { filter, limit: 0 })
    );
    await this.#audit(action, true, filter, counts, who, undefined, undefined);
    return counts;
  }

  /**
   * Starts `action` on at most `expected` dead letters `filter` takes; returns the job at once.
   * The index is refreshed when it ends.
   */
  start(action: ActionKind, filter: DeadLetterFilter, expected: number, who: Principal): Job {
    const o = this.#options;
    const job: Job = {
      id: crypto.randomUUID(),
      action,
      who: who.name,
      startedAt: new Date().toISOString(),
      state: "running",
      progress: 0,
      expected,
    };
    this.#remember(job);
    const scan = { filter, limit: expected };
    o.turns.run(async () => {
      const broker = await o.broker();
      if (action === "replay") {
        return await replayDeadLetters(broker, o.topology, {
          ...scan,
          onProgress: (done) => job.progress = done,
        });
      }
      job.archive = archivePath(o.archiveDir, o.topology.deadLetterQueue, new Date());
      return await purgeDeadLetters(broker, o.topology, {
        ...scan,
        archive: job.archive,
        onScan: (seen) => job.progress = seen,
        beforeDelete: (planned) =>
          this.#audit(action, false, filter, planned, who, expected, job.archive),
      });
    }).then(async (counts) => {
      job.counts = counts;
      job.progress = counts.done;
      // The audit entry is written before the job says it is done: whoever sees it done finds
      // it in the audit trail (a failed append fails the job, its counts kept). A purge's was
      // written before it deleted anything.
      if (action === "replay") {
        await this.#audit(action, false, filter, counts, who, expected, undefined);
      }
      job.state = "done";
    }).catch((error: unknown) => {
      job.state = "failed";
      job.error = describeError(error);
      log.error("console action failed", { action, who: who.name, error: job.error });
    }).finally(() => o.index.invalidate());
    return job;
  }

  #remember(job: Job): void {
    this.#jobs.set(job.id, job);
    while (this.#jobs.size > 100) this.#jobs.delete(this.#jobs.keys().next().value!);
  }

  async #audit(
    action: ActionKind,
    dryRun: boolean,
    filter: DeadLetterFilter,
    counts: DeadLetterCounts,
    who: Principal,
    limit: number | undefined,
    file: string | undefined,
  ): Promise<void> {
    await appendAudit(this.#options.auditLog, {
      at: new Date().toISOString(),
      who: `${who.name} (console)`,
      action,
      dryRun,
      queue: this.#options.topology.deadLetterQueue,
      filter: auditFilter(filter, limit),
      counts: auditCounts(counts),
      file,
    });
  }
}
