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
 * A broker's refusal carries its AMQP reply code ({@linkcode replyCode}): 404 NOT_FOUND, 406
 * PRECONDITION_FAILED, 503 COMMAND_INVALID, kept on a {@linkcode BrokerError} when the broker said
 * it by closing the connection.
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

/**
 * The AMQP reply codes decided on (AMQP 0-9-1 reply codes, as RabbitMQ sends them in a
 * `channel.close` or `connection.close`).
 */
export const REPLY_CODE = Object.freeze({
  /** 404 NOT_FOUND: a passive declare, or an operation, named an object that does not exist. */
  notFound: 404,
  /**
   * 406 PRECONDITION_FAILED: a declare found the object with other settings; RabbitMQ 4.x also
   * refuses an exchange type it does not know with it.
   */
  preconditionFailed: 406,
  /** 503 COMMAND_INVALID: RabbitMQ 3.x closes the connection with it on an unknown exchange type. */
  commandInvalid: 503,
});

/** Options of a {@linkcode BrokerError}. */
export interface BrokerErrorOptions extends ErrorOptions {
  /** The AMQP reply code the broker closed with, e.g. `503`; undefined when it gave none. */
  replyCode?: number | undefined;
}

/**
 * An operation that failed because the broker closed the connection under it, with the broker's
 * reason and its AMQP reply code (503 COMMAND_INVALID, 541 INTERNAL_ERROR, 320
 * CONNECTION_FORCED, …). amqplib fails the operation itself with an error of its own ("Channel
 * ended, no reply will be forthcoming") and hands the reason to the connection's `close` event:
 * `Broker.explain` (lib/broker.ts) joins the two into this error.
 */
export class BrokerError extends Error {
  /** The AMQP reply code the broker closed with; undefined when it gave none. */
  readonly replyCode: number | undefined;

  /** Creates the error with the broker's reason as its message. */
  constructor(message: string, options: BrokerErrorOptions = {}) {
    super(message, options);
    this.name = "BrokerError";
    this.replyCode = options.replyCode;
  }
}

/**
 * The AMQP reply code of a broker's refusal: a {@linkcode BrokerError}'s, or the numeric `code`
 * amqplib sets on an operation the broker failed by closing its channel (`Operation failed:
 * QueueDeclare; 404 (NOT-FOUND) …`), the first in the cause chain; undefined for any other error.
 *
 * @example
 * ```ts
 * const error = await channel.checkQueue("no.such.queue").catch((e) => e);
 * replyCode(error); // 404 (REPLY_CODE.notFound)
 * ```
 */
export function replyCode(error: unknown): number | undefined {
  let current: unknown = error;
  for (let depth = 0; typeof current === "object" && current !== null && depth < 8; depth++) {
    if (current instanceof BrokerError) {
      if (current.replyCode !== undefined) return current.replyCode;
    } else {
      const code = (current as { code?: unknown }).code;
      if (typeof code === "number") return code;
    }
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}
