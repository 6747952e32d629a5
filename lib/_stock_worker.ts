/**
 * The stock store's worker: commits batches of stock writes (and waits for their fsync) off the
 * main thread, as the ledger's worker does.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { failureReply } from "./_sqlite_worker_client.ts";
import { openDatabase, unavailableCode } from "./_sqlite_writer.ts";
import {
  SqliteStockWriter,
  type StockWorkerReply,
  type StockWorkerRequest,
} from "./_sqlite_stock_writer.ts";

/** The reply for a failed request: the message, and the outage code when it is one. */
function failure(id: number, error: unknown): StockWorkerReply {
  return failureReply(id, error, unavailableCode);
}

let writer: SqliteStockWriter | undefined;

self.onmessage = (event: MessageEvent<StockWorkerRequest>) => {
  const request = event.data;
  let reply: StockWorkerReply;
  try {
    switch (request.kind) {
      case "open":
        writer = new SqliteStockWriter(openDatabase(request.path));
        reply = { id: request.id, results: [] };
        break;
      case "close":
        // Closed before the thread is terminated: an open connection keeps its locks on the file.
        writer?.close();
        writer = undefined;
        reply = { id: request.id, closed: true };
        break;
      case "run":
        if (!writer) throw new Error("the stock store's worker was not opened");
        reply = { id: request.id, results: writer.run(request.ops) };
        break;
    }
  } catch (error) {
    reply = failure(request.id, error);
  }
  self.postMessage(reply);
};
