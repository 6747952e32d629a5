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

import { UsageError } from "./cli.ts";
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
