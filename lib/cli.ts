/**
 * Command-line options as data: one table per command gives each flag its env variable, default
 * and help line, so parsing, `--help` and error messages never disagree. Flags override env.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { redactUrl } from "./redact.ts";

/** One option of a command. */
export interface OptionSpec {
  /** `string` takes a value (`--count 5` or `--count=5`); `boolean` is a switch. */
  readonly type: "string" | "boolean";
  /** The environment variable read when the flag is not given. */
  readonly env?: string;
  /** The value used when neither flag nor env variable is given, as a string. */
  readonly default?: string;
  /** What the option does, for `--help`. */
  readonly description: string;
  /** A one-letter alias. */
  readonly short?: string;
  /** The placeholder shown in `--help` for the value, e.g. `N`. */
  readonly placeholder?: string;
  /**
   * A secret (a password, a URL holding one): it may also come from the file that the variable
   * `<env>_FILE` names (the Docker-secrets convention), read once at start-up.
   */
  readonly secret?: boolean;
}

/** The options of one command, by flag name (without the dashes). */
export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

/** A bad flag, flag value or environment value. Entry scripts print it and exit with code 2. */
export class UsageError extends Error {
  /** Creates a usage error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UsageError";
  }
}

/** One option's value and where it came from, for error messages. */
export interface OptionValue {
  /** The raw value; `undefined` when not given and without default. */
  readonly value: string | boolean | undefined;
  /** How to name it in an error: `--count`, `COUNT` (env) or `--count (default)`. */
  readonly label: string;
}

/** The parsed command line. */
export interface ParsedCommandLine {
  /** Whether `--help` or `-h` was given. */
  readonly help: boolean;
  /** Each option's value. */
  readonly options: Readonly<Record<string, OptionValue>>;
  /** The arguments that are not options. */
  readonly positionals: readonly string[];
}

const TRUE = new Set(["1", "true", "yes", "on"]);
const FALSE = new Set(["0", "false", "no", "off", ""]);

/**
 * Parses `args` against `specs`, falling back to `env` and then to each option's default.
 *
 * @throws {UsageError} naming an unknown flag, a flag without its value, or a boolean env
 * variable that is neither true nor false.
 */
export function parseCommandLine(
  specs: OptionSpecs,
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  options: { allowPositionals?: boolean; readFile?: (path: string) => string } = {},
): ParsedCommandLine {
  const readFile = options.readFile ?? Deno.readTextFileSync;
  const parseOptions: Record<string, { type: "string" | "boolean"; short?: string }> = {
    help: { type: "boolean", short: "h" },
  };
  for (const [name, spec] of Object.entries(specs)) {
    parseOptions[name] = spec.short ? { type: spec.type, short: spec.short } : { type: spec.type };
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      options: parseOptions,
      strict: true,
      allowNegative: true,
      allowPositionals: options.allowPositionals ?? false,
    });
  } catch (error) {
    throw new UsageError((error as Error).message, { cause: error });
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  const result: Record<string, OptionValue> = {};
  for (const [name, spec] of Object.entries(specs)) {
    const flag = values[name];
    if (flag !== undefined) {
      result[name] = { value: flag, label: `--${name}` };
      continue;
    }
    const fromEnv = spec.env === undefined ? undefined : env[spec.env];
    if (fromEnv !== undefined) {
      if (spec.type === "boolean") {
        const normal = fromEnv.trim().toLowerCase();
        if (!TRUE.has(normal) && !FALSE.has(normal)) {
          throw new UsageError(
            `${spec.env} must be true or false (1/0, yes/no), got ${JSON.stringify(fromEnv)}`,
          );
        }
        result[name] = { value: TRUE.has(normal), label: spec.env! };
      } else {
        result[name] = { value: fromEnv, label: spec.env! };
      }
      continue;
    }
    const file = spec.secret && spec.env !== undefined ? env[`${spec.env}_FILE`] : undefined;
    if (file !== undefined && file !== "") {
      let text: string;
      try {
        text = readFile(file);
      } catch (error) {
        throw new UsageError(
          `${spec.env}_FILE names ${JSON.stringify(file)}, which cannot be read: ${
            (error as Error).message
          }`,
          { cause: error },
        );
      }
      result[name] = { value: text.replace(/\r?\n$/, ""), label: `${spec.env}_FILE` };
      continue;
    }
    result[name] = {
      value: spec.type === "boolean" ? spec.default === "true" : spec.default,
      label: `--${name} (default)`,
    };
  }
  return { help: values.help === true, options: result, positionals: parsed.positionals };
}

/** Formats the `--help` text of a command. */
export function formatHelp(usage: string, summary: string, specs: OptionSpecs): string {
  const rows = Object.entries(specs).map(([name, spec]) => {
    const negated = spec.type === "boolean" && spec.default === "true";
    const flag = `${spec.short ? `-${spec.short}, ` : "    "}--${negated ? "no-" : ""}${name}${
      spec.type === "string" ? ` <${spec.placeholder ?? "value"}>` : ""
    }`;
    const extras = [
      spec.default !== undefined && spec.type === "string"
        ? `default: ${spec.default === "" ? '""' : spec.default}`
        : "",
      spec.env ? `env: ${spec.env}` : "",
    ].filter(Boolean).join(", ");
    return [flag, `${spec.description}${extras ? ` (${extras})` : ""}`] as const;
  });
  rows.push(["-h, --help", "Show this help and exit."]);
  const lines = rows.map(([flag, text]) => `  ${flag}\n        ${text}`);
  return `${summary}\n\nUsage: ${usage}\n\nOptions:\n${lines.join("\n")}\n`;
}

/** Reads a string option that must be set. */
export function stringOption(option: OptionValue): string {
  if (typeof option.value !== "string") throw new UsageError(`${option.label} needs a value`);
  return option.value;
}

/** Reads a boolean option. */
export function booleanOption(option: OptionValue): boolean {
  return option.value === true;
}

/**
 * Reads an integer option within bounds.
 *
 * @throws {UsageError} such as `--count must be an integer from 1 to 10000000, got "abc"`.
 */
export function integerOption(option: OptionValue, min: number, max: number): number {
  const raw = stringOption(option).trim();
  const value = /^-?\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(
      `${option.label} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`,
    );
  }
  return value;
}

/** Reads a number option within bounds (decimals allowed). */
export function numberOption(option: OptionValue, min: number, max: number): number {
  const raw = stringOption(option).trim();
  const value = raw === "" ? Number.NaN : Number(raw);
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new UsageError(
      `${option.label} must be a number from ${min} to ${max}, got ${JSON.stringify(raw)}`,
    );
  }
  return value;
}

/** Reads an option that must be one of `choices`. */
export function choiceOption<T extends string>(option: OptionValue, choices: readonly T[]): T {
  const raw = stringOption(option);
  if (!(choices as readonly string[]).includes(raw)) {
    throw new UsageError(
      `${option.label} must be one of ${choices.join(", ")}, got ${JSON.stringify(raw)}`,
    );
  }
  return raw as T;
}

/**
 * Reads an http:// or https:// URL option.
 * @throws {UsageError} naming the option when the value is not one.
 */
export function httpUrlOption(option: OptionValue): string {
  const text = stringOption(option);
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== "http:" && url.protocol !== "https:")) {
    throw new UsageError(
      `${option.label} must be an http:// or https:// URL, got ${JSON.stringify(redactUrl(text))}`,
    );
  }
  return text;
}
