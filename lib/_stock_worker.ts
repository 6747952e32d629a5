/**
 * The stock store's worker: commits batches of stock writes (and waits for their fsync) off the
 * main thread, as the ledger's worker does.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { sqliteWriterHandler } from "./_sqlite_worker.ts";
import {
  SqliteStockWriter,
  type StockOpResult,
  type StockWorkerRequest,
} from "./_sqlite_stock_writer.ts";

const handle = sqliteWriterHandler<StockWorkerRequest, SqliteStockWriter, StockOpResult>({
  what: "the stock store's worker",
  open: (db) => new SqliteStockWriter(db),
  run: (writer, request) => writer.run(request.ops),
});

self.onmessage = (event: MessageEvent<StockWorkerRequest>) => {
  self.postMessage(handle(event.data));
};
