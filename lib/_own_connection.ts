/**
 * Work on a connection of its own, bounded by a deadline: the connection is closed after the work,
 * or dropped at the deadline. A connection the broker blocks (a resource alarm) reads nothing more,
 * not even a close: only closing its socket ends it, and frees what it held (an exclusive queue
 * used as a lock).
 *
 * @module
 */

import type { Broker } from "./broker.ts";

/** The deadline came first. */
const LATE = Symbol("late");

/** Options for {@linkcode onOwnConnection}. */
export interface OwnConnectionOptions<C extends { readonly broker: Broker }> {
  /** Opens the connection the work runs on. */
  readonly connect: () => Promise<C>;
  /** How long the work may take in all, connecting included, in milliseconds. */
  readonly timeoutMs: number;
  /** The error thrown when the deadline comes first. */
  readonly late: () => Error;
}

/**
 * Runs `work` on a connection `connect` opens, closing it after (within what is left of the
 * deadline); when `work` has not ended within `timeoutMs`, drops the connection at once and throws
 * `late()`. Work that ends after its deadline ends on the dropped connection, unheard.
 */
export async function onOwnConnection<C extends { readonly broker: Broker }, T>(
  options: OwnConnectionOptions<C>,
  work: (connection: C) => Promise<T>,
): Promise<T> {
  const { timeoutMs } = options;
  const deadlineAt = performance.now() + timeoutMs;
  let connection: C | undefined;
  const opening = options.connect().then((opened) => connection = opened);
  const working = opening.then(work).then((value) => ({ value }));
  working.catch(() => {}); // after the deadline, it ends on the dropped connection unheard
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<typeof LATE>((resolve) => {
    timer = setTimeout(() => resolve(LATE), timeoutMs);
  });
  let outcome: { value: T } | typeof LATE | undefined;
  try {
    outcome = await Promise.race([working, deadline]);
  } finally {
    clearTimeout(timer);
    if (outcome === LATE) {
      if (connection !== undefined) await connection.broker.close(0);
      else opening.then((opened) => opened.broker.close(0), () => {});
    } else {
      await connection?.broker.close(Math.max(0, deadlineAt - performance.now()));
    }
  }
  if (outcome === LATE) throw options.late();
  return outcome.value;
}
