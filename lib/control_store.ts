/**
 * The fleet's pause state on the broker, where every OrdemDeProducao reads it at start and every
 * change reaches the running ones: a durable state queue that keeps the last change
 * (`x-max-length: 1`, `drop-head`), bound to the control exchange beside each running instance's
 * own queue (control_listener.ts).
 *
 * Reading the state takes the message without acking it and gives it back; while one reader holds
 * it, the queue looks empty to another. So every read and every change is made under a lock, the
 * exclusive queue `productionorder.control.lock` (the broker refuses a second holder with 405
 * RESOURCE_LOCKED, and frees it when its holder's connection goes), and a change is published
 * with a confirm before the lock is let go. Then, for an instance that binds its queue before it
 * reads, every change is either in what it reads or in its queue: none is missed, and the last
 * one it applies is the fleet's.
 *
 * ```text
 *   change: lock ─▶ read (get, give back) ─▶ publish state, confirmed ─▶ unlock
 *   start:  bind own queue ─▶ lock ─▶ read ─▶ unlock ─▶ apply read, then what the queue brought
 * ```
 *
 * @module
 */

import type { Channel, ConfirmChannel, ConsumeMessage } from "amqplib";
import type { Broker } from "./broker.ts";
import {
  CONTROL_CONTENT_TYPE,
  CONTROL_TYPE,
  ControlMessageError,
  encodePauseState,
  type InstanceAnswer,
  type MadePauseState,
  NEVER_PAUSED,
  nextPauseState,
  parseAnswer,
  parsePauseState,
  type PauseState,
} from "./control.ts";
import { replyCode } from "./errors.ts";
import { logger } from "./log.ts";
import { ConfirmedPublisher } from "./publisher.ts";
import type { Topology } from "./topology.ts";

/** How long a read or change waits for the lock by default: 10 s. */
export const LOCK_TIMEOUT_MS = 10_000;

/** 405 RESOURCE_LOCKED: another connection holds the exclusive queue. */
const RESOURCE_LOCKED = 405;

/** The most messages a read takes from the state queue (it holds one; a few after a mishap). */
const MAX_STATE_MESSAGES = 32;

const log = logger("control");

/** The lock could not be had in time: another reader or writer held it all along. */
export class ControlLockError extends Error {
  override name = "ControlLockError";
}

/** Options of the reads and changes. */
export interface ControlStoreOptions {
  /** How long to wait for the lock, in milliseconds. @default {LOCK_TIMEOUT_MS} */
  readonly lockTimeoutMs?: number;
}

/** In this process, one holder of the lock per connection (the broker sees one owner). */
const turns = new WeakMap<Broker, Promise<unknown>>();

/**
 * Runs `fn` holding the control plane's lock: first in this process's turn on `broker`, then as
 * the exclusive owner of the lock queue, retried every 10-100 ms while another connection holds
 * it, for at most `lockTimeoutMs`.
 *
 * @throws {ControlLockError} when the lock could not be had in time.
 */
export function withControlLock<T>(
  broker: Broker,
  topo: Topology,
  fn: () => Promise<T>,
  options: ControlStoreOptions = {},
): Promise<T> {
  const before = turns.get(broker) ?? Promise.resolve();
  const mine = before.catch(() => {}).then(async () => {
    const lock = await acquire(broker, topo, options.lockTimeoutMs ?? LOCK_TIMEOUT_MS);
    try {
      return await fn();
    } finally {
      await lock.deleteQueue(topo.control.lockQueue).catch(() => {});
      await lock.close().catch(() => {});
    }
  });
  turns.set(broker, mine);
  return mine;
}

async function acquire(broker: Broker, topo: Topology, timeoutMs: number): Promise<Channel> {
  const deadline = performance.now() + timeoutMs;
  for (let attempt = 1;; attempt++) {
    const channel = await broker.channel();
    try {
      await channel.assertQueue(topo.control.lockQueue, {
        exclusive: true,
        durable: false,
        autoDelete: true,
      });
      return channel;
    } catch (error) {
      await channel.close().catch(() => {});
      if (replyCode(error) !== RESOURCE_LOCKED) throw broker.explain(error);
    }
    if (performance.now() >= deadline) {
      throw new ControlLockError(
        `another ctl, console or starting OrdemDeProducao held ${topo.control.lockQueue} for ` +
          `${timeoutMs} ms; try again (the broker frees it when its holder's connection closes)`,
      );
    }
    const wait = Math.min(10 * attempt, 100) * (0.5 + Math.random() / 2);
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

/**
 * The state as the state queue keeps it: taken without an ack and given back. Call it holding the
 * lock. Of several messages (a change met a reader that was not holding the lock), the one with
 * the highest `seq`; {@linkcode NEVER_PAUSED} for none.
 */
async function readUnlocked(broker: Broker, topo: Topology): Promise<PauseState> {
  const channel = await broker.channel();
  let latest: PauseState = NEVER_PAUSED;
  try {
    for (let i = 0; i < MAX_STATE_MESSAGES; i++) {
      const message = await channel.get(topo.control.stateQueue, { noAck: false });
      if (message === false) break;
      try {
        const state = parsePauseState(message.content);
        if (state.seq >= latest.seq) latest = state;
      } catch (error) {
        if (!(error instanceof ControlMessageError)) throw error;
        log.warning("the control plane's state queue holds a message that is no pause state", {
          queue: topo.control.stateQueue,
          error: error.message,
        });
      }
    }
    // Every message back, in its place, before the lock is let go.
    channel.nackAll(true);
    await channel.close();
  } catch (error) {
    await channel.close().catch(() => {});
    throw broker.explain(error);
  }
  return latest;
}

/**
 * Reads the fleet's pause state under the lock.
 * @throws {ControlLockError} when the lock could not be had in time.
 */
export function readPauseState(
  broker: Broker,
  topo: Topology,
  options: ControlStoreOptions = {},
): Promise<PauseState> {
  return withControlLock(broker, topo, () => readUnlocked(broker, topo), options);
}

/** A pause or resume asked for. */
export interface PauseChange {
  /** Pause (true) or resume (false). */
  readonly paused: boolean;
  /** Who asks, for the state and the audit trail. */
  readonly by: string;
  /** Why. */
  readonly reason: string;
}

/** Options of a {@linkcode ControlClient}. */
export interface ControlClientOptions extends ControlStoreOptions {
  /**
   * Called with each instance's answer to a ping or a change. Without it, no answer is asked
   * for.
   */
  readonly onAnswer?: (answer: InstanceAnswer) => void;
  /** How long a change waits for the broker's confirm, in milliseconds. @default {10000} */
  readonly confirmTimeoutMs?: number;
}

/** Reads and changes the pause state, and asks the running instances who is there. */
export class ControlClient implements AsyncDisposable {
  readonly #broker: Broker;
  readonly #topo: Topology;
  readonly #channel: ConfirmChannel;
  readonly #publisher: ConfirmedPublisher;
  readonly #options: ControlClientOptions;

  private constructor(
    broker: Broker,
    topo: Topology,
    channel: ConfirmChannel,
    options: ControlClientOptions,
  ) {
    this.#broker = broker;
    this.#topo = topo;
    this.#channel = channel;
    this.#publisher = new ConfirmedPublisher(channel, {
      timeoutMs: options.confirmTimeoutMs ?? 10_000,
    });
    this.#options = options;
  }

  /**
   * Opens a confirm channel on `broker`; with `onAnswer`, consumes RabbitMQ's direct reply-to on
   * it, where instances answer. Declare the control plane first (topology.ts `declareControl`).
   */
  static async open(
    broker: Broker,
    topo: Topology,
    options: ControlClientOptions = {},
  ): Promise<ControlClient> {
    const channel = await broker.confirmChannel();
    try {
      const onAnswer = options.onAnswer;
      if (onAnswer !== undefined) {
        await channel.consume(topo.control.replyTo, (message: ConsumeMessage | null) => {
          if (message === null || message.properties.type !== CONTROL_TYPE.answer) return;
          try {
            onAnswer(parseAnswer(message.content));
          } catch (error) {
            if (!(error instanceof ControlMessageError)) throw error;
            log.warning("an answer that is not one", { error: error.message });
          }
        }, { noAck: true });
      }
    } catch (error) {
      await channel.close().catch(() => {});
      throw broker.explain(error);
    }
    return new ControlClient(broker, topo, channel, options);
  }

  /** The fleet's pause state, read under the lock. */
  read(): Promise<PauseState> {
    return readPauseState(this.#broker, this.#topo, this.#options);
  }

  /**
   * Pauses or resumes the fleet: under the lock, reads the state, publishes the next one to the
   * control exchange (the state queue keeps it; every running instance applies it) and waits for
   * the broker's confirm. With `onAnswer`, each instance answers once it applied it.
   *
   * @throws {ControlLockError} when the lock could not be had in time; a `PublishError` when the
   * broker did not confirm the change (the state is then as the broker has it: read it again).
   */
  change(
    change: PauseChange,
    now: () => Date = () => new Date(),
  ): Promise<{ readonly before: PauseState; readonly after: MadePauseState }> {
    return withControlLock(this.#broker, this.#topo, async () => {
      const before = await readUnlocked(this.#broker, this.#topo);
      const after = nextPauseState(before, change, now());
      const control = this.#topo.control;
      await this.#publisher.publish(control.exchange, control.stateKey, encodePauseState(after), {
        contentType: CONTROL_CONTENT_TYPE,
        type: CONTROL_TYPE.state,
        persistent: true,
        mandatory: true,
        messageId: after.id,
        timestamp: Math.floor(Date.parse(after.at) / 1000),
        ...this.#replyTo(),
      });
      log.info(after.paused ? "fleet paused" : "fleet resumed", {
        by: after.by,
        reason: after.reason,
        seq: after.seq,
      });
      return { before, after };
    }, this.#options);
  }

  /** Asks every running instance to answer (through `onAnswer`). */
  async ping(): Promise<void> {
    const control = this.#topo.control;
    await this.#publisher.publish(control.exchange, control.pingKey, new Uint8Array(), {
      type: CONTROL_TYPE.ping,
      ...this.#replyTo(),
    });
  }

  #replyTo(): { replyTo?: string } {
    return this.#options.onAnswer ? { replyTo: this.#topo.control.replyTo } : {};
  }

  /** Closes its channel. */
  async close(): Promise<void> {
    await this.#channel.close().catch(() => {});
  }

  /** Closes its channel. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
