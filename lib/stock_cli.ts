/**
 * Estoque's stock subcommands and what they print: `move` (one movement, and the request it made
 * when it crossed its colour's reorder point), `stock set` and `stock list`; `serve` and `relay`
 * run the stock service (lib/stock_service.ts). A movement the store refuses (unknown colour,
 * stock that would fall below zero) prints why and exits 2, as a bad flag does: nothing was
 * written. A movement whose commit the store stopped answering may or may not have been applied:
 * `move` says so and exits 1 (look at `estoque stock list`, or run it again with the same
 * `--idempotency-key`, which does not apply it twice).
 *
 * @module
 */

import { EXIT } from "./main.ts";
import { openStockStore } from "./open_stock_store.ts";
import type { StockCommand } from "./stock_command.ts";
import { runStockService } from "./stock_service.ts";
import {
  type MovementResult,
  StockCommitUnknownError,
  StockError,
  type StockItem,
} from "./stock_store.ts";

/** Where the subcommands print: stdout for results, stderr for refusals. */
export interface StockOutput {
  /** Writes a line of results. */
  readonly out: (line: string) => void;
  /** Writes a line about a refusal. */
  readonly err: (line: string) => void;
}

const CONSOLE_OUTPUT: StockOutput = {
  out: (line) => console.log(line),
  err: (line) => console.error(line),
};

/**
 * The line `estoque move` prints.
 *
 * @example
 * ```ts
 * // colour 6f1c… 12 -> 9 (-3): below its reorder point 10, production of 40 requested (RefCode 0b7e…)
 * ```
 */
export function movementLine(result: MovementResult): string {
  const { item, before, request } = result;
  const delta = item.quantity - before;
  const head = `estoque: colour ${item.color} ${before} -> ${item.quantity} (${
    delta > 0 ? "+" : ""
  }${delta})${result.replayed ? ": applied before, not again" : ""}`;
  return request === undefined
    ? head
    : `${head}: below its reorder point ${item.reorderPoint}, production of ${request.quantity} ` +
      `requested (RefCode ${request.refCode})`;
}

/** The table `estoque stock list` prints: one line per colour, `below` where it is. */
export function stockTable(items: readonly StockItem[]): string {
  if (items.length === 0) return "no stock items: set one up with deno task estoque stock set";
  const header = ["colour", "quantity", "reorder point", "reorder quantity", ""];
  const rows = items.map((i) => [
    i.color,
    String(i.quantity),
    String(i.reorderPoint),
    String(i.reorderQuantity),
    i.quantity < i.reorderPoint ? "below" : "",
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  return [header, ...rows]
    .map((row) => row.map((cell, c) => cell.padEnd(widths[c]!)).join("  ").trimEnd())
    .join("\n");
}

/**
 * Runs a stock subcommand; resolves with its exit code.
 * @throws what stopped it (a store that cannot be opened or is unavailable: exit 1).
 */
export async function runStockCli(
  command: StockCommand,
  signal: AbortSignal,
  output: StockOutput = CONSOLE_OUTPUT,
): Promise<number> {
  if (command.verb === "serve" || command.verb === "relay") {
    await runStockService(command, signal, ({ url }) => {
      if (url !== undefined) output.out(`estoque ${command.verb}: ${url}`);
    });
    return EXIT.ok;
  }
  await using store = await openStockStore(command.stockUrl);
  try {
    switch (command.verb) {
      case "move": {
        const result = await store.move(command.movement);
        output.out(
          command.json
            ? JSON.stringify({ ...result, request: result.request ?? null })
            : movementLine(result),
        );
        break;
      }
      case "stock set": {
        const item = await store.setItem(command.settings);
        output.out(
          command.json
            ? JSON.stringify(item)
            : `estoque: colour ${item.color}: ${item.quantity} in stock, reorder point ` +
              `${item.reorderPoint}, reorder quantity ${item.reorderQuantity}`,
        );
        break;
      }
      case "stock list": {
        const items = await store.listItems();
        output.out(command.json ? JSON.stringify(items) : stockTable(items));
        break;
      }
    }
  } catch (error) {
    if (error instanceof StockCommitUnknownError && command.verb === "move") {
      const key = command.movement.idempotencyKey;
      output.err(`error: ${error.message}.`);
      output.err(
        key === undefined
          ? "look at deno task estoque stock list before moving it again (with --idempotency-key, " +
            "a movement sent again is not applied twice)"
          : "look at deno task estoque stock list, or run it again with --idempotency-key " +
            `${key}: a movement applied already is not applied twice`,
      );
      return EXIT.failure;
    }
    if (!(error instanceof StockError)) throw error;
    output.err(`error: ${error.message}`);
    return EXIT.usage;
  }
  return EXIT.ok;
}
