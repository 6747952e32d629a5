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
 * A change made by ctl or the console runs on a connection of its own, opened for it and closed
 * after it, and dropped at its deadline if it has not ended by then: a connection the broker blocks
 * for a resource alarm reads nothing more, so the lock's `queue.delete` would never be processed,
 * and only closing the socket frees the lock. So no change holds the lock past its deadline.
 *
 * @module
 */

import type { ConfirmChannel, ConsumeMessage } from "amqplib";
import type { Broker, ConnectOptions } from "./broker.ts";
import {
  CONTROL_CONTENT_TYPE,
  CONTROL_TYPE,
  ControlMessageError,
  encodePauseState,
  type InstanceAnswer,
  type MadePauseState,
  nextPauseState,
  parseAnswer,
  type PauseState,
} from "./control.ts";
import {
  ControlLockError,
  type ControlStoreOptions,
  LOCK_TIMEOUT_MS,
  readHoldingLock,
  readPauseState,
  withControlLock,
} from "./control_lock.ts";
import { CONTROL_QUEUE_ARGUMENTS } from "./control_topology.ts";
import { logger } from "./log.ts";
import { onOwnConnection } from "./_own_connection.ts";
import { ConfirmedPublisher, PublishError } from "./publisher.ts";
import { connectFirst } from "./reconnect.ts";
import type { Topology } from "./topology.ts";

const log = logger("control");

/** A pause or resume asked for. */
export interface PauseChange {
  /** Pause (true) or resume (false). */
  readonly paused: boolean;
  /** Who asks, for the state and the audit trail. */
  readonly by: string;
  /** Why. */
  readonly reason: string;
}

/** A connection opened for one change, and the broker user it logged in as (its `user-id`). */
export interface ChangeConnection {
  readonly broker: Broker;
  /** See {@linkcode ControlClientOptions.userId}; this connection's, when it names one. */
  readonly userId?: string | undefined;
}

/** The broker user a URL logs in as, when it names one (for a change's `user-id`). */
export function brokerUserOf(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  try {
    const user = decodeURIComponent(new URL(url).username);
    return user === "" ? undefined : user;
  } catch {
    return undefined;
  }
}

/**
 * Opens a connection for each change to the first of `urls` that accepts, with its user as the
 * change's `user-id` (see {@linkcode ControlClientOptions.connect}).
 */
export function changeConnections(
  urls: readonly string[],
  options: ConnectOptions = {},
): () => Promise<ChangeConnection> {
  return async () => {
    const { broker, index } = await connectFirst(urls, options);
    return { broker, userId: brokerUserOf(urls[index]) };
  };
}

/** A change or read on a connection of its own did not end by its deadline; its connection was dropped. */
export class ControlTimeoutError extends ControlLockError {
  override name = "ControlTimeoutError";
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
  /**
   * The broker user the connection logged in as: set as each change's `user-id`, which the broker
   * checks against the connection's user, so that a listener knows who really made it. Leave it
   * out when the login is not by name (a client certificate): the broker refuses a wrong one.
   * A change on a connection of its own (`connect`) uses that connection's user instead.
   */
  readonly userId?: string | undefined;
  /**
   * Opens a connection for each change, and for each {@linkcode ControlClient.readWithin}: the
   * work runs on it, and it is closed after, or dropped (its socket closed, which frees the lock)
   * when the work has not ended within `changeTimeoutMs`. Without it, changes run on the client's
   * connection, and one blocked there (a resource alarm) holds the lock while the block lasts.
   * See {@linkcode changeConnections}.
   */
  readonly connect?: () => Promise<ChangeConnection>;
  /**
   * How long a change on a connection of its own may take in all (connecting, the lock, the read,
   * the confirm, letting the lock go) before its connection is dropped, in milliseconds.
   * @default {lockTimeoutMs + confirmTimeoutMs}
   */
  readonly changeTimeoutMs?: number;
}

/**
 * A change the broker did not confirm (no confirm in time, or the channel closed first): it may or
 * may not be in effect. `attempted` is the state that was published; read the state again to know.
 */
export class ControlChangeError extends Error {
  override name = "ControlChangeError";
  /** The state published, unconfirmed. */
  readonly attempted: MadePauseState;
  /** The state before it. */
  readonly before: PauseState;

  /** Creates the error for `attempted`, with the publish failure as its cause. */
  constructor(attempted: MadePauseState, before: PauseState, cause: PublishError) {
    super(
      `the broker did not confirm the ${attempted.paused ? "pause" : "resume"} ` +
        `(seq ${attempted.seq}): ${cause.message}; it may or may not be in effect`,
      { cause },
    );
    this.attempted = attempted;
    this.before = before;
  }
}

/** Whether a change is in effect, as known when it was audited. */
export type ChangeEffect =
  /** The broker confirmed it. */
  | "confirmed"
  /** Not confirmed, but the state read back is it. */
  | "in effect, unconfirmed"
  /** Not confirmed, and the state read back is another. */
  | "not in effect"
  /** Not confirmed, and the state could not be read back. */
  | "unknown";

/**
 * Makes `change` through `client` and has it audited whatever happens to it: once confirmed, as
 * `confirmed`; when not confirmed, with what the state read back says (`in effect, unconfirmed`,
 * `not in effect` with the state in effect, or `unknown`), before the error is thrown on. A change
 * refused outright (the lock not had, the publish nacked or refused) changed nothing and is not
 * audited.
 *
 * @throws what {@linkcode ControlClient.change} throws, or what `audit` throws.
 */
export async function changeAudited(
  client: ControlClient,
  change: PauseChange,
  audit: (made: MadePauseState, effect: ChangeEffect, inEffect?: PauseState) => Promise<void>,
  now?: () => Date,
): Promise<{ readonly before: PauseState; readonly after: MadePauseState }> {
  let made: { readonly before: PauseState; readonly after: MadePauseState };
  try {
    made = await client.change(change, now);
  } catch (error) {
    if (!(error instanceof ControlChangeError)) throw error;
    const read = await client.readWithin(client.lockTimeoutMs).catch(() => undefined);
    if (read === undefined) await audit(error.attempted, "unknown");
    else if (read.id === error.attempted.id) await audit(error.attempted, "in effect, unconfirmed");
    else await audit(error.attempted, "not in effect", read);
    throw error;
  }
  await audit(made.after, "confirmed");
  return made;
}

/** What a change read and made, as far as it got: for the error of a change that ran out of time. */
interface Attempt {
  before?: PauseState;
  after?: MadePauseState;
}

/** Reads and changes the pause state, and asks the running instances who is there. */
export class ControlClient implements AsyncDisposable {
  readonly #broker: Broker;
  readonly #topo: Topology;
  readonly #channel: ConfirmChannel;
  readonly #publisher: ConfirmedPublisher;
  readonly #options: ControlClientOptions;
  /** Its own exclusive, server-named queue where instances answer; none without `onAnswer`. */
  readonly #replyQueue: string | undefined;

  private constructor(
    broker: Broker,
    topo: Topology,
    channel: ConfirmChannel,
    options: ControlClientOptions,
    replyQueue: string | undefined,
  ) {
    this.#broker = broker;
    this.#topo = topo;
    this.#channel = channel;
    this.#replyQueue = replyQueue;
    this.#publisher = new ConfirmedPublisher(channel, {
      timeoutMs: options.confirmTimeoutMs ?? 10_000,
    });
    this.#options = options;
  }

  /**
   * Opens a confirm channel on `broker`; with `onAnswer`, declares a queue of its own there
   * (exclusive, server-named `amq.gen-…`: the only reply-to an instance answers) and consumes it.
   * Declare the control plane first (control_topology.ts `declareControl`) to change it.
   *
   * Not RabbitMQ's direct reply-to: an instance answering a forged message whose reply-to is a
   * malformed `amq.rabbitmq.reply-to.…` name would have its whole connection closed by the
   * broker (541 on 3.10 and 4.0), ending its consuming session; an `amq.gen-` name that does not
   * exist just drops the answer.
   */
  static async open(
    broker: Broker,
    topo: Topology,
    options: ControlClientOptions = {},
  ): Promise<ControlClient> {
    const channel = await broker.confirmChannel();
    let replyQueue: string | undefined;
    try {
      const onAnswer = options.onAnswer;
      if (onAnswer !== undefined) {
        replyQueue = (await channel.assertQueue("", {
          exclusive: true,
          autoDelete: true,
          durable: false,
          arguments: { ...CONTROL_QUEUE_ARGUMENTS },
        })).queue;
        await channel.consume(replyQueue, (message: ConsumeMessage | null) => {
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
    return new ControlClient(broker, topo, channel, options, replyQueue);
  }

  /** How long a read or change waits for the lock, in milliseconds. */
  get lockTimeoutMs(): number {
    return this.#options.lockTimeoutMs ?? LOCK_TIMEOUT_MS;
  }

  /** How long a change on a connection of its own may take, in milliseconds. */
  get changeTimeoutMs(): number {
    return this.#options.changeTimeoutMs ?? this.lockTimeoutMs + this.#confirmTimeoutMs;
  }

  get #confirmTimeoutMs(): number {
    return this.#options.confirmTimeoutMs ?? 10_000;
  }

  /** The fleet's pause state, read under the lock. */
  read(): Promise<PauseState> {
    return readPauseState(this.#broker, this.#topo, this.#options);
  }

  /**
   * The fleet's pause state, read under the lock, or a rejection after `timeoutMs` (a connection
   * the broker blocks, for a resource alarm, is not read by it: nothing would answer). With
   * `connect`, read on a connection of its own, dropped at `timeoutMs` if the read has not ended.
   */
  readWithin(timeoutMs: number): Promise<PauseState> {
    const options = { ...this.#options, lockTimeoutMs: timeoutMs };
    const late = () =>
      new ControlTimeoutError(`the state could not be read within ${timeoutMs} ms`);
    const connect = this.#options.connect;
    if (connect !== undefined) {
      return onOwnConnection(
        { connect, timeoutMs, late },
        ({ broker }) => readPauseState(broker, this.#topo, options),
      );
    }
    const read = readPauseState(this.#broker, this.#topo, options);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(late()), timeoutMs);
    });
    return Promise.race([read, timedOut]).finally(() => clearTimeout(timer));
  }

  /**
   * Pauses or resumes the fleet: under the lock, reads the state, publishes the next one to the
   * control exchange (the state queue keeps it; every running instance applies it) and waits for
   * the broker's confirm. With `onAnswer`, each instance answers once it applied it. With
   * `connect`, all of it runs on a connection of its own, closed after, and dropped (freeing the
   * lock) when the change has not ended within `changeTimeoutMs`.
   *
   * @throws {ControlLockError} when the lock could not be had in time (a
   * {@linkcode ControlTimeoutError} when the change's deadline came first, nothing published); a
   * {@linkcode ControlChangeError} when the broker did not confirm the change (it may be in
   * effect: read the state again); a `PublishError` when the broker refused it.
   */
  change(
    change: PauseChange,
    now: () => Date = () => new Date(),
  ): Promise<{ readonly before: PauseState; readonly after: MadePauseState }> {
    const connect = this.#options.connect;
    if (connect === undefined) {
      return this.#change(this.#broker, this.#publisher, this.#options.userId, change, now, {});
    }
    const made: Attempt = {};
    const timeoutMs = this.changeTimeoutMs;
    const what = change.paused ? "pause" : "resume";
    const late = () => {
      const dropped =
        `its connection was closed at its deadline of ${timeoutMs} ms, freeing the lock`;
      if (made.after === undefined || made.before === undefined) {
        return new ControlTimeoutError(
          `the ${what} did not end in time, nothing published: ${dropped}`,
        );
      }
      return new ControlChangeError(
        made.after,
        made.before,
        new PublishError("timeout", `no confirm before the change's deadline; ${dropped}`),
      );
    };
    return onOwnConnection({ connect, timeoutMs, late }, async ({ broker, userId }) => {
      const channel = await broker.confirmChannel();
      try {
        const publisher = new ConfirmedPublisher(channel, { timeoutMs: this.#confirmTimeoutMs });
        return await this.#change(broker, publisher, userId, change, now, made);
      } finally {
        await channel.close().catch(() => {});
      }
    });
  }

  #change(
    broker: Broker,
    publisher: ConfirmedPublisher,
    userId: string | undefined,
    change: PauseChange,
    now: () => Date,
    made: Attempt,
  ): Promise<{ readonly before: PauseState; readonly after: MadePauseState }> {
    return withControlLock(broker, this.#topo, async () => {
      const before = await readHoldingLock(broker, this.#topo);
      const after = nextPauseState(before, change, now());
      made.before = before;
      made.after = after;
      const control = this.#topo.control;
      try {
        await publisher.publish(
          control.exchange,
          control.stateKey,
          encodePauseState(after),
          {
            contentType: CONTROL_CONTENT_TYPE,
            type: CONTROL_TYPE.state,
            persistent: true,
            mandatory: true,
            messageId: after.id,
            timestamp: Math.floor(Date.parse(after.at) / 1000),
            ...(userId === undefined || userId === "" ? {} : { userId }),
            ...this.#replyTo(),
          },
        );
      } catch (error) {
        if (
          error instanceof PublishError && (error.code === "timeout" || error.code === "closed")
        ) {
          throw new ControlChangeError(after, before, error);
        }
        throw error;
      }
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
    return this.#replyQueue === undefined ? {} : { replyTo: this.#replyQueue };
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
