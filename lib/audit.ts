/**
 * The audit trail of the dead-letter tooling: every replay and purge (dry runs included) appends
 * one JSON line saying who did what, when, to which dead letters, with what result and which
 * archive, to a file (default `data/dlq-audit.jsonl`, `--audit-log`/`DLQ_AUDIT_LOG`), synced
 * before the command reports; the same record goes to the log stream.
 *
 * @module
 */

import { userInfo } from "node:os";
import { dirname } from "node:path";
import type { DeadLetterCounts } from "./dead_letter_ops.ts";
import type { DeadLetterFilter } from "./dead_letters.ts";
import { logger } from "./log.ts";

/** Where the audit trail is kept when nothing else is said. */
export const DEFAULT_AUDIT_LOG = "data/dlq-audit.jsonl";

/** One audit record. */
export interface AuditEntry {
  /** When the operation ended (ISO 8601). */
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
  /** Matching, done, failed and left, as the command reported them. */
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

/** Appends `entry` to the audit log at `path` (creating it and its folder) and logs it. */
export async function appendAudit(path: string, entry: AuditEntry): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  await using file = await Deno.open(path, { append: true, create: true, write: true });
  await file.write(new TextEncoder().encode(`${JSON.stringify(entry)}\n`));
  await file.sync();
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
