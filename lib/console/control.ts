/**
 * Pause and resume from the console, through the same control plane as `deno task ctl`
 * (lib/control_store.ts): the fleet's state as the console's own ear on the control plane last
 * heard it (started on the console's connection when first asked, and again on a new connection),
 * and changes made in the signed-in operator's name, each appended to the audit trail.
 *
 * The ear declares nothing (a `--read-only` console changes nothing on the broker): without a
 * control plane it says so. Only a change declares it.
 *
 * Each change runs on a connection of its own (`connect`), closed after it and dropped at its
 * deadline: a change caught on a connection the broker blocks (a resource alarm) lets the control
 * plane's lock go by then, where on the console's long-lived connection it would hold it for the
 * whole alarm. Its state is published with the `user-id` of the URL's user, as ctl's is.
 *
 * @module
 */

import type { Broker } from "../broker.ts";
import type { PauseState } from "../control.ts";
import { ControlListener } from "../control_listener.ts";
import { appendPauseAudit } from "../audit.ts";
import { changeAudited, type ChangeConnection, ControlClient } from "../control_store.ts";
import { controlExists, declareControl } from "../control_topology.ts";
import { logger } from "../log.ts";
import type { Topology } from "../topology.ts";
import type { Principal } from "./auth.ts";

/** Options for {@linkcode FleetControl}. */
export interface FleetControlOptions {
  /** The console's connection (made again when lost). */
  readonly broker: () => Promise<Broker>;
  readonly topology: Topology;
  /** The audit trail each change is appended to. */
  readonly auditLog: string;
  /**
   * Opens a connection for each change (control_store.ts `changeConnections`), closed after it.
   * Without it, changes run on the console's connection.
   */
  readonly connect?: () => Promise<ChangeConnection>;
  /**
   * How long a change on a connection of its own may take before that connection is dropped, in
   * milliseconds.
   * @default {the ControlClient's: its lock timeout plus its confirm timeout}
   */
  readonly changeTimeoutMs?: number;
}

const log = logger("console");

/** A listener on one connection; `ended` once its channel closed. */
interface Ear {
  readonly broker: Broker;
  readonly listener: ControlListener;
  ended: boolean;
}

/** The fleet's pause state for the console, and its pause and resume. */
export class FleetControl implements AsyncDisposable {
  readonly #options: FleetControlOptions;
  #ear: Promise<Ear> | undefined;
  #state: PauseState | undefined;

  /** Listens to nothing until first asked. */
  constructor(options: FleetControlOptions) {
    this.#options = options;
  }

  /** The console's ear on the control plane, on its current connection. */
  async #listening(): Promise<Ear> {
    const broker = await this.#options.broker();
    const pending = this.#ear;
    if (pending !== undefined) {
      const ear = await pending.catch(() => undefined);
      if (ear !== undefined && ear.broker === broker && !ear.ended) return ear;
      if (this.#ear === pending) {
        this.#ear = undefined;
        await ear?.listener.close();
      }
    }
    const mine = this.#ear ??= this.#listen(broker);
    try {
      return await mine;
    } catch (error) {
      if (this.#ear === mine) this.#ear = undefined;
      throw error;
    }
  }

  async #listen(broker: Broker): Promise<Ear> {
    const topo = this.#options.topology;
    if (!(await controlExists(broker, topo))) {
      throw new Error(
        `no control plane on this broker (${topo.control.exchange}): nothing was ever paused ` +
          `here; OrdemDeProducao declares it when it starts, a pause or resume too`,
      );
    }
    const listener = await ControlListener.start({
      broker,
      topology: this.#options.topology,
      name: "console",
      onState: (state) => void (this.#state = state),
    });
    const ear: Ear = { broker, listener, ended: false };
    listener.done.catch((error) => {
      log.warning("the console's ear on the control plane closed", { error: String(error) });
    }).finally(() => ear.ended = true);
    return ear;
  }

  /** The fleet's pause state, as last heard. */
  async state(): Promise<PauseState> {
    await this.#listening();
    return this.#state!;
  }

  /**
   * Pauses (`paused`) or resumes the fleet in `who`'s name, then appends the change to the audit
   * trail; resolves with the state made.
   *
   * @throws {ControlLockError} when the control plane's lock could not be had; a
   * `ControlChangeError` when the broker did not confirm the change (audited with what the state
   * read back says); a `DiskWriteError` when the audit trail could not take the entry (the change
   * was made).
   */
  async change(paused: boolean, reason: string, who: Principal): Promise<PauseState> {
    const topo = this.#options.topology;
    await declareControl(await this.#options.broker(), topo);
    const { broker } = await this.#listening();
    const by = `${who.name} (console)`;
    const { connect, changeTimeoutMs } = this.#options;
    await using client = await ControlClient.open(broker, topo, {
      ...(connect === undefined ? {} : { connect }),
      ...(changeTimeoutMs === undefined ? {} : { changeTimeoutMs }),
    });
    const { after } = await changeAudited(
      client,
      { paused, by, reason },
      (state, effect, inEffect) =>
        appendPauseAudit(this.#options.auditLog, {
          queue: topo.queue,
          state,
          who: by,
          effect,
          inEffect,
        }),
    );
    if (after.seq > (this.#state?.seq ?? 0)) this.#state = after;
    return after;
  }

  /** Stops listening. */
  async close(): Promise<void> {
    const ear = await this.#ear?.catch(() => undefined);
    this.#ear = undefined;
    await ear?.listener.close();
  }

  /** Stops listening. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
