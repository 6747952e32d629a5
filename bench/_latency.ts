/**
 * End-to-end latency without coordinated omission: message i is scheduled at t0 + i/rate, and
 * its latency runs from that scheduled time (not from when the send ran) to the consumer's ack
 * after the effect is durable: for ours, when OrdemDeProducao reports the order created (its
 * ledger committed, its ack written); for raw, when the ack that covers it is written. A sender
 * that falls behind, or a publish window that is full, counts in the latency.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { publishOrder } from "../lib/estoque.ts";
import { encodeOrder } from "../lib/order.ts";
import { orderProperties } from "../lib/order_properties.ts";
import { ConfirmedPublisher } from "../lib/publisher.ts";
import { DEFAULT_RETRY_POLICY } from "../lib/retry_policy.ts";
import { emptyHistogram, type Histogram, record } from "./_histogram.ts";
import { withRawConnections } from "./_raw_client.ts";
import { orders, type RunContext, sampleLoopDelay, withPublisherConnection } from "./_shared.ts";
import { runConsumer } from "./ours.ts";
import { ackAll } from "./raw.ts";

/** How many of `n` messages are due `elapsedMs` after the first, at `rate` a second. */
export function dueBy(elapsedMs: number, rate: number, n: number): number {
  return Math.min(n, Math.floor((elapsedMs * rate) / 1000) + 1);
}

/**
 * Calls `send(i, scheduledAt)` for i = 0..n-1, message i when its time t0 + i·1000/rate has come,
 * every message due at once on each tick (1 ms timers); waits when `send` returns a promise (a full
 * window). Resolves once all are sent.
 */
export async function onSchedule(
  n: number,
  rate: number,
  send: (i: number, scheduledAt: number) => void | Promise<void>,
): Promise<void> {
  const t0 = performance.now();
  let sent = 0;
  while (sent < n) {
    const due = dueBy(performance.now() - t0, rate, n);
    while (sent < due) {
      const waiting = send(sent, t0 + (sent * 1000) / rate);
      sent++;
      if (waiting !== undefined) await waiting;
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/** A side's latencies and its event loop's delay meanwhile (a 10 ms timer's lateness). */
export interface LatencyRun {
  readonly latencies: Histogram;
  readonly loopDelays: Histogram;
}

/** Runs `fn` while sampling the event loop's delay. */
async function withLoopDelay(fn: () => Promise<Histogram>): Promise<LatencyRun> {
  const sampler = sampleLoopDelay();
  const latencies = await fn();
  const loopDelays = emptyHistogram();
  for (const delay of sampler.stop()) record(loopDelays, delay);
  return { latencies, loopDelays };
}

/**
 * Raw at `rate` a second: orders published on schedule (at most raw's window awaiting their
 * confirm, refilled in bursts), a consumer at raw's settings acking them in bulk.
 */
export function rawLatency(ctx: RunContext, rate: number): Promise<LatencyRun> {
  return withLoopDelay(() =>
    withRawConnections(ctx.url, ctx.settings, async (consumerBroker, publisherBroker) => {
      const list = orders(ctx.messages, 42);
      const scheduled = new Map<string, number>();
      const latencies = emptyHistogram();
      const consumer = await ackAll(ctx, consumerBroker, (_, messages) => {
        const now = performance.now();
        for (const m of messages) record(latencies, now - scheduled.get(m.properties.messageId)!);
      });
      const channel = await publisherBroker.confirmChannel();
      const window = ctx.settings.window;
      let inFlight = 0;
      let room: (() => void) | undefined;
      const confirmed = () => {
        inFlight--;
        if (room !== undefined && inFlight <= Math.floor(window / 2)) {
          room();
          room = undefined;
        }
      };
      await onSchedule(ctx.messages, rate, (i, scheduledAt) => {
        const order = list[i]!;
        scheduled.set(order.refCode, scheduledAt);
        inFlight++;
        channel.publish(
          ctx.topo.exchange,
          ctx.topo.routingKey,
          Buffer.from(encodeOrder(order)),
          orderProperties(order, Date.now()),
          confirmed,
        );
        if (window > 0 && inFlight >= window) return new Promise<void>((r) => room = r);
      });
      await channel.waitForConfirms();
      await consumer.done;
      await consumer.close();
      await channel.close();
      return latencies;
    })
  );
}

/**
 * Ours at `rate` a second: Estoque's publish of each order on schedule, on a connection of its
 * own; OrdemDeProducao's consumer at the services' settings, until every order is created.
 */
export function oursLatency(ctx: RunContext, rate: number): Promise<LatencyRun> {
  return withLoopDelay(async () => {
    const list = orders(ctx.messages, 42);
    const scheduled = new Map<string, number>();
    const latencies = emptyHistogram();
    let sending: Promise<void> | undefined;
    // Every publish's confirm, awaited before the publisher's connection closes (raw waits for its
    // confirms too): an order can be created before its confirm reaches Estoque, and a confirm
    // still due when the connection closed failed its publish (a full run died of it at 80 %).
    const published: Promise<unknown>[] = [];
    // A publish refused (nacked, returned, timed out) is an order never created: the run fails
    // with it at once, as raw's waitForConfirms() does, instead of waiting for the consumer.
    const refused = Promise.withResolvers<never>();
    refused.promise.catch(() => {});
    await withPublisherConnection(ctx.url, async (broker) => {
      const consumed = runConsumer(ctx, DEFAULT_RETRY_POLICY, ctx.messages, "created", async () => {
        const publisher = new ConfirmedPublisher(await broker.confirmChannel());
        sending = onSchedule(ctx.messages, rate, (i, scheduledAt) => {
          const order = list[i]!;
          scheduled.set(order.refCode, scheduledAt);
          const publish = publishOrder(publisher, ctx.topo, order);
          publish.catch(refused.reject);
          published.push(publish);
        });
        return (outcome) => {
          if (outcome.kind === "created") {
            record(latencies, performance.now() - scheduled.get(outcome.refCode)!);
          }
        };
      });
      await Promise.race([consumed, refused.promise]);
      await sending;
      await Promise.all(published);
    });
    return latencies;
  });
}
