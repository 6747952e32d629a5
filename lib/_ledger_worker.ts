/**
 * The ledger's worker: commits batches (and waits for their fsync) off the main thread.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { sqliteWriterHandler } from "./_sqlite_worker.ts";
import type { LedgerResult } from "./ledger.ts";
import { SqliteWriter, type WorkerRequest } from "./_sqlite_writer.ts";

const handle = sqliteWriterHandler<WorkerRequest, SqliteWriter, LedgerResult>({
  what: "the ledger worker",
  open: (db) => new SqliteWriter(db),
  run: (writer, request) => {
    if (request.kind === "probe") {
      writer.probe(request.at, request.instanceId);
      return [];
    }
    return writer.commit(request.writes, request.at, request.instanceId);
  },
});

self.onmessage = (event: MessageEvent<WorkerRequest>) => {
  self.postMessage(handle(event.data));
};
