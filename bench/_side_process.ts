/**
 * Each side of the bench in a process of its own (bench/worker.ts), so neither shares a heap, a
 * garbage collector or a JIT's state with the other: the bench sends it jobs, one JSON line each
 * on its stdin, and reads each job's answer, one JSON line on its stdout.
 *
 * @module
 */

const root = new URL("..", import.meta.url).pathname;

/** What a side's process runs with. */
export interface SideProcessOptions {
  /** The broker (RABBITMQ_URL of the process). */
  readonly url: string;
  /** V8 flags, `--expose-gc` added. */
  readonly v8Flags?: readonly string[];
  /** Environment added to the bench's own (e.g. OTEL_* for bench/tracing.ts). */
  readonly env?: Readonly<Record<string, string>>;
}

/** A side's process, answering jobs in turn. */
export class SideProcess implements AsyncDisposable {
  readonly name: string;
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #waiting = new Map<number, PromiseWithResolvers<unknown>>();
  readonly #reading: Promise<void>;
  #next = 1;

  /** Starts `name`'s process. */
  constructor(name: string, options: SideProcessOptions) {
    this.name = name;
    const flags = ["--expose-gc", ...(options.v8Flags ?? [])];
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `--v8-flags=${flags.join(",")}`, `${root}bench/worker.ts`],
      cwd: root,
      env: { RABBITMQ_URL: options.url, ...options.env },
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#stdin = this.#child.stdin.getWriter();
    this.#reading = this.#read();
  }

  async #read(): Promise<void> {
    let rest = "";
    for await (const chunk of this.#child.stdout.pipeThrough(new TextDecoderStream())) {
      const lines = (rest + chunk).split("\n");
      rest = lines.pop()!;
      for (const line of lines) this.#answer(line);
    }
    const gone = new Error(`${this.name}'s process exited`);
    for (const waiter of this.#waiting.values()) waiter.reject(gone);
    this.#waiting.clear();
  }

  /** Settles the job a line of the process's stdout answers (other lines are not answers). */
  #answer(line: string): void {
    if (!line.startsWith("{")) return;
    const answer = JSON.parse(line) as { id: number; ok: boolean; value?: unknown; error?: string };
    const waiter = this.#waiting.get(answer.id);
    if (waiter === undefined) return;
    this.#waiting.delete(answer.id);
    if (answer.ok) waiter.resolve(answer.value);
    else waiter.reject(new Error(`${this.name}: ${answer.error}`));
  }

  /** Sends `job` and resolves with its answer. */
  async request<T>(job: object): Promise<T> {
    const id = this.#next++;
    const waiter = Promise.withResolvers<unknown>();
    this.#waiting.set(id, waiter);
    await this.#stdin.write(new TextEncoder().encode(JSON.stringify({ id, ...job }) + "\n"));
    return await waiter.promise as T;
  }

  /** Closes its stdin (it exits once its jobs are done) and waits for it. */
  async close(): Promise<void> {
    await this.#stdin.close().catch(() => {});
    const status = await this.#child.status;
    await this.#reading;
    if (!status.success) throw new Error(`${this.name}'s process exited with ${status.code}`);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close().catch(() => {});
  }
}
