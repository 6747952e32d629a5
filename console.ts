/**
 * The browser console: the flow live, dead letters grouped by cause, an order's journey by
 * RefCode, and replay and purge with a preview, an archive and an audit entry; with a stock store
 * (STOCK_URL), Estoque's outbox on the overview.
 *
 *   deno task console [--hostname 127.0.0.1] [--port 8090] [--token T] [--read-only] ...
 *
 * Listens on 127.0.0.1 unless told otherwise; any other address needs a token or a users file.
 * Env: RABBITMQ_URL, LEDGER_URL, STOCK_URL, CONSOLE_METRICS_URLS, CONSOLE_TOKEN,
 * CONSOLE_OPERATOR_TOKEN, CONSOLE_USERS_FILE, CONSOLE_READ_ONLY, LOG_LEVEL. `--help` lists every
 * flag.
 *
 * @module
 */

import { runCommand } from "./lib/main.ts";
import { consoleConfig } from "./lib/console/console_config.ts";
import { runConsole } from "./lib/console/main.ts";
import { COMMANDS } from "./lib/options.ts";

runCommand(COMMANDS.console, async (cl, signal) => runConsole(await consoleConfig(cl), signal));
