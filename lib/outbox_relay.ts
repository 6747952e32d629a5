/**
 * The outbox relay: publishes the production-order requests that stock movements put in the
 * outbox, oldest first, with publisher confirms and `mandatory`, as `estoque -n N` publishes an
 * order (lib/estoque.ts `publishOrder`: message id = RefCode, persistent, JSON). A row is marked
 * sent only after the broker confirmed it; a relay that dies between the two leaves it unsent,
 * and it is published again: OrdemDeProducao's ledger takes a RefCode once, so the copy is a
 * duplicate, never a second production order.
 *
 * It sleeps while the outbox is empty and wakes when a movement commits a request (in-process on
 * SQLite, LISTEN/NOTIFY on PostgreSQL), or after a slow fallback poll. While the broker is away it
 * reconnects with backoff (lib/reconnect.ts), and while the store is away it tries again with
 * backoff (lib/backoff.ts): rows wait, nothing spins, nothing is dropped. A publish the broker
 * refuses (returned as unroutable, nacked) is counted on its row and tried again after a backoff
 * delay. Sent rows are kept for `retentionMs`, for audit, then deleted.
 *
 * An error that is neither an outage of the store nor the broker's (a bug, a schema that does not
 * match, a row no message can be made of) is logged at error level every time it happens, by its
 * type and code, and the work is tried again with backoff: the relay keeps going (other rows may
 * still go out, and stopping would stop them too) and is not ready meanwhile, so its readiness and
 * its log say what is wrong, rather than a store "unavailable" that answers.
 *
 * @module
 */

import { pause, Wakeup } from "./_wakeup.ts";
import { backoffDelay, type BackoffOptions } from "./backoff.ts";
import type { Broker, ConnectOptions } from "./broker.ts";
import { describeError, errorCode, isFatalError } from "./errors.ts";
import { logger } from "./log.ts";
import { sendOrder } from "./order_feed.ts";
import type { OutboxMetrics } from "./outbox_metrics.ts";
import { ConfirmedPublisher, PublishError } from "./publisher.ts";
import { ConnectionLost, keepConnected } from "./reconnect.ts";
import {
  isStoreUnavailable,
  type OutboxClaim,
  type OutboxFailure,
  outboxOrder,
  type OutboxRow,
  type StockStore,
} from "./stock_store.ts";
import { type Topology } from "./topology.ts";
import { sessionTopology } from "./declare_topology.ts";

/** Points where a test (or the fault suite) can step in. */
export interface OutboxRelayHooks {
  /**
   * Called once a batch's publishes have settled (confirmed or failed) and before any is marked
   * sent: a relay that crashes here has published rows it has not marked.
   */
  readonly beforeMarkSent?: (rows: readonly OutboxRow[]) => void | Promise<void>;
  /**
   * Called when a batch's writing waits for the channel to take more (its buffer full, or the
   * connection blocked by the broker).
   */
  readonly waitingToWrite?: () => void;
}

/** Options for {@linkcode OutboxRelay.start}. */
export interface OutboxRelayOptions {
  /** The stock store whose outbox is relayed. */
  readonly store: StockStore;
  /** The broker URLs, tried in turn. */
  readonly urls: readonly string[];
  /** Connection options (TLS files); the name defaults to `estoque relay`. */
  readonly connect?: ConnectOptions;
  /** Where requests go: its exchange and routing key. */
  readonly topology: Topology;
  /**
   * Declare the topology on each connection (true), or only check that it exists.
   * @default {true}
   */
  readonly declare?: boolean;
  /**
   * How long a publish may wait for its confirm, in milliseconds.
   * @default {10000}
   */
  readonly confirmTimeoutMs?: number;
  /**
   * Rows taken (and published, their confirms awaited together) at once, at most: after a batch
   * the broker did not confirm within `confirmTimeoutMs` the relay takes half as many, and twice
   * as many again (up to this) after each batch it confirmed whole.
   * @default {5000}
   */
  readonly batchSize?: number;
  /**
   * How long the relay sleeps with nothing to do before it looks anyway, in milliseconds: a
   * fallback for wake-ups it cannot get (a movement by another process on SQLite).
   * @default {1000}
   */
  readonly pollMs?: number;
  /**
   * How long sent rows are kept, in milliseconds, before they are deleted.
   * @default {604800000 (7 days)}
   */
  readonly retentionMs?: number;
  /**
   * How often sent rows past their retention are deleted, in milliseconds.
   * @default {60000}
   */
  readonly purgeEveryMs?: number;
  /** Delays between reconnects, store retries and refused publishes. */
  readonly backoff?: BackoffOptions;
  /** Where the relay counts what it does. */
  readonly metrics?: OutboxMetrics;
  /** Stops the relay (as {@linkcode OutboxRelay.stop} does). */
  readonly signal?: AbortSignal;
  /** Test hooks. */
  readonly hooks?: OutboxRelayHooks;
  /** The clock rows are marked sent by. @default {() => new Date()} */
  readonly now?: () => Date;
}

const log = logger("relay");

/** Publishes the outbox of a stock store; see the module doc. Start it with {@linkcode start}. */
export class OutboxRelay implements AsyncDisposable {
  /** Settles when the relay has stopped: rejects with the error that stopped it for good. */
  readonly done: Promise<void>;
  readonly #options: OutboxRelayOptions;
  readonly #controller = new AbortController();
  readonly #wakeup = new Wakeup();
  readonly #prepareTopology: ReturnType<typeof sessionTopology>;
  #broker: Broker | undefined;
  #storeAvailable = true;
  /** Whether the last claim failed with an error that is not an outage. */
  #failing = false;
  #published = 0;
  #idle = false;
  /** The rows the next claim takes (see {@linkcode OutboxRelayOptions.batchSize}). */
  #batch: number;

  private constructor(options: OutboxRelayOptions) {
    this.#options = options;
    this.#batch = options.batchSize ?? DEFAULT_OUTBOX_BATCH_SIZE;
    this.#prepareTopology = sessionTopology(options.topology, { declare: options.declare ?? true });
    const { signal } = options;
    if (signal?.aborted) this.#controller.abort(signal.reason);
    signal?.addEventListener("abort", () => this.#controller.abort(signal.reason), { once: true });
    this.done = this.#run();
    this.done.catch(() => {}); // read through done or stop()
  }

  /**
   * Starts relaying: connects (again and again, with backoff), declares or checks the topology,
   * and publishes the outbox until stopped.
   */
  static start(options: OutboxRelayOptions): OutboxRelay {
    return new OutboxRelay(options);
  }

  /** Whether the relay holds an open broker connection. */
  get connected(): boolean {
    return this.#broker?.isOpen ?? false;
  }

  /** Whether the stock store answered the relay's last request. */
  get storeAvailable(): boolean {
    return this.#storeAvailable;
  }

  /**
   * Whether the relay can publish now: connected, with the store answering, and its last claim
   * not failed with an error that is not an outage.
   */
  get ready(): boolean {
    return this.connected && this.#storeAvailable && !this.#failing;
  }

  /** Whether the relay found the outbox empty and sleeps until a wake-up or the next poll. */
  get idle(): boolean {
    return this.#idle;
  }

  /** Requests this relay published and marked sent. */
  get published(): number {
    return this.#published;
  }

  /** Looks at the outbox now instead of at the next wake-up or poll. */
  wake(): void {
    this.#wakeup.wake();
  }

  /**
   * Stops: takes no new rows (a claim under way is given back unpublished), stops writing the
   * batches under way (two at most; their rows not yet written stay unsent), lets what was written
   * settle (its confirms, at most `confirmTimeoutMs`) and be marked, closes the connection. While
   * the broker blocks the connection (a resource alarm) no confirm can come and none times out:
   * the stop then waits for the alarm to clear (a kill meanwhile loses nothing: the rows stay
   * unsent).
   * @throws the error that had stopped the relay for good, if one had.
   */
  async stop(): Promise<void> {
    this.#controller.abort(new Error("the relay was stopped"));
    await this.done;
  }

  /** Stops the relay ({@linkcode OutboxRelay.stop}). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  async #run(): Promise<void> {
    const o = this.#options;
    const signal = this.#controller.signal;
    const listener = await o.store.listen(this.#wakeup.wake);
    const retentionMs = o.retentionMs ?? 7 * 86_400_000;
    const purge = () => {
      if (signal.aborted) return;
      const before = new Date((o.now?.() ?? new Date()).getTime() - retentionMs);
      o.store.deleteSent(before).then((deleted) => {
        if (deleted > 0) {
          o.metrics?.deleted(deleted);
          log.debug("deleted sent requests past their retention", { deleted, retentionMs });
        }
      }, (error) => log.warning("cannot delete sent requests", { error: describeError(error) }));
    };
    const purger = setInterval(purge, o.purgeEveryMs ?? 60_000);
    purge();
    try {
      await keepConnected({
        urls: o.urls,
        connect: { name: "estoque relay", ...o.connect },
        signal,
        ...(o.backoff ? { backoff: o.backoff } : {}),
        // A relay waits for its broker as long as it takes: the rows wait with it.
        giveUpAfterMs: Infinity,
      }, (broker) => this.#session(broker, signal));
    } catch (error) {
      if (!signal.aborted) throw error;
    } finally {
      clearInterval(purger);
      await listener.close();
    }
  }

  /** One connection's work: publish batches until stopped or the connection is lost. */
  async #session(broker: Broker, signal: AbortSignal): Promise<void> {
    const o = this.#options;
    // Checked, not declared, before relaying again after a reconnect (declare_topology.ts).
    const topology = await this.#prepareTopology(broker);
    const publisher = new ConfirmedPublisher(await broker.confirmChannel(), {
      timeoutMs: o.confirmTimeoutMs ?? 10_000,
      connection: broker,
    });
    this.#broker = broker;
    log.info("relaying the outbox", { broker: broker.safeUrl, store: o.store.name });
    try {
      await Promise.race([
        this.#relayBatches(broker, publisher, signal),
        topology.failed, // the topology changed while the relay was away: it stops
      ]);
    } finally {
      this.#broker = undefined;
    }
  }

  /**
   * Claims and publishes batches until stopped or the connection is lost. Two at most are under
   * way where the store can hold two claims ({@linkcode StockStore.outboxClaimsAtOnce}): while the
   * broker confirms one (and the store marks it), the next is claimed and published behind it on
   * the same channel, in order, so that the broker always has work and neither side waits for the
   * other between batches.
   */
  async #relayBatches(
    broker: Broker,
    publisher: ConfirmedPublisher,
    signal: AbortSignal,
  ): Promise<void> {
    const o = this.#options;
    const pipelined = o.store.outboxClaimsAtOnce >= 2;
    let refusedRounds = 0;
    // The batch under way (published, not yet confirmed and marked), if any.
    let previous: Promise<Outcome> | undefined;
    // Ends the writing of a batch when the session ends first (the rows not written stay unsent).
    const ending = new AbortController();
    // Why the loop ended, when it threw.
    let ended: { error: unknown } | undefined;
    const settle = async (batch: Promise<Outcome>): Promise<Outcome> => {
      const outcome = await batch;
      if (outcome === "connection") {
        throw new ConnectionLost("publishes failed with the connection", {
          cause: broker.closeError,
        });
      }
      if (outcome === "refused") {
        // The broker refused them (unroutable, nacked): tried again, after a growing delay.
        await pause(backoffDelay(++refusedRounds, o.backoff), signal, broker.closed);
      } else refusedRounds = 0;
      return outcome;
    };
    try {
      while (!signal.aborted) {
        if (!broker.isOpen) {
          throw new ConnectionLost("the relay's connection closed", { cause: broker.closeError });
        }
        const limit = this.#batch;
        const claim = await this.#claim(limit, broker, signal);
        if (claim === undefined) continue; // stopped, or the connection closed meanwhile
        if (signal.aborted) {
          await claim.abandon(); // stopped while claiming: nothing new goes out
          break;
        }
        if (claim.rows.length === 0) {
          if (previous !== undefined) {
            // Nothing more to send: the batch under way settles first. All confirmed, the relay
            // sleeps (a wake-up that came meanwhile ends the sleep at once); else it looks again.
            const batch = previous;
            previous = undefined;
            if (await settle(batch) !== "ok") continue;
          }
          this.#idle = true;
          await this.#wakeup.wait(o.pollMs ?? 1_000, signal, broker.closed);
          this.#idle = false;
          continue;
        }
        // Ended by the session's end, or by stop(): a batch the broker no longer reads would
        // otherwise hold the relay (and its claim) for as long as the broker does not read.
        const { written, errors } = this.#publishAll(
          publisher,
          claim.rows,
          AbortSignal.any([ending.signal, signal]),
        );
        const current = this.#relay(claim, limit, errors);
        current.catch(() => {}); // awaited below, or in the next round, or at the end
        const batch = previous;
        previous = current;
        if (batch !== undefined) {
          // A timeout or a lost connection in the batch before ends the session without
          // waiting for this one's writes (which a broker that stopped reading never lets end).
          await Promise.race([written, batch]);
          await settle(batch);
        }
        await written;
        if (!pipelined) {
          previous = undefined;
          await settle(current);
        }
      }
    } catch (error) {
      ended = { error };
    }
    ending.abort();
    // The batch under way is confirmed (or fails) and marked before the session ends; an error
    // that stops the relay (a hook's, a fatal one while claiming or marking) is not lost behind
    // another: a fatal one first, then the batch's.
    const failed = await previous?.then(() => undefined, (error: unknown) => error);
    const fatal = [failed, ended?.error].find(isFatalError);
    if (fatal !== undefined) throw fatal;
    if (failed !== undefined) throw failed;
    if (ended !== undefined) throw ended.error;
  }

  /**
   * Claims the next rows; while the store is away, tries again with backoff. Undefined when
   * stopped or when the broker connection closed meanwhile.
   */
  async #claim(
    limit: number,
    broker: Broker,
    signal: AbortSignal,
  ): Promise<OutboxClaim | undefined> {
    const o = this.#options;
    for (let round = 1; !signal.aborted && broker.isOpen; round++) {
      // Wake-ups before this claim are answered by it; one that comes while it runs (a movement
      // committed as a hung claim waits out its timeout) is kept, so the wait after it returns.
      this.#wakeup.clear();
      try {
        const claim = await o.store.claimOutbox(limit);
        if (!this.#storeAvailable) log.info("the stock store is back", { store: o.store.name });
        this.#storeAvailable = true;
        this.#failing = false;
        return claim;
      } catch (error) {
        if (isFatalError(error)) throw error;
        const delayMs = backoffDelay(round, o.backoff);
        if (isStoreUnavailable(error)) {
          if (this.#storeAvailable || round % 10 === 0) {
            log.warning("the stock store is unavailable: relaying paused", {
              store: o.store.name,
              error: describeError(error),
              delayMs,
            });
          }
          this.#storeAvailable = false;
        } else {
          // Not an outage: the store answered, with an error. Said every time, loudly.
          this.#failing = true;
          log.error("claiming the outbox failed: relaying paused", {
            store: o.store.name,
            type: errorType(error),
            code: errorCode(error),
            error: describeError(error),
            delayMs,
          });
        }
        if (this.#storeAvailable) {
          await pause(delayMs, signal, broker.closed);
        } else {
          // A wake-up is a movement committed, or the LISTEN connection made again: the store
          // answers again, and the relay looks at once instead of at the end of its backoff.
          await this.#wakeup.wait(delayMs, signal, broker.closed);
        }
      }
    }
    return undefined;
  }

  /**
   * The next claim's size after a batch claimed at `limit` rows, of `rows`, with `failed` among
   * them: half the limit after a batch the broker did not confirm in time (a broker that confirms
   * fewer than a batch in the confirm timeout would fail every batch, and each failure sends its
   * rows again; the batch published behind it, claimed at the same limit and failed by the same
   * timeout, halves it no further), twice after a batch it confirmed whole, up to the batch size.
   */
  #sizeBatch(limit: number, rows: number, failed: readonly OutboxFailure[]): void {
    const most = this.#options.batchSize ?? DEFAULT_OUTBOX_BATCH_SIZE;
    if (failed.some((f) => f.error === "timeout")) {
      const batch = Math.max(1, Math.floor(limit / 2));
      if (batch < this.#batch) {
        log.warning("the broker did not confirm a batch in time: the relay takes fewer rows", {
          rows: batch,
        });
        this.#batch = batch;
      }
    } else if (failed.length === 0 && rows >= this.#batch && this.#batch < most) {
      this.#batch = Math.min(most, this.#batch * 2);
    }
  }

  /**
   * Publishes `rows` in order, all at once but for the channel's buffer: `written` resolves once
   * each is handed to the channel, `errors` once the broker has answered each (its error, or
   * undefined where it confirmed the row). In the publisher's callback form: a batch is thousands
   * of rows, and a promise per row is garbage the collector pays for on the relay's one core.
   * The writing ends early when `stop` aborts, or when a row fails with a timeout or the
   * connection (the channel is taken for stuck: the rest would only wait behind it); the rows
   * not written then settle as not sent.
   */
  #publishAll(
    publisher: ConfirmedPublisher,
    rows: readonly OutboxRow[],
    stop: AbortSignal,
  ): { written: Promise<void>; errors: Promise<unknown[]> } {
    const o = this.#options;
    const { topology } = o;
    const errors = new Array<unknown>(rows.length).fill(UNSETTLED);
    let left = rows.length;
    let halted = false;
    const stopped = Promise.withResolvers<void>();
    const onStop = () => {
      halted = true;
      stopped.resolve();
    };
    stop.addEventListener("abort", onStop, { once: true });
    const settled = Promise.withResolvers<unknown[]>();
    const settle = (i: number, error: unknown) => {
      if (errors[i] !== UNSETTLED) return;
      errors[i] = error;
      if (isLost(error)) onStop();
      if (--left === 0) settled.resolve(errors);
    };
    let next = 0; // the first row not yet written
    const write = async () => {
      let flowing = true;
      for (; next < rows.length; next++) {
        if (halted) return;
        if (!flowing || publisher.blocked) {
          o.hooks?.waitingToWrite?.();
          await Promise.race([publisher.writable(), stopped.promise]);
        }
        if (halted) return;
        const i = next;
        const row = rows[i]!;
        try {
          flowing = sendOrder(
            publisher,
            topology,
            outboxOrder(row),
            row.createdAt.getTime(),
            (error) => settle(i, error),
          );
        } catch (error) {
          // A row no message can be made of fails that row only.
          settle(i, error ?? new Error("a row that cannot be published"));
        }
      }
    };
    // The rows not written settle too, so that the batch ends and its claim is released: unsent
    // with no failure when the session ended first, failed with the error if the writing failed.
    const written = write().then(
      () => NOT_SENT,
      (error: unknown) => error ?? new Error("writing a batch failed"),
    ).then((reason) => {
      stop.removeEventListener("abort", onStop);
      for (let j = next; j < rows.length; j++) settle(j, reason);
    });
    return { written, errors: settled.promise };
  }

  /**
   * Awaits the confirms of a claim's rows (published by {@linkcode #publishAll}), marks the
   * confirmed ones sent and records the failed ones. Says whether any failed, and how.
   */
  async #relay(
    claim: OutboxClaim,
    limit: number,
    settled: Promise<unknown[]>,
  ): Promise<Outcome> {
    const o = this.#options;
    const errors = await settled;
    const at = o.now?.() ?? new Date();
    const sent: OutboxRow[] = [];
    const failed: OutboxFailure[] = [];
    let outcome: Outcome = "ok";
    errors.forEach((reason, i) => {
      const row = claim.rows[i]!;
      if (reason === undefined) return sent.push(row);
      if (reason === NOT_SENT) return;
      let code: string;
      if (reason instanceof PublishError) code = reason.code;
      else if (reason instanceof ConnectionLost) code = "closed";
      else {
        // Neither the broker's refusal nor a lost connection: said, by its type, every time.
        code = errorType(reason);
        log.error("publishing a request failed: it stays in the outbox", {
          refCode: row.refCode,
          type: code,
          code: errorCode(reason),
          error: describeError(reason),
        });
      }
      failed.push({ id: row.id, error: code });
      o.metrics?.failed(code);
      if (code === "closed" || code === "timeout") outcome = "connection";
      else if (outcome === "ok") outcome = "refused";
    });
    // Rows the session ended before writing are neither: a batch cut short is not "whole".
    this.#sizeBatch(limit, sent.length + failed.length, failed);
    try {
      await o.hooks?.beforeMarkSent?.(claim.rows);
    } catch (error) {
      // A crash here, as a test makes it: the rows stay unsent, the session ends.
      await claim.abandon().catch(() => {});
      throw error;
    }
    try {
      await claim.finish(sent.map((row) => row.id), failed, at);
    } catch (error) {
      // Published but not marked: the rows stay unsent and go again (OrdemDeProducao's ledger
      // takes each RefCode once). The next claim waits for the store.
      await claim.abandon().catch(() => {});
      if (isFatalError(error)) throw error;
      this.#storeAvailable = false;
      log.warning("published requests could not be marked sent: they will be sent again", {
        store: o.store.name,
        rows: sent.length,
        error: describeError(error),
      });
      return outcome;
    }
    this.#published += sent.length;
    o.metrics?.published(sent, at);
    if (failed.length > 0) {
      log.warning("publishes failed: the requests stay in the outbox", {
        failed: failed.length,
        code: failed[0]!.error,
      });
    }
    return outcome;
  }
}

/** {@linkcode OutboxRelayOptions.batchSize}'s default (`--batch-size`). */
export const DEFAULT_OUTBOX_BATCH_SIZE = 5_000;

/** How a batch went: all confirmed, some refused by the broker, or some lost with the connection. */
type Outcome = "ok" | "refused" | "connection";

/** A row of {@linkcode OutboxRelay}'s batch the broker has not answered yet. */
const UNSETTLED: unique symbol = Symbol("unsettled");

/** A row of {@linkcode OutboxRelay}'s batch not written before its session ended. */
const NOT_SENT: unique symbol = Symbol("not sent");

/** Whether a row's publish failed with its channel: no confirm in time, or the connection lost. */
function isLost(error: unknown): boolean {
  return error instanceof ConnectionLost ||
    (error instanceof PublishError && (error.code === "timeout" || error.code === "closed"));
}

/** An error's type, for logs and a row's last error: its name (`TypeError`, `DatabaseError`). */
function errorType(error: unknown): string {
  return error instanceof Error ? error.name : typeof error;
}
