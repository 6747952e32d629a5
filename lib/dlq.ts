/**
 * The dead-letter tooling's commands (`deno task dlq list|show|replay|purge`): options checked
 * per subcommand, then the work of lib/dead_letters.ts, printed for an operator or as JSON.
 *
 * @module
 */

import {
  booleanOption,
  choiceOption,
  formatHelp,
  integerOption,
  numberOption,
  type ParsedCommandLine,
  stringOption,
  UsageError,
} from "./cli.ts";
import { connectionConfig } from "./config.ts";
import { appendAudit, auditCounts, auditFilter, currentOperator } from "./audit.ts";
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
  type DeadLetterFilter,
  deadLetterJson,
  formatDeadLetterTable,
  isEmptyFilter,
  parseSince,
} from "./dead_letters.ts";
import { LOG_LEVELS, setupLogging } from "./log.ts";
import { EXIT } from "./main.ts";
import { DLQ_OPTIONS } from "./options.ts";
import { Progress } from "./progress.ts";
import { connectFirst } from "./reconnect.ts";
import { topology } from "./topology.ts";

/** The subcommands. */
export const DLQ_VERBS = ["list", "show", "replay", "purge"] as const;

/** A subcommand. */
export type DlqVerb = typeof DLQ_VERBS[number];

/** The options every subcommand takes: where the broker is, the prefix, logging. */
const SHARED = ["url", "user", "password", "tls-ca", "tls-cert", "tls-key", "prefix", "log-level"];
const FILTERS = ["reason", "since", "ref", "limit"];

/** The options each subcommand takes besides {@linkcode SHARED}. */
export const DLQ_VERB_OPTIONS: Readonly<Record<DlqVerb, readonly string[]>> = {
  list: [...FILTERS, "json"],
  show: ["json"],
  replay: [...FILTERS, "dry-run", "rate", "window", "from-file", "audit-log", "operator"],
  purge: [...FILTERS, "dry-run", "yes", "archive", "archive-dir", "audit-log", "operator"],
};

/** The reasons a dead letter can carry (`broker:<reason>` for the broker's own). */
export const KNOWN_REASONS = ["exhausted", "invalid", "unroutable", "rejected", "unknown"];

type Options = Record<keyof typeof DLQ_OPTIONS, ParsedCommandLine["options"][string]>;

/**
 * Checks the subcommand and its options: a flag another subcommand takes is refused, naming it,
 * and so is an unknown reason.
 *
 * @throws {UsageError}
 */
export function checkDlqCommandLine(cl: ParsedCommandLine): { verb: DlqVerb; rest: string[] } {
  const [command, ...rest] = cl.positionals;
  if (command === undefined) throw new UsageError(`name a command: ${DLQ_VERBS.join(", ")}`);
  const verb = choiceOption({ value: command, label: "the command" }, DLQ_VERBS);
  if (verb !== "show" && rest.length > 0) {
    throw new UsageError(`${verb} takes no arguments, got ${JSON.stringify(rest.join(" "))}`);
  }
  if (verb === "show" && rest.length !== 1) {
    throw new UsageError("show takes one RefCode: deno task dlq show REF");
  }
  const allowed = new Set([...SHARED, ...DLQ_VERB_OPTIONS[verb]]);
  for (const [name, option] of Object.entries(cl.options)) {
    // Flags only: a variable in the environment may be meant for another subcommand.
    const given = option.value !== undefined && option.label.startsWith("--") &&
      !option.label.endsWith("(default)");
    if (given && !allowed.has(name)) {
      throw new UsageError(
        `${option.label} does not apply to "dlq ${verb}" (it takes ${
          DLQ_VERB_OPTIONS[verb].map((o) => `--${o}`).join(", ")
        })`,
      );
    }
  }
  const reason = cl.options.reason?.value;
  if (
    typeof reason === "string" && !KNOWN_REASONS.includes(reason) && !reason.startsWith("broker:")
  ) {
    throw new UsageError(
      `--reason must be one of ${KNOWN_REASONS.join(", ")} or broker:<reason>, got ${
        JSON.stringify(reason)
      }`,
    );
  }
  return { verb, rest };
}

/** The `--help` of `dlq <verb>`: that subcommand's options only (undefined without a verb). */
export function dlqHelp(cl: ParsedCommandLine): string | undefined {
  const verb = DLQ_VERBS.find((v) => v === cl.positionals[0]);
  if (verb === undefined) return undefined;
  const names = new Set([...DLQ_VERB_OPTIONS[verb], ...SHARED]);
  const options = Object.fromEntries(
    Object.entries(DLQ_OPTIONS).filter(([name]) => names.has(name)),
  );
  return formatHelp(
    `deno task dlq ${verb}${verb === "show" ? " REF" : ""} [options]`,
    VERB_SUMMARY[verb],
    options,
  );
}

const VERB_SUMMARY: Record<DlqVerb, string> = {
  list: "Lists dead letters (all, or those matching the filters); moves nothing.",
  show: "Shows one dead letter in full: properties, headers, body.",
  replay:
    "Sends matching dead letters (or a purge archive) back for processing, each removed only once its copy is confirmed.",
  purge:
    "Deletes matching dead letters for good, after writing them to an archive; asks first unless --yes.",
};

/** Runs a dlq subcommand; returns the exit code. */
export async function runDlq(cl: ParsedCommandLine, signal: AbortSignal): Promise<number> {
  const { verb, rest } = checkDlqCommandLine(cl);
  const o = cl.options as Options;
  const { urls, tls } = connectionConfig(o);
  const topo = topology({ prefix: stringOption(o.prefix) });
  setupLogging({ level: choiceOption(o["log-level"], LOG_LEVELS) });
  const now = new Date();
  let since: Date | undefined;
  if (o.since.value !== undefined) {
    since = parseSince(stringOption(o.since), now);
    if (!since) {
      throw new UsageError(
        `--since must be a duration such as 90s, 15m, 2h or 7d, or a date, got ${
          JSON.stringify(o.since.value)
        }`,
      );
    }
  }
  const filter: DeadLetterFilter = {
    reason: o.reason.value === undefined ? undefined : stringOption(o.reason),
    ref: o.ref.value === undefined ? undefined : stringOption(o.ref),
    since,
  };
  const limit = o.limit.value === undefined ? undefined : integerOption(o.limit, 1, 10_000_000);
  const scan = { filter, signal, ...(limit !== undefined ? { limit } : {}) };
  const filtered = !isEmptyFilter(filter);
  const dryRun = booleanOption(o["dry-run"]);
  const audit = (action: string, counts: DeadLetterCounts, file?: string) =>
    appendAudit(stringOption(o["audit-log"]), {
      at: new Date().toISOString(),
      who: o.operator.value === undefined ? currentOperator() : stringOption(o.operator),
      action,
      dryRun,
      queue: topo.deadLetterQueue,
      filter: auditFilter(filter, limit),
      counts: auditCounts(counts),
      file,
    });

  // The first broker of the list that answers (any node of a cluster will do).
  await using broker = (await connectFirst(urls, { name: `dlq ${verb}`, tls })).broker;
  switch (verb) {
    case "list": {
      // The listing shows no bodies: none is kept.
      const found = await inspectDeadLetters(broker, topo, { ...scan, previewBytes: 0 });
      if (booleanOption(o.json)) {
        console.log(JSON.stringify(found.letters.map((l) => deadLetterJson(l, false)), null, 2));
      } else {
        console.log(formatDeadLetterTable(found.letters, now));
        console.log(`\n${describeCounts(found, filtered, topo.deadLetterQueue, "shown")}`);
      }
      return EXIT.ok;
    }
    case "show": {
      const { letters: [letter] } = await inspectDeadLetters(broker, topo, {
        filter: { ref: rest[0] },
        limit: 1,
        signal,
      });
      if (!letter) {
        console.error(`error: no dead letter with RefCode ${rest[0]} in ${topo.deadLetterQueue}`);
        return EXIT.failure;
      }
      console.log(
        booleanOption(o.json)
          ? JSON.stringify(deadLetterJson(letter, true), null, 2)
          : formatDeadLetter(letter),
      );
      return EXIT.ok;
    }
    case "replay": {
      const rate = o.rate.value === undefined ? undefined : numberOption(o.rate, 0.1, 1_000_000);
      const window = integerOption(o.window, 1, 100_000);
      const fromFile = o["from-file"].value === undefined
        ? undefined
        : stringOption(o["from-file"]);
      if (fromFile !== undefined) {
        if (filtered || limit !== undefined) {
          throw new UsageError(
            "--from-file replays a whole archive: it takes no filter or --limit",
          );
        }
        const progress = dryRun ? undefined : new Progress({ label: "replayed", total: 0 });
        const counts = await replayArchive(broker, topo, fromFile, {
          dryRun,
          window,
          ...(rate !== undefined ? { ratePerSecond: rate } : {}),
          onProgress: (n) => progress?.update(n),
        });
        progress?.done(counts.done);
        await audit("replay --from-file", counts, fromFile);
        console.log(
          dryRun
            ? `dry run: ${counts.matched} archived dead letter(s) in ${fromFile} would be replayed to ${topo.exchange}; nothing was sent`
            : `replayed ${counts.done} of ${counts.matched} archived dead letter(s) from ${fromFile} to ${topo.exchange}` +
              `${counts.failed > 0 ? `, ${counts.failed} failed` : ""}`,
        );
        printFailures(counts);
        return counts.failed > 0 ? EXIT.failure : EXIT.ok;
      }
      // Counted first, so that the progress total is the number that will be replayed.
      const before = await inspectDeadLetters(broker, topo, { ...scan, limit: 0 });
      const total = Math.min(before.matched, limit ?? Number.POSITIVE_INFINITY);
      const progress = dryRun ? undefined : new Progress({ label: "replayed", total });
      const counts = await replayDeadLetters(broker, topo, {
        ...scan,
        dryRun,
        window,
        ...(rate !== undefined ? { ratePerSecond: rate } : {}),
        onProgress: (n) => progress?.update(n),
      });
      progress?.done(counts.done);
      await audit("replay", counts);
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
    case "purge": {
      const archiving = booleanOption(o.archive);
      const archive = archiving
        ? archivePath(stringOption(o["archive-dir"]), topo.deadLetterQueue, now)
        : undefined;
      const preview = await inspectDeadLetters(broker, topo, {
        ...scan,
        limit: 3,
        previewBytes: 0,
      });
      const count = Math.min(preview.matched, limit ?? Number.POSITIVE_INFINITY);
      const sample = preview.letters.map((l) => `${l.refCode ?? "-"} (${l.reason})`).join(", ");
      const where = archive ? `, archived first to ${archive}` : ", without an archive";
      if (dryRun) {
        // A dry run only looks: it never deletes, whatever else is given (--yes included).
        const counts = { ...preview, done: count };
        await audit("purge", counts, archive);
        console.log(
          `dry run: ${count} of ${preview.matched} matching dead letter(s) would be purged from ` +
            `${topo.deadLetterQueue}${where}${sample ? ` (e.g. ${sample})` : ""}; ` +
            `${preview.total} in the queue, nothing was deleted`,
        );
        return EXIT.ok;
      }
      if (!booleanOption(o.yes)) {
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
        beforeDelete: (planned) => audit("purge", planned, archive),
      });
      console.log(
        `purged ${counts.done} of ${counts.matched} matching dead letter(s) from ${topo.deadLetterQueue}` +
          `${archive ? ` (archived to ${archive})` : ""}; ${counts.left} left`,
      );
      return EXIT.ok;
    }
  }
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
