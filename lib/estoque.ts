/**
 * Estoque's work: publishing production-order requests with publisher confirms.
 *
 * @module
 */

import { logger } from "./log.ts";
import { encodeOrder, newOrder, type Order, ORDER_CONTENT_TYPE } from "./order.ts";
import type {
  ConfirmedPublisher,
  PublishError,
  PublishFailure,
  PublishProperties,
} from "./publisher.ts";
import type { Topology } from "./topology.ts";

/** The `app-id` property of Estoque's messages. */
export const ESTOQUE_APP_ID = "estoque";

const log = logger("estoque");

/**
 * Publishes one order as the Go Estoque does: JSON body, `application/json`, persistent,
 * `message-id` = RefCode, a timestamp, and `mandatory` so an unroutable order fails.
 */
export function publishOrder(
  publisher: ConfirmedPublisher,
  topo: Topology,
  order: Order,
  now: Date = new Date(),
): Promise<void> {
  return publisher.publish(
    topo.exchange,
    topo.routingKey,
    encodeOrder(order),
    orderProperties(order, now.getTime()),
  );
}

/** The properties Estoque publishes an order with; `nowMs` is the time, for the timestamp. */
export function orderProperties(order: Order, nowMs: number): PublishProperties {
  return {
    contentType: ORDER_CONTENT_TYPE,
    persistent: true,
    messageId: order.refCode,
    timestamp: Math.floor(nowMs / 1000),
    appId: ESTOQUE_APP_ID,
    mandatory: true,
  };
}

/** Options for {@linkcode publishOrders}. */
export interface PublishOrdersOptions {
  /** The confirm-mode publisher. */
  readonly publisher: ConfirmedPublisher;
  /** Where to publish. */
  readonly topology: Topology;
  /** How many orders. */
  readonly count: number;
  /** A fixed quantity; random when undefined. */
  readonly quantity?: number | undefined;
  /**
   * How many publishes may await their confirm at once: a deep window lets the broker confirm
   * in large batches; it bounds the memory the unconfirmed publishes take.
   * @default {20000}
   */
  readonly window?: number;
  /** Makes each order; by default {@linkcode newOrder} with `quantity`. */
  readonly makeOrder?: (index: number) => Order;
  /** Called with each order the broker confirmed. */
  readonly onConfirmed?: (order: Order) => void;
  /** Called after each settled publish with the number settled so far. */
  readonly onProgress?: (settled: number) => void;
  /** Stops publishing new orders when aborted; those in flight still settle. */
  readonly signal?: AbortSignal;
}

/** What {@linkcode publishOrders} did. */
export interface PublishSummary {
  /** Orders handed to the broker. */
  readonly attempted: number;
  /** Orders the broker confirmed. */
  readonly confirmed: number;
  /** Failed publishes, by cause. */
  readonly failed: Readonly<Record<PublishFailure, number>>;
  /** Wall time, in milliseconds. */
  readonly elapsedMs: number;
}

/** The number of failed publishes in a summary. */
export function failedCount(summary: PublishSummary): number {
  return Object.values(summary.failed).reduce((a, b) => a + b, 0);
}

/**
 * Publishes `count` orders, keeping at most `window` unconfirmed at once, and counts what the
 * broker confirmed. Never throws for a failed publish: failures are counted by cause.
 */
export async function publishOrders(options: PublishOrdersOptions): Promise<PublishSummary> {
  const window = options.window ?? 20_000;
  const makeOrder = options.makeOrder ??
    (() => newOrder({ quantity: options.quantity }));
  const failed: Record<PublishFailure, number> = { nacked: 0, returned: 0, timeout: 0, closed: 0 };
  let confirmed = 0;
  const started = performance.now();
  let attempted = 0;
  let settled = 0;
  // Resumes the publishing loop once no more than `resumeAt` publishes are unconfirmed.
  let wake: (() => void) | undefined;
  let resumeAt = Math.floor(window / 2);
  const onSettled = (order: Order, error?: PublishError) => {
    settled++;
    if (error) {
      failed[error.code]++;
      log.warning("order not confirmed", { refCode: order.refCode, error: error.message });
    } else {
      confirmed++;
      options.onConfirmed?.(order);
    }
    options.onProgress?.(settled);
    if (wake && attempted - settled <= resumeAt) {
      const resume = wake;
      wake = undefined;
      resume();
    }
  };
  for (let i = 0; i < options.count; i++) {
    if (options.signal?.aborted) break;
    // When the window is full, wait until half of it is confirmed, then publish a burst: one
    // publish per freed slot would cost a socket write and an event-loop turn per message.
    if (attempted - settled >= window) {
      await new Promise<void>((resolve) => (wake = resolve));
    }
    const order = makeOrder(i);
    attempted++;
    const flowing = options.publisher.send(
      options.topology.exchange,
      options.topology.routingKey,
      encodeOrder(order),
      orderProperties(order, Date.now()),
      (error) => onSettled(order, error),
    );
    if (!flowing) await options.publisher.writable();
  }
  resumeAt = 0;
  if (settled < attempted) await new Promise<void>((resolve) => (wake = resolve));
  return {
    attempted,
    confirmed,
    failed,
    elapsedMs: performance.now() - started,
  };
}
