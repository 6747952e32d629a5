/**
 * What the stock suites share: two colours (Estoque's items are UUIDs) and the command line that
 * sets an item.
 *
 * @module
 */

import type { StockItemSettings } from "../lib/stock_store.ts";

/** A colour of the stock suites. */
export const RED = "6f1c2a4e-8d3b-4f5a-9c7e-1b2d3e4f5a6b";
/** Another colour of the stock suites. */
export const BLUE = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

/** The arguments of `estoque stock set` for `item`. */
export function stockSetArgs(item: StockItemSettings): string[] {
  return [
    "stock",
    "set",
    "--color",
    item.color,
    "--quantity",
    String(item.quantity),
    "--reorder-point",
    String(item.reorderPoint),
    "--reorder-quantity",
    String(item.reorderQuantity),
  ];
}
