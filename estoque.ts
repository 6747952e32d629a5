/**
 * Estoque: declares the broker topology and publishes production-order requests with publisher
 * confirms. A lost connection is re-established (with backoff, through every URL given) and the
 * unconfirmed orders are sent again; exits 1 and says how many failed if any publish failed for
 * good (not confirmed in ten sends), or when no broker could be reached.
 *
 *   deno task estoque [--count N] [--quantity Q] [--prefix P] [--no-declare] [--url amqp://...]
 *
 * As a stock service (docs/outbox.md), a movement that takes a colour below its reorder point puts
 * the request in an outbox in the same transaction, and a relay publishes it:
 *
 *   deno task estoque stock set --color CODE --quantity N --reorder-point P --reorder-quantity Q
 *   deno task estoque stock list
 *   deno task estoque move --color CODE --delta -N [--reason TEXT]
 *   deno task estoque serve [--no-relay] [--http-port 9465] [--token ...]   (stock API + relay)
 *   deno task estoque relay                                                  (the relay alone)
 *
 * Env: RABBITMQ_URL, RABBITMQ_CA_FILE, RABBITMQ_CERT_FILE, RABBITMQ_KEY_FILE, TOPOLOGY_PREFIX,
 * TOPOLOGY_DECLARE, QUEUE_TYPE, DELIVERY_LIMIT, RETRY_BACKEND, RETRY_* (the retry tiers it declares),
 * ESTOQUE_COUNT, ESTOQUE_QUANTITY, ESTOQUE_RATE, ESTOQUE_CONFIRMED_LOG, CONFIRM_TIMEOUT_MS, PUBLISH_WINDOW,
 * RECONNECT_TIMEOUT_MS, LOG_LEVEL; for the stock: STOCK_URL, OUTBOX_BATCH_SIZE, OUTBOX_POLL_MS,
 * OUTBOX_RETENTION_MS, INSTANCE_ID, ESTOQUE_HTTP_ENABLED, ESTOQUE_HTTP_PORT, ESTOQUE_HTTP_HOST,
 * ESTOQUE_RELAY, ESTOQUE_ALLOWED_HOSTS, ESTOQUE_TOKEN, ESTOQUE_OPERATOR_TOKEN, ESTOQUE_USERS_FILE.
 * `--help` (and `estoque <command> --help`) lists every flag with its default.
 *
 * @module
 */

import { estoqueConfig } from "./lib/config.ts";
import { allConfirmed, runEstoque, summaryLine } from "./lib/estoque.ts";
import { setupLogging } from "./lib/log.ts";
import { EXIT, runCommand, runMain } from "./lib/main.ts";
import { COMMANDS } from "./lib/options.ts";
import { runStockCli } from "./lib/stock_cli.ts";
import {
  estoqueVerb,
  parseStockCommandLine,
  stockCommand,
  stockHelp,
} from "./lib/stock_command.ts";

const verb = estoqueVerb(Deno.args);
if (verb === undefined) {
  runCommand(COMMANDS.estoque, async (cl, signal) => {
    const config = estoqueConfig(cl);
    setupLogging({ level: config.logLevel });
    const result = await runEstoque(config, signal);
    console.log(summaryLine(result));
    if (result.error !== undefined) throw result.error;
    return allConfirmed(result) ? EXIT.ok : EXIT.failure;
  });
} else {
  runMain(async (signal) => {
    const cl = parseStockCommandLine(verb, Deno.args, Deno.env.toObject());
    if (cl.help) {
      console.log(stockHelp(verb));
      return EXIT.ok;
    }
    const command = await stockCommand(verb, cl);
    setupLogging({ level: command.logLevel });
    return await runStockCli(command, signal);
  });
}
