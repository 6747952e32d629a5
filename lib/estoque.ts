/**
 * Estoque's work: publishing production-order requests with publisher confirms, one order at a
 * time or a whole run (declare, publish, reconnect and send again what failed), and the line that
 * sums a run up.
 *
 * @module
 */

import type { EstoqueConfig } from "./config.ts";
import { logger } from "./log.ts";
import { encodeOrder, newOrder, type Order } from "./order.ts";
import { failedCount, OrderFeed, publishFeed, type PublishSummary } from "./order_feed.ts";
import { orderProperties, traceOrder } from "./order_properties.ts";
import { Progress } from "./progress.ts";
import { ConfirmedPublisher } from "./publisher.ts";
import { DoublingTimeout } from "./backoff.ts";
import { ConnectionLost, keepConnected, LOST_CLOSE_TIMEOUT_MS } from "./reconnect.ts";
import { type Topology } from "./topology.ts";
import { sessionTopology } from "./declare_topology.ts";
import { endPublishSpanOn } from "./tracing.ts";

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
  const body = encodeOrder(order);
  const properties = orderProperties(order, now.getTime());
  const span = traceOrder(topo, order, body, properties);
  return endPublishSpanOn(
    span,
    publisher.publish(topo.exchange, topo.routingKey, body, properties),
  );
}

/** What one run of Estoque did. */
export interface EstoqueResult {
  /** How many orders it was to publish. */
  readonly count: number;
  /** The exchange it published to. */
  readonly exchange: string;
  /** What was confirmed, failed and sent again. */
  readonly summary: PublishSummary;
  /**
   * The error that stopped it for good after it started publishing (no broker for
   * `reconnectTimeoutMs`, a refused login, a topology declared with other settings): the caller
   * says the summary, then the error.
   */
  readonly error?: unknown;
}

/**
 * Runs Estoque: publishes `config.count` orders with confirms, declaring (or checking) the
 * topology on each connection; a lost connection is re-established with backoff, through every
 * URL, and the unconfirmed orders are sent again. When `signal` aborts it sends no new order, lets
 * those in flight settle, and counts whatever waits to be sent again as failed.
 *
 * @throws a confirmed log that cannot be opened. An error that stops it once started is returned
 * in {@linkcode EstoqueResult.error}, beside what it confirmed.
 */
export async function runEstoque(
  config: EstoqueConfig,
  signal: AbortSignal,
): Promise<EstoqueResult> {
  const log = logger("estoque");
  using confirmedLog = config.confirmedLog === undefined
    ? undefined
    : new ConfirmedLog(config.confirmedLog);
  const feed = new OrderFeed({
    count: config.count,
    makeOrder: () => newOrder({ quantity: config.quantity }),
  });
  const progress = config.count >= 1000
    ? new Progress({ label: "published", total: config.count })
    : undefined;
  // Checked, not declared, before publishing again after a reconnect (declare_topology.ts).
  const prepareTopology = sessionTopology(config.topology, config);
  let fatal: { error: unknown } | undefined;
  // Each connection's first-confirm timeout: longer after one whose publishes waited it out.
  const firstConfirm = new DoublingTimeout(config.firstConfirmTimeoutMs, config.confirmTimeoutMs);
  await keepConnected({
    urls: config.urls,
    connect: { name: "estoque", tls: config.tls },
    signal,
    giveUpAfterMs: config.reconnectTimeoutMs,
  }, async (broker) => {
    const topology = await prepareTopology(broker);
    const publisher = new ConfirmedPublisher(await broker.confirmChannel(), {
      timeoutMs: config.confirmTimeoutMs,
      firstConfirmTimeoutMs: firstConfirm.ms,
      connection: broker,
    });
    log.info("publishing", {
      count: config.count,
      exchange: config.topology.exchange,
      broker: broker.safeUrl,
    });
    // This session's publishing, stopped by its own signal if the topology check below fails.
    const session = new AbortController();
    const published = publishFeed({
      publisher,
      topology: config.topology,
      feed,
      window: config.window,
      rate: config.rate,
      signal: AbortSignal.any([signal, session.signal]),
      onConfirmed: confirmedLog?.add,
      onProgress: (settled) => progress?.update(settled),
    });
    let finished: boolean;
    try {
      finished = await Promise.race([published, topology.failed]);
      if (publisher.answered) firstConfirm.sufficed();
      else if (publisher.firstTimedOut) firstConfirm.tooShort();
    } catch (error) {
      // The topology changed while Estoque was away: it stops. It sends nothing more, and what
      // it sent settles (as failed, once the connection is closed) before the summary counts it.
      session.abort();
      await broker.close(LOST_CLOSE_TIMEOUT_MS);
      await published.catch(() => {});
      throw error;
    }
    if (!finished) {
      throw new ConnectionLost("publishes failed; sending them again on a new connection", {
        cause: broker.closeError,
      });
    }
  }).catch((error) => {
    // Interrupted or gave up: whatever waits to be sent again counts as failed.
    if (!signal.aborted) fatal = { error };
  });
  feed.abandon();
  const summary = feed.summary();
  progress?.done(summary.confirmed);
  return {
    count: config.count,
    exchange: config.topology.exchange,
    summary,
    ...(fatal ? { error: fatal.error } : {}),
  };
}

/** Whether a run sent every order and the broker confirmed them all. */
export function allConfirmed(result: EstoqueResult): boolean {
  return failedCount(result.summary) === 0 && result.summary.attempted >= result.count;
}

/**
 * The line Estoque ends with: how many orders were confirmed, and only where there were any, how
 * many failed (by cause), were sent again, or were never sent because the run was interrupted.
 *
 * @example
 * ```ts
 * const failed = { nacked: 0, returned: 0, timeout: 1, closed: 0 };
 * const summary = { attempted: 9, confirmed: 8, failed, resent: 3, elapsedMs: 2_000 };
 * summaryLine({ count: 10, exchange: "orders", summary });
 * // "estoque: 8/10 orders confirmed on orders, 1 failed (1 timeout), 3 sent again,
 * //  1 not sent (interrupted) in 2.00 s (4 msg/s)" (one line)
 * ```
 */
export function summaryLine(result: EstoqueResult): string {
  const { count, exchange, summary } = result;
  const failed = failedCount(summary);
  const seconds = summary.elapsedMs / 1000;
  const rate = seconds > 0 ? Math.round(summary.confirmed / seconds) : summary.confirmed;
  const causes = Object.entries(summary.failed).filter(([, n]) => n > 0)
    .map(([cause, n]) => `${n} ${cause}`).join(", ");
  const notSent = count - summary.attempted;
  return `estoque: ${summary.confirmed}/${count} orders confirmed on ${exchange}` +
    `${failed > 0 ? `, ${failed} failed (${causes})` : ""}` +
    `${summary.resent > 0 ? `, ${summary.resent} sent again` : ""}` +
    `${notSent > 0 ? `, ${notSent} not sent (interrupted)` : ""}` +
    ` in ${seconds.toFixed(2)} s (${rate} msg/s)`;
}

/**
 * Appends the RefCodes of confirmed orders to a file, one per line, a few times a second and on
 * close: a record of what the broker took responsibility for, that survives the process.
 */
export class ConfirmedLog implements Disposable {
  readonly #file: Deno.FsFile;
  readonly #timer: ReturnType<typeof setInterval>;
  #lines: string[] = [];

  /** Opens (creates, or appends to) `path`. */
  constructor(path: string) {
    try {
      this.#file = Deno.openSync(path, { append: true, create: true });
    } catch (error) {
      throw new Error(`cannot open the confirmed log ${path}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    this.#timer = setInterval(() => this.flush(), 100);
  }

  /** Records a confirmed order. */
  readonly add = (order: Order): void => {
    this.#lines.push(order.refCode);
  };

  /** Writes what was recorded so far. */
  flush(): void {
    if (this.#lines.length === 0) return;
    const text = this.#lines.join("\n") + "\n";
    this.#lines = [];
    const bytes = new TextEncoder().encode(text);
    let written = 0;
    while (written < bytes.length) written += this.#file.writeSync(bytes.subarray(written));
  }

  /** Flushes and closes the file. */
  [Symbol.dispose](): void {
    clearInterval(this.#timer);
    this.flush();
    this.#file.close();
  }
}
