/**
 * The worker thread's side of a SQLite writer in a worker (the ledger's, the stock store's), the
 * counterpart of `SqliteWorkerClient`: `open` opens the writer on a database file, `close` closes
 * it and says so, any other request runs on the writer; a failure is answered with its message and,
 * when it is an outage, its code.
 *
 * @module
 */

import type { DatabaseSync } from "node:sqlite";
import type { SqliteWorkerReply, SqliteWorkerRequest } from "./_sqlite_worker_client.ts";
import { openDatabase, unavailableCode } from "./_sqlite_writer.ts";

/** The request that opens the writer on the database file at `path`. */
interface OpenRequest {
  readonly kind: "open";
  readonly id: number;
  readonly path: string;
}

/** A request other than `open` and `close`: what the writer runs. */
export type WriterRequest<Request extends SqliteWorkerRequest> = Exclude<
  Request,
  { readonly kind: "open" | "close" }
>;

/** Options for {@linkcode sqliteWriterHandler}. */
export interface SqliteWriterHandlerOptions<
  Request extends SqliteWorkerRequest,
  Writer extends { close(): void },
  Result,
> {
  /** What the worker is, for the failure of a request before `open` ("the ledger worker"). */
  readonly what: string;
  /** The writer on a database just opened. */
  readonly open: (db: DatabaseSync) => Writer;
  /** Runs a request other than `open` and `close` on the writer; returns its results. */
  readonly run: (writer: Writer, request: WriterRequest<Request>) => Result[];
}

/**
 * The worker's answer to each request, one writer per worker: `open` answers no results, `close`
 * answers `closed` (a `close` that throws is not answered: the thread fails, and the client stops
 * waiting for it), any other request its results or its failure.
 *
 * @example
 * ```ts ignore
 * const handle = sqliteWriterHandler<WorkerRequest, SqliteWriter, LedgerResult>({ what, open, run });
 * self.onmessage = (event) => self.postMessage(handle(event.data));
 * ```
 */
export function sqliteWriterHandler<
  Request extends SqliteWorkerRequest,
  Writer extends { close(): void },
  Result,
>(
  options: SqliteWriterHandlerOptions<Request, Writer, Result>,
): (request: Request) => SqliteWorkerReply<Result> {
  let writer: Writer | undefined;
  return (request) => {
    if (request.kind === "close") {
      // Close the connection before the thread is terminated: a connection that is never closed
      // keeps its locks on the file, and the next open of it in this process finds it locked.
      writer?.close();
      writer = undefined;
      return { id: request.id, closed: true };
    }
    try {
      if (isOpen(request)) {
        writer = options.open(openDatabase(request.path));
        return { id: request.id, results: [] };
      }
      if (!writer) throw new Error(`${options.what} was not opened`);
      return { id: request.id, results: options.run(writer, request as WriterRequest<Request>) };
    } catch (error) {
      return failureReply(request.id, error);
    }
  };
}

function isOpen(request: SqliteWorkerRequest): request is OpenRequest {
  return request.kind === "open";
}

/** The reply for a failed request: the message, and the outage code when it is one. */
function failureReply(
  id: number,
  error: unknown,
): { readonly id: number; readonly error: string; readonly unavailable?: string } {
  const unavailable = unavailableCode(error);
  return {
    id,
    error: error instanceof Error ? error.message : String(error),
    ...(unavailable !== undefined ? { unavailable } : {}),
  };
}
