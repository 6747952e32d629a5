/**
 * The two failure kinds that decide where a message goes.
 *
 * A {@linkcode TransientError} is worth another try after a delay; a {@linkcode PermanentError}
 * will fail the same way every time, so the message is dead-lettered at once. Any other error is
 * treated as transient until the retry limit is reached.
 *
 * @module
 */

/** Options shared by both error classes. */
export interface ProcessingErrorOptions extends ErrorOptions {
  /** A short machine-readable code, e.g. `"quantity_exceeded"`. */
  code?: string;
}

/** A failure that may succeed on a later attempt: the message is retried after a delay. */
export class TransientError extends Error {
  /** A short machine-readable code, if the thrower gave one. */
  readonly code: string | undefined;

  /** Creates a transient failure with a message, an optional code and an optional cause. */
  constructor(message: string, options: ProcessingErrorOptions = {}) {
    super(message, options);
    this.name = "TransientError";
    this.code = options.code;
  }
}

/** A failure that will never succeed: the message is dead-lettered at once with this reason. */
export class PermanentError extends Error {
  /** A short machine-readable code, if the thrower gave one. */
  readonly code: string | undefined;

  /** Creates a permanent failure with a message, an optional code and an optional cause. */
  constructor(message: string, options: ProcessingErrorOptions = {}) {
    super(message, options);
    this.name = "PermanentError";
    this.code = options.code;
  }
}

/**
 * A failure that reconnecting cannot cure (a topology that is missing or declared otherwise, a
 * plugin the broker lacks): the command stops at once with this message instead of retrying.
 * Decided by class, not by message text: {@linkcode isFatalError} walks the cause chain.
 */
export class FatalError extends Error {
  /** A short machine-readable code, e.g. `"topology_missing"`. */
  readonly code: string | undefined;

  /** Creates a fatal failure with a message, an optional code and an optional cause. */
  constructor(message: string, options: ProcessingErrorOptions = {}) {
    super(message, options);
    this.name = "FatalError";
    this.code = options.code;
  }
}

/** Whether `error`, or an error in its `cause` chain, is a {@linkcode FatalError}. */
export function isFatalError(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; current instanceof Error && depth < 8; depth++) {
    if (current instanceof FatalError) return true;
    current = current.cause;
  }
  return false;
}

/** Renders an error and its `cause` chain on one line: `outer: inner: root`. */
export function describeError(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && current !== null && depth < 8; depth++) {
    if (current instanceof Error) {
      parts.push(current.message || current.name);
      current = current.cause;
    } else {
      parts.push(String(current));
      break;
    }
  }
  return parts.join(": ");
}
