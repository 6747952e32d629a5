/**
 * The control plane's lock, the exclusive queue `productionorder.control.lock` (the broker refuses
 * a second holder with 405 RESOURCE_LOCKED, and frees it when its holder's connection goes), and
 * the fleet's pause state read under it. Why a read needs the lock, and how a change uses it:
 * lib/control_store.ts.
 *
 * @module
 */

import type { Channel } from "amqplib";
import type { Broker } from "./broker.ts";
import { ControlMessageError, NEVER_PAUSED, parsePauseState, type PauseState } from "./control.ts";
import { CONTROL_QUEUE_ARGUMENTS } from "./control_topology.ts";
import { replyCode } from "./errors.ts";
import { logger } from "./log.ts";
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
        arguments: { ...CONTROL_QUEUE_ARGUMENTS },
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
 * lock ({@linkcode withControlLock}). Of several messages (a change met a reader that was not
 * holding the lock), the one with the highest `seq`; {@linkcode NEVER_PAUSED} for none.
 */
export async function readHoldingLock(broker: Broker, topo: Topology): Promise<PauseState> {
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
  return withControlLock(broker, topo, () => readHoldingLock(broker, topo), options);
}
