/**
 * OrdemDeProducao: consumes production-order requests, writes one production order per RefCode
 * to the ledger, retries failures after a growing delay and dead-letters what keeps failing.
 * Runs until SIGINT/SIGTERM (then finishes in-flight messages and exits 0), or with `--drain`
 * until the work queue and its retries are empty.
 *
 *   deno task ordem [--prefetch N] [--max-quantity Q] [--ledger PATH] [--drain] [--url amqp://...]
 *
 * Env: RABBITMQ_URL, TOPOLOGY_PREFIX, RETRY_BACKEND, RETRY_MAX, RETRY_DELAY_MS, RETRY_STRATEGY,
 * RETRY_MAX_DELAY_MS, RETRY_JITTER, PREFETCH, MAX_QUANTITY, LEDGER_PATH, INSTANCE_ID,
 * ORDEM_DRAIN, CONFIRM_TIMEOUT_MS, SHUTDOWN_TIMEOUT_MS, HTTP_ENABLED, HTTP_PORT, HTTP_HOST, LOG_LEVEL.
 * `--help` lists every flag. Serves /metrics (Prometheus), /healthz and /readyz on HTTP_PORT
 * (9464) unless `--no-http`.
 *
 * @module
 */

import { Broker } from "./lib/broker.ts";
import { ORDEM_OPTIONS, ordemConfig } from "./lib/config.ts";
import { OrderConsumer } from "./lib/consumer.ts";
import { SqliteLedger } from "./lib/ledger.ts";
import { serveHttp } from "./lib/http_server.ts";
import { logger, setupLogging } from "./lib/log.ts";
import { ConsumerMetrics } from "./lib/metrics.ts";
import { EXIT, runCommand } from "./lib/main.ts";
import { declareTopology } from "./lib/topology.ts";

runCommand({
  options: ORDEM_OPTIONS,
  usage: "deno task ordem [options]",
  summary: "OrdemDeProducao: consumes production-order requests with delayed retries and a DLQ.",
}, async (cl, signal) => {
  const config = ordemConfig(cl);
  setupLogging({ level: config.logLevel });
  const log = logger("ordem");

  await using ledger = await SqliteLedger.open(config.ledgerPath, {
    instanceId: config.instanceId,
  });
  await using broker = await Broker.connect(config.url, { name: `ordem ${config.instanceId}` });
  await declareTopology(broker, config.topology);
  const running: { consumer?: OrderConsumer } = {};
  const metrics = new ConsumerMetrics({
    instanceId: config.instanceId,
    inFlight: () => running.consumer?.inFlight ?? 0,
    connected: () => broker.isOpen,
  });
  await using http = config.http
    ? await serveHttp({
      ...config.http,
      registry: metrics.registry,
      ready: () => broker.isOpen && (running.consumer?.ready ?? false),
    })
    : undefined;
  if (http) log.info("serving /metrics, /healthz and /readyz", { port: http.port });
  const consumer = running.consumer = await OrderConsumer.start({
    broker,
    topology: config.topology,
    ledger,
    policy: config.policy,
    maxQuantity: config.maxQuantity,
    prefetch: config.prefetch,
    confirmTimeoutMs: config.confirmTimeoutMs,
    onOutcome: metrics.observe,
  });
  log.info("ready", {
    instanceId: config.instanceId,
    broker: broker.safeUrl,
    backend: config.topology.backend,
    ledger: config.ledgerPath,
  });
  const stopped = new Promise<"signal">((resolve) => {
    if (signal.aborted) resolve("signal");
    signal.addEventListener("abort", () => resolve("signal"), { once: true });
  });
  const drained = config.drain
    ? consumer.drained({ signal }).then(() => "drained" as const)
    : new Promise<never>(() => {});
  const why = await Promise.race([stopped, drained, consumer.done.then(() => "done" as const)]);
  log.info("stopping", { why });
  await consumer.stop(config.shutdownTimeoutMs);
  log.info("stopped", { deliveries: consumer.deliveries });
  return EXIT.ok;
});
