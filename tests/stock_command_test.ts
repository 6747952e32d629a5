/**
 * Estoque's stock command lines: each subcommand's options checked before anything is done, a bad
 * one named (exit 2), `--delta -5` read as a negative delta, and Estoque's first mode (`-n N`)
 * left as it was.
 */

import { strict as assert } from "node:assert";
import { UsageError } from "../lib/cli.ts";
import {
  estoqueVerb,
  parseStockCommand,
  type StockCommand,
  stockHelp,
} from "../lib/stock_command.ts";
import { RED, stockSetArgs } from "../testing/stock.ts";

const parse = (args: string[], env: Record<string, string> = {}): Promise<StockCommand> =>
  parseStockCommand(args, env);

async function refused(args: string[], message: RegExp, env: Record<string, string> = {}) {
  await assert.rejects(
    parse(args, env),
    (e: unknown) => e instanceof UsageError && message.test(e.message),
    args.join(" "),
  );
}

Deno.test("estoqueVerb() names a stock subcommand only as the first argument; anything else is Estoque's first mode", () => {
  assert.equal(estoqueVerb(["move", "--color", RED]), "move");
  assert.equal(estoqueVerb(["stock", "list"]), "stock");
  assert.equal(estoqueVerb(["serve"]), "serve");
  assert.equal(estoqueVerb(["relay"]), "relay");
  assert.equal(estoqueVerb(["-n", "5"]), undefined);
  assert.equal(estoqueVerb(["--prefix", "move"]), undefined);
  assert.equal(estoqueVerb([]), undefined);
});

Deno.test("move reads --delta -5 as a negative delta, the colour in lower case, the store from STOCK_URL", async () => {
  const command = await parse(["move", "--color", RED.toUpperCase(), "--delta", "-5"], {
    STOCK_URL: "postgres://u:p@db/stock",
  });
  assert.deepEqual(command, {
    stockUrl: "postgres://u:p@db/stock",
    logLevel: "warning",
    verb: "move",
    movement: { color: RED, delta: -5 },
    json: false,
  });
  const reasoned = await parse(["move", "--color", RED, "--delta=3", "--reason", "count"]);
  assert.deepEqual(reasoned.verb === "move" && reasoned.movement, {
    color: RED,
    delta: 3,
    reason: "count",
  });
  assert.equal(reasoned.stockUrl, "sqlite:data/stock.sqlite");
  const keyed = await parse(["move", "--color", RED, "--delta=3", "--idempotency-key", "count-7"]);
  assert.deepEqual(keyed.verb === "move" && keyed.movement, {
    color: RED,
    delta: 3,
    idempotencyKey: "count-7",
  });
  await refused(
    ["move", "--color", RED, "--delta=3", "--idempotency-key", "two words"],
    /^--idempotency-key: an idempotency key is 1 to 200 visible ASCII characters/,
  );
});

Deno.test("a bad stock command line is refused naming what is wrong, before the store is opened", async () => {
  await refused(["move", "--delta", "-1"], /^move needs --color$/);
  await refused(["move", "--color", RED], /^move needs --delta$/);
  await refused(["move", "--color", RED, "--delta", "1.5"], /^--delta must be an integer/);
  await refused(["move", "--color", RED, "--delta", "0"], /^--delta: delta must be a whole/);
  await refused(
    ["move", "--color", "red", "--delta", "-1"],
    /^--color: a colour is given by its code/,
  );
  await refused(
    ["move", "--color", RED, "--delta", "-1", "--quantity", "3"],
    /Unknown option '--quantity'/,
  );
  await refused(["move", "extra", "--color", RED, "--delta", "-1"], /move takes no arguments/);
  await refused(["stock"], /say what to do with the stock/);
  await refused(["stock", "count"], /stock's command must be one of set, list/);
  await refused(
    ["stock", "set", "--color", RED, "--quantity", "3"],
    /stock set needs --reorder-point/,
  );
  await refused(
    stockSetArgs({ color: RED, quantity: 3, reorderPoint: 1, reorderQuantity: 0 }),
    /--reorder-quantity must be an integer from 1/,
  );
  await refused(["stock", "list", "--color", RED], /--color is for stock set, not stock list/);
  await refused(
    ["move", "--color", RED, "--delta", "-1"],
    /STOCK_URL must be sqlite:PATH or a postgres/,
    {
      STOCK_URL: "mysql://db",
    },
  );
  await refused(
    ["serve", "--http-host", "0.0.0.0"],
    /--http-host 0\.0\.0\.0 lets other machines in: give --token/,
  );
  await refused(["serve", "--allowed-hosts", "a b"], /--allowed-hosts must be host names/);
  await refused(["relay", "--token", "x"], /Unknown option '--token'/);
  await refused(["relay", "--batch-size", "0"], /--batch-size must be an integer from 1/);
});

Deno.test("stock set reads the item; serve and relay read the relay's settings and the API's guard", async () => {
  const set = await parse([
    ...stockSetArgs({ color: RED, quantity: 12, reorderPoint: 10, reorderQuantity: 40 }),
    "--json",
  ]);
  assert.deepEqual(set.verb === "stock set" && set.settings, {
    color: RED,
    quantity: 12,
    reorderPoint: 10,
    reorderQuantity: 40,
  });
  const serve = await parse(["serve", "--prefix", "a.", "--poll-interval", "250"], {
    ESTOQUE_TOKEN: "t",
  });
  assert.ok(serve.verb === "serve");
  assert.deepEqual(serve.relay, {
    confirmTimeoutMs: 10_000,
    batchSize: 5_000,
    pollMs: 250,
    retentionMs: 604_800_000,
  });
  assert.deepEqual(serve.http, { port: 9465, hostname: "127.0.0.1" });
  assert.equal(serve.topology.exchange, "a.productionorder");
  assert.equal(serve.api?.auth.configured, true);
  const movementsOnly = await parse(["serve", "--no-relay", "--no-http"]);
  assert.ok(movementsOnly.verb === "serve");
  assert.equal(movementsOnly.relay, undefined);
  assert.equal(movementsOnly.http, undefined);
  assert.equal(movementsOnly.api, undefined);
  const relay = await parse(["relay"], { OUTBOX_RETENTION_MS: "0", ESTOQUE_HTTP_ENABLED: "no" });
  assert.ok(relay.verb === "relay");
  assert.equal(relay.relay?.retentionMs, 0);
  assert.equal(relay.api, undefined);
});

Deno.test("each subcommand's --help names its own options", () => {
  assert.match(stockHelp("move"), /--delta <N>\n +Units in .*--delta -5/);
  assert.doesNotMatch(stockHelp("move"), /--reorder-point/);
  assert.match(stockHelp("stock"), /--reorder-quantity <N>/);
  assert.match(stockHelp("serve"), /--no-relay\n/);
  assert.match(stockHelp("serve"), /env: ESTOQUE_OPERATOR_TOKEN/);
  assert.doesNotMatch(stockHelp("relay"), /^ +--token/m);
  assert.match(
    stockHelp("relay"),
    /--retention <ms>\n.*\(default: 604800000, env: OUTBOX_RETENTION_MS\)/,
  );
});
