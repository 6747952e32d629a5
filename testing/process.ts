/**
 * A process whose output a test reads line by line as it comes, and waits on with a deadline:
 * the Go services, this project's services, anything a suite runs beside it.
 *
 * @module
 */

import { scriptEnv } from "./broker.ts";

const root = new URL("..", import.meta.url).pathname;

/** A process whose stdout and stderr are read line by line as they come. */
export class Peer implements AsyncDisposable {
  readonly name: string;
  readonly lines: string[] = [];
  readonly #child: Deno.ChildProcess;
  readonly #reading: Promise<void>;
  readonly #waiters = new Set<() => void>();
  #exit: Deno.CommandStatus | undefined;
  readonly status: Promise<Deno.CommandStatus>;

  constructor(name: string, command: string, args: readonly string[], env = {}) {
    this.name = name;
    this.#child = new Deno.Command(command, {
      args: [...args],
      cwd: root,
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#reading = Promise.all([this.#read(this.#child.stdout), this.#read(this.#child.stderr)])
      .then(() => {});
    this.status = this.#child.status.then(async (status) => {
      await this.#reading;
      this.#exit = status;
      this.#wake();
      return status;
    });
  }

  async #read(stream: ReadableStream<Uint8Array>): Promise<void> {
    const lines = stream.pipeThrough(new TextDecoderStream());
    let rest = "";
    for await (const chunk of lines) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      this.lines.push(...parts);
      this.#wake();
    }
    if (rest !== "") this.lines.push(rest);
  }

  #wake(): void {
    for (const wake of this.#waiters) wake();
  }

  /** Whether the process is still running. */
  get running(): boolean {
    return this.#exit === undefined;
  }

  /** The lines matching `pattern`. */
  grep(pattern: RegExp): string[] {
    return this.lines.filter((line) => pattern.test(line));
  }

  /** Resolves once `count` lines match; rejects if the process exits first or at the deadline. */
  until(what: string, pattern: RegExp, count = 1, timeoutMs = 30_000): Promise<string[]> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.grep(pattern);
        if (found.length >= count) return done(() => resolve(found));
        if (this.#exit !== undefined) {
          return done(() =>
            reject(new Error(`${this.name} exited (${this.#exit!.code}) before ${what}:\n${this}`))
          );
        }
      };
      const timer = setTimeout(
        () => done(() => reject(new Error(`timed out after ${timeoutMs} ms: ${what}\n${this}`))),
        timeoutMs,
      );
      const done = (settle: () => void) => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        settle();
      };
      this.#waiters.add(check);
      check();
    });
  }

  /** Stops the process (SIGTERM, then SIGKILL after 10 s) and waits for it. */
  async stop(): Promise<Deno.CommandStatus> {
    if (this.running) {
      try {
        this.#child.kill("SIGTERM");
      } catch { /* already gone */ }
      const timer = setTimeout(() => {
        try {
          this.#child.kill("SIGKILL");
        } catch { /* already gone */ }
      }, 10_000);
      await this.status.finally(() => clearTimeout(timer));
    }
    return await this.status;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop().then(() => {});
  }

  toString(): string {
    return `--- ${this.name} ---\n${this.lines.slice(-40).join("\n")}`;
  }
}

/**
 * One of this project's entry scripts as a running process against the broker under test, with
 * `env` added to {@linkcode scriptEnv}'s.
 */
export function ourService(
  name: string,
  script: string,
  args: readonly string[],
  env: Record<string, string> = {},
): Peer {
  return new Peer(name, Deno.execPath(), ["run", "-A", `${root}${script}`, ...args], {
    ...scriptEnv(),
    NO_COLOR: "1",
    ...env,
  });
}
