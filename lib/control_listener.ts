/**
 * A running process's ear on the control plane: its own exclusive, auto-deleted queue bound to the
 * control exchange, bound before the state is read (control_store.ts), so that no pause or resume
 * made meanwhile is missed; those that came before the one read, known by its id, are older and
 * skipped, as is any other state that came meanwhile with a `seq` no higher than the one read.
 * Each change after it is applied in the order the broker delivers them; an OrdemDeProducao also
 * answers "who is there?" and, once it applied a change, says so to whoever made it (`ctl` waits
 * for those answers).
 *
 * Anyone who may publish to the control exchange can send it anything, so an answer goes only to
 * a reply-to that is a server-named queue (`amq.gen-` and 22 characters, as `ctl` and the console
 * declare theirs): sent to one that does not exist, the broker drops it. Any other reply-to is
 * ignored (and logged): a malformed direct reply-to (`amq.rabbitmq.reply-to.…`) would make the
 * broker close the whole connection (541 on 3.10 and 4.0), the instance's consumer with it.
 * Answers go on a channel of their own, so that whatever befalls it, the listener listens on.
 *
 * @module
 */

import type { Channel, ConsumeMessage } from "amqplib";
import { Buffer } from "node:buffer";
import type { Broker } from "./broker.ts";
import {
  CONTROL_CONTENT_TYPE,
  CONTROL_TYPE,
  ControlMessageError,
  encodeAnswer,
  type InstanceAnswer,
  parsePauseState,
  type PauseState,
} from "./control.ts";
import { type ControlStoreOptions, readPauseState } from "./control_lock.ts";
import { CONTROL_QUEUE_ARGUMENTS, controlQueueFor } from "./control_topology.ts";
import { describeError } from "./errors.ts";
import { logger } from "./log.ts";
import type { Topology } from "./topology.ts";

const log = logger("control");

/** The only reply-to answered: a server-named queue, as `ctl` and the console declare theirs. */
export const ANSWERABLE_REPLY_TO = /^amq\.gen-[\w-]{22}$/;

/** Options of {@linkcode ControlListener.start}. */
export interface ControlListenerOptions extends ControlStoreOptions {
  readonly broker: Broker;
  readonly topology: Topology;
  /** Who listens: the instance id, in its queue's name. */
  readonly name: string;
  /**
   * Called with the state read at start, then with each change, one at a time, in order; a
   * returned promise is awaited before the next change and before the answer is sent.
   */
  readonly onState: (state: PauseState) => void | Promise<void>;
  /** An OrdemDeProducao's answer to "who is there?"; without it, pings are not even received. */
  readonly answer?: () => InstanceAnswer;
}

/** Listening to the control plane; stop it with {@linkcode ControlListener.close}. */
export class ControlListener implements AsyncDisposable {
  readonly #options: ControlListenerOptions;
  readonly #channel: Channel;
  /** Where answers are sent from: a channel apart, opened when first needed. */
  #answering: Promise<Channel> | undefined;
  /** Messages in the order they came, handled one after the other. */
  #turn: Promise<void> = Promise.resolve();
  /** Messages that came while the state was being read, handled after it. */
  #early: ConsumeMessage[] | undefined = [];
  #closing = false;
  /** Settles when the listener stops: rejects when its channel closed under it. */
  readonly done: Promise<void>;
  #finish!: (error?: Error) => void;

  private constructor(options: ControlListenerOptions, channel: Channel) {
    this.#options = options;
    this.#channel = channel;
    this.done = new Promise<void>((resolve, reject) => {
      this.#finish = (error) => (error ? reject(error) : resolve());
    });
    this.done.catch(() => {});
    channel.on("close", () => {
      if (this.#closing) return;
      const reason = options.broker.closeError ?? new Error("the broker closed the channel");
      this.#finish(
        new Error(`the control plane's listener lost its channel: ${reason.message}`, {
          cause: reason,
        }),
      );
    });
  }

  /**
   * Binds a queue of its own to the control exchange and consumes it, reads the state under the
   * lock, applies it (`onState`), then what came meanwhile. Resolves once the state is applied.
   *
   * @throws {ControlLockError} when the lock could not be had in time.
   */
  static async start(options: ControlListenerOptions): Promise<ControlListener> {
    const { broker, topology: topo } = options;
    const channel = await broker.channel();
    const listener = new ControlListener(options, channel);
    try {
      const queue = controlQueueFor(topo, options.name, crypto.randomUUID().slice(0, 8));
      await channel.assertQueue(queue, {
        exclusive: true,
        autoDelete: true,
        durable: false,
        arguments: { ...CONTROL_QUEUE_ARGUMENTS },
      });
      await channel.bindQueue(queue, topo.control.exchange, topo.control.stateKey);
      if (options.answer) {
        await channel.bindQueue(queue, topo.control.exchange, topo.control.pingKey);
      }
      await channel.consume(queue, (message) => listener.#take(message), { noAck: true });
      const state = await readPauseState(broker, topo, options);
      await options.onState(state);
      // What came since the bind and up to the change read is older than it: only what came
      // after, and of that no state older than the one read (a publish retried, or sent again).
      const early = listener.#early!;
      listener.#early = undefined;
      const read = early.findIndex((m) =>
        m.properties.type === CONTROL_TYPE.state && m.properties.messageId === state.id
      );
      for (const [i, message] of early.entries()) {
        if (message.properties.type !== CONTROL_TYPE.state) listener.#take(message);
        else if (i > read && !olderThan(message, state)) listener.#take(message);
      }
      await listener.#turn;
      return listener;
    } catch (error) {
      listener.#closing = true;
      await channel.close().catch(() => {});
      throw broker.explain(error);
    }
  }

  #take(message: ConsumeMessage | null): void {
    if (message === null) {
      // The broker cancelled the consumer: the queue is gone.
      if (!this.#closing) this.#finish(new Error("the broker cancelled the control listener"));
      return;
    }
    if (this.#early !== undefined) {
      this.#early.push(message);
      return;
    }
    this.#turn = this.#turn.then(() => this.#handle(message)).catch((error) => {
      log.error("cannot apply a control message", { error: describeError(error) });
    });
  }

  async #handle(message: ConsumeMessage): Promise<void> {
    const { type, replyTo, correlationId } = message.properties;
    if (type === CONTROL_TYPE.state) {
      let state: PauseState;
      try {
        state = parsePauseState(message.content);
      } catch (error) {
        if (!(error instanceof ControlMessageError)) throw error;
        log.warning("a control message that is no pause state, ignored", {
          error: error.message,
          userId: String(message.properties.userId ?? "(not stated)"),
        });
        return;
      }
      // Who made it, as the broker vouches (the user-id it checked), beside who it says it is.
      log.info("a pause or resume from the control plane", {
        paused: state.paused,
        seq: state.seq,
        by: state.by,
        userId: String(message.properties.userId ?? "(not stated)"),
      });
      await this.#options.onState(state);
    } else if (type !== CONTROL_TYPE.ping) {
      log.warning("a control message of an unknown type, ignored", { type: String(type) });
      return;
    }
    const answer = this.#options.answer;
    if (answer === undefined || typeof replyTo !== "string" || replyTo === "") return;
    if (!ANSWERABLE_REPLY_TO.test(replyTo)) {
      log.warning("a control message asks for an answer to a queue not ours to answer, ignored", {
        replyTo: replyTo.slice(0, 100),
        userId: String(message.properties.userId ?? ""),
      });
      return;
    }
    const channel = await this.#answerChannel();
    if (channel === undefined) return;
    channel.sendToQueue(replyTo, Buffer.from(encodeAnswer(answer())), {
      type: CONTROL_TYPE.answer,
      contentType: CONTROL_CONTENT_TYPE,
      ...(correlationId === undefined ? {} : { correlationId }),
    });
  }

  /** The channel answers go on, opened again after it closed; undefined when none can be had. */
  async #answerChannel(): Promise<Channel | undefined> {
    if (this.#closing) return undefined;
    const opening = this.#answering ??= this.#options.broker.channel().then((channel) => {
      channel.on("close", () => {
        if (this.#answering === opening) this.#answering = undefined;
      });
      channel.on("error", () => {});
      return channel;
    });
    try {
      return await opening;
    } catch (error) {
      if (this.#answering === opening) this.#answering = undefined;
      log.warning("cannot open a channel to answer on", { error: describeError(error) });
      return undefined;
    }
  }

  /** Stops listening: its queue goes with its channel. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    const answering = await this.#answering?.catch(() => undefined);
    await answering?.close().catch(() => {});
    await this.#channel.close().catch(() => {});
    this.#finish();
  }

  /** Stops listening. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Whether `message` is a state whose `seq` is no higher than `state`'s (unreadable: not older). */
function olderThan(message: ConsumeMessage, state: PauseState): boolean {
  try {
    return parsePauseState(message.content).seq <= state.seq;
  } catch {
    return false;
  }
}
