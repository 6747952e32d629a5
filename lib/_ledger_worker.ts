/**
 * The ledger's worker: commits batches (and waits for their fsync) off the main thread.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { failureReply } from "./_sqlite_worker_client.ts";
import {
  openDatabase,
  SqliteWriter,
  unavailableCode,
  type WorkerReply,
  type WorkerRequest,
} from "./_sqlite_writer.ts";

/** The reply for a failed request: the message, and the outage code when it is one. */
function failure(id: number, error: unknown): WorkerReply {
  return failureReply(id, error, unavailableCode);
}

let writer: SqliteWriter | undefined;

self.onmessage = (event: MessageEvent<WorkerRequest>) => {
  const request = event.data;
  if (request.kind === "open") {
    try {
      writer = new SqliteWriter(openDatabase(request.path));
      self.postMessage({ id: request.id, results: [] } satisfies WorkerReply);
    } catch (error) {
      self.postMessage(failure(request.id, error));
    }
    return;
  }
  if (request.kind === "close") {
    // Close the connection before the thread is terminated: a connection that is never closed
    // keeps its locks on the file, and the next open of it in this process finds it locked.
    writer?.close();
    writer = undefined;
    self.postMessage({ id: request.id, closed: true } satisfies WorkerReply);
    return;
  }
  let reply: WorkerReply;
  try {
    if (!writer) throw new Error("the ledger worker was not opened");
    if (request.kind === "probe") {
      writer.probe(request.at, request.instanceId);
      reply = { id: request.id, results: [] };
    } else {
      reply = {
        id: request.id,
        results: writer.commit(request.writes, request.at, request.instanceId),
      };
    }
  } catch (error) {
    reply = failure(request.id, error);
  }
  self.postMessage(reply);
};
