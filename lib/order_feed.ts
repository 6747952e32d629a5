/**
 * Publishing orders with publisher confirms across connections: the feed of orders still to send
 * (fresh ones, and the ones whose publish failed, sent again first), one connection's publishing
 * session over it, and what was confirmed and what failed.
 *
 * @module
 */

import { logger } from "./log.ts";
import { encodeOrder, newOrder, type Order } from "./order.ts";
import { orderProperties, traceOrder } from "./order_properties.ts";
import { Pacer } from "./pacer.ts";
import type { ConfirmedPublisher, PublishError, PublishFailure } from "./publisher.ts";
import type { Topology } from "./topology.ts";
import { endPublishSpan } from "./tracing.ts";

const log = logger("estoque");

/** What was published from a feed ({@linkcode OrderFeed.summary}, {@linkcode publishOrders}). */
export interface PublishSummary {
  /** Orders handed to the broker (each counted once, however often it was sent). */
  readonly attempted: number;
  /** Orders the broker confirmed. */
  readonly confirmed: number;
  /** Orders that failed for good, by the cause of their last failure. */
  readonly failed: Readonly<Record<PublishFailure, number>>;
  /** Publishes sent again after a failure (a lost connection, a timeout, a nack). */
  readonly resent: number;
  /** Wall time, in milliseconds. */
  readonly elapsedMs: number;
}

/** The number of failed publishes in a summary. */
export function failedCount(summary: PublishSummary): number {
  return Object.values(summary.failed).reduce((a, b) => a + b, 0);
}

/** An order that failed to publish and waits to be sent again. */
interface Resend {
  readonly order: Order;
  /** How many times it was sent. */
  readonly sends: number;
  /** Why the last send failed. */
  readonly cause: PublishFailure;
}

/** Options for {@linkcode OrderFeed}. */
export interface OrderFeedOptions {
  /** How many orders. */
  readonly count: number;
  /** Makes each order. */
  readonly makeOrder: (index: number) => Order;
  /**
   * How often one order is sent before a failure counts for good.
   * @default {10}
   */
  readonly maxSends?: number;
}

/**
 * The orders to publish, across connections: fresh ones made on demand, and the ones whose
 * publish failed (`closed`, `timeout`, `nacked`, `returned`), which go first. A resent order may reach the broker twice; the consumer's ledger makes the second one a
 * duplicate, not a second production order.
 */
export class OrderFeed {
  readonly #count: number;
  readonly #makeOrder: (index: number) => Order;
  readonly #maxSends: number;
  #made = 0;
  #resends: Resend[] = [];
  readonly #sends = new Map<Order, number>();
  readonly #failed: Record<PublishFailure, number> = {
    nacked: 0,
    returned: 0,
    timeout: 0,
    closed: 0,
  };
  #confirmed = 0;
  #resent = 0;
  readonly #started = performance.now();

  /** A feed of `count` orders. */
  constructor(options: OrderFeedOptions) {
    this.#count = options.count;
    this.#makeOrder = options.makeOrder;
    this.#maxSends = options.maxSends ?? 10;
  }

  /** The next order to send (a resend first), or undefined when none is left now. */
  next(): Order | undefined {
    const resend = this.#resends.shift();
    if (resend) {
      this.#resent++;
      this.#sends.set(resend.order, resend.sends + 1);
      return resend.order;
    }
    if (this.#made >= this.#count) return undefined;
    const order = this.#makeOrder(this.#made++);
    this.#sends.set(order, 1);
    return order;
  }

  /** Records a confirmed order. */
  confirmed(order: Order): void {
    this.#sends.delete(order);
    this.#confirmed++;
  }

  /**
   * Records a failed publish: queued to be sent again, or, once sent `maxSends` times, failed for
   * good. An unroutable (`returned`) order is sent again too: on a cluster, a classic queue whose
   * node is down routes nothing until it is back. Returns whether it will be sent again.
   */
  failed(order: Order, cause: PublishFailure): boolean {
    const sends = this.#sends.get(order) ?? 1;
    this.#sends.delete(order);
    if (sends >= this.#maxSends) {
      this.#failed[cause]++;
      return false;
    }
    this.#resends.push({ order, sends, cause });
    return true;
  }

  /** Counts every order still waiting to be sent again as failed (for a run that stops). */
  abandon(): void {
    for (const { cause } of this.#resends) this.#failed[cause]++;
    this.#resends = [];
  }

  /** Whether orders wait to be sent again. */
  get resending(): boolean {
    return this.#resends.length > 0;
  }

  /** Whether every order was made and none waits to be sent again. */
  get done(): boolean {
    return this.#made >= this.#count && this.#resends.length === 0;
  }

  /** Publishes settled for good so far (confirmed or failed). */
  get settled(): number {
    return this.#confirmed + Object.values(this.#failed).reduce((a, b) => a + b, 0);
  }

  /** What was done so far. */
  summary(): PublishSummary {
    return {
      attempted: this.#made,
      confirmed: this.#confirmed,
      failed: { ...this.#failed },
      resent: this.#resent,
      elapsedMs: performance.now() - this.#started,
    };
  }
}

/** Options for {@linkcode publishFeed}. */
export interface PublishFeedOptions {
  /** The confirm-mode publisher of this connection. */
  readonly publisher: ConfirmedPublisher;
  /** Where to publish. */
  readonly topology: Topology;
  /** The orders. */
  readonly feed: OrderFeed;
  /** Publishes awaiting their confirm at once. @default {20000} */
  readonly window?: number | undefined;
  /** Called with each order the broker confirmed. */
  readonly onConfirmed?: ((order: Order) => void) | undefined;
  /** Called after each publish settled for good, with the number settled so far. */
  readonly onProgress?: ((settled: number) => void) | undefined;
  /** Stops publishing new orders when aborted; those in flight still settle. */
  readonly signal?: AbortSignal | undefined;
  /**
   * At most this many new orders per second (orders sent again after a failure go at once);
   * unlimited when undefined.
   */
  readonly rate?: number | undefined;
  /** Writes an order's body. @default {encodeOrder} */
  readonly encode?: ((order: Order) => Uint8Array) | undefined;
}

/**
 * Publishes one order as estoque.ts's `publishOrder` does (its body, Estoque's properties stamped
 * `nowMs`, its publish span when tracing), in the publisher's callback form, for publishing many
 * at once with no promise per order: `done` is called once, without an error when the broker
 * confirmed it. Returns false when the channel's buffer is full: await the publisher's
 * `writable()` before sending more.
 */
export function sendOrder(
  publisher: ConfirmedPublisher,
  topo: Topology,
  order: Order,
  nowMs: number,
  done: (error?: PublishError) => void,
  body: Uint8Array = encodeOrder(order),
): boolean {
  const properties = orderProperties(order, nowMs);
  const span = traceOrder(topo, order, body, properties);
  return publisher.send(
    topo.exchange,
    topo.routingKey,
    body,
    properties,
    span === undefined ? done : (error) => {
      endPublishSpan(span, error);
      done(error);
    },
  );
}

/** Publishes in flight on a channel before its first confirm (then the whole window). */
export const FIRST_WINDOW = 100;

/**
 * Publishes from `feed` on one publisher, keeping at most `window` unconfirmed at once, until the
 * feed is empty or a publish fails in a way that sending again can cure. In that case the
 * session stops sending (the connection is presumed broken: a timeout means confirms are stuck),
 * lets what is in flight settle, and returns false: send the rest on a new connection. Returns
 * true once the feed is done (or `signal` aborted and all in flight settled).
 */
export async function publishFeed(options: PublishFeedOptions): Promise<boolean> {
  const { publisher, feed, rate } = options;
  const encode = options.encode ?? encodeOrder;
  const window = options.window ?? 20_000;
  let sent = 0;
  const pacer = rate === undefined ? undefined : new Pacer(rate);
  // Waits for `until`, and tells the pacer how long the loop was held.
  const hold = async (until: Promise<unknown>) => {
    const since = performance.now();
    await until;
    pacer?.held(performance.now() - since);
  };
  let settled = 0;
  let broken = false;
  // Resumes the publishing loop once no more than `resumeAt` publishes are unconfirmed.
  let wake: (() => void) | undefined;
  let resumeAt = Math.floor(window / 2);
  const onSettled = (order: Order, error?: PublishError) => {
    settled++;
    if (error) {
      const again = feed.failed(order, error.code);
      if (again) broken = true;
      else options.onProgress?.(feed.settled);
      log[again ? "debug" : "warning"](
        again ? "order not confirmed; it will be sent again" : "order not confirmed",
        { refCode: order.refCode, error: error.message },
      );
    } else {
      feed.confirmed(order);
      options.onConfirmed?.(order);
      options.onProgress?.(feed.settled);
    }
    if (wake && (sent - settled <= resumeAt || broken)) {
      const resume = wake;
      wake = undefined;
      resume();
    }
  };
  while (!broken && !options.signal?.aborted) {
    // When the window is full, wait until half of it is confirmed, then publish a burst: one
    // publish per freed slot would cost a socket write and an event-loop turn per message.
    // Before the channel's first confirm, a few only: a channel stuck on a cut-off leader holds
    // what is sent on it, and all of it would be sent again.
    if (sent - settled >= (publisher.answered ? window : Math.min(window, FIRST_WINDOW))) {
      await hold(new Promise<void>((resolve) => (wake = resolve)));
      continue;
    }
    if (publisher.blocked) await hold(publisher.writable());
    // The rate paces new orders only: those sent again were due already, and paced they would
    // hold the new ones back behind them after every reconnect. The new orders' schedule starts
    // at the first of them, so the time spent on resends is not taken for a backlog to catch up.
    if (pacer && !feed.resending) {
      const wait = pacer.wait();
      if (wait > 4) {
        await new Promise((resolve) => setTimeout(resolve, wait));
        continue; // look again: the session may have failed, or an order may wait to go again
      }
    }
    const resend = feed.resending;
    const order = feed.next();
    if (order === undefined) break;
    sent++;
    if (!resend) pacer?.sent();
    const body = encode(order);
    const flowing = sendOrder(
      publisher,
      options.topology,
      order,
      Date.now(),
      (error) => onSettled(order, error),
      body,
    );
    if (!flowing) await hold(publisher.writable());
  }
  resumeAt = 0;
  while (settled < sent) await new Promise<void>((resolve) => (wake = resolve));
  return !broken && (feed.done || (options.signal?.aborted ?? false)) && !feed.resending;
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

/**
 * Publishes `count` orders on one publisher, keeping at most `window` unconfirmed at once, and
 * counts what the broker confirmed. Never throws for a failed publish: failures are counted by
 * cause. Nothing is sent again; {@linkcode publishFeed} with {@linkcode keepConnected} does that.
 */
export async function publishOrders(options: PublishOrdersOptions): Promise<PublishSummary> {
  const feed = new OrderFeed({
    count: options.count,
    makeOrder: options.makeOrder ?? (() => newOrder({ quantity: options.quantity })),
    maxSends: 1,
  });
  await publishFeed({ ...options, feed });
  return feed.summary();
}
