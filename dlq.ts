/**
 * Dead-letter tooling: look at, replay or purge what OrdemDeProducao dead-lettered.
 *
 *   deno task dlq list   [--reason R] [--since 1h|DATE] [--ref REF] [--limit N] [--json]
 *   deno task dlq show   REF [--json]
 *   deno task dlq replay [filters] [--limit N] [--rate N] [--window N] [--dry-run]
 *   deno task dlq replay --from-file ARCHIVE
 *   deno task dlq purge  [filters] [--limit N] [--dry-run] [--yes] [--no-archive]
 *
 * `list` and `show` put back every message they look at, in order. `replay` sends matching
 * messages back to the work exchange with the retry count reset, acking each from the DLQ only
 * after its republish is confirmed (a window of confirms in flight); one that cannot be replayed
 * stays, and is listed with its reason (exit 1). `purge` asks first unless `--yes`, then deletes
 * at most what it counted (never a letter that arrived since), written to an archive
 * (`--archive-dir`) and synced first unless `--no-archive`; with `--dry-run` it only counts.
 * Every replay and purge is appended to the audit trail (`--audit-log`), a purge's before it
 * deletes anything: a full disk stops it with nothing deleted. A flag another subcommand takes
 * is refused (exit 2).
 * Env: RABBITMQ_URL (the first of a comma-separated list that answers), RABBITMQ_CA_FILE,
 * RABBITMQ_CERT_FILE, RABBITMQ_KEY_FILE, TOPOLOGY_PREFIX, LOG_LEVEL. `--help` lists every flag.
 *
 * @module
 */

import { runCommand } from "./lib/main.ts";
import { runDlq } from "./lib/dlq.ts";
import { dlqCommand, dlqHelp } from "./lib/dlq_command.ts";
import { COMMANDS } from "./lib/options.ts";

runCommand({ ...COMMANDS.dlq, help: dlqHelp }, (cl, signal) => runDlq(dlqCommand(cl), signal));
