/**
 * Estoque: declares the broker topology and publishes production-order requests with publisher
 * confirms. Exits 1 and says how many failed if any publish is nacked, returned or times out.
 *
 *   deno task estoque [--count N] [--quantity Q] [--prefix P] [--url amqp://...]
 *
 * Env: RABBITMQ_URL, TOPOLOGY_PREFIX, RETRY_BACKEND, RETRY_* (the retry tiers it declares),
 * ESTOQUE_COUNT, ESTOQUE_QUANTITY, CONFIRM_TIMEOUT_MS, PUBLISH_WINDOW, LOG_LEVEL.
 * `--help` lists every flag with its default.
 *
 * @module
 */

import { Broker } from "./lib/broker.ts";
import { ESTOQUE_OPTIONS, estoqueConfig } from "./lib/config.ts";
import { failedCount, publishOrders } from "./lib/estoque.ts";
import { logger, setupLogging } from "./lib/log.ts";
import { EXIT, runCommand } from "./lib/main.ts";
import { Progress } from "./lib/progress.ts";
import { ConfirmedPublisher } from "./lib/publisher.ts";
import { declareTopology } from "./lib/topology.ts";

runCommand({
  options: ESTOQUE_OPTIONS,
  usage: "deno task estoque [options]",
  summary: "Estoque: declares the topology and publishes production-order requests.",
}, async (cl, signal) => {
  const config = estoqueConfig(cl);
  setupLogging({ level: config.logLevel });
  const log = logger("estoque");

  await using broker = await Broker.connect(config.url, { name: "estoque" });
  await declareTopology(broker, config.topology);
  const publisher = new ConfirmedPublisher(await broker.confirmChannel(), {
    timeoutMs: config.confirmTimeoutMs,
  });
  log.info("publishing", {
    count: config.count,
    exchange: config.topology.exchange,
    broker: broker.safeUrl,
  });
  const progress = config.count >= 1000
    ? new Progress({ label: "published", total: config.count })
    : undefined;
  const summary = await publishOrders({
    publisher,
    topology: config.topology,
    count: config.count,
    quantity: config.quantity,
    window: config.window,
    signal,
    onProgress: (settled) => progress?.update(settled),
  });
  progress?.done(summary.attempted);
  const failed = failedCount(summary);
  const seconds = summary.elapsedMs / 1000;
  const rate = seconds > 0 ? Math.round(summary.confirmed / seconds) : summary.confirmed;
  const causes = Object.entries(summary.failed).filter(([, n]) => n > 0)
    .map(([cause, n]) => `${n} ${cause}`).join(", ");
  console.log(
    `estoque: ${summary.confirmed}/${config.count} orders confirmed on ${config.topology.exchange}` +
      `${failed > 0 ? `, ${failed} failed (${causes})` : ""}` +
      `${
        summary.attempted < config.count
          ? `, ${config.count - summary.attempted} not sent (interrupted)`
          : ""
      }` +
      ` in ${seconds.toFixed(2)} s (${rate} msg/s)`,
  );
  return failed > 0 || summary.attempted < config.count ? EXIT.failure : EXIT.ok;
});
