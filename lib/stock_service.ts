/**
 * Estoque's stock service, `estoque serve` and `estoque relay`: the stock store, the outbox relay
 * (unless `serve --no-relay`), the metrics, and the HTTP endpoint (with `serve`, the stock API),
 * until SIGINT/SIGTERM. Stopping stops the API first, then lets the relay's batch under way settle
 * and be marked, then closes the store.
 *
 * @module
 */

import { logger } from "./log.ts";
import { OutboxMetrics } from "./outbox_metrics.ts";
import { OutboxRelay } from "./outbox_relay.ts";
import { openStockStore } from "./open_stock_store.ts";
import { redactUrl } from "./redact.ts";
import { serveEstoqueHttp } from "./estoque_http.ts";
import type { StockService } from "./stock_command.ts";

/** What {@linkcode runStockService} reports once listening, for the entry script to print. */
export interface StockServiceStarted {
  /** The HTTP endpoint's URL, if served. */
  readonly url: string | undefined;
}

/**
 * Runs `estoque serve` or `estoque relay` until `signal` aborts.
 *
 * @throws the error that stopped it for good: a store that cannot be opened, a port taken, or the
 * relay's fatal error (a refused login, a topology declared otherwise, a SQLite outbox another
 * process relays).
 */
export async function runStockService(
  config: StockService,
  signal: AbortSignal,
  onStarted: (started: StockServiceStarted) => void = () => {},
): Promise<void> {
  const log = logger("estoque");
  await using store = await openStockStore(config.stockUrl, {
    retryForMs: config.reconnectTimeoutMs,
    signal,
  });
  let storeAvailable = true;
  const running: { relay?: OutboxRelay | undefined } = {};
  const metrics = new OutboxMetrics({
    instanceId: config.instanceId,
    stats: () => store.outboxStats(),
    connected: () => running.relay?.connected ?? false,
    storeAvailable: () => running.relay?.storeAvailable ?? storeAvailable,
  });
  const stopRelay = new AbortController();
  const relay = running.relay = config.relay === undefined ? undefined : OutboxRelay.start({
    store,
    urls: config.urls,
    connect: { name: `estoque relay ${config.instanceId}`, tls: config.tls },
    topology: config.topology,
    declare: config.declare,
    confirmTimeoutMs: config.relay.confirmTimeoutMs,
    batchSize: config.relay.batchSize,
    pollMs: config.relay.pollMs,
    retentionMs: config.relay.retentionMs,
    metrics,
    signal: stopRelay.signal,
  });
  try {
    // `relay`: ready while it can publish. `serve`: ready while the store takes movements (they
    // are taken while the broker is away: that is what the outbox is for).
    const ready = config.verb === "relay"
      ? () => relay?.ready ?? false
      : () => relay?.storeAvailable ?? storeAvailable;
    await using http = config.http
      ? await serveEstoqueHttp({
        ...config.http,
        registry: metrics.registry,
        ready,
        store,
        api: config.api,
        metrics,
        onStore: (available) => (storeAvailable = available),
        signal,
      })
      : undefined;
    const shown = config.http?.hostname.includes(":")
      ? `[${config.http.hostname}]`
      : config.http?.hostname;
    const url = http ? `http://${shown}:${http.port}/` : undefined;
    log.info("estoque started", {
      command: config.verb,
      store: redactUrl(config.stockUrl),
      relay: relay !== undefined,
      http: url,
      api: config.api !== undefined,
    });
    onStarted({ url });
    const stopped = new Promise<void>((resolve) => {
      if (signal.aborted) return resolve();
      signal.addEventListener("abort", () => resolve(), { once: true });
    });
    await Promise.race([stopped, relay?.done ?? stopped]);
  } finally {
    stopRelay.abort();
    await relay?.stop();
  }
}
