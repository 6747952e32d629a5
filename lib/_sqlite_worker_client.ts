/**
 * The main thread's side of a SQLite writer in a worker thread (the ledger's, the stock store's):
 * requests numbered and answered in any order, a failure made into the caller's error (an outage
 * by its code), and a close that lets the worker close its database before the thread ends.
 *
 * @module
 */

/** A worker's answer to request `id`: its results, that it closed, or why it failed. */
export type SqliteWorkerReply<Result> =
  | { readonly id: number; readonly results: Result[] }
  | { readonly id: number; readonly closed: true }
  | { readonly id: number; readonly error: string; readonly unavailable?: string };

/** What a worker is asked: a request of some kind, numbered; `close` ends it. */
export interface SqliteWorkerRequest {
  readonly kind: string;
  readonly id: number;
}

/** Options for {@linkcode SqliteWorkerClient}. */
export interface SqliteWorkerClientOptions {
  /** The worker's module. */
  readonly url: URL;
  /** The thread's name, and what its errors say it is ("the ledger worker"). */
  readonly name: string;
  readonly what: string;
  /** The error for a failure the worker says is an outage (`unavailable` is its code). */
  readonly unavailable: (code: string, cause: Error) => Error;
}

/** A worker thread that runs a SQLite writer's requests, one reply each. */
export class SqliteWorkerClient<Request extends SqliteWorkerRequest, Result> {
  readonly #worker: Worker;
  readonly #replies = new Map<number, PromiseWithResolvers<Result[]>>();
  #closed: PromiseWithResolvers<void> | undefined;
  #nextId = 0;

  /** Starts the worker thread. */
  constructor(options: SqliteWorkerClientOptions) {
    this.#worker = new Worker(options.url.href, { type: "module", name: options.name });
    this.#worker.onmessage = (event: MessageEvent<SqliteWorkerReply<Result>>) => {
      const reply = event.data;
      if ("closed" in reply) {
        this.#closed?.resolve();
        return;
      }
      const waiting = this.#replies.get(reply.id);
      if (!waiting) return;
      this.#replies.delete(reply.id);
      if ("error" in reply) {
        const error = new Error(reply.error);
        waiting.reject(
          reply.unavailable === undefined ? error : options.unavailable(reply.unavailable, error),
        );
      } else waiting.resolve(reply.results);
    };
    this.#worker.onerror = (event) => {
      event.preventDefault();
      for (const waiting of this.#replies.values()) {
        waiting.reject(new Error(`${options.what} failed: ${event.message}`));
      }
      this.#replies.clear();
      this.#closed?.resolve();
    };
  }

  /** Sends the request `make` builds with its number; resolves with the worker's results. */
  request(make: (id: number) => Request): Promise<Result[]> {
    const request = make(this.#nextId++);
    const waiting = Promise.withResolvers<Result[]>();
    this.#replies.set(request.id, waiting);
    this.#worker.postMessage(request);
    return waiting.promise;
  }

  /**
   * Waits for the requests under way, asks the worker to close its database (`close` request),
   * and ends the thread; a worker that died is given 5 s.
   */
  async close(): Promise<void> {
    await Promise.allSettled([...this.#replies.values()].map((waiting) => waiting.promise));
    this.#closed = Promise.withResolvers<void>();
    this.#worker.postMessage({ kind: "close", id: this.#nextId++ });
    const timer = setTimeout(() => this.#closed?.resolve(), 5_000);
    await this.#closed.promise;
    clearTimeout(timer);
    this.#worker.terminate();
  }
}
