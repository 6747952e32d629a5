/**
 * The failure kinds, decided where an error arises and read by class and code, never by message:
 *
 * | class                        | kind           | what follows                                        |
 * | ---------------------------- | -------------- | --------------------------------------------------- |
 * | {@linkcode TransientError}   | `transient`    | the message is retried after a delay                |
 * | {@linkcode PermanentError}   | `permanent`    | the message is dead-lettered at once                |
 * | {@linkcode FatalError}       | `fatal-config` | the command stops: a setting or the topology is wrong |
 * | {@linkcode FatalError}       | `fatal-auth`   | the command stops: the broker refused the login     |
 *
 * Any other error (a dropped connection, a node down) is transient: a reconnect or a retry may cure
 * it. A {@linkcode LedgerUnavailableError} is neither a message's failure nor fatal: the ledger is
 * down, locked, read-only or full, so the consumer pauses until it is back and puts the message
 * back without spending its retries.
 *
 * @module
 */

/** Options shared by both error classes. */
export interface ProcessingErrorOptions extends ErrorOptions {
  /** A short machine-readable code, e.g. `"quantity_exceeded"`. */
  code?: string | undefined;
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

/** Options of a {@linkcode FatalError}. */
export interface FatalErrorOptions extends ProcessingErrorOptions {
  /**
   * A wrong setting or topology, or a refused login.
   * @default {"fatal-config"}
   */
  kind?: "fatal-config" | "fatal-auth";
}

/**
 * A failure that reconnecting cannot cure (a refused login, a vhost that does not exist, a
 * topology that is missing or declared otherwise, a plugin the broker lacks, a TLS file or
 * certificate that does not do): the command stops at once with this message instead of
 * retrying. Decided by class, not by message text: {@linkcode isFatalError} walks the cause chain.
 */
export class FatalError extends Error {
  /** A short machine-readable code, e.g. `"topology_missing"`. */
  readonly code: string | undefined;
  /** Whether a setting or the login is at fault. */
  readonly kind: "fatal-config" | "fatal-auth";

  /** Creates a fatal failure with a message, an optional code and an optional cause. */
  constructor(message: string, options: FatalErrorOptions = {}) {
    super(message, options);
    this.name = "FatalError";
    this.code = options.code;
    this.kind = options.kind ?? "fatal-config";
  }
}

/**
 * The ledger cannot take work now (unreachable, restarting, locked, read-only, full): an outage of
 * infrastructure, not a failure of the message being processed.
 */
export class LedgerUnavailableError extends Error {
  /** What the driver said, e.g. `ECONNREFUSED`, `57P01`, or `busy` for a locked SQLite file. */
  readonly code: string | undefined;

  /** Creates the error. */
  constructor(message: string, options: ProcessingErrorOptions = {}) {
    super(message, options);
    this.name = "LedgerUnavailableError";
    this.code = options.code;
  }
}

/** Whether `error`, or an error in its `cause` chain, is a {@linkcode LedgerUnavailableError}. */
export function isLedgerUnavailable(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; current instanceof Error && depth < 8; depth++) {
    if (current instanceof LedgerUnavailableError) return true;
    current = current.cause;
  }
  return false;
}

/** The first string `code` in an error's cause chain (`ECONNREFUSED`, a PostgreSQL SQLSTATE, …). */
export function errorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; typeof current === "object" && current !== null && depth < 8; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string") return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
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
