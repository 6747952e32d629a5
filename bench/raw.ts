/**
 * The baseline: the same paths written directly on amqplib, the way a careful user of the raw
 * client would: pipelined publisher confirms, manual acks at the prefetch the bench sweep picks,
 * republish-then-ack.
 * Where a path publishes while it consumes, the publisher has its own connection and a bounded
 * confirm window. No validation, no ledger, no bookkeeping. Its connections write as amqplib does,
 * a socket write a frame (ours coalesce each turn's frames: `coalesceWrites`). Its retry and
 * dead-letter copies carry the message's content type, id and retry count; the controls
 * (`rawRetryExplained`, `rawDeadLetterExplained`) publish ours' copy instead, on the same code.
 */

import { Buffer } from "node:buffer";
import type { ConsumeMessage, Options } from "amqplib";
import { orderProperties } from "../lib/order_properties.ts";
import { encodeOrder, newOrder } from "../lib/order.ts";
import type { Broker } from "../lib/broker.ts";
import { copyProperties } from "../lib/publisher.ts";
import { copyIdFor } from "../lib/copy_identity.ts";
import {
  deadLetterHeaders,
  type FailureRecord,
  HEADER,
  retryHeaders,
} from "../lib/retry_headers.ts";
import {
  EXHAUSTED,
  orders,
  paced,
  prefill,
  type RunContext,
  type RunResult,
  withConnection,
  withPublisherConnection,
} from "./_shared.ts";

/** amqplib's connection as it comes: each frame its own socket write. */
const AS_IT_COMES = { coalesceWrites: false } as const;

/** Runs `fn` on a connection of raw's own, as amqplib makes it. */
function withRawConnection<T>(url: string, fn: (broker: Broker) => Promise<T>): Promise<T> {
  return withConnection(url, { name: "bench-raw", ...AS_IT_COMES }, fn);
}

/**
 * Makes and publishes N orders with pipelined confirms, as Estoque would on bare amqplib (with
 * Estoque's properties), at most `window` awaiting their confirm when one is given; resolves once
 * every one is confirmed.
 */
async function publishAll(ctx: RunContext, broker: Broker, window = Infinity) {
  const channel = await broker.confirmChannel();
  let inFlight = 0;
  let room: PromiseWithResolvers<void> | undefined;
  const confirmed = () => {
    inFlight--;
    room?.resolve();
    room = undefined;
  };
  for (let i = 0; i < ctx.messages; i++) {
    const order = newOrder({ quantity: 42 });
    inFlight++;
    const ok = channel.publish(
      ctx.topo.exchange,
      ctx.topo.routingKey,
      Buffer.from(encodeOrder(order)),
      orderProperties(order, Date.now()),
      confirmed,
    );
    if (!ok) await new Promise((resolve) => channel.once("drain", resolve));
    while (inFlight >= window) {
      room = Promise.withResolvers<void>();
      await room.promise;
    }
  }
  await channel.waitForConfirms();
  await channel.close();
}

/**
 * Consumes the work queue, parsing and acking each message; `done` resolves after N acks.
 * `onAck` sees each acked message.
 */
async function ackAll(
  ctx: RunContext,
  broker: Broker,
  onAck?: (message: ConsumeMessage) => void,
): Promise<{ done: Promise<void>; close(): Promise<void> }> {
  const channel = await broker.channel();
  await channel.prefetch(ctx.rawPrefetch);
  const done = Promise.withResolvers<void>();
  let acked = 0;
  await channel.consume(ctx.topo.queue, (message) => {
    if (!message) return;
    JSON.parse(message.content.toString());
    channel.ack(message);
    onAck?.(message);
    if (++acked === ctx.messages) done.resolve();
  });
  return { done: done.promise, close: () => channel.close() };
}

/** Makes and publishes N orders; making them is timed, as in Estoque. */
export async function rawPublish(ctx: RunContext): Promise<RunResult> {
  return await withRawConnection(ctx.url, async (broker) => {
    const started = performance.now();
    await publishAll(ctx, broker);
    return { messages: ctx.messages, elapsedMs: performance.now() - started };
  });
}

/** Consumes N prefilled messages and acks each one. */
export async function rawConsume(ctx: RunContext): Promise<RunResult> {
  await prefill(ctx.broker, ctx.topo.queue, orders(ctx.messages, 42));
  return await withRawConnection(ctx.url, async (broker) => {
    const started = performance.now();
    const consumer = await ackAll(ctx, broker);
    await consumer.done;
    const elapsedMs = performance.now() - started;
    await consumer.close();
    return { messages: ctx.messages, elapsedMs };
  });
}

/** Publishes N messages at full speed while a consumer acks them, until all are acked. */
export async function rawEndToEnd(ctx: RunContext): Promise<RunResult> {
  return await withRawConnection(
    ctx.url,
    (broker) =>
      withPublisherConnection(ctx.url, async (publisher) => {
        const consumer = await ackAll(ctx, broker);
        const started = performance.now();
        await publishAll(ctx, publisher, ctx.rawWindow);
        await consumer.done;
        const elapsedMs = performance.now() - started;
        await consumer.close();
        return { messages: ctx.messages, elapsedMs };
      }, AS_IT_COMES),
  );
}

function republishThenAck(
  ctx: RunContext,
  target: (m: ConsumeMessage) => [string, string],
  copy: CopyOf,
  queue = ctx.topo.queue,
): Promise<RunResult> {
  return withRawConnection(
    ctx.url,
    (broker) => republishThenAckOn(broker, ctx, target, copy, queue),
  );
}

/** The properties of the copy a consumed message is republished as. */
type CopyOf = (message: ConsumeMessage) => Options.Publish;

/** Raw's copy: the message's content type and id, and its retry count. */
const countedCopy: CopyOf = (message) => ({
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

/**
 * Ours' copies, made by the same functions ours uses (lib/retry_headers.ts, lib/publisher.ts):
 * every property of the message and the headers that explain the failure. Raw publishing these is
 * the control that tells the cost of what the copy carries from the cost of ours' code.
 */
const explainedRetry: CopyOf = (message) =>
  copyProperties(
    message.properties,
    retryHeaders(message.properties.headers, overLimit(message), 1),
    { mandatory: true },
  );
const explainedDeadLetter: CopyOf = (message) =>
  copyProperties(
    message.properties,
    deadLetterHeaders(message.properties.headers, overLimit(message), 3, "exhausted"),
    { mandatory: true },
  );

async function republishThenAckOn(
  broker: Broker,
  ctx: RunContext,
  target: (m: ConsumeMessage) => [string, string],
  copy: CopyOf,
  queue: string,
): Promise<RunResult> {
  const consumerChannel = await broker.channel();
  await consumerChannel.prefetch(ctx.rawPrefetch);
  const publisher = await broker.confirmChannel();
  const done = Promise.withResolvers<void>();
  let acked = 0;
  const started = performance.now();
  await consumerChannel.consume(queue, (message) => {
    if (!message) return;
    const [exchange, key] = target(message);
    publisher.publish(exchange, key, message.content, copy(message), (error) => {
      if (error) consumerChannel.nack(message, false, true);
      else consumerChannel.ack(message);
      if (!error && ++acked === ctx.messages) done.resolve();
    });
  });
  await done.promise;
  const elapsedMs = performance.now() - started;
  await consumerChannel.close();
  await publisher.close();
  return { messages: ctx.messages, elapsedMs };
}

/** Consumes N messages, republishes each to a (long) retry queue with a confirm, then acks it. */
export async function rawRetry(ctx: RunContext, copy: CopyOf = countedCopy): Promise<RunResult> {
  await prefill(ctx.broker, ctx.topo.queue, orders(ctx.messages, 900));
  const parking = ctx.topo.retryTiers.at(-1)!.queue;
  return await republishThenAck(ctx, () => ["", parking], copy);
}

/** {@linkcode rawRetry} publishing ours' copy: the control for what the copy carries. */
export function rawRetryExplained(ctx: RunContext): Promise<RunResult> {
  return rawRetry(ctx, explainedRetry);
}

/** Consumes N messages, publishes each to the dead-letter exchange with a confirm, then acks it. */
export async function rawDeadLetter(
  ctx: RunContext,
  copy: CopyOf = countedCopy,
): Promise<RunResult> {
  await prefill(ctx.broker, ctx.topo.queue, orders(ctx.messages, 900), EXHAUSTED);
  return await republishThenAck(
    ctx,
    () => [ctx.topo.deadLetterExchange, ctx.topo.routingKey],
    copy,
  );
}

/** {@linkcode rawDeadLetter} publishing ours' dead letter: the control for what it carries. */
export function rawDeadLetterExplained(ctx: RunContext): Promise<RunResult> {
  return rawDeadLetter(ctx, explainedDeadLetter);
}

/**
 * Replays a dead-letter queue of N messages: consumes it and republishes each to the work
 * exchange with a confirm, acking it after the confirm, as `dlq replay` does.
 */
export async function rawReplay(ctx: RunContext): Promise<RunResult> {
  await prefill(ctx.broker, ctx.topo.deadLetterQueue, orders(ctx.messages, 900), EXHAUSTED);
  return await republishThenAck(
    ctx,
    () => [ctx.topo.exchange, ctx.topo.routingKey],
    countedCopy,
    ctx.topo.deadLetterQueue,
  );
}

/**
 * Latency at a steady rate: publish `rate` messages a second on a connection of their own, a
 * consumer acks them.
 */
export async function rawLatency(ctx: RunContext, rate: number): Promise<number[]> {
  const list = orders(ctx.messages, 42);
  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  await withRawConnection(ctx.url, async (broker) => {
    const consumer = await ackAll(ctx, broker, (message) => {
      latencies.push(performance.now() - sentAt.get(message.properties.messageId)!);
    });
    await withPublisherConnection(ctx.url, async (publisher) => {
      const channel = await publisher.confirmChannel();
      await paced(ctx.messages, rate, (i) => {
        const order = list[i]!;
        sentAt.set(order.refCode, performance.now());
        channel.publish(
          ctx.topo.exchange,
          ctx.topo.routingKey,
          Buffer.from(encodeOrder(order)),
          orderProperties(order, Date.now()),
        );
      });
      await channel.waitForConfirms();
      await channel.close();
    }, AS_IT_COMES);
    await consumer.done;
    await consumer.close();
  });
  return latencies;
}
