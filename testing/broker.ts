/**
 * Helpers for every suite against the real broker (tests/, interop/, faults/): the broker and
 * database under test, a unique topology per test that is deleted afterwards, ways to wait for an
 * event with a deadline instead of sleeping, and the entry scripts as subprocesses.
 *
 * @module
 */

import { join } from "node:path";
import type { Channel, ConsumeMessage } from "amqplib";
import { Broker, DEFAULT_RABBITMQ_URL } from "../lib/broker.ts";
import { type ConsumerOptions, OrderConsumer } from "../lib/consumer.ts";
import type { Outcome } from "../lib/outcome.ts";
import type { Ledger } from "../lib/ledger.ts";
import { SqliteLedger } from "../lib/sqlite_ledger.ts";
import { ConfirmedPublisher } from "../lib/publisher.ts";
import { setupLogging } from "../lib/log.ts";
import type { RetryPolicy } from "../lib/retry_policy.ts";
import { type Topology, topology, type TopologyOptions } from "../lib/topology.ts";
import { declareTopology, deleteTopology } from "../lib/declare_topology.ts";

/** The PostgreSQL under test: `POSTGRES_URL`, or the local one (trust auth, database `test`). */
export const POSTGRES_URL = Deno.env.get("POSTGRES_URL") ??
  "postgres://postgres:postgres@127.0.0.1:5432/test";

/** The broker under test: `RABBITMQ_URL`, or the local one. */
export const RABBITMQ_URL = Deno.env.get("RABBITMQ_URL") ?? DEFAULT_RABBITMQ_URL;

setupLogging({ level: (Deno.env.get("TEST_LOG_LEVEL") ?? "fatal") as "fatal" });

/**
 * A retry policy with millisecond delays for broker tests: linear from `delayMs`, no jitter.
 */
export function fastPolicy(maxRetries: number, delayMs: number): RetryPolicy {
  return { maxRetries, delayMs, strategy: "linear", maxDelayMs: 10_000, jitter: 0 };
}

/** A prefix no other test uses. */
export function uniquePrefix(name: string): string {
  return `test.${name}.${crypto.randomUUID().slice(0, 8)}.`;
}

/** What a broker test gets. */
export interface BrokerContext {
  readonly broker: Broker;
  readonly topo: Topology;
}

/**
 * Connects, declares a fresh topology, runs `fn`, then deletes the topology and closes the
 * connection whatever happened. Fails when the broker cannot be reached. The broker is the one
 * under test unless `url` names another.
 */
export async function withTopology(
  name: string,
  options: Omit<TopologyOptions, "prefix">,
  fn: (ctx: BrokerContext) => Promise<void>,
  url: string = RABBITMQ_URL,
): Promise<void> {
  const broker = await Broker.connect(url, { name: `test ${name}` });
  const topo = topology({ ...options, prefix: uniquePrefix(name) });
  try {
    await declareTopology(broker, topo);
    await fn({ broker, topo });
  } finally {
    const cleaner = await Broker.connect(url, { name: `test ${name} cleanup` });
    try {
      await deleteTopology(cleaner, topo);
    } finally {
      await cleaner.close();
      await broker.close();
    }
  }
}

/** A consumer started by {@linkcode startConsumer}, with what a test looks at. */
export interface RunningConsumer<L extends Ledger = SqliteLedger> {
  readonly consumer: OrderConsumer;
  readonly outcomes: OutcomeLog;
  readonly ledger: L;
  /** A confirm-mode publisher on the test's connection, to send it messages. */
  readonly publisher: ConfirmedPublisher;
}

/**
 * Starts a consumer on a test topology with `policy`, an in-memory ledger (unless given), a limit
 * of 500 and an {@linkcode OutcomeLog}; `options` override the rest.
 */
export async function startConsumer<L extends Ledger = SqliteLedger>(
  ctx: BrokerContext,
  policy: RetryPolicy,
  options: Partial<ConsumerOptions> & { ledger?: L } = {},
): Promise<RunningConsumer<L>> {
  const outcomes = new OutcomeLog();
  const ledger = options.ledger ??
    await SqliteLedger.open(":memory:", { instanceId: "test" }) as unknown as L;
  const consumer = await OrderConsumer.start({
    broker: ctx.broker,
    topology: ctx.topo,
    ledger,
    policy,
    maxQuantity: 500,
    onOutcome: outcomes.record,
    ...options,
  });
  const publisher = new ConfirmedPublisher(await ctx.broker.confirmChannel());
  return { consumer, outcomes, ledger, publisher };
}

/**
 * Records the bytes a connection receives and returns a reader of the AMQP field type tag that
 * follows each occurrence of a header name in them (`"I"` for a signed 32-bit integer, `"b"` for
 * a byte, …): the header types as the broker delivered them, which amqplib's decoder forgets.
 */
export function tapHeaderTypes(broker: Broker): (header: string) => string[] {
  const stream = (broker.model.connection as unknown as {
    stream: { on(event: "data", listener: (chunk: Uint8Array) => void): void };
  }).stream;
  const chunks: Uint8Array[] = [];
  stream.on("data", (chunk) => chunks.push(new Uint8Array(chunk)));
  return (header) => {
    const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
    chunks.reduce((offset, c) => (bytes.set(c, offset), offset + c.byteLength), 0);
    // In a field table a name is a short string: one length byte, the name, then the type tag.
    const name = new TextEncoder().encode(header);
    const tags: string[] = [];
    for (let i = 0; i + name.length + 1 < bytes.length; i++) {
      if (bytes[i] !== name.length) continue;
      if (name.every((b, j) => bytes[i + 1 + j] === b)) {
        tags.push(String.fromCharCode(bytes[i + 1 + name.length]!));
      }
    }
    return tags;
  };
}

/**
 * Records the bytes a connection sends from now on and returns a reader of whether `text` (an
 * exchange's or a queue's name, say) was in any of them: whether a method naming it went to the
 * broker.
 */
export function tapSent(broker: Broker): (text: string) => boolean {
  const stream = (broker.model.connection as unknown as {
    stream: { write(chunk: unknown, ...rest: unknown[]): boolean };
  }).stream;
  const write = stream.write;
  const sent: Uint8Array[] = [];
  stream.write = function (this: unknown, chunk: unknown, ...rest: unknown[]) {
    if (chunk instanceof Uint8Array) sent.push(new Uint8Array(chunk));
    return write.call(this, chunk, ...rest);
  };
  return (text) => {
    const wanted = new TextEncoder().encode(text);
    return sent.some((chunk) => {
      for (let i = 0; i + wanted.length <= chunk.length; i++) {
        if (wanted.every((b, j) => chunk[i + j] === b)) return true;
      }
      return false;
    });
  };
}

/** Whether `exchange` exists, by a passive declare on a channel of its own (a refusal closes it). */
export async function exchangeExists(broker: Broker, exchange: string): Promise<boolean> {
  const channel = await broker.channel();
  return await channel.checkExchange(exchange).then(
    () => true,
    () => false,
  ).finally(() => channel.close().catch(() => {}));
}

/** `promise`, or a rejection saying what stalled once `timeoutMs` have passed. */
export async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stalled = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([promise, stalled]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves with `value()` once it is not undefined; rejects after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  value: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const result = await value();
    if (result !== undefined) return result;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Collects a consumer's outcomes and lets a test wait for the ones it expects. */
export class OutcomeLog {
  readonly outcomes: Outcome[] = [];
  /** When each outcome arrived (`performance.now()`), same order as `outcomes`. */
  readonly times: number[] = [];
  readonly #waiters = new Set<() => void>();

  /** Pass this as the consumer's `onOutcome`. */
  readonly record = (outcome: Outcome): void => {
    this.outcomes.push(outcome);
    this.times.push(performance.now());
    for (const wake of this.#waiters) wake();
  };

  /** Resolves once `count` outcomes match, with those outcomes; rejects after `timeoutMs`. */
  until(
    what: string,
    match: (o: Outcome) => boolean,
    count = 1,
    timeoutMs = 10_000,
  ): Promise<Outcome[]> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.outcomes.filter(match);
        if (found.length >= count) {
          cleanup();
          resolve(found);
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${count} × ${what}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
      check();
    });
  }
}

/**
 * Takes exactly `count` messages from a queue (acking them) and resolves with them; rejects after
 * `timeoutMs`.
 */
export async function takeMessages(
  broker: Broker,
  queue: string,
  count: number,
  timeoutMs = 10_000,
): Promise<ConsumeMessage[]> {
  // None asked for: nothing to wait for (and a prefetch of 0 would be no limit at all).
  if (count === 0) return [];
  const channel: Channel = await broker.channel();
  const messages: ConsumeMessage[] = [];
  try {
    await channel.prefetch(count);
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    const timer = setTimeout(
      () =>
        reject(
          new Error(`timed out after ${timeoutMs} ms: ${messages.length}/${count} from ${queue}`),
        ),
      timeoutMs,
    );
    const { consumerTag } = await channel.consume(queue, (message) => {
      if (message === null || messages.length >= count) return;
      messages.push(message);
      if (messages.length === count) resolve();
    });
    try {
      await promise;
    } finally {
      clearTimeout(timer);
      await channel.cancel(consumerTag);
    }
    for (const message of messages) channel.ack(message);
    return messages;
  } finally {
    await channel.close().catch(() => {});
  }
}

const root = new URL("..", import.meta.url).pathname;

/** One of the project's entry scripts as a subprocess, with RABBITMQ_URL set; output piped. */
export function scriptCommand(
  script: string,
  args: readonly string[],
  env: Record<string, string> = {},
): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(root, script), ...args],
    cwd: root,
    env: { ...scriptEnv(), ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

let scriptDir: string | undefined;

/**
 * The environment of an entry script a test runs, before what the test adds: the broker under
 * test, and a folder of the test run's for what the dlq tools write under the checkout's data/ by
 * default (their audit log and archive: a developer's own).
 */
export function scriptEnv(): Record<string, string> {
  scriptDir ??= Deno.makeTempDirSync({ prefix: "productionorder-test-scripts-" });
  return {
    RABBITMQ_URL,
    DLQ_AUDIT_LOG: join(scriptDir, "dlq-audit.jsonl"),
    DLQ_ARCHIVE_DIR: join(scriptDir, "dlq-archive"),
  };
}

/** Runs an entry script to its end; its exit code and what it printed. */
export async function runScript(
  script: string,
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const { code, stdout, stderr } = await scriptCommand(script, args, env).output();
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

/** A temporary directory removed at the end of the test, for ledgers. */
export async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "productionorder-test-" });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }),
  };
}
