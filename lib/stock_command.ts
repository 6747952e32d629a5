/**
 * Estoque's stock subcommands, read once: `move`, `stock set`, `stock list`, `serve` and `relay`,
 * each with its own option table (lib/options.ts), checked and turned into one typed record per
 * subcommand ({@linkcode StockCommand}), which lib/stock_cli.ts acts on. Without a subcommand
 * (`estoque -n N`) Estoque publishes generated orders as it always has (lib/estoque.ts).
 *
 * @module
 */

import type { LogLevel } from "@logtape/logtape";
import {
  booleanOption,
  choiceOption,
  formatHelp,
  integerOption,
  type OptionSpecs,
  type OptionValue,
  parseCommandLine,
  type ParsedCommandLine,
  stringOption,
  UsageError,
} from "./cli.ts";
import { type CommonConfig, commonConfig, ledgerUrlOption } from "./config.ts";
import { type Gate, gateOf } from "./console/admission.ts";
import { defaultInstanceId } from "./ledger.ts";
import { LOG_LEVELS } from "./log.ts";
import type { CommandSpec } from "./main.ts";
import { COMMANDS } from "./options.ts";
import {
  checkItem,
  checkMovement,
  type Movement,
  StockError,
  type StockItemSettings,
} from "./stock_store.ts";

/** Estoque's subcommands; without one, it publishes generated orders (`estoque -n N`). */
export const ESTOQUE_VERBS = ["move", "stock", "serve", "relay"] as const;

/** A subcommand of Estoque. */
export type EstoqueVerb = typeof ESTOQUE_VERBS[number];

/** The subcommand `args` begin with, or undefined for Estoque's first mode (`estoque -n N`). */
export function estoqueVerb(args: readonly string[]): EstoqueVerb | undefined {
  return ESTOQUE_VERBS.find((verb) => verb === args[0]);
}

/** The command of each subcommand (its options, usage and summary). */
export const STOCK_COMMANDS: Readonly<Record<EstoqueVerb, CommandSpec>> = {
  move: COMMANDS["estoque move"],
  stock: COMMANDS["estoque stock"],
  serve: COMMANDS["estoque serve"],
  relay: COMMANDS["estoque relay"],
};

/** What every stock subcommand is given. */
export interface StockBase {
  /** `sqlite:PATH` or a `postgres://` URL (holds a password: log it through `redactUrl`). */
  readonly stockUrl: string;
  /** The lowest level logged. */
  readonly logLevel: LogLevel;
}

/** `estoque move`: one movement. */
export interface StockMove extends StockBase {
  /** The subcommand. */
  readonly verb: "move";
  /** The movement, checked. */
  readonly movement: Movement;
  /** Print JSON. */
  readonly json: boolean;
}

/** `estoque stock set`: a colour's item created or replaced. */
export interface StockSet extends StockBase {
  /** The subcommand. */
  readonly verb: "stock set";
  /** The item's values, checked. */
  readonly settings: StockItemSettings;
  /** Print JSON. */
  readonly json: boolean;
}

/** `estoque stock list`: every item. */
export interface StockList extends StockBase {
  /** The subcommand. */
  readonly verb: "stock list";
  /** Print JSON. */
  readonly json: boolean;
}

/** The relay's settings, alone or inside `serve`. */
export interface RelaySettings {
  /** A publish not confirmed within this long fails, in milliseconds. */
  readonly confirmTimeoutMs: number;
  /** Rows taken at once. */
  readonly batchSize: number;
  /** The fallback poll of an idle relay, in milliseconds. */
  readonly pollMs: number;
  /** How long sent rows are kept, in milliseconds. */
  readonly retentionMs: number;
}

/** `estoque relay` and `estoque serve`. */
export interface StockService extends StockBase, CommonConfig {
  /** The subcommand: the stock API with the relay, or the relay alone. */
  readonly verb: "serve" | "relay";
  /** Declare the topology (true), or only check it exists. */
  readonly declare: boolean;
  /** The relay's settings; undefined for `serve --no-relay`. */
  readonly relay: RelaySettings | undefined;
  /** This process's name in metrics and logs. */
  readonly instanceId: string;
  /** The HTTP endpoint, or undefined with `--no-http`. */
  readonly http: { readonly port: number; readonly hostname: string } | undefined;
  /** The stock API's guard (`serve` with HTTP only). */
  readonly api: Gate | undefined;
}

/** A stock command line, checked: one record per subcommand, told apart by `verb`. */
export type StockCommand = StockMove | StockSet | StockList | StockService;

const MAX = Number.MAX_SAFE_INTEGER;

/** An option that must be given. @throws {UsageError} naming it. */
function required(option: OptionValue, what: string): OptionValue {
  if (option.value === undefined || option.value === "") {
    throw new UsageError(`${what} needs ${option.label.replace(" (default)", "")}`);
  }
  return option;
}

/** A StockError about an option as the UsageError of that option. */
function asUsage<T>(labels: Partial<Record<StockError["code"], string>>, check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (!(error instanceof StockError)) throw error;
    const label = labels[error.code];
    throw new UsageError(label === undefined ? error.message : `${label}: ${error.message}`, {
      cause: error,
    });
  }
}

/** Checks the positionals after the subcommand. */
function positionals(verb: EstoqueVerb, rest: readonly string[]): "set" | "list" | undefined {
  if (verb !== "stock") {
    if (rest.length > 0) {
      throw new UsageError(`${verb} takes no arguments, got ${JSON.stringify(rest.join(" "))}`);
    }
    return undefined;
  }
  if (rest.length !== 1) {
    throw new UsageError("say what to do with the stock: stock set ..., or stock list");
  }
  return choiceOption({ value: rest[0], label: "stock's command" }, ["set", "list"] as const);
}

function base(o: Record<string, OptionValue>): StockBase {
  const stock = ledgerUrlOption(o["stock-url"]!)!;
  return { stockUrl: stock.url, logLevel: choiceOption(o["log-level"]!, LOG_LEVELS) };
}

/**
 * Turns a parsed stock command line into its subcommand's record, checking every option before
 * anything is done (and reading `--users-file`).
 *
 * @throws {UsageError} naming the first bad flag, flag value or environment variable.
 */
export async function stockCommand(
  verb: EstoqueVerb,
  cl: ParsedCommandLine,
): Promise<StockCommand> {
  const o = cl.options as Record<string, OptionValue>;
  const sub = positionals(verb, cl.positionals.slice(1));
  if (verb === "move") {
    const delta = integerOption(required(o.delta!, "move"), -MAX, MAX);
    const key = o["idempotency-key"]!;
    const movement = asUsage(
      {
        bad_color: "--color",
        bad_delta: "--delta",
        bad_reason: "--reason",
        bad_key: "--idempotency-key",
      },
      () =>
        checkMovement({
          color: stringOption(required(o.color!, "move")),
          delta,
          reason: o.reason!.value === undefined ? undefined : stringOption(o.reason!),
          idempotencyKey: key.value === undefined ? undefined : stringOption(key),
        }),
    );
    return { ...base(o), verb, movement, json: booleanOption(o.json!) };
  }
  if (verb === "stock") {
    const names = ["color", "quantity", "reorder-point", "reorder-quantity"];
    if (sub === "list") {
      const given = names.find((name) => o[name]!.value !== undefined);
      if (given !== undefined) throw new UsageError(`--${given} is for stock set, not stock list`);
      return { ...base(o), verb: "stock list", json: booleanOption(o.json!) };
    }
    for (const name of names) required(o[name]!, "stock set");
    const settings = asUsage({ bad_color: "--color", bad_item: "stock set" }, () =>
      checkItem({
        color: stringOption(o.color!),
        quantity: integerOption(o.quantity!, 0, MAX),
        reorderPoint: integerOption(o["reorder-point"]!, 0, MAX),
        reorderQuantity: integerOption(o["reorder-quantity"]!, 1, MAX),
      }));
    return { ...base(o), verb: "stock set", settings, json: booleanOption(o.json!) };
  }
  const common = commonConfig(cl);
  const relay = verb === "relay" || booleanOption(o.relay!)
    ? {
      confirmTimeoutMs: integerOption(o["confirm-timeout"]!, 1, 600_000),
      batchSize: integerOption(o["batch-size"]!, 1, 10_000),
      pollMs: integerOption(o["poll-interval"]!, 10, 3_600_000),
      retentionMs: integerOption(o.retention!, 0, 3_650 * 86_400_000),
    }
    : undefined;
  const http = booleanOption(o.http!)
    ? { port: integerOption(o["http-port"]!, 0, 65_535), hostname: stringOption(o["http-host"]!) }
    : undefined;
  const api = verb === "serve" && http !== undefined
    ? await gateOf({
      hostname: o["http-host"]!,
      allowedHosts: o["allowed-hosts"]!,
      token: o.token!,
      operatorToken: o["operator-token"]!,
      usersFile: o["users-file"]!,
    }, "estoque stock")
    : undefined;
  return {
    ...common,
    ...base(o),
    verb,
    declare: booleanOption(o.declare!),
    relay,
    instanceId: o["instance-id"]!.value === undefined
      ? defaultInstanceId()
      : stringOption(o["instance-id"]!),
    http,
    api,
  };
}

/**
 * `args` with `--delta -5` written `--delta=-5`: a value that starts with a dash is taken for a
 * flag otherwise (node:util's `parseArgs` refuses it as ambiguous).
 */
function joinNegativeValues(args: readonly string[], specs: OptionSpecs): string[] {
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const next = args[i + 1];
    const name = arg.startsWith("--") ? arg.slice(2) : undefined;
    if (
      name !== undefined && specs[name]?.type === "string" && next !== undefined &&
      /^-\d/.test(next)
    ) {
      joined.push(`${arg}=${next}`);
      i++;
    } else joined.push(arg);
  }
  return joined;
}

/**
 * Parses the command line of a stock subcommand (`args` after the task name, beginning with the
 * subcommand; `env` the environment) against its option table.
 *
 * @example
 * ```ts
 * parseStockCommandLine("move", ["move", "--color", RED, "--delta", "-5"], {});
 * // { help: false, options: { delta: { value: "-5", label: "--delta" }, … }, positionals: ["move"] }
 * ```
 *
 * @throws {UsageError} naming an unknown flag or a bad environment variable.
 */
export function parseStockCommandLine(
  verb: EstoqueVerb,
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): ParsedCommandLine {
  const { options } = STOCK_COMMANDS[verb];
  return parseCommandLine(options, joinNegativeValues(args, options), env, {
    allowPositionals: true,
  });
}

/** Parses and checks a stock command line: {@linkcode stockCommand} of its parse. */
export async function parseStockCommand(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): Promise<StockCommand> {
  const verb = estoqueVerb(args);
  if (verb === undefined) throw new UsageError(`name a command: ${ESTOQUE_VERBS.join(", ")}`);
  return await stockCommand(verb, parseStockCommandLine(verb, args, env));
}

/** The `--help` of a stock subcommand. */
export function stockHelp(verb: EstoqueVerb): string {
  const { usage, summary, options } = STOCK_COMMANDS[verb];
  return formatHelp(usage, summary, options);
}
