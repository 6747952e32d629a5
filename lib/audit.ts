/**
 * The audit trail of the dead-letter tooling: every replay and purge (dry runs included) appends
 * one JSON line saying who did what, when, to which dead letters, with what result and which
 * archive, to a file (default `data/dlq-audit.jsonl`, `--audit-log`/`DLQ_AUDIT_LOG`); the same
 * record goes to the log stream. An entry is written whole and synced (its folder too, for a new
 * file) or not at all: a trail that cannot take it (a full disk) is left as it was and the append
 * fails. A purge appends its entry before it deletes the first dead letter, so a purge the trail
 * cannot record deletes nothing.
 *
 * @module
 */

import { userInfo } from "node:os";
import { appendDurably } from "./_durable_append.ts";
import type { PauseState } from "./control.ts";
import type { DeadLetterCounts } from "./dead_letter_ops.ts";
import type { DeadLetterFilter } from "./dead_letters.ts";
import { logger } from "./log.ts";

/** Where the audit trail is kept when nothing else is said. */
export const DEFAULT_AUDIT_LOG = "data/dlq-audit.jsonl";

/** One audit record. */
export interface AuditEntry {
  /** When the operation ended, or for a purge when it began deleting (ISO 8601). */
  readonly at: string;
  /** Who: `--operator`, else the OS user and host (`user@host`). */
  readonly who: string;
  /** What: `replay`, `replay --from-file` or `purge`. */
  readonly action: string;
  /** Whether it was a dry run (nothing moved). */
  readonly dryRun: boolean;
  /** The dead-letter queue. */
  readonly queue: string;
  /** The filter and limit as given. */
  readonly filter: Readonly<Record<string, string | number | undefined>>;
  /**
   * Matching, done, failed and left, as the command reported them; for a purge, as it is about to
   * do (written before the first dead letter is deleted: `left` is what the queue will hold).
   */
  readonly counts: Readonly<Record<string, number>>;
  /** The archive a purge wrote, or the file a replay read. */
  readonly file?: string | undefined;
}

/** `user@host` of the process, for {@linkcode AuditEntry.who}. */
export function currentOperator(): string {
  let user = Deno.env.get("USER") ?? Deno.env.get("LOGNAME");
  try {
    user ??= userInfo().username;
  } catch {
    user ??= "unknown";
  }
  return `${user}@${Deno.hostname()}`;
}

/**
 * Appends `entry` to the audit log at `path` (creating it and its folder) as one whole line,
 * synced, and logs it.
 *
 * @throws {DiskWriteError} (code `disk_full` or `write_failed`) when the line could not be written
 * whole and synced; the log is then as it was, without a torn line.
 */
export async function appendAudit(path: string, entry: AuditEntry): Promise<void> {
  await appendDurably(
    path,
    "the audit trail",
    new TextEncoder().encode(`${JSON.stringify(entry)}\n`),
  );
  logger("dlq").info("audit", { ...entry, auditLog: path });
}

/** A filter and limit as the audit trail records them (what was not given is left out). */
export function auditFilter(
  filter: DeadLetterFilter,
  limit: number | undefined,
): AuditEntry["filter"] {
  return {
    reason: filter.reason,
    ref: filter.ref,
    since: filter.since?.toISOString(),
    until: filter.until?.toISOString(),
    text: filter.text,
    errorGroup: filter.errorGroup,
    refs: filter.refs === undefined ? undefined : [...filter.refs].join(","),
    limit,
  };
}

/** An operation's counts as the audit trail records them. */
export function auditCounts(counts: DeadLetterCounts): AuditEntry["counts"] {
  const { total, matched, done, failed, left } = counts;
  return { total, matched, done, failed, left };
}

/** A pause or resume as the audit trail records it. */
export interface PauseAuditEntry extends AuditEntry {
  /** Why, as the operator said. */
  readonly why: string;
  /** While paused: since when. */
  readonly since: string | undefined;
  /**
   * Whether the change is in effect: `confirmed` by the broker; when not confirmed, what the state
   * read back said (`in effect, unconfirmed`, `not in effect`, `unknown`).
   */
  readonly effect: string;
}

/**
 * Appends a pause or resume (`ctl`'s or the console's) to the audit trail: the action, who, why,
 * the change's `seq` and `since`, and whether it is in effect (for one not in effect, the `seq` of
 * the state in effect, in `counts.inEffect`).
 *
 * @throws {DiskWriteError} when the line could not be written whole and synced.
 */
export async function appendPauseAudit(path: string, record: {
  /** The work queue the fleet consumes (the dlq tooling's entries name theirs). */
  readonly queue: string;
  /** The state the change made, or attempted. */
  readonly state: PauseState;
  /** Who asked. */
  readonly who: string;
  /** Whether it is in effect. @default {"confirmed"} */
  readonly effect?: string;
  /** For a change not in effect: the state that is. */
  readonly inEffect?: PauseState | undefined;
}): Promise<void> {
  const { state } = record;
  const entry: PauseAuditEntry = {
    at: state.at ?? new Date().toISOString(),
    who: record.who,
    action: state.paused ? "pause" : "resume",
    dryRun: false,
    queue: record.queue,
    filter: {},
    counts: record.inEffect === undefined
      ? { seq: state.seq }
      : { seq: state.seq, inEffect: record.inEffect.seq },
    why: state.reason ?? "",
    since: state.since,
    effect: record.effect ?? "confirmed",
  };
  await appendAudit(path, entry);
}
