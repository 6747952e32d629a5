/**
 * The control plane's messages, as data: the pause state (paused or not, since when, by whom,
 * why), a query of who is there, and an instance's answer. Pure: bytes to a typed message or a
 * typed rejection, and back.
 *
 * A pause or resume travels as the whole state, not as a change, so that the last one the state
 * queue keeps is all a starting instance needs to read:
 *
 * ```json
 * {"paused":true,"since":"2026-12-01T09:00:00.000Z","by":"alice (console)","reason":"ERP upgrade",
 *  "at":"2026-12-01T09:00:00.000Z","seq":7,"id":"<uuid>"}
 * ```
 *
 * `seq` counts the changes (each is made under the control plane's lock, control_store.ts), `at`
 * is when this one was made, and `since` when the fleet was first paused: pausing a paused fleet
 * again (a new reason) keeps its `since`.
 *
 * @module
 */

/** The AMQP `type` of each kind of control message. */
export const CONTROL_TYPE = Object.freeze({
  state: "productionorder.pause-state",
  ping: "productionorder.ping",
  answer: "productionorder.instance",
});

/** The content type of control messages. */
export const CONTROL_CONTENT_TYPE = "application/json";

/** The longest `by` and `reason` kept, in characters. */
export const MAX_CONTROL_TEXT = 500;

/** Whether the fleet is paused, and since when, by whom and why. */
export interface PauseState {
  /** Whether OrdemDeProducao instances take no deliveries. */
  readonly paused: boolean;
  /** While paused: when the pause began (ISO 8601). */
  readonly since?: string | undefined;
  /** Who made the last change (`alice (console)`, `bob@host`). */
  readonly by?: string | undefined;
  /** Why, as they said. */
  readonly reason?: string | undefined;
  /** When the last change was made (ISO 8601). */
  readonly at?: string | undefined;
  /** How many changes were made before and with this one; 0 for none ever. */
  readonly seq: number;
  /** The last change's id. */
  readonly id?: string | undefined;
}

/** A state some change made: who, why, when and which are known. */
export type MadePauseState = PauseState & {
  readonly by: string;
  readonly reason: string;
  readonly at: string;
  readonly id: string;
};

/** The state of a fleet nobody ever paused. */
export const NEVER_PAUSED: PauseState = Object.freeze({ paused: false, seq: 0 });

/** What a running instance says of itself when asked, or after it applied a change. */
export interface InstanceAnswer {
  /** Its `--instance-id`. */
  readonly instanceId: string;
  /** Whether it holds off deliveries for an operator's pause. */
  readonly paused: boolean;
  /** The `seq` of the last change it applied. */
  readonly seq: number;
  /** Whether the broker is sending it deliveries now. */
  readonly consuming: boolean;
  /** Deliveries it is still working on. */
  readonly inFlight: number;
  /** When it answered (ISO 8601). */
  readonly at: string;
}

/** A control message that is not one: what was wrong. */
export class ControlMessageError extends TypeError {
  override name = "ControlMessageError";
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The next state: a pause (keeping `since` when already paused) or a resume, made at `now`. */
export function nextPauseState(
  current: PauseState,
  change: { readonly paused: boolean; readonly by: string; readonly reason: string },
  now: Date,
  id: string = crypto.randomUUID(),
): MadePauseState {
  const at = now.toISOString();
  return {
    paused: change.paused,
    since: change.paused ? (current.paused ? current.since ?? at : at) : undefined,
    by: change.by.slice(0, MAX_CONTROL_TEXT),
    reason: change.reason.slice(0, MAX_CONTROL_TEXT),
    at,
    seq: current.seq + 1,
    id,
  };
}

/** A pause state as it goes on the wire. */
export function encodePauseState(state: PauseState): Uint8Array {
  return encoder.encode(JSON.stringify({
    paused: state.paused,
    since: state.since,
    by: state.by,
    reason: state.reason,
    at: state.at,
    seq: state.seq,
    id: state.id,
  }));
}

function object(body: Uint8Array, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(body));
  } catch (error) {
    throw new ControlMessageError(`${what} is not JSON: ${(error as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ControlMessageError(`${what} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

function optionalText(record: Record<string, unknown>, field: string, what: string) {
  const value = record[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") {
    throw new ControlMessageError(`${what}: ${field} must be text, got ${typeof value}`);
  }
  return value;
}

function count(record: Record<string, unknown>, field: string, what: string): number {
  const value = record[field];
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new ControlMessageError(
      `${what}: ${field} must be a whole number, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/**
 * Reads a pause state off the wire.
 * @throws {ControlMessageError} naming what is wrong.
 */
export function parsePauseState(body: Uint8Array): PauseState {
  const what = "a pause state";
  const record = object(body, what);
  if (typeof record.paused !== "boolean") {
    throw new ControlMessageError(`${what}: paused must be true or false`);
  }
  return {
    paused: record.paused,
    since: record.paused ? optionalText(record, "since", what) : undefined,
    by: optionalText(record, "by", what),
    reason: optionalText(record, "reason", what),
    at: optionalText(record, "at", what),
    seq: count(record, "seq", what),
    id: optionalText(record, "id", what),
  };
}

/** An instance's answer as it goes on the wire. */
export function encodeAnswer(answer: InstanceAnswer): Uint8Array {
  return encoder.encode(JSON.stringify(answer));
}

/**
 * Reads an instance's answer.
 * @throws {ControlMessageError} naming what is wrong.
 */
export function parseAnswer(body: Uint8Array): InstanceAnswer {
  const what = "an instance's answer";
  const record = object(body, what);
  const instanceId = optionalText(record, "instanceId", what);
  if (instanceId === undefined) throw new ControlMessageError(`${what}: instanceId is missing`);
  if (typeof record.paused !== "boolean" || typeof record.consuming !== "boolean") {
    throw new ControlMessageError(`${what}: paused and consuming must be true or false`);
  }
  return {
    instanceId,
    paused: record.paused,
    seq: count(record, "seq", what),
    consuming: record.consuming,
    inFlight: count(record, "inFlight", what),
    at: optionalText(record, "at", what) ?? "",
  };
}

/** A pause state in one line, for logs, `/readyz` and `ctl status`. */
export function describePause(state: PauseState): string {
  if (!state.paused) {
    return state.seq === 0
      ? "not paused"
      : `not paused (resumed ${state.at ?? "at an unknown time"} by ${state.by ?? "unknown"})`;
  }
  return `paused since ${state.since ?? "an unknown time"} by ${state.by ?? "unknown"}: ${
    state.reason === undefined || state.reason === "" ? "no reason given" : state.reason
  }`;
}
