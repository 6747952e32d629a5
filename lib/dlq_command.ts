/**
 * The dead-letter tooling's command line, read once: the subcommand and the options it takes,
 * checked and turned into one typed record per subcommand ({@linkcode DlqCommand}), which
 * lib/dlq.ts acts on. A flag another subcommand takes is refused, naming it; a variable in the
 * environment is read only by the subcommands it applies to.
 *
 * @module
 */

import { DEAD_LETTER_REASONS } from "./retry_policy.ts";
import type { LogLevel } from "@logtape/logtape";
import type { TlsFiles } from "./broker.ts";
import {
  booleanOption,
  choiceOption,
  formatHelp,
  integerOption,
  numberOption,
  type OptionValue,
  parseCommandLine,
  type ParsedCommandLine,
  stringOption,
  UsageError,
} from "./cli.ts";
import { connectionConfig } from "./config.ts";
import { type DeadLetterFilter, isEmptyFilter, parseSince } from "./dead_letters.ts";
import { LOG_LEVELS } from "./log.ts";
import { DLQ_OPTIONS } from "./options.ts";
import { type Topology, topology, TopologyOptionError } from "./topology.ts";

/** The subcommands. */
export const DLQ_VERBS = ["list", "show", "replay", "purge"] as const;

/** A subcommand. */
export type DlqVerb = typeof DLQ_VERBS[number];

/** The options every subcommand takes: where the broker is, the prefix, logging. */
const SHARED = ["url", "user", "password", "tls-ca", "tls-cert", "tls-key", "prefix", "log-level"];
const FILTERS = ["reason", "since", "ref", "limit"];

/** The options each subcommand takes besides the shared ones (broker, prefix, logging). */
export const DLQ_VERB_OPTIONS: Readonly<Record<DlqVerb, readonly string[]>> = {
  list: [...FILTERS, "json"],
  show: ["json"],
  replay: [...FILTERS, "dry-run", "rate", "window", "from-file", "audit-log", "operator"],
  purge: [...FILTERS, "dry-run", "yes", "archive", "archive-dir", "audit-log", "operator"],
};

/** The reasons a dead letter can carry (`broker:<reason>` for the broker's own). */
export const KNOWN_REASONS: readonly string[] = [...DEAD_LETTER_REASONS, "unknown"];

/** What every subcommand is given. */
export interface DlqBase {
  /** Every broker URL, in the order given (they hold the password: log them redacted). */
  readonly urls: readonly string[];
  /** TLS files for amqps:// URLs. */
  readonly tls: TlsFiles;
  /** The topology of `--prefix`: its DLQ and work exchange. */
  readonly topology: Topology;
  /** The lowest level logged. */
  readonly logLevel: LogLevel;
  /**
   * When the command was given: `--since` counts back from it, and the listing's ages and a
   * purge archive's name are taken from it.
   */
  readonly now: Date;
}

/** Which dead letters a subcommand acts on: `--reason`, `--since`, `--ref` and `--limit`. */
export interface DlqSelection {
  /** The filter; empty when none is given. */
  readonly filter: DeadLetterFilter;
  /** At most this many; undefined for all that match. */
  readonly limit: number | undefined;
}

/** Where a replay or purge is recorded. */
export interface DlqAudit {
  /** The audit trail file (`--audit-log`). */
  readonly log: string;
  /** Who, as given (`--operator`); undefined for user@host, found when the entry is written. */
  readonly operator: string | undefined;
}

/** `dlq list`: the matching dead letters, no bodies. */
export interface DlqList extends DlqBase {
  /** The subcommand. */
  readonly verb: "list";
  /** Which dead letters. */
  readonly selection: DlqSelection;
  /** Print JSON rather than a table. */
  readonly json: boolean;
}

/** `dlq show REF`: one dead letter in full. */
export interface DlqShow extends DlqBase {
  /** The subcommand. */
  readonly verb: "show";
  /** The RefCode asked for. */
  readonly ref: string;
  /** Print JSON rather than text. */
  readonly json: boolean;
}

/** `dlq replay`: matching dead letters, or a purge archive's, sent back to the work exchange. */
export interface DlqReplay extends DlqBase {
  /** The subcommand. */
  readonly verb: "replay";
  /** Which dead letters; empty when {@linkcode DlqReplay.fromFile} is given. */
  readonly selection: DlqSelection;
  /** A purge archive to replay, whole, instead of the DLQ's letters (`--from-file`). */
  readonly fromFile: string | undefined;
  /** Only count, send nothing. */
  readonly dryRun: boolean;
  /** At most this many a second; undefined for no limit. */
  readonly rate: number | undefined;
  /** Republishes awaiting their confirm at once. */
  readonly window: number;
  /** Where the replay is recorded. */
  readonly audit: DlqAudit;
}

/** `dlq purge`: matching dead letters deleted, archived first unless `--no-archive`. */
export interface DlqPurge extends DlqBase {
  /** The subcommand. */
  readonly verb: "purge";
  /** Which dead letters. */
  readonly selection: DlqSelection;
  /** Only count, delete nothing (whatever else is given, `--yes` included). */
  readonly dryRun: boolean;
  /** Do not ask first. */
  readonly yes: boolean;
  /** The folder the archive is written to; undefined with `--no-archive`. */
  readonly archiveDir: string | undefined;
  /** Where the purge is recorded. */
  readonly audit: DlqAudit;
}

/** A dlq command line, checked: one record per subcommand, told apart by `verb`. */
export type DlqCommand = DlqList | DlqShow | DlqReplay | DlqPurge;

type Options = Record<keyof typeof DLQ_OPTIONS, OptionValue>;

/**
 * Checks the subcommand, its arguments and which flags are given: a flag another subcommand
 * takes is refused, naming it, and so is an unknown reason.
 *
 * @throws {UsageError}
 */
function checkVerb(cl: ParsedCommandLine): { verb: DlqVerb; rest: readonly string[] } {
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

/** A string option, or undefined when it is not given. */
function optionalString(option: OptionValue): string | undefined {
  return option.value === undefined ? undefined : stringOption(option);
}

/** `--reason`, `--since`, `--ref` and `--limit`. @throws {UsageError} naming a bad one. */
function selectionOf(o: Options, now: Date): DlqSelection {
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
  return {
    filter: { reason: optionalString(o.reason), ref: optionalString(o.ref), since },
    limit: o.limit.value === undefined ? undefined : integerOption(o.limit, 1, 10_000_000),
  };
}

/** `--audit-log` and `--operator`. */
function auditOf(o: Options): DlqAudit {
  return { log: stringOption(o["audit-log"]), operator: optionalString(o.operator) };
}

/**
 * Turns a parsed dlq command line into its subcommand's record, checking every option it takes
 * before anything is done; `now` is when the command was given.
 *
 * @example
 * ```ts
 * dlqCommand(parseCommandLine(DLQ_OPTIONS, ["list", "--since", "1h"], {}, {
 *   allowPositionals: true,
 * }));
 * // { verb: "list", selection: { filter: { since: <an hour ago>, … }, limit: undefined }, … }
 * ```
 *
 * @throws {UsageError} naming the first bad flag, flag value or environment variable.
 */
export function dlqCommand(cl: ParsedCommandLine, now: Date = new Date()): DlqCommand {
  const { verb, rest } = checkVerb(cl);
  const o = cl.options as Options;
  const { urls, tls } = connectionConfig(o);
  let topo: Topology;
  try {
    topo = topology({ prefix: stringOption(o.prefix) });
  } catch (error) {
    if (!(error instanceof TopologyOptionError)) throw error;
    throw new UsageError(`${o.prefix.label}: ${error.message}`, { cause: error });
  }
  const base: DlqBase = {
    urls,
    tls,
    topology: topo,
    logLevel: choiceOption(o["log-level"], LOG_LEVELS),
    now,
  };
  const selection = selectionOf(o, now);
  switch (verb) {
    case "list":
      return { ...base, verb, selection, json: booleanOption(o.json) };
    case "show":
      return { ...base, verb, ref: rest[0]!, json: booleanOption(o.json) };
    case "replay": {
      const dryRun = booleanOption(o["dry-run"]);
      const rate = o.rate.value === undefined ? undefined : numberOption(o.rate, 0.1, 1_000_000);
      const window = integerOption(o.window, 1, 100_000);
      const fromFile = optionalString(o["from-file"]);
      if (
        fromFile !== undefined &&
        (!isEmptyFilter(selection.filter) || selection.limit !== undefined)
      ) {
        throw new UsageError("--from-file replays a whole archive: it takes no filter or --limit");
      }
      return { ...base, verb, selection, fromFile, dryRun, rate, window, audit: auditOf(o) };
    }
    case "purge":
      return {
        ...base,
        verb,
        selection,
        dryRun: booleanOption(o["dry-run"]),
        yes: booleanOption(o.yes),
        archiveDir: booleanOption(o.archive) ? stringOption(o["archive-dir"]) : undefined,
        audit: auditOf(o),
      };
  }
}

/**
 * Parses a dlq command line (`args` after the task name, the environment `env`) into its
 * subcommand's record: {@linkcode dlqCommand} of lib/cli.ts's parse against `DLQ_OPTIONS`.
 *
 * @example
 * ```ts
 * parseDlqCommand(["purge", "--reason", "invalid", "--yes"], Deno.env.toObject());
 * // { verb: "purge", yes: true, archiveDir: "data/dlq-archive", … }
 * parseDlqCommand(["list", "--rate", "5"], {});
 * // throws UsageError: --rate does not apply to "dlq list" (it takes --reason, …)
 * ```
 *
 * @throws {UsageError} naming the first bad flag, flag value or environment variable.
 */
export function parseDlqCommand(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  now: Date = new Date(),
): DlqCommand {
  return dlqCommand(parseCommandLine(DLQ_OPTIONS, args, env, { allowPositionals: true }), now);
}

const VERB_SUMMARY: Record<DlqVerb, string> = {
  list: "Lists dead letters (all, or those matching the filters); moves nothing.",
  show: "Shows one dead letter in full: properties, headers, body.",
  replay:
    "Sends matching dead letters (or a purge archive) back for processing, each removed only once its copy is confirmed.",
  purge:
    "Deletes matching dead letters for good, after writing them to an archive; asks first unless --yes.",
};

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
