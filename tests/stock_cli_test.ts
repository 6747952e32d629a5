/**
 * Estoque's stock subcommands as a user runs them: what `move`, `stock set` and `stock list` print
 * and their exit codes (a refused movement: 2, nothing written); `estoque serve` taking a movement
 * over HTTP with its relay publishing the request; `estoque relay` publishing what `estoque move`
 * committed in another process; SIGTERM stopping both with exit 0.
 */

import { strict as assert } from "node:assert";
import { join } from "node:path";
import { Broker } from "../lib/broker.ts";
import { DEFAULT_RETRY_POLICY, retryDelays } from "../lib/retry_policy.ts";
import { movementLine, runStockCli, stockTable } from "../lib/stock_cli.ts";
import { PostgresStockStore } from "../lib/postgres_stock_store.ts";
import type { StockItemSettings } from "../lib/stock_store.ts";
import { CommitDroppingProxy } from "../testing/commit_proxy.ts";
import { dropSchema } from "../testing/postgres.ts";
import { topology } from "../lib/topology.ts";
import { deleteTopology } from "../lib/declare_topology.ts";
import {
  POSTGRES_URL,
  RABBITMQ_URL,
  runScript,
  takeMessages,
  tempDir,
  uniquePrefix,
  waitFor,
} from "../testing/broker.ts";
import { ourService } from "../testing/process.ts";
import { BLUE, RED, stockSetArgs } from "../testing/stock.ts";

/** The services' topology of `prefix`, as they declare it. */
function servicesTopology(prefix: string) {
  return topology({ prefix, retryDelays: retryDelays(DEFAULT_RETRY_POLICY) });
}

/** Runs `fn` with a unique prefix, whose topology is deleted afterwards. */
async function withPrefix(name: string, fn: (prefix: string) => Promise<void>): Promise<void> {
  const prefix = uniquePrefix(name);
  try {
    await fn(prefix);
  } finally {
    await using broker = await Broker.connect(RABBITMQ_URL);
    await deleteTopology(broker, servicesTopology(prefix));
  }
}

/**
 * Runs `fn` with a unique prefix (as {@linkcode withPrefix}) and a SQLite stock in a temporary
 * directory that holds `item`, set by `estoque stock set`; `env` names both to the commands.
 */
function withStockItem(
  name: string,
  item: StockItemSettings,
  fn: (prefix: string, env: Record<string, string>) => Promise<void>,
): Promise<void> {
  return withPrefix(name, async (prefix) => {
    await using dir = await tempDir();
    const env = { STOCK_URL: `sqlite:${join(dir.path, "stock.sqlite")}`, TOPOLOGY_PREFIX: prefix };
    assert.equal((await runScript("estoque.ts", stockSetArgs(item), env)).code, 0);
    await fn(prefix, env);
  });
}

Deno.test("movementLine() says the quantities, and the request a crossing made", () => {
  const item = { color: RED, quantity: 9, reorderPoint: 10, reorderQuantity: 40, updatedAt: "" };
  assert.equal(
    movementLine({
      movementId: 1,
      item: { ...item, quantity: 12 },
      before: 10,
      request: undefined,
    }),
    `estoque: colour ${RED} 10 -> 12 (+2)`,
  );
  const request = {
    id: 1,
    refCode: "0b7e0000-0000-4000-8000-000000000000",
    colorCode: RED,
    quantity: 40,
    createdAt: new Date(),
    attempts: 0,
  };
  assert.equal(
    movementLine({ movementId: 2, item, before: 12, request }),
    `estoque: colour ${RED} 12 -> 9 (-3): below its reorder point 10, production of 40 requested ` +
      `(RefCode ${request.refCode})`,
  );
});

Deno.test("stockTable() lines up the items and marks those below their reorder point", () => {
  const at = "2026-01-01T00:00:00.000Z";
  assert.equal(
    stockTable([
      { color: BLUE, quantity: 3, reorderPoint: 5, reorderQuantity: 10, updatedAt: at },
      { color: RED, quantity: 120, reorderPoint: 10, reorderQuantity: 40, updatedAt: at },
    ]),
    [
      "colour                                quantity  reorder point  reorder quantity",
      `${BLUE}  3         5              10                below`,
      `${RED}  120       10             40`,
    ].join("\n"),
  );
  assert.match(stockTable([]), /^no stock items/);
});

Deno.test("estoque stock set, move and stock list print a line each; a refused movement exits 2 and writes nothing", async () => {
  await using dir = await tempDir();
  const env = { STOCK_URL: `sqlite:${join(dir.path, "stock.sqlite")}` };
  const set = await runScript(
    "estoque.ts",
    stockSetArgs({ color: RED, quantity: 12, reorderPoint: 10, reorderQuantity: 40 }),
    env,
  );
  assert.equal(set.code, 0, set.stderr);
  assert.equal(
    set.stdout,
    `estoque: colour ${RED}: 12 in stock, reorder point 10, reorder quantity 40\n`,
  );
  const below = await runScript("estoque.ts", ["move", "--color", RED, "--delta", "-13"], env);
  assert.equal(below.code, 2);
  assert.equal(below.stderr, `error: colour ${RED} has 12 in stock: taking 13 would leave -1\n`);
  const unknown = await runScript("estoque.ts", ["move", "--color", BLUE, "--delta", "-1"], env);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /^error: no stock item for colour 0a1b2c3d-/);
  const notWhole = await runScript("estoque.ts", ["move", "--color", RED, "--delta", "-1.5"], env);
  assert.equal(notWhole.code, 2);
  assert.match(notWhole.stderr, /--delta must be an integer/);
  const moved = await runScript("estoque.ts", ["move", "--color", RED, "--delta", "-3"], env);
  assert.equal(moved.code, 0, moved.stderr);
  assert.match(
    moved.stdout,
    /^estoque: colour \S+ 12 -> 9 \(-3\): below its reorder point 10, production of 40 requested \(RefCode [0-9a-f-]{36}\)\n$/,
  );
  const list = await runScript("estoque.ts", ["stock", "list", "--json"], env);
  assert.equal(list.code, 0, list.stderr);
  const [item] = JSON.parse(list.stdout);
  assert.equal(item.quantity, 9);
});

Deno.test("estoque serve takes a movement over its stock API and relays the request it made; SIGTERM stops it", async () => {
  const item = { color: RED, quantity: 1, reorderPoint: 1, reorderQuantity: 5 };
  await withStockItem("stock-serve", item, async (prefix, env) => {
    const serve = ourService("estoque serve", "estoque.ts", ["serve", "--http-port", "0"], env);
    try {
      const [line] = await serve.until("listening", /^estoque serve: http:\/\/\S+\//);
      const base = /(http:\/\/\S+)\//.exec(line!)![1]!;
      // On loopback with no credential configured, the local user may move stock (as on the
      // console), with the CSRF token of its session.
      const session = await (await fetch(`${base}/api/session`)).json();
      const response = await fetch(`${base}/api/stock/movements`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-csrf-token": session.csrf },
        body: JSON.stringify({ color: RED, delta: -1 }),
      });
      assert.equal(response.status, 201);
      const { request } = await response.json();
      await using broker = await Broker.connect(RABBITMQ_URL);
      const [message] = await takeMessages(broker, `${prefix}create.productionorder`, 1);
      assert.equal(message!.properties.messageId, request.refCode);
      await waitFor("the outbox empty", async () => {
        const metrics = await (await fetch(`${base}/metrics`)).text();
        return /^estoque_outbox_depth\{[^}]*\} 0$/m.test(metrics) || undefined;
      });
    } finally {
      const status = await serve.stop();
      assert.equal(status.code, 0, serve.toString());
    }
  });
});

Deno.test("estoque relay publishes what estoque move committed in another process", async () => {
  const item = { color: RED, quantity: 2, reorderPoint: 2, reorderQuantity: 5 };
  await withStockItem("stock-relay", item, async (prefix, env) => {
    // Another process's commit does not wake a SQLite relay: its fallback poll finds it.
    await using relay = ourService("estoque relay", "estoque.ts", [
      "relay",
      "--no-http",
      "--poll-interval",
      "100",
      "--log-level",
      "info",
    ], env);
    await relay.until("relaying", /msg="relaying the outbox"/);
    const moved = await runScript("estoque.ts", ["move", "--color", RED, "--delta", "-1"], env);
    assert.equal(moved.code, 0, moved.stderr);
    const ref = /RefCode ([0-9a-f-]{36})/.exec(moved.stdout)![1];
    await using broker = await Broker.connect(RABBITMQ_URL);
    const [message] = await takeMessages(broker, `${prefix}create.productionorder`, 1);
    assert.equal(message!.properties.messageId, ref);
    assert.equal((await relay.stop()).code, 0, relay.toString());
  });
});

Deno.test("estoque move whose COMMIT answer is lost exits 1 saying to look at the stock or retry with the same key; the retry applies it once", async () => {
  const schema = `test_cli_${crypto.randomUUID().slice(0, 8)}`;
  await using proxy = CommitDroppingProxy.start(POSTGRES_URL);
  const url = new URL(proxy.url);
  url.searchParams.set("search_path", schema);
  try {
    {
      await using store = await PostgresStockStore.open(url.href);
      await store.setItem({ color: RED, quantity: 100, reorderPoint: 10, reorderQuantity: 5 });
    }
    const lines: string[] = [];
    const output = {
      out: (line: string) => lines.push(line),
      err: (line: string) => lines.push(line),
    };
    const command = {
      verb: "move",
      stockUrl: url.href,
      logLevel: "warning",
      movement: { color: RED, delta: -30, reason: "order 81", idempotencyKey: "order-81" },
      json: false,
    } as const;
    const dropped = proxy.dropNextCommit("INSERT INTO stock_movements");
    const code = await runStockCli(command, new AbortController().signal, output).catch(
      (e: unknown) => e,
    );
    await dropped;
    assert.equal(code, 1, String(code));
    assert.match(lines.join("\n"), /may or may not have been applied/);
    assert.match(lines.join("\n"), /estoque stock list/);
    assert.match(lines.join("\n"), /--idempotency-key order-81/);
    lines.length = 0;
    assert.equal(await runStockCli(command, new AbortController().signal, output), 0);
    assert.match(lines.join("\n"), /100 -> 70 \(-30\): applied before, not again/);
    await using store = await PostgresStockStore.open(url.href);
    assert.equal((await store.getItem(RED))?.quantity, 70);
    assert.equal(await store.countMovements(), 1);
  } finally {
    await dropSchema(POSTGRES_URL, schema);
  }
});
