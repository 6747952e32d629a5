/**
 * Groups items that arrive close together so one slow operation (a durable commit) serves many.
 *
 * @module
 */

/** Options for {@linkcode Batcher}. */
export interface BatcherOptions {
  /**
   * A batch is flushed as soon as it holds this many items.
   * @default {100}
   */
  maxSize?: number;
  /**
   * A batch is flushed at the latest this long after its first item arrived, in milliseconds.
   * 0 flushes as soon as the work already queued in this turn has added its items.
   * @default {0}
   */
  maxDelayMs?: number;
  /**
   * Whether a failed batch's error may be one item's fault, so the batch is split in halves and
   * each flushed again until the items at fault fail alone and the rest succeed (an outage, where
   * every item would fail alike, is not worth splitting).
   * @default {() => false}
   */
  isolate?: (error: unknown) => boolean;
}

interface Entry<I, R> {
  readonly item: I;
  readonly resolve: (result: R) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Collects items and hands them to `flush` in batches, one flush at a time; each `add` resolves
 * with its own item's result, or rejects with the flush's error.
 *
 * @example
 * ```ts
 * const batcher = new Batcher((ids: string[]) => ledger.commit(ids.map(toWrite)));
 * const [a, b] = await Promise.all([batcher.add("x"), batcher.add("y")]); // one commit
 * ```
 */
export class Batcher<I, R> {
  readonly #flush: (items: I[]) => Promise<R[]>;
  readonly #maxSize: number;
  readonly #maxDelayMs: number;
  readonly #isolate: (error: unknown) => boolean;
  #entries: Entry<I, R>[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running: Promise<void> | undefined;
  #soon = false;

  /** Creates a batcher around a flush function that returns one result per item, in order. */
  constructor(flush: (items: I[]) => Promise<R[]>, options: BatcherOptions = {}) {
    this.#flush = flush;
    this.#maxSize = options.maxSize ?? 100;
    this.#maxDelayMs = options.maxDelayMs ?? 0;
    this.#isolate = options.isolate ?? (() => false);
    if (!Number.isInteger(this.#maxSize) || this.#maxSize < 1) {
      throw new RangeError(`maxSize must be a positive integer, got ${this.#maxSize}`);
    }
  }

  /** How many items wait for a flush, or are being flushed. */
  get pending(): number {
    return this.#entries.length;
  }

  /** Adds an item; resolves with its result once its batch is flushed. */
  add(item: I): Promise<R> {
    const { promise, resolve, reject } = Promise.withResolvers<R>();
    this.#entries.push({ item, resolve, reject });
    if (this.#entries.length >= this.#maxSize) this.#schedule(true);
    else this.#schedule(false);
    return promise;
  }

  /** Flushes whatever waits and resolves once nothing is pending. */
  async flush(): Promise<void> {
    while (this.#entries.length > 0 || this.#running) {
      if (!this.#running) this.#start();
      await this.#running;
    }
  }

  #schedule(now: boolean): void {
    if (this.#running) return; // the running flush picks the rest up when it ends
    if (now) {
      this.#start();
    } else if (this.#timer === undefined && !this.#soon) {
      if (this.#maxDelayMs > 0) {
        this.#timer = setTimeout(() => this.#start(), this.#maxDelayMs);
      } else {
        // Flush once the work already queued in this turn has added its items.
        this.#soon = true;
        queueMicrotask(() =>
          queueMicrotask(() => {
            this.#soon = false;
            this.#start();
          })
        );
      }
    }
  }

  #start(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#running || this.#entries.length === 0) return;
    const batch = this.#entries.splice(0, this.#maxSize);
    this.#running = this.#run(batch).finally(() => {
      this.#running = undefined;
      if (this.#entries.length > 0) this.#schedule(this.#entries.length >= this.#maxSize);
    });
  }

  async #run(batch: Entry<I, R>[]): Promise<void> {
    try {
      const results = await this.#flush(batch.map((entry) => entry.item));
      batch.forEach((entry, i) => entry.resolve(results[i] as R));
    } catch (error) {
      if (batch.length > 1 && this.#isolate(error)) {
        // Halves, one after the other: a bad item costs about 2·log2(n) flushes, not n.
        const half = Math.ceil(batch.length / 2);
        await this.#run(batch.slice(0, half));
        await this.#run(batch.slice(half));
        return;
      }
      for (const entry of batch) entry.reject(error);
    }
  }
}
