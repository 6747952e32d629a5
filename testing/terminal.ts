/**
 * The `dlq` command on a pseudo-terminal (`script`), as an operator's shell runs it: for the
 * prompts it shows only on a terminal.
 *
 * @module
 */

import { join } from "node:path";
import { RABBITMQ_URL } from "./broker.ts";

const root = new URL("..", import.meta.url).pathname;

/**
 * Runs `dlq <args>` on a pseudo-terminal; once it asks (`[y/N]`), runs `meanwhile` and answers
 * `answer`. Resolves with its exit code and everything it printed; killed after `timeoutMs`.
 */
export async function dlqOnTerminal(
  args: readonly string[],
  answer: string,
  { meanwhile, timeoutMs = 20_000 }: {
    readonly meanwhile?: () => Promise<void>;
    readonly timeoutMs?: number;
  } = {},
): Promise<{ code: number; stdout: string }> {
  const command = [Deno.execPath(), "run", "-A", join(root, "dlq.ts"), ...args]
    .map((part) => `'${part}'`).join(" ");
  const child = new Deno.Command("script", {
    args: ["-qec", command, "/dev/null"],
    env: { RABBITMQ_URL },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let stdout = "";
    while (!stdout.includes("[y/N]")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`dlq ended without asking:\n${stdout}`);
      stdout += value;
    }
    await meanwhile?.();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(answer));
    await writer.close();
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      stdout += value;
    }
    const { code } = await child.status;
    await child.stderr.cancel();
    return { code, stdout };
  } finally {
    clearTimeout(timer);
  }
}
