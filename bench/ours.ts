/** Our side of the benchmark: Estoque's publisher and OrdemDeProducao's consumer, ledger included. */

import { join } from "node:path";
import { OrderConsumer } from "../lib/consumer.ts";
import type { Outcome } from "../lib/outcome.ts";
import { replayDeadLetters } from "../lib/dead_letter_ops.ts";
import { publishOrder } from "../lib/estoque.ts";
import { publishOrders, type PublishSummary } from "../lib/order_feed.ts";
import { SqliteLedger } from "../lib/sqlite_ledger.ts";
import { ConfirmedPublisher } from "../lib/publisher.ts";
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from "../lib/retry_policy.ts";
import {
  EXHAUSTED,
  orders,
  paced,
  peakRssOf,
  prefill,
  type RunContext,
  type RunResult,
  withPublisherConnection,
} from "./_shared.ts";

/** Estoque's bulk publish. */
export async function oursPublish(ctx: RunContext): Promise<RunResult> {
  const started = performance.now();
  const publisher = new ConfirmedPublisher(await ctx.broker.confirmChannel());
  const summary = await publishOrders({
    publisher,
    topology: ctx.topo,
    count: ctx.messages,
    quantity: 42,
    window: ctx.settings.window,
  });
  const elapsedMs = performance.now() - started;
  if (summary.confirmed !== ctx.messages) throw new Error(`only ${summary.confirmed} confirmed`);
  return { messages: ctx.messages, elapsedMs };
}

/**
 * Runs OrdemDeProducao's consumer (its ledger a fresh SQLite file) until `count` outcomes are of
 * kind `want`; `before` runs once it consumes and returns what hears each outcome.
 */
export async function runConsumer(
  ctx: RunContext,
  policy: RetryPolicy,
  count: number,
  want: Outcome["kind"],
  before?: () => Promise<(outcome: Outcome, durationMs: number) => void>,
): Promise<{ elapsedMs: number }> {
  await using ledger = await SqliteLedger.open(
    join(ctx.dir, `ledger-${crypto.randomUUID()}.sqlite`),
  );
  const times = ctx.commitTimes;
  if (times !== undefined) {
    // Asked for commit times: the ledger times each commit as the consumer makes it.
    const commit = ledger.commit.bind(ledger);
    ledger.commit = async (writes) => {
      const started = performance.now();
      try {
        return await commit(writes);
      } finally {
        times.push(performance.now() - started);
      }
    };
  }
  const done = Promise.withResolvers<void>();
  let seen = 0;
  let observe: ((outcome: Outcome, durationMs: number) => void) | undefined;
  const started = performance.now();
  const consumer = await OrderConsumer.start({
    broker: ctx.broker,
    topology: ctx.topo,
    ledger,
    policy,
    maxQuantity: 500,
    prefetch: ctx.settings.prefetch,
    onOutcome: (outcome, durationMs) => {
      observe?.(outcome, durationMs);
      if (outcome.kind === want && ++seen === count) done.resolve();
      else if (outcome.kind === "requeued") done.reject(new Error(`requeued: ${outcome.error}`));
    },
  });
  if (before) observe = await before();
  await done.promise;
  const elapsedMs = performance.now() - started;
  await consumer.stop();
  return { elapsedMs };
}

/** The consumer on prefilled valid orders, each written to the durable ledger. */
export async function oursConsume(ctx: RunContext): Promise<RunResult> {
  await prefill(ctx.broker, ctx.topo.queue, orders(ctx.messages, 42));
  const { elapsedMs } = await runConsumer(ctx, DEFAULT_RETRY_POLICY, ctx.messages, "created");
  return { messages: ctx.messages, elapsedMs };
}

/**
 * Estoque publishing at full speed while the consumer runs, until every order is confirmed to
 * Estoque and created by the consumer (raw's end-to-end waits for both too).
 */
export async function oursEndToEnd(ctx: RunContext): Promise<RunResult> {
  let publishStarted = 0;
  let elapsedMs = 0;
  await withPublisherConnection(ctx.url, async (broker) => {
    let published: Promise<PublishSummary> | undefined;
    await runConsumer(ctx, DEFAULT_RETRY_POLICY, ctx.messages, "created", async () => {
      const publisher = new ConfirmedPublisher(await broker.confirmChannel());
      publishStarted = performance.now();
      published = publishOrders({
        publisher,
        topology: ctx.topo,
        count: ctx.messages,
        quantity: 42,
        window: ctx.settings.window,
      });
      return () => {};
    });
    const summary = await published!;
    elapsedMs = performance.now() - publishStarted;
    if (summary.confirmed !== ctx.messages) throw new Error(`only ${summary.confirmed} confirmed`);
  });
  return { messages: ctx.messages, elapsedMs };
}

/** The consumer retrying prefilled over-limit orders into the long retry tier. */
export async function oursRetry(ctx: RunContext): Promise<RunResult> {
  await prefill(ctx.broker, ctx.topo.queue, orders(ctx.messages, 900));
  const policy = { ...DEFAULT_RETRY_POLICY, maxRetries: 1, delayMs: 3_600_000 };
  const { elapsedMs } = await runConsumer(ctx, policy, ctx.messages, "retried");
  return { messages: ctx.messages, elapsedMs };
}

/** The consumer dead-lettering prefilled orders that have used up their retries. */
export async function oursDeadLetter(ctx: RunContext): Promise<RunResult> {
  await prefill(ctx.broker, ctx.topo.queue, orders(ctx.messages, 900), EXHAUSTED);
  const { elapsedMs } = await runConsumer(ctx, DEFAULT_RETRY_POLICY, ctx.messages, "dead-lettered");
  return { messages: ctx.messages, elapsedMs };
}

/** `dlq replay` of a dead-letter queue of N messages, timed from start to the last ack. */
export async function oursReplay(ctx: RunContext): Promise<RunResult> {
  await prefill(ctx.broker, ctx.topo.deadLetterQueue, orders(ctx.messages, 900), EXHAUSTED);
  const started = performance.now();
  const counts = await replayDeadLetters(ctx.broker, ctx.topo, { window: ctx.settings.window });
  if (counts.done !== ctx.messages) throw new Error(`replayed ${counts.done}/${ctx.messages}`);
  return { messages: ctx.messages, elapsedMs: performance.now() - started };
}

/**
 * Retry-delay lateness on the TTL backend: over-limit orders, published at `rate` a second, get
 * one 200 ms retry. Lateness is the time from the first delivery to the redelivery, less 200 ms:
 * an upper bound, since the retry copy is published a little after the first delivery.
 */
export async function oursRetryLateness(ctx: RunContext, rate: number): Promise<number[]> {
  const policy = { ...DEFAULT_RETRY_POLICY, maxRetries: 1, delayMs: 200 };
  const list = orders(ctx.messages, 900);
  const firstDelivery = new Map<string, number>();
  const lateness: number[] = [];
  await runConsumer(ctx, policy, ctx.messages, "dead-lettered", async () => {
    const publisher = new ConfirmedPublisher(await ctx.broker.confirmChannel());
    paced(ctx.messages, rate, (i) => publishOrder(publisher, ctx.topo, list[i]!));
    return (outcome, durationMs) => {
      const deliveredAt = performance.now() - durationMs;
      if (outcome.kind === "retried") firstDelivery.set(outcome.messageKey!, deliveredAt);
      if (outcome.kind === "dead-lettered") {
        lateness.push(deliveredAt - firstDelivery.get(outcome.messageKey!)! - 200);
      }
    };
  });
  return lateness;
}

/** Parks `parked` messages in the long retry tier (untimed). */
export async function park(ctx: RunContext, parked: number): Promise<void> {
  const tier = ctx.topo.retryTiers.at(-1)!.queue;
  for (let done = 0; done < parked; done += 10_000) {
    await prefill(ctx.broker, tier, orders(Math.min(10_000, parked - done), 900));
  }
}

/**
 * Peak RSS of OrdemDeProducao itself: the real service, in its own process, draining a queue of
 * prefilled orders at full rate. Returns the peak in bytes and the rate it drained at.
 */
export async function oursServiceRss(ctx: RunContext): Promise<{ peakRss: number; rate: number }> {
  await prefill(ctx.broker, ctx.topo.queue, orders(ctx.messages, 42));
  const root = new URL("..", import.meta.url).pathname;
  // Run the service exactly as `deno task ordem` does (same flags, same V8 settings).
  const tasks = JSON.parse(await Deno.readTextFile(join(root, "deno.json"))).tasks;
  const [_deno, ...taskArgs] = String(tasks.ordem).split(/\s+/);
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    cwd: root,
    args: [
      ...taskArgs,
      "--prefix",
      ctx.topo.prefix,
      "--drain",
      "--no-http",
      "--ledger",
      join(ctx.dir, `service-${crypto.randomUUID()}.sqlite`),
      "--log-level",
      "error",
    ],
    env: { RABBITMQ_URL: ctx.url },
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  let peakRss = 0;
  const sampler = setInterval(async () => {
    peakRss = Math.max(peakRss, (await peakRssOf(child.pid)) ?? 0);
  }, 20);
  const status = await child.status;
  clearInterval(sampler);
  if (!status.success) throw new Error(`ordem_de_producao.ts exited with ${status.code}`);
  return { peakRss, rate: ctx.messages / ((performance.now() - started) / 1000) };
}
