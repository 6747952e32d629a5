/**
 * Estoque for a fault case run as a process of its own (the partition cases run it in the
 * services' network namespace): publishes the case's load, written by `loadToJson` to
 * `FAULT_LOAD_FILE`, with Estoque's publisher and with Estoque's settings read from the
 * environment as estoque.ts reads them (`RABBITMQ_URL`, `CONFIRM_TIMEOUT_MS`, `FIRST_CONFIRM_TIMEOUT_MS`, `PUBLISH_WINDOW`,
 * `ESTOQUE_RATE`, `TOPOLOGY_PREFIX`, ...), declaring the topology on each connection as Estoque
 * does, and writes `{ confirmed, resent }` as JSON to
 * `FAULT_RESULT_FILE`. Exits 1 when an order was not confirmed.
 *
 * @module
 */

import { parseCommandLine } from "../lib/cli.ts";
import { estoqueConfig } from "../lib/config.ts";
import { setupLogging } from "../lib/log.ts";
import { runMain } from "../lib/main.ts";
import { COMMANDS } from "../lib/options.ts";
import { prepareTopology } from "../lib/declare_topology.ts";
import { loadFromJson, publishWith } from "./_load.ts";

runMain(async () => {
  const env = Deno.env.toObject();
  const config = estoqueConfig(parseCommandLine(COMMANDS.estoque.options, [], env));
  setupLogging({ level: config.logLevel });
  const load = loadFromJson(await Deno.readTextFile(env.FAULT_LOAD_FILE!));
  const result = await publishWith(load, config.topology, {
    urls: config.urls,
    connect: { name: "estoque", tls: config.tls },
    rate: config.rate ?? 1_000,
    confirmTimeoutMs: config.confirmTimeoutMs,
    firstConfirmTimeoutMs: config.firstConfirmTimeoutMs,
    window: config.window,
    prepare: (broker) => prepareTopology(broker, config.topology, config),
  });
  await Deno.writeTextFile(env.FAULT_RESULT_FILE!, JSON.stringify(result));
  return 0;
});
