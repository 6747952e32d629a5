/**
 * The dead-letter tooling's commands (`deno task dlq list|show|replay|purge`): the work of
 * lib/dead_letters.ts on a checked command line (lib/dlq_command.ts), printed for an operator or
 * as JSON.
 *
 * @module
 */

import { UsageError } from "./cli.ts";
import { appendAudit, auditCounts, auditFilter, currentOperator } from "./audit.ts";
import type { Broker } from "./broker.ts";
import {
  archivePath,
  type DeadLetterCounts,
  inspectDeadLetters,
  purgeDeadLetters,
  replayArchive,
  type ReplayCounts,
  replayDeadLetters,
} from "./dead_letter_ops.ts";
import {
  type DeadLetter,
  deadLetterJson,
  formatDeadLetterTable,
  isEmptyFilter,
} from "./dead_letters.ts";
import type {
  DlqCommand,
  DlqList,
  DlqPurge,
  DlqReplay,
  DlqSelection,
  DlqShow,
} from "./dlq_command.ts";
import { setupLogging } from "./log.ts";
import { EXIT } from "./main.ts";
import { Progress } from "./progress.ts";
import { connectFirst } from "./reconnect.ts";

/** Runs a checked dlq command (see lib/dlq_command.ts); returns the exit code. */
export async function runDlq(command: DlqCommand, signal: AbortSignal): Promise<number> {
  setupLogging({ level: command.logLevel });
  // The first broker of the list that answers (any node of a cluster will do).
  await using broker = (await connectFirst(command.urls, {
    name: `dlq ${command.verb}`,
    tls: command.tls,
  })).broker;
  switch (command.verb) {
    case "list":
      return await list(broker, command, signal);
    case "show":
      return await show(broker, command, signal);
    case "replay":
      return await replay(broker, command, signal);
    case "purge":
      return await purge(broker, command, signal);
  }
}

/** The scan options of a selection: its filter, its limit if any, the abort signal. */
function scanOf(selection: DlqSelection, signal: AbortSignal) {
  const { filter, limit } = selection;
  return { filter, signal, ...(limit !== undefined ? { limit } : {}) };
}

/** Appends a replay's or purge's entry to the audit trail. */
function audit(
  command: DlqReplay | DlqPurge,
  action: string,
  counts: DeadLetterCounts,
  file?: string,
): Promise<void> {
  const { filter, limit } = command.selection;
  return appendAudit(command.audit.log, {
    at: new Date().toISOString(),
    who: command.audit.operator ?? currentOperator(),
    action,
    dryRun: command.dryRun,
    queue: command.topology.deadLetterQueue,
    filter: auditFilter(filter, limit),
    counts: auditCounts(counts),
    file,
  });
}

/** `dlq list`. */
async function list(broker: Broker, command: DlqList, signal: AbortSignal): Promise<number> {
  const { topology: topo, selection } = command;
  // The listing shows no bodies: none is kept.
  const found = await inspectDeadLetters(broker, topo, {
    ...scanOf(selection, signal),
    previewBytes: 0,
  });
  if (command.json) {
    console.log(JSON.stringify(found.letters.map((l) => deadLetterJson(l, false)), null, 2));
  } else {
    console.log(formatDeadLetterTable(found.letters, command.now));
    console.log(
      `\n${describeCounts(found, !isEmptyFilter(selection.filter), topo.deadLetterQueue, "shown")}`,
    );
  }
  return EXIT.ok;
}

/** `dlq show REF`. */
async function show(broker: Broker, command: DlqShow, signal: AbortSignal): Promise<number> {
  const { letters: [letter] } = await inspectDeadLetters(broker, command.topology, {
    filter: { ref: command.ref },
    limit: 1,
    signal,
  });
  if (!letter) {
    console.error(
      `error: no dead letter with RefCode ${command.ref} in ${command.topology.deadLetterQueue}`,
    );
    return EXIT.failure;
  }
  console.log(
    command.json ? JSON.stringify(deadLetterJson(letter, true), null, 2) : formatDeadLetter(letter),
  );
  return EXIT.ok;
}

/** `dlq replay`, of the DLQ's matching letters or of a purge archive. */
async function replay(broker: Broker, command: DlqReplay, signal: AbortSignal): Promise<number> {
  const { topology: topo, selection, dryRun, window, rate, fromFile } = command;
  const pace = { dryRun, window, ...(rate !== undefined ? { ratePerSecond: rate } : {}) };
  if (fromFile !== undefined) {
    const progress = dryRun ? undefined : new Progress({ label: "replayed", total: 0 });
    const counts = await replayArchive(broker, topo, fromFile, {
      ...pace,
      onProgress: (n) => progress?.update(n),
    });
    progress?.done(counts.done);
    await audit(command, "replay --from-file", counts, fromFile);
    console.log(
      dryRun
        ? `dry run: ${counts.matched} archived dead letter(s) in ${fromFile} would be replayed to ${topo.exchange}; nothing was sent`
        : `replayed ${counts.done} of ${counts.matched} archived dead letter(s) from ${fromFile} to ${topo.exchange}` +
          `${counts.failed > 0 ? `, ${counts.failed} failed` : ""}`,
    );
    printFailures(counts);
    return counts.failed > 0 ? EXIT.failure : EXIT.ok;
  }
  const scan = scanOf(selection, signal);
  // Counted first, so that the progress total is the number that will be replayed.
  const before = await inspectDeadLetters(broker, topo, { ...scan, limit: 0 });
  const total = Math.min(before.matched, selection.limit ?? Number.POSITIVE_INFINITY);
  const progress = dryRun ? undefined : new Progress({ label: "replayed", total });
  const counts = await replayDeadLetters(broker, topo, {
    ...scan,
    ...pace,
    onProgress: (n) => progress?.update(n),
  });
  progress?.done(counts.done);
  await audit(command, "replay", counts);
  console.log(
    dryRun
      ? `dry run: ${counts.done} of ${counts.matched} matching dead letter(s) would be replayed to ${topo.exchange}; ${counts.total} in ${topo.deadLetterQueue}, nothing moved`
      : `replayed ${counts.done} of ${counts.matched} matching dead letter(s) to ${topo.exchange}` +
        `${counts.failed > 0 ? `, ${counts.failed} failed and stay in the DLQ` : ""}` +
        `; ${counts.left} left in ${topo.deadLetterQueue}`,
  );
  printFailures(counts);
  return counts.failed > 0 ? EXIT.failure : EXIT.ok;
}

/** `dlq purge`: counts, asks unless `--yes` (or only counts with `--dry-run`), then deletes. */
async function purge(broker: Broker, command: DlqPurge, signal: AbortSignal): Promise<number> {
  const { topology: topo, selection, dryRun } = command;
  const archive = command.archiveDir === undefined
    ? undefined
    : archivePath(command.archiveDir, topo.deadLetterQueue, command.now);
  const scan = scanOf(selection, signal);
  const preview = await inspectDeadLetters(broker, topo, { ...scan, limit: 3, previewBytes: 0 });
  const count = Math.min(preview.matched, selection.limit ?? Number.POSITIVE_INFINITY);
  const sample = preview.letters.map((l) => `${l.refCode ?? "-"} (${l.reason})`).join(", ");
  const where = archive ? `, archived first to ${archive}` : ", without an archive";
  if (dryRun) {
    // A dry run only looks: it never deletes, whatever else is given (--yes included).
    const counts = { ...preview, done: count };
    await audit(command, "purge", counts, archive);
    console.log(
      `dry run: ${count} of ${preview.matched} matching dead letter(s) would be purged from ` +
        `${topo.deadLetterQueue}${where}${sample ? ` (e.g. ${sample})` : ""}; ` +
        `${preview.total} in the queue, nothing was deleted`,
    );
    return EXIT.ok;
  }
  if (!command.yes) {
    if (!Deno.stdin.isTerminal()) {
      throw new UsageError("purge deletes dead letters for good: add --yes to confirm");
    }
    const answer = prompt(
      `Delete ${count} of ${preview.matched} matching dead letter(s) from ` +
        `${topo.deadLetterQueue}${where}${sample ? ` (e.g. ${sample})` : ""}? [y/N]`,
    );
    if (!/^y(es)?$/i.test(answer?.trim() ?? "")) {
      console.log("nothing purged");
      return EXIT.ok;
    }
  }
  // At most what was counted (and confirmed), among the letters there when it was counted:
  // never one that arrived while the operator read the question. The audit entry is on disk
  // before the first letter is deleted.
  const counts = await purgeDeadLetters(broker, topo, {
    ...scan,
    limit: count,
    within: preview.total,
    archive,
    beforeDelete: (planned) => audit(command, "purge", planned, archive),
  });
  console.log(
    `purged ${counts.done} of ${counts.matched} matching dead letter(s) from ${topo.deadLetterQueue}` +
      `${archive ? ` (archived to ${archive})` : ""}; ${counts.left} left`,
  );
  return EXIT.ok;
}

/** The dead letters a replay could not send back, and why, one a line. */
function printFailures(counts: ReplayCounts): void {
  for (const failure of counts.failures) {
    console.log(`  not replayed: ${failure.refCode ?? "-"}: ${failure.reason}`);
  }
  const unlisted = counts.failed - counts.failures.length;
  if (unlisted > 0) console.log(`  … and ${unlisted} more not replayed`);
}

/** The closing line of `dlq list`: how many are shown, how many match, how many there are. */
function describeCounts(
  counts: DeadLetterCounts,
  filtered: boolean,
  queue: string,
  what: string,
): string {
  if (!filtered && counts.done === counts.total) {
    return `${counts.total} dead letter(s) in ${queue}`;
  }
  return `${counts.done} ${what} of ${counts.matched} matching dead letter(s); ${counts.total} in ${queue}`;
}

/** One dead letter in full, for `dlq show`. */
export function formatDeadLetter(letter: DeadLetter): string {
  const json = deadLetterJson(letter, true);
  return [
    `RefCode:     ${json.refCode}`,
    `reason:      ${json.reason} after ${json.attempts} retries`,
    `last error:  ${json.lastError}`,
    `first fail:  ${json.firstFailedAt ?? "-"}`,
    `dead since:  ${json.deadLetteredAt ?? "-"}`,
    `properties:  ${JSON.stringify(json.properties)}`,
    "headers:",
    ...Object.entries(letter.headers).map(([key, value]) => `  ${key}: ${JSON.stringify(value)}`),
    json.body !== undefined
      ? `body:\n${json.body}`
      : `body (base64, not UTF-8):\n${json.bodyBase64}`,
  ].join("\n");
}
