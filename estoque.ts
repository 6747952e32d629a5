/**
 * Estoque: declares the broker topology and publishes production-order requests with publisher
 * confirms. A lost connection is re-established (with backoff, through every URL given) and the
 * unconfirmed orders are sent again; exits 1 and says how many failed if any publish failed for
 * good (not confirmed in ten sends), or when no broker could be reached.
 *
 *   deno task estoque [--count N] [--quantity Q] [--prefix P] [--no-declare] [--url amqp://...]
 *
 * Env: RABBITMQ_URL, RABBITMQ_CA_FILE, RABBITMQ_CERT_FILE, RABBITMQ_KEY_FILE, TOPOLOGY_PREFIX,
 * TOPOLOGY_DECLARE, QUEUE_TYPE, DELIVERY_LIMIT, RETRY_BACKEND, RETRY_* (the retry tiers it declares),
 * ESTOQUE_COUNT, ESTOQUE_QUANTITY, ESTOQUE_RATE, ESTOQUE_CONFIRMED_LOG, CONFIRM_TIMEOUT_MS, PUBLISH_WINDOW,
 * RECONNECT_TIMEOUT_MS, LOG_LEVEL. `--help` lists every flag with its default.
 *
 * @module
 */

import { estoqueConfig } from "./lib/config.ts";
import { COMMANDS } from "./lib/options.ts";
import { ConfirmedLog, failedCount, OrderFeed, publishFeed } from "./lib/estoque.ts";
import { logger, setupLogging } from "./lib/log.ts";
import { EXIT, runCommand } from "./lib/main.ts";
import { newOrder } from "./lib/order.ts";
import { Progress } from "./lib/progress.ts";
import { ConfirmedPublisher } from "./lib/publisher.ts";
import { ConnectionLost, keepConnected } from "./lib/reconnect.ts";
import { prepareTopology } from "./lib/topology.ts";

runCommand(COMMANDS.estoque, async (cl, signal) => {
  const config = estoqueConfig(cl);
  setupLogging({ level: config.logLevel });
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
  await keepConnected({
    urls: config.urls,
    connect: { name: "estoque", tls: config.tls },
    signal,
    giveUpAfterMs: config.reconnectTimeoutMs,
  }, async (broker) => {
    await prepareTopology(broker, config.topology, config);
    const publisher = new ConfirmedPublisher(await broker.confirmChannel(), {
      timeoutMs: config.confirmTimeoutMs,
      connection: broker,
    });
    log.info("publishing", {
      count: config.count,
      exchange: config.topology.exchange,
      broker: broker.safeUrl,
    });
    const finished = await publishFeed({
      publisher,
      topology: config.topology,
      feed,
      window: config.window,
      rate: config.rate,
      signal,
      onConfirmed: confirmedLog?.add,
      onProgress: (settled) => progress?.update(settled),
    });
    if (!finished) {
      throw new ConnectionLost("publishes failed; sending them again on a new connection", {
        cause: broker.closeError,
      });
    }
  }).catch((error) => {
    // Interrupted or gave up: whatever waits to be sent again counts as failed.
    if (!signal.aborted) throw error;
  });
  feed.abandon();
  const summary = feed.summary();
  progress?.done(summary.confirmed);
  const failed = failedCount(summary);
  const seconds = summary.elapsedMs / 1000;
  const rate = seconds > 0 ? Math.round(summary.confirmed / seconds) : summary.confirmed;
  const causes = Object.entries(summary.failed).filter(([, n]) => n > 0)
    .map(([cause, n]) => `${n} ${cause}`).join(", ");
  const notSent = config.count - summary.attempted;
  console.log(
    `estoque: ${summary.confirmed}/${config.count} orders confirmed on ${config.topology.exchange}` +
      `${failed > 0 ? `, ${failed} failed (${causes})` : ""}` +
      `${summary.resent > 0 ? `, ${summary.resent} sent again` : ""}` +
      `${notSent > 0 ? `, ${notSent} not sent (interrupted)` : ""}` +
      ` in ${seconds.toFixed(2)} s (${rate} msg/s)`,
  );
  return failed > 0 || notSent > 0 ? EXIT.failure : EXIT.ok;
});
