/**
 * The dead-letter tooling's commands (`deno task dlq list|show|replay|purge`): options checked
 * per subcommand, then the work of lib/dead_letters.ts, printed for an operator or as JSON.
 *
 * @module
 */

import {
  booleanOption,
  choiceOption,
  integerOption,
  numberOption,
  type ParsedCommandLine,
  stringOption,
  UsageError,
} from "./cli.ts";
import { connectionConfig } from "./config.ts";
import {
  type DeadLetter,
  type DeadLetterFilter,
  deadLetterJson,
  formatDeadLetterTable,
  inspectDeadLetters,
  parseSince,
  purgeDeadLetters,
  replayDeadLetters,
} from "./dead_letters.ts";
import { LOG_LEVELS, setupLogging } from "./log.ts";
import { EXIT } from "./main.ts";
import type { DLQ_OPTIONS } from "./options.ts";
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
  replay: [...FILTERS, "dry-run", "rate"],
  purge: [...FILTERS, "dry-run", "yes"],
};

/** The reasons a dead letter can carry (`broker:<reason>` for the broker's own). */
export const KNOWN_REASONS = ["exhausted", "invalid", "unroutable", "rejected", "unknown"];

type Options = Record<keyof typeof DLQ_OPTIONS, ParsedCommandLine["options"][string]>;

/**
 * Checks the subcommand and its options: a flag or variable another subcommand takes is refused,
 * naming it, and so is an unknown reason.
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
    const given = option.value !== undefined && !option.label.endsWith("(default)") &&
      !(option.value === false && !option.label.startsWith("--"));
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
  const dryRun = booleanOption(o["dry-run"]);

  // The first broker of the list that answers (any node of a cluster will do).
  await using broker = (await connectFirst(urls, { name: `dlq ${verb}`, tls })).broker;
  switch (verb) {
    case "list": {
      const letters = await inspectDeadLetters(broker, topo, scan);
      if (booleanOption(o.json)) {
        console.log(JSON.stringify(letters.map((l) => deadLetterJson(l, false)), null, 2));
      } else {
        console.log(formatDeadLetterTable(letters, now));
        console.log(`\n${letters.length} dead letter(s) in ${topo.deadLetterQueue}`);
      }
      return EXIT.ok;
    }
    case "show": {
      const [letter] = await inspectDeadLetters(broker, topo, {
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
      const total = Math.min(
        limit ?? Number.POSITIVE_INFINITY,
        await broker.messageCount(topo.deadLetterQueue),
      );
      const progress = dryRun ? undefined : new Progress({ label: "replayed", total });
      const summary = await replayDeadLetters(broker, topo, {
        ...scan,
        dryRun,
        ...(rate !== undefined ? { ratePerSecond: rate } : {}),
        onProgress: (n) => progress?.update(n),
      });
      progress?.done(summary.replayed);
      console.log(
        dryRun
          ? `dry run: ${summary.matched} dead letter(s) would be replayed to ${topo.exchange}, ${summary.kept} left in ${topo.deadLetterQueue}`
          : `replayed ${summary.replayed} of ${summary.matched} matching dead letter(s) to ${topo.exchange}` +
            `${summary.failed > 0 ? `, ${summary.failed} failed and stay in the DLQ` : ""}` +
            `, ${summary.kept} left in ${topo.deadLetterQueue}`,
      );
      return summary.failed > 0 ? EXIT.failure : EXIT.ok;
    }
    case "purge": {
      if (dryRun) {
        // A dry run only looks: it never deletes, whatever else is given (--yes included).
        const matching = await inspectDeadLetters(broker, topo, scan);
        const depth = await broker.messageCount(topo.deadLetterQueue);
        console.log(
          `dry run: ${matching.length} dead letter(s) would be purged from ${topo.deadLetterQueue}, ` +
            `${depth - matching.length} kept; nothing was deleted`,
        );
        return EXIT.ok;
      }
      if (!booleanOption(o.yes)) {
        if (!Deno.stdin.isTerminal()) {
          throw new UsageError("purge deletes dead letters for good: add --yes to confirm");
        }
        const what = filter.reason || filter.ref || filter.since || limit
          ? "the matching dead letters"
          : `every dead letter (${await broker.messageCount(topo.deadLetterQueue)})`;
        const answer = prompt(`Delete ${what} in ${topo.deadLetterQueue} for good? [y/N]`);
        if (!/^y(es)?$/i.test(answer?.trim() ?? "")) {
          console.log("nothing purged");
          return EXIT.ok;
        }
      }
      const summary = await purgeDeadLetters(broker, topo, scan);
      console.log(
        `purged ${summary.purged} dead letter(s) from ${topo.deadLetterQueue}, ${summary.kept} kept`,
      );
      return EXIT.ok;
    }
  }
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
