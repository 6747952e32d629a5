/**
 * An OrdemDeProducao's operator pause: the fleet's pause state as this process last applied it,
 * kept across its broker sessions (a new session's consumer starts paused when it is), with the
 * consumer of the current session told of each change. The ledger's breaker pauses consuming
 * too, for its own reason; the two are kept apart (lib/intake.ts), so that neither undoes the other.
 *
 * @module
 */

import { describePause, NEVER_PAUSED, type PauseState } from "./control.ts";
import { logger } from "./log.ts";

const log = logger("control");

/** What a consumer reads of the operator pause, and how it is told of a change. */
export interface PauseSource {
  /** Whether an operator paused the fleet. */
  readonly paused: boolean;
  /**
   * Calls `listener` with each change of `paused`; the change waits for the promise it returns.
   * Returns the way to stop listening.
   */
  onChange(listener: (paused: boolean) => void | Promise<void>): () => void;
}

/** The pause state this process applies, and who follows it. */
export class OperatorPause implements PauseSource {
  #state: PauseState = NEVER_PAUSED;
  readonly #listeners = new Set<(paused: boolean) => void | Promise<void>>();

  /** The state last applied. */
  get state(): PauseState {
    return this.#state;
  }

  /** Whether an operator paused the fleet. */
  get paused(): boolean {
    return this.#state.paused;
  }

  /**
   * Applies `state`; resolves once every listener took it (a consumer, once the broker confirmed
   * it sends no more deliveries).
   */
  async apply(state: PauseState): Promise<void> {
    const was = this.#state.paused;
    this.#state = state;
    if (was === state.paused) return;
    log.warning(
      state.paused ? "paused by an operator: taking no deliveries" : "resumed by an operator",
      {
        state: describePause(state),
        by: state.by,
        reason: state.reason,
      },
    );
    await Promise.all([...this.#listeners].map((listener) => listener(state.paused)));
  }

  /** Follows changes of `paused`; returns the way to stop. */
  onChange(listener: (paused: boolean) => void | Promise<void>): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
