/**
 * What every entry script shares: one abort signal for SIGINT/SIGTERM, one top-level catch that
 * prints the cause chain, and the exit codes.
 *
 * | code | meaning                                                         |
 * | ---- | --------------------------------------------------------------- |
 * | 0    | done                                                            |
 * | 1    | failed: the broker, the ledger or a publish (the message says)  |
 * | 2    | bad flag, flag value or environment variable                    |
 *
 * @module
 */

import {
  formatHelp,
  type OptionSpecs,
  parseCommandLine,
  type ParsedCommandLine,
  UsageError,
} from "./cli.ts";
import { redactUrl } from "./broker.ts";

/** Exit codes of the commands. */
export const EXIT = Object.freeze({ ok: 0, failure: 1, usage: 2 });

/** Prints an error with its causes, one per line, passwords hidden. */
export function formatFailure(error: unknown): string {
  const lines: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && depth < 8; depth++) {
    const text = current instanceof Error ? current.message : String(current);
    const previous = lines.at(-1);
    if (previous !== undefined && previous.endsWith(`: ${redactUrl(text)}`)) {
      current = current instanceof Error ? current.cause : undefined;
      continue;
    }
    lines.push(`${depth === 0 ? "error" : "  caused by"}: ${redactUrl(text)}`);
    current = current instanceof Error ? current.cause : undefined;
  }
  return lines.join("\n");
}

/**
 * Runs an entry script's `main` with an abort signal that SIGINT and SIGTERM fire, and exits with
 * the code it returns; a thrown error is printed and exits 1 (2 for a {@linkcode UsageError}).
 */
export async function runMain(
  main: (signal: AbortSignal) => Promise<number>,
): Promise<never> {
  const controller = new AbortController();
  const onSignal = () => controller.abort(new Error("interrupted"));
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  let code: number;
  try {
    code = await main(controller.signal);
  } catch (error) {
    console.error(formatFailure(error));
    if (error instanceof UsageError) console.error("Run with --help to see the options.");
    code = error instanceof UsageError ? EXIT.usage : EXIT.failure;
  }
  Deno.exit(code);
}

/** What {@linkcode runCommand} needs to know about a command. */
export interface CommandSpec {
  /** Its options. */
  readonly options: OptionSpecs;
  /** The usage line of `--help`, e.g. `deno task estoque [options]`. */
  readonly usage: string;
  /** The one-line summary `--help` opens with. */
  readonly summary: string;
  /** Whether it takes arguments besides options. */
  readonly allowPositionals?: boolean;
  /** The `--help` text for this command line, when it depends on it (a subcommand's). */
  readonly help?: (cl: ParsedCommandLine) => string | undefined;
}

/**
 * {@linkcode runMain} for a command with options: parses `Deno.args` and the environment, answers
 * `--help` itself, and hands the parsed command line to `main`.
 */
export function runCommand(
  spec: CommandSpec,
  main: (cl: ParsedCommandLine, signal: AbortSignal) => Promise<number>,
): Promise<never> {
  return runMain((signal) => {
    const cl = parseCommandLine(spec.options, Deno.args, Deno.env.toObject(), {
      allowPositionals: spec.allowPositionals ?? false,
    });
    if (cl.help) {
      console.log(spec.help?.(cl) ?? formatHelp(spec.usage, spec.summary, spec.options));
      return Promise.resolve(EXIT.ok);
    }
    return main(cl, signal);
  });
}
