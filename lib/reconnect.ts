/**
 * Staying connected: a list of broker URLs tried in turn, exponential backoff with jitter between
 * rounds, and a loop that runs a service's session on a connection and starts it again on a new
 * one when the connection is lost.
 *
 * The first reconnect waits at least 250 ms (backoff.ts): on RabbitMQ 3.10 a
 * publisher that reconnects within ~100 ms of losing a quorum queue's leader can wait forever for
 * its confirms.
 *
 * @module
 */

import { Broker, type ConnectOptions } from "./broker.ts";
import { describeError, isFatalError } from "./errors.ts";
import { logger } from "./log.ts";
import { redactUrl } from "./redact.ts";
import { backoffDelay, type BackoffOptions } from "./backoff.ts";

/**
 * Splits `RABBITMQ_URL` into its URLs: several may be given, separated by commas, for a cluster.
 *
 * @throws {RangeError} naming (without its password) a URL that is not amqp:// or amqps://.
 */
export function parseBrokerUrls(text: string): string[] {
  const urls = text.split(",").map((url) => url.trim()).filter((url) => url !== "");
  if (urls.length === 0) throw new RangeError("no broker URL given");
  for (const url of urls) {
    let ok = /^amqps?:\/\/\S+$/.test(url);
    if (ok) {
      try {
        new URL(url);
      } catch {
        ok = false;
      }
    }
    if (!ok) {
      throw new RangeError(
        `each broker URL must be an amqp:// or amqps:// URL, got ${JSON.stringify(redactUrl(url))}`,
      );
    }
  }
  return urls;
}

/**
 * Connects to the first of `urls` (from `start` on, wrapping round) that accepts, trying each
 * once; returns the connection and the index of its URL.
 *
 * @throws the first fatal error ({@linkcode isFatalError}), else the last connection error.
 */
export async function connectFirst(
  urls: readonly string[],
  options: ConnectOptions = {},
  start = 0,
): Promise<{ broker: Broker; index: number }> {
  let lastError: unknown = new RangeError("no broker URL given");
  for (let tried = 0; tried < urls.length; tried++) {
    const index = (start + tried) % urls.length;
    try {
      return { broker: await Broker.connect(urls[index]!, options), index };
    } catch (error) {
      if (isFatalError(error)) throw error;
      lastError = error;
      log.warning("cannot connect", {
        broker: redactUrl(urls[index]!),
        error: describeError(error),
      });
    }
  }
  throw lastError;
}

/** A session's end that calls for a new connection (the session saw the connection fail). */
export class ConnectionLost extends Error {
  /** Creates the error; `cause` says what failed. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ConnectionLost";
  }
}

/** Options for {@linkcode keepConnected}. */
export interface KeepConnectedOptions {
  /** The broker URLs, tried in turn. */
  readonly urls: readonly string[];
  /** Connection options (name, TLS files, heartbeat). */
  readonly connect?: ConnectOptions;
  /** Stops reconnecting; the session gets it too and should end when it aborts. */
  readonly signal?: AbortSignal;
  /** Reconnect delays. */
  readonly backoff?: BackoffOptions;
  /**
   * Give up when no connection could be made for this long, in milliseconds (the error of the
   * last attempt is thrown).
   * @default {Infinity}
   */
  readonly giveUpAfterMs?: number;
  /** Randomness for jitter, in [0, 1). @default {Math.random} */
  readonly random?: () => number;
  /** Called with each new connection after the first, before the session runs on it. */
  readonly onReconnect?: (broker: Broker) => void;
  /** Called when a connection is lost, with the reason. */
  readonly onLost?: (error: Error) => void;
}

const log = logger("reconnect");

/**
 * How long a connection whose session failed is given to close cleanly before its socket is
 * dropped and the next connection is tried, in milliseconds (a clean close otherwise gets 5 s).
 */
export const LOST_CLOSE_TIMEOUT_MS = 1_000;

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Runs `session` on a connection to one of `urls`, and again on a new connection each time it
 * fails, until the session returns, throws an error that reconnecting cannot cure
 * ({@linkcode isFatalError}), or `signal` aborts. Connection attempts go through the URLs in turn,
 * starting after the one that was lost, with {@linkcode backoffDelay} between rounds; the first
 * attempt after a loss also waits one delay.
 *
 * The connection is closed when `session` returns or throws (after a throw, waiting at most
 * {@linkcode LOST_CLOSE_TIMEOUT_MS} for the broker to answer).
 *
 * @throws a fatal error of `session` or of connecting, the abort reason, or the last error once
 * `giveUpAfterMs` passed without a session that lasted more than a second.
 */
export async function keepConnected<T>(
  options: KeepConnectedOptions,
  session: (broker: Broker) => Promise<T>,
): Promise<T> {
  const { urls, signal } = options;
  if (urls.length === 0) throw new RangeError("no broker URL given");
  const random = options.random ?? Math.random;
  const giveUpAfterMs = options.giveUpAfterMs ?? Infinity;
  let next = 0;
  let round = 0;
  let connections = 0;
  /** When the last working session ended (or the start). */
  let healthySince = performance.now();
  const backOff = async (error: unknown) => {
    if (performance.now() - healthySince > giveUpAfterMs) throw error;
    round++;
    const delayMs = backoffDelay(round, options.backoff, random);
    log.info("reconnecting after a delay", { delayMs, round });
    await sleep(delayMs, signal);
  };
  while (true) {
    signal?.throwIfAborted();
    let broker: Broker;
    let lastError: unknown;
    try {
      const connected = await connectFirst(urls, options.connect, next);
      broker = connected.broker;
      // Next time, start after this URL: if it was lost, its node is likely down.
      next = connected.index + 1;
    } catch (error) {
      if (isFatalError(error)) throw error;
      await backOff(error);
      continue;
    }
    connections++;
    if (connections > 1) {
      log.info("reconnected", { broker: broker.safeUrl });
      options.onReconnect?.(broker);
    }
    const started = performance.now();
    let failed = false;
    try {
      return await session(broker);
    } catch (error) {
      failed = true;
      if (isFatalError(error) || signal?.aborted) throw error;
      lastError = error;
      const reason = error instanceof Error ? error : new Error(String(error));
      log.warning("connection lost", { broker: broker.safeUrl, error: describeError(reason) });
      options.onLost?.(reason);
    } finally {
      // A session that failed may have failed because its broker no longer answers (a node cut
      // off): a healthy one answers a close within milliseconds, a cut-off one never.
      await broker.close(failed ? LOST_CLOSE_TIMEOUT_MS : undefined);
    }
    if (performance.now() - started > 1_000) {
      healthySince = performance.now();
      round = 0;
    }
    await backOff(lastError);
  }
}
