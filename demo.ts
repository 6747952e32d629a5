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
import { commonConfig, ledgerUrlOption } from "./lib/config.ts";
import { COMMANDS } from "./lib/options.ts";
import { formatDemoReport, runDemo } from "./lib/demo.ts";
import { setupLogging } from "./lib/log.ts";
import { EXIT, runCommand } from "./lib/main.ts";

runCommand(COMMANDS.demo, async (cl, signal) => {
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
