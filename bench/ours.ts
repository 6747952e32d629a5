/** Our side of the benchmark: Estoque's publisher and OrdemDeProducao's consumer, ledger included. */

import { join } from "node:path";
import { OrderConsumer, type Outcome } from "../lib/consumer.ts";
import { publishOrders } from "../lib/estoque.ts";
import { SqliteLedger } from "../lib/ledger.ts";
import { newOrder } from "../lib/order.ts";
import { ConfirmedPublisher } from "../lib/publisher.ts";
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from "../lib/retry_policy.ts";
import {
  EXHAUSTED,
  orders,
  prefill,
  rssSampler,
  type RunContext,
  type RunResult,
} from "./_shared.ts";

/** Estoque's bulk publish. */
export async function oursPublish(ctx: RunContext): Promise<RunResult> {
  const publisher = new ConfirmedPublisher(await ctx.broker.confirmChannel());
  const started = performance.now();
  const summary = await publishOrders({
    publisher,
    topology: ctx.topo,
    count: ctx.messages,
    quantity: 42,
    window: Number(Deno.env.get("BENCH_WINDOW") ?? 1000),
  });
  const elapsedMs = performance.now() - started;
  if (summary.confirmed !== ctx.messages) throw new Error(`only ${summary.confirmed} confirmed`);
  return { messages: ctx.messages, elapsedMs };
}

/** Runs OrdemDeProducao's consumer until `count` outcomes match. */
async function consume(
  ctx: RunContext,
  policy: RetryPolicy,
  count: number,
  want: Outcome["kind"],
  before?: () => Promise<(outcome: Outcome) => void>,
): Promise<{ elapsedMs: number; peakRss: number }> {
  await using ledger = SqliteLedger.open(join(ctx.dir, `ledger-${crypto.randomUUID()}.sqlite`));
  const done = Promise.withResolvers<void>();
  let seen = 0;
  let observe: ((outcome: Outcome) => void) | undefined;
  const rss = rssSampler();
  const started = performance.now();
  const consumer = await OrderConsumer.start({
    broker: ctx.broker,
    topology: ctx.topo,
    ledger,
    policy,
    maxQuantity: 500,
    prefetch: Number(Deno.env.get("BENCH_PREFETCH") ?? 100),
    onOutcome: (outcome) => {
      observe?.(outcome);
      if (outcome.kind === want && ++seen === count) done.resolve();
      else if (outcome.kind === "requeued") done.reject(new Error(`requeued: ${outcome.error}`));
    },
  });
  if (before) observe = await before();
  await done.promise;
  const elapsedMs = performance.now() - started;
  const peakRss = rss.stop();
  await consumer.stop();
  return { elapsedMs, peakRss };
}

/** The consumer on prefilled valid orders, each written to the durable ledger. */
export async function oursConsume(ctx: RunContext): Promise<RunResult> {
  await prefill(ctx.broker, ctx.topo.queue, orders(ctx.messages, 42));
  const { elapsedMs, peakRss } = await consume(ctx, DEFAULT_RETRY_POLICY, ctx.messages, "created");
  return { messages: ctx.messages, elapsedMs, peakRss };
}

/** Estoque publishing while the consumer runs; latency from publish to production order. */
export async function oursEndToEnd(ctx: RunContext): Promise<RunResult> {
  const sentAt = new Map<string, number>();
  const latenciesMs: number[] = [];
  let publishStarted = 0;
  const { peakRss } = await consume(
    ctx,
    DEFAULT_RETRY_POLICY,
    ctx.messages,
    "created",
    async () => {
      const publisher = new ConfirmedPublisher(await ctx.broker.confirmChannel());
      publishStarted = performance.now();
      publishOrders({
        publisher,
        topology: ctx.topo,
        count: ctx.messages,
        makeOrder: () => {
          const order = newOrder({ quantity: 42 });
          sentAt.set(order.refCode, performance.now());
          return order;
        },
      });
      return (outcome) => {
        if (outcome.kind === "created") {
          latenciesMs.push(
            performance.now() - sentAt.get(outcome.refCode)!,
          );
        }
      };
    },
  );
  const elapsedMs = performance.now() - publishStarted;
  return { messages: ctx.messages, elapsedMs, latenciesMs, peakRss };
}

/** The consumer retrying prefilled over-limit orders into the long retry tier. */
export async function oursRetry(ctx: RunContext): Promise<RunResult> {
  await prefill(ctx.broker, ctx.topo.queue, orders(ctx.messages, 900));
  const policy = { ...DEFAULT_RETRY_POLICY, maxRetries: 1, delayMs: 3_600_000 };
  const { elapsedMs } = await consume(ctx, policy, ctx.messages, "retried");
  return { messages: ctx.messages, elapsedMs };
}

/** The consumer dead-lettering prefilled orders that have used up their retries. */
export async function oursDeadLetter(ctx: RunContext): Promise<RunResult> {
  await prefill(ctx.broker, ctx.topo.queue, orders(ctx.messages, 900), EXHAUSTED);
  const { elapsedMs } = await consume(ctx, DEFAULT_RETRY_POLICY, ctx.messages, "dead-lettered");
  return { messages: ctx.messages, elapsedMs };
}

/**
 * Retry-delay lateness on the TTL backend: over-limit orders get one 200 ms retry; lateness is
 * the time from a retry being scheduled to its redelivery being dead-lettered, less 200 ms.
 */
export async function oursRetryLateness(ctx: RunContext): Promise<number[]> {
  const policy = { ...DEFAULT_RETRY_POLICY, maxRetries: 1, delayMs: 200 };
  const retriedAt = new Map<string, number>();
  const lateness: number[] = [];
  await prefill(ctx.broker, ctx.topo.queue, orders(ctx.messages, 900));
  await consume(
    ctx,
    policy,
    ctx.messages,
    "dead-lettered",
    () =>
      Promise.resolve((outcome: Outcome) => {
        if (outcome.kind === "retried") retriedAt.set(outcome.messageKey!, performance.now());
        if (outcome.kind === "dead-lettered") {
          lateness.push(performance.now() - retriedAt.get(outcome.messageKey!)! - 200);
        }
      }),
  );
  return lateness;
}

/** Parks `parked` messages in the long retry tier (untimed). */
export async function park(ctx: RunContext, parked: number): Promise<void> {
  const tier = ctx.topo.retryTiers.at(-1)!.queue;
  for (let done = 0; done < parked; done += 10_000) {
    await prefill(ctx.broker, tier, orders(Math.min(10_000, parked - done), 900));
  }
}
