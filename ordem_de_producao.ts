/**
 * OrdemDeProducao: consumes production-order requests, writes one production order per RefCode
 * to the ledger, retries failures after a growing delay and dead-letters what keeps failing.
 * Runs until SIGINT/SIGTERM (then finishes in-flight messages and exits 0), or with `--drain`
 * until the work queue and its retries are empty. A lost connection is re-established with
 * backoff, through every URL given, and consuming resumes; it exits 1 only when no broker could be
 * reached for RECONNECT_TIMEOUT_MS, or for an error reconnecting cannot cure (a refused login, a
 * topology declared with other settings, or with `--no-declare` a topology that is missing).
 *
 *   deno task ordem [--prefetch N] [--max-quantity Q] [--ledger PATH] [--drain] [--url amqp://...]
 *
 * Env: RABBITMQ_URL (comma-separated for a cluster), RABBITMQ_CA_FILE, RABBITMQ_CERT_FILE,
 * RABBITMQ_KEY_FILE, RECONNECT_TIMEOUT_MS, QUEUE_TYPE, DELIVERY_LIMIT, TOPOLOGY_PREFIX, TOPOLOGY_DECLARE, RETRY_BACKEND, RETRY_MAX, RETRY_DELAY_MS, RETRY_STRATEGY,
 * RETRY_MAX_DELAY_MS, RETRY_JITTER, PREFETCH, MAX_QUANTITY, LEDGER_PATH, LEDGER_URL, INSTANCE_ID,
 * ORDEM_DRAIN, CONFIRM_TIMEOUT_MS, SHUTDOWN_TIMEOUT_MS, HTTP_ENABLED, HTTP_PORT, HTTP_HOST, LOG_LEVEL.
 * `--help` lists every flag. Serves /metrics (Prometheus), /healthz and /readyz on HTTP_PORT
 * (9464) unless `--no-http`.
 *
 * @module
 */

import { ordemConfig } from "./lib/config.ts";
import { setupLogging } from "./lib/log.ts";
import { EXIT, runCommand } from "./lib/main.ts";
import { COMMANDS } from "./lib/options.ts";
import { runOrdem } from "./lib/ordem.ts";

runCommand(COMMANDS.ordem, async (cl, signal) => {
  const config = ordemConfig(cl);
  setupLogging({ level: config.logLevel, fields: { instanceId: config.instanceId } });
  await runOrdem(config, signal);
  return EXIT.ok;
});
