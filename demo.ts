/**
 * The demo, the main job in one command: declares a demo-prefixed topology on the broker at
 * RABBITMQ_URL, runs OrdemDeProducao's consumer, publishes a mixed batch (orders under and over
 * the limit, one order twice, malformed messages) with short retry delays, and prints where every
 * message ended. Exits 0 when every published message is accounted for.
 *
 *   deno task demo [--orders N] [--retry-delay ms] [--keep] [--url amqp://...]
 *
 * Env: RABBITMQ_URL, and DEMO_* for the demo's own flags (`--help` lists them).
 *
 * @module
 */

import { integerOption, stringOption } from "./lib/cli.ts";
import { COMMON_OPTIONS, commonConfig, ledgerUrlOption } from "./lib/config.ts";
import { formatDemoReport, runDemo } from "./lib/demo.ts";
import { setupLogging } from "./lib/log.ts";
import { EXIT, runCommand } from "./lib/main.ts";

const DEMO_OPTIONS = {
  ...COMMON_OPTIONS,
  prefix: { ...COMMON_OPTIONS.prefix, env: "DEMO_PREFIX", default: "demo." },
  "retry-delay": { ...COMMON_OPTIONS["retry-delay"], env: "DEMO_RETRY_DELAY_MS", default: "200" },
  "log-level": { ...COMMON_OPTIONS["log-level"], env: "DEMO_LOG_LEVEL", default: "error" },
  orders: {
    type: "string",
    env: "DEMO_ORDERS",
    default: "30",
    placeholder: "N",
    description: "Valid orders to publish; every third is over the limit.",
  },
  ledger: {
    type: "string",
    env: "DEMO_LEDGER_PATH",
    default: "data/demo.sqlite",
    placeholder: "path",
    description: "The demo's ledger file (emptied first).",
  },
  consumers: {
    type: "string",
    env: "DEMO_CONSUMERS",
    default: "1",
    placeholder: "N",
    description: "Consumers competing for the queue, each with its own ledger connection.",
  },
  "ledger-url": {
    type: "string",
    env: "DEMO_LEDGER_URL",
    placeholder: "sqlite:PATH|postgres://...",
    description:
      "The ledger as a URL; a PostgreSQL one is shared by the consumers (emptied first).",
  },
  keep: {
    type: "boolean",
    env: "DEMO_KEEP",
    description: "Keep the demo's queues and exchanges afterwards.",
  },
} as const;

runCommand({
  options: DEMO_OPTIONS,
  usage: "deno task demo [options]",
  summary: "The whole flow in one command.",
}, async (cl, signal) => {
  const common = commonConfig(cl);
  const orders = integerOption(cl.options.orders!, 1, 100_000);
  const ledger = ledgerUrlOption(cl.options["ledger-url"]!);
  const ledgerPath = ledger?.sqlitePath ?? stringOption(cl.options.ledger!);
  setupLogging({ level: common.logLevel });
  const report = await runDemo({
    url: common.url,
    topology: common.topology,
    policy: common.policy,
    orders,
    ledgerPath,
    ledgerUrl: ledger?.sqlitePath === undefined ? ledger?.url : undefined,
    consumers: integerOption(cl.options.consumers!, 1, 16),
    keep: cl.options.keep!.value === true,
    signal,
  });
  console.log(formatDemoReport(report, common.topology, common.policy));
  return report.accountedFor === report.published ? EXIT.ok : EXIT.failure;
});
