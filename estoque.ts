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
import { allConfirmed, runEstoque, summaryLine } from "./lib/estoque.ts";
import { setupLogging } from "./lib/log.ts";
import { EXIT, runCommand } from "./lib/main.ts";
import { COMMANDS } from "./lib/options.ts";

runCommand(COMMANDS.estoque, async (cl, signal) => {
  const config = estoqueConfig(cl);
  setupLogging({ level: config.logLevel });
  const result = await runEstoque(config, signal);
  console.log(summaryLine(result));
  return allConfirmed(result) ? EXIT.ok : EXIT.failure;
});
