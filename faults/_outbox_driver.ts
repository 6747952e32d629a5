/**
 * The stock movements of an outbox case, made as a client of Estoque makes them: `POST
 * /api/stock/movements` on `estoque serve`, each with an `Idempotency-Key` of its own, from several
 * concurrent clients at a steady rate, until enough have been committed. A colour seen below its
 * reorder point is replenished, one at or above it is taken from, so stock crosses the points
 * again and again. Every answer is kept by its key: committed (201, with the request it made, if
 * any), refused (4xx: nothing written), or unknown (the call failed: a killed process, a lost
 * connection, a store that stopped answering), which the store's history decides later.
 *
 * @module
 */

import type { StockItemSettings } from "../lib/stock_store.ts";

/** What a movement's call said. */
export type MovementAnswer =
  | { readonly kind: "committed"; readonly refCode: string | null; readonly replayed: boolean }
  | { readonly kind: "refused"; readonly status: number; readonly code: string }
  | { readonly kind: "unknown"; readonly why: string };

/** A movement the driver sent, and what its call said. */
export interface SentMovement {
  readonly color: string;
  readonly delta: number;
  readonly answer: MovementAnswer;
}

/** Options for {@linkcode MovementDriver}. */
export interface DriverOptions {
  /** The stock API's base URL, e.g. `http://127.0.0.1:9465`. */
  readonly base: string;
  /** The colours moved. */
  readonly items: readonly StockItemSettings[];
  /** Committed movements to reach. */
  readonly target: number;
  /** Movements sent per second, at most (all clients together). */
  readonly rate: number;
  /** Concurrent clients. @default {8} */
  readonly clients?: number;
  /** Makes the keys unique to the run. */
  readonly keyPrefix: string;
}

/** How long a call may take before it counts as failed. */
const CALL_TIMEOUT_MS = 20_000;

/** How long the driver goes on without a committed movement before it gives up. */
const STALL_MS = 60_000;

/** How long a client waits after a call failed before it sends another (the API is away). */
const FAILED_PAUSE_MS = 50;

/** Makes movements through the stock API; see the module doc. */
export class MovementDriver {
  /** Every movement sent, by its idempotency key. */
  readonly sent = new Map<string, SentMovement>();
  /** Movements answered as committed. */
  committed = 0;
  readonly #o: DriverOptions;
  readonly #known = new Map<string, number>();
  readonly #waiters: { count: number; resolve: () => void }[] = [];
  #csrf: Promise<string> | undefined;
  #next = performance.now();
  #seq = 0;
  #stopped = false;
  #lastCommit = performance.now();
  /** Why the driver gave up: nothing committed for {@linkcode STALL_MS}. */
  #failure: Error | undefined;
  /** Answers other than 201, by status and code, for the error of a driver that gave up. */
  readonly #refusals = new Map<string, number>();
  /**
   * Settles once every client stopped: the target reached, or {@linkcode stop}; rejects when the
   * driver gave up (nothing committed for a minute).
   */
  readonly done: Promise<void>;

  /** Starts the clients. */
  constructor(options: DriverOptions) {
    this.#o = options;
    for (const item of options.items) this.#known.set(item.color, item.quantity);
    const clients = Array.from({ length: options.clients ?? 8 }, () => this.#client());
    this.done = Promise.all(clients).then(() => {
      if (this.#failure) throw this.#failure;
    });
    this.done.catch(() => {}); // read through done or until()
  }

  /**
   * Resolves once `count` movements were answered as committed (or the driver stopped before);
   * rejects when the driver gave up.
   */
  async until(count: number): Promise<void> {
    if (this.committed < count && !this.#stopped) {
      await new Promise<void>((resolve) => this.#waiters.push({ count, resolve }));
    }
    if (this.#failure) throw this.#failure;
  }

  /** Stops sending; resolves when the calls under way have been answered. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.done;
  }

  /** The keys whose calls failed: whether they were applied is for the store to say. */
  unknownKeys(): string[] {
    return [...this.sent].filter(([, m]) => m.answer.kind === "unknown").map(([key]) => key);
  }

  async #client(): Promise<void> {
    while (!this.#stopped && this.committed < this.#o.target) {
      if (performance.now() - this.#lastCommit > STALL_MS) {
        const answers = [...this.#refusals].map(([what, n]) => `${what} x${n}`).join(", ");
        this.#failure ??= new Error(
          `no movement committed for ${STALL_MS / 1000} s (${this.committed} before): ${answers}`,
        );
        break;
      }
      await this.#pace();
      if (this.#stopped) break;
      const answer = await this.#move();
      if (answer === "failed") await new Promise((r) => setTimeout(r, FAILED_PAUSE_MS));
    }
    this.#stopped = true;
    for (const w of this.#waiters.splice(0)) w.resolve();
  }

  /** Waits for this client's turn at the rate. */
  async #pace(): Promise<void> {
    const now = performance.now();
    const at = Math.max(now, this.#next);
    this.#next = at + 1000 / this.#o.rate;
    if (at > now) await new Promise((r) => setTimeout(r, at - now));
  }

  /** The next movement: replenish a colour below its point, take from one at or above it. */
  #movement(): { color: string; delta: number } {
    const items = this.#o.items;
    const item = items[Math.floor(Math.random() * items.length)]!;
    const known = this.#known.get(item.color) ?? 0;
    const delta = known < item.reorderPoint
      ? 4 + Math.floor(Math.random() * 6)
      : -(1 + Math.floor(Math.random() * 3));
    return { color: item.color, delta };
  }

  /** The CSRF token of this Estoque's local operator (a new one after each restart). */
  #token(): Promise<string> {
    this.#csrf ??= fetch(`${this.#o.base}/api/session`, {
      signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
    })
      .then(async (answer) => {
        if (!answer.ok) throw new Error(`GET /api/session: ${answer.status}`);
        return (await answer.json()).csrf as string;
      })
      .catch((error) => {
        this.#csrf = undefined;
        throw error;
      });
    return this.#csrf;
  }

  /** Sends one movement and records its answer. */
  async #move(): Promise<"ok" | "failed"> {
    let csrf: string;
    try {
      csrf = await this.#token();
    } catch {
      return "failed"; // not sent: the API is away
    }
    const { color, delta } = this.#movement();
    const key = `${this.#o.keyPrefix}-${++this.#seq}`;
    let answer: MovementAnswer;
    try {
      const response = await fetch(`${this.#o.base}/api/stock/movements`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "x-csrf-token": csrf,
          "idempotency-key": key,
        },
        body: JSON.stringify({ color, delta }),
        signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
      });
      const body = await response.json().catch(() => ({}));
      if (response.status === 201) {
        this.#known.set(color, body.item.quantity);
        answer = {
          kind: "committed",
          refCode: body.request?.refCode ?? null,
          replayed: response.headers.get("idempotent-replayed") === "true",
        };
      } else if (response.status === 403) {
        // Another process's CSRF token (Estoque restarted): nothing was written.
        this.#csrf = undefined;
        answer = { kind: "refused", status: 403, code: String(body.code) };
      } else if (response.status >= 400 && response.status < 500) {
        if (body.code === "below_zero") this.#known.set(color, 0);
        answer = { kind: "refused", status: response.status, code: String(body.code) };
      } else {
        // 503 store_unavailable: nothing written, by the API's word; 500 commit_unknown: who
        // knows. Both are left to the store's history to decide.
        answer = { kind: "unknown", why: `${response.status} ${body.code}` };
      }
    } catch (error) {
      this.#csrf = undefined;
      answer = { kind: "unknown", why: (error as Error).name };
    }
    this.sent.set(key, { color, delta, answer });
    if (answer.kind !== "committed") {
      const what = answer.kind === "refused" ? `${answer.status} ${answer.code}` : answer.why;
      this.#refusals.set(what, (this.#refusals.get(what) ?? 0) + 1);
    }
    if (answer.kind === "committed") {
      this.#lastCommit = performance.now();
      this.committed++;
      for (const w of this.#waiters.filter((w) => this.committed >= w.count)) {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        w.resolve();
      }
      return "ok";
    }
    return answer.kind === "unknown" ? "failed" : "ok";
  }
}
