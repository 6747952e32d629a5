/**
 * Dead-letter tooling: look at, replay or purge what OrdemDeProducao dead-lettered.
 *
 *   deno task dlq list   [--reason R] [--since 1h|DATE] [--ref REF] [--limit N] [--json]
 *   deno task dlq show   REF [--json]
 *   deno task dlq replay [filters] [--limit N] [--rate N] [--dry-run]
 *   deno task dlq purge  [filters] [--limit N] [--dry-run] [--yes]
 *
 * `list` and `show` put back every message they look at, in order. `replay` sends matching
 * messages back to the work exchange with the retry count reset, acking each from the DLQ only
 * after its republish is confirmed. `purge` asks first unless `--yes`; with `--dry-run` it only
 * counts. A flag another subcommand takes is refused (exit 2).
 * Env: RABBITMQ_URL (the first of a comma-separated list that answers), RABBITMQ_CA_FILE,
 * RABBITMQ_CERT_FILE, RABBITMQ_KEY_FILE, TOPOLOGY_PREFIX, LOG_LEVEL. `--help` lists every flag.
 *
 * @module
 */

import { runCommand } from "./lib/main.ts";
import { runDlq } from "./lib/dlq.ts";
import { COMMANDS } from "./lib/options.ts";

runCommand(COMMANDS.dlq, runDlq);
