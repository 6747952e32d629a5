/**
 * The baseline: the bench's paths written directly on amqplib, as an expert user of the client
 * would (bench/_raw_client.ts): acks batched with `multiple`, a bounded publish window refilled in
 * bursts, a second connection for the copies where the settings say so, writes coalesced where
 * they say so; prefetch, window, connections and writes are what the sweep tunes. No validation,
 * no ledger, no bookkeeping.
 *
 * On retry and dead-letter the baseline publishes the very copy ours publishes: every property of
 * the message and the headers that explain the failure, made by ours' own functions (the headers
 * are what the product promises, not overhead). The bare copy (content type, id, a retry count)
 * runs in the same rounds as a second row.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { ConsumeMessage, Options } from "amqplib";
import type { Broker } from "../lib/broker.ts";
import { copyIdFor } from "../lib/copy_identity.ts";
import { encodeOrder, newOrder } from "../lib/order.ts";
import { orderProperties } from "../lib/order_properties.ts";
import { copyProperties } from "../lib/publisher.ts";
import {
  deadLetterHeaders,
  type FailureRecord,
  HEADER,
  retryHeaders,
} from "../lib/retry_headers.ts";
import {
  BatchedAcks,
  type Publication,
  publishWindowed,
  rawConnect,
  withRawConnections,
} from "./_raw_client.ts";
import { EXHAUSTED, orders, prefill, type RunContext, type RunResult } from "./_shared.ts";

/** Publication `i` of a run: a new order, made as Estoque makes it, with Estoque's properties. */
export function orderPublication(ctx: RunContext): (i: number) => Publication {
  return () => {
    const order = newOrder({ quantity: 42 });
    return {
      exchange: ctx.topo.exchange,
      routingKey: ctx.topo.routingKey,
      content: Buffer.from(encodeOrder(order)),
      options: orderProperties(order, Date.now()),
    };
  };
}

/** Makes and publishes N orders with confirms in raw's window; making them is timed, as in Estoque. */
export async function rawPublish(ctx: RunContext): Promise<RunResult> {
  const broker = await rawConnect(ctx.url, ctx.settings, "bench-raw-publisher");
  try {
    const channel = await broker.confirmChannel();
    const started = performance.now();
    await publishWindowed(channel, ctx.messages, orderPublication(ctx), ctx.settings.window);
    const elapsedMs = performance.now() - started;
    await channel.close();
    return { messages: ctx.messages, elapsedMs };
  } finally {
    await broker.close();
  }
}

/** A raw consumer: resolves `done` after N deliveries were acked. */
export interface RawConsumer {
  readonly done: Promise<void>;
  close(): Promise<void>;
}

/**
 * Consumes the work queue at raw's prefetch, parsing each message and acking in bulk; `done`
 * resolves after N. `onAck` hears each ack sent (the tag it covers up to).
 */
export async function ackAll(
  ctx: RunContext,
  broker: Broker,
  onAck?: (upTo: number, messages: ConsumeMessage[]) => void,
): Promise<RawConsumer> {
  const channel = await broker.channel();
  await channel.prefetch(ctx.settings.prefetch);
  const done = Promise.withResolvers<void>();
  let acked = 0;
  const held: ConsumeMessage[] = [];
  const acks = new BatchedAcks(channel, (upTo) => {
    if (onAck !== undefined) {
      let n = 0;
      while (n < held.length && held[n]!.fields.deliveryTag <= upTo) n++;
      onAck(upTo, held.splice(0, n));
    }
    acked = upTo;
    if (acked >= ctx.messages) done.resolve();
  });
  await channel.consume(ctx.topo.queue, (message) => {
    if (!message) return;
    JSON.parse(message.content.toString());
    if (onAck !== undefined) held.push(message);
    acks.settle(message);
  });
  return { done: done.promise, close: () => channel.close() };
}

/** Consumes N prefilled messages, acking in bulk. */
export async function rawConsume(ctx: RunContext): Promise<RunResult> {
  await prefill(ctx.broker, ctx.topo.queue, orders(ctx.messages, 42));
  const broker = await rawConnect(ctx.url, ctx.settings, "bench-raw");
  try {
    const started = performance.now();
    const consumer = await ackAll(ctx, broker);
    await consumer.done;
    const elapsedMs = performance.now() - started;
    await consumer.close();
    return { messages: ctx.messages, elapsedMs };
  } finally {
    await broker.close();
  }
}

/**
 * Publishes N orders at full speed while a consumer acks them, until every one is both confirmed
 * and acked; the publisher on a connection of its own when the settings say 2.
 */
export function rawEndToEnd(ctx: RunContext): Promise<RunResult> {
  return withRawConnections(ctx.url, ctx.settings, async (consumerBroker, publisherBroker) => {
    const consumer = await ackAll(ctx, consumerBroker);
    const channel = await publisherBroker.confirmChannel();
    const started = performance.now();
    await publishWindowed(channel, ctx.messages, orderPublication(ctx), ctx.settings.window);
    await consumer.done;
    const elapsedMs = performance.now() - started;
    await consumer.close();
    await channel.close();
    return { messages: ctx.messages, elapsedMs };
  });
}

/** The properties of the copy a consumed message is republished as. */
export type CopyOf = (message: ConsumeMessage) => Options.Publish;

/** The bare copy: the message's content type and id, and its retry count. */
export const bareCopy: CopyOf = (message) => ({
  persistent: true,
  contentType: message.properties.contentType,
  messageId: message.properties.messageId,
  headers: { ...message.properties.headers, [HEADER.retryCount]: 1 },
  mandatory: true,
});

/** What ours' consumer says of an order of 900 (the bench runs it with a limit of 500). */
const OVER_LIMIT = "maximum quantity exceeded: 900 > 500";

/** The failure ours' consumer gives an order of 900, with the `x-copy-id` ours stamps on its copy. */
function overLimit(message: ConsumeMessage): FailureRecord {
  return {
    error: OVER_LIMIT,
    now: new Date(),
    exchange: message.fields.exchange,
    routingKey: message.fields.routingKey,
    copyId: copyIdFor(undefined, "0:0"),
  };
}

/** Ours' retry copy, made by ours' own functions (lib/retry_headers.ts, lib/publisher.ts). */
export const explainedRetry: CopyOf = (message) =>
  copyProperties(
    message.properties,
    retryHeaders(message.properties.headers, overLimit(message), 1),
    { mandatory: true },
  );

/** Ours' dead letter, made by ours' own functions. */
export const explainedDeadLetter: CopyOf = (message) =>
  copyProperties(
    message.properties,
    deadLetterHeaders(message.properties.headers, overLimit(message), 3, "exhausted"),
    { mandatory: true },
  );

/**
 * Consumes `queue` at raw's prefetch and republishes each message as `copy` makes it to `target`
 * with a confirm (on the second connection when the settings say 2), acking it in bulk once its
 * copy is confirmed. Timed from the consumer's start to the last ack.
 *
 * @throws {Error} when the broker refuses a copy.
 */
function republishThenAck(
  ctx: RunContext,
  target: readonly [string, string],
  copy: CopyOf,
  queue: string,
): Promise<RunResult> {
  return withRawConnections(ctx.url, ctx.settings, async (consumerBroker, publisherBroker) => {
    const consumerChannel = await consumerBroker.channel();
    await consumerChannel.prefetch(ctx.settings.prefetch);
    const publisher = await publisherBroker.confirmChannel();
    const done = Promise.withResolvers<void>();
    const acks = new BatchedAcks(consumerChannel, (upTo) => {
      if (upTo >= ctx.messages) done.resolve();
    });
    const [exchange, key] = target;
    const started = performance.now();
    await consumerChannel.consume(queue, (message) => {
      if (!message) return;
      publisher.publish(exchange, key, message.content, copy(message), (error) => {
        if (error) done.reject(new Error("the broker refused a copy", { cause: error }));
        else acks.settle(message);
      });
    });
    await done.promise;
    const elapsedMs = performance.now() - started;
    await consumerChannel.close();
    await publisher.close();
    return { messages: ctx.messages, elapsedMs };
  });
}

/** Consumes N over-limit orders, republishing each to the long retry tier as `copy` makes it. */
async function retryWith(ctx: RunContext, copy: CopyOf): Promise<RunResult> {
  await prefill(ctx.broker, ctx.topo.queue, orders(ctx.messages, 900));
  const parking = ctx.topo.retryTiers.at(-1)!.queue;
  return await republishThenAck(ctx, ["", parking], copy, ctx.topo.queue);
}

/** Retry, the baseline: raw publishing ours' retry copy. */
export function rawRetry(ctx: RunContext): Promise<RunResult> {
  return retryWith(ctx, explainedRetry);
}

/** Retry with the bare copy: the second row. */
export function rawRetryBare(ctx: RunContext): Promise<RunResult> {
  return retryWith(ctx, bareCopy);
}

/** Consumes N exhausted orders, publishing each to the dead-letter exchange as `copy` makes it. */
async function deadLetterWith(ctx: RunContext, copy: CopyOf): Promise<RunResult> {
  await prefill(ctx.broker, ctx.topo.queue, orders(ctx.messages, 900), EXHAUSTED);
  const target = [ctx.topo.deadLetterExchange, ctx.topo.routingKey] as const;
  return await republishThenAck(ctx, target, copy, ctx.topo.queue);
}

/** Dead-letter, the baseline: raw publishing ours' dead letter. */
export function rawDeadLetter(ctx: RunContext): Promise<RunResult> {
  return deadLetterWith(ctx, explainedDeadLetter);
}

/** Dead-letter with the bare copy: the second row. */
export function rawDeadLetterBare(ctx: RunContext): Promise<RunResult> {
  return deadLetterWith(ctx, bareCopy);
}

/**
 * Replays a dead-letter queue of N messages: consumes it and republishes each to the work exchange
 * with a confirm, acking it after the confirm, as `dlq replay` does.
 */
export async function rawReplay(ctx: RunContext): Promise<RunResult> {
  await prefill(ctx.broker, ctx.topo.deadLetterQueue, orders(ctx.messages, 900), EXHAUSTED);
  const target = [ctx.topo.exchange, ctx.topo.routingKey] as const;
  return await republishThenAck(ctx, target, bareCopy, ctx.topo.deadLetterQueue);
}
