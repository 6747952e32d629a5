/**
 * One connection to RabbitMQ, with the reason it closed and a password-free name for logs.
 *
 * @module
 */

import { readFileSync } from "node:fs";
import amqp from "amqplib";
import type { Channel, ChannelModel, ConfirmChannel } from "amqplib";
import { coalesceWrites, type CorkableSocket } from "./_coalesced_writes.ts";
import { BrokerError, describeError, errorCode, FatalError, replyCode } from "./errors.ts";
import { logger } from "./log.ts";
import { redactUrl } from "./redact.ts";
import { settlesWithin } from "./settles_within.ts";

export { redactUrl };

const log = logger("broker");

/** The broker used when `RABBITMQ_URL` is not set. */
export const DEFAULT_RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672";

/** How long {@linkcode Broker.close} waits for the broker's close-ok before dropping the socket. */
const CLOSE_TIMEOUT_MS = 5_000;

/**
 * How long a connection attempt may go without an answer before it fails, in milliseconds (TCP
 * connect, TLS and the AMQP handshake: each time the broker answers the clock starts again). A
 * node cut off by the network drops the attempt's packets without a word: without this bound the
 * attempt would wait for the operating system to give up (about two minutes on Linux) before the
 * next URL is tried.
 */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

/**
 * The heartbeat interval asked for when neither the URL (`?heartbeat=N`) nor the caller gives one,
 * in seconds. Short enough that a connection to a node cut off by the network is given up within
 * seconds ({@linkcode STALL_HEARTBEATS}), long enough not to take a busy broker for a dead one
 * (RabbitMQ advises against values under 5).
 */
export const DEFAULT_HEARTBEAT_SECONDS = 5;

/**
 * How many heartbeat intervals may pass without a byte from the broker before the connection is
 * taken for dead and dropped. The broker writes at least every interval (a heartbeat after half
 * of one without other traffic), so 1.5 leaves half an interval for a late one; amqplib's own
 * check gives up only after two to three intervals. With the default heartbeat: 7.5 s.
 */
export const STALL_HEARTBEATS = 1.5;

/**
 * The connection was dropped because the broker sent nothing for {@linkcode STALL_HEARTBEATS}
 * heartbeat intervals: a node cut off by the network, or stalled. Code `connection_stalled`.
 */
export class ConnectionStalledError extends Error {
  /** Always `connection_stalled`. */
  readonly code = "connection_stalled";

  /** Creates the error for a connection that heard nothing for `silentMs`. */
  constructor(silentMs: number, heartbeatSeconds: number) {
    super(
      `the broker sent nothing for ${(silentMs / 1000).toFixed(1)} s ` +
        `(heartbeat ${heartbeatSeconds} s): the connection is taken for dead`,
    );
    this.name = "ConnectionStalledError";
  }
}

/** What {@linkcode watchReceive} needs of a socket. */
export interface ReceivingSocket {
  /** Bytes read from it so far. */
  readonly bytesRead: number;
  /** Drops it, with the reason. */
  destroy(error?: Error): void;
}

/**
 * Drops `socket` with a {@linkcode ConnectionStalledError} once nothing was read from it for
 * `heartbeatSeconds` x {@linkcode STALL_HEARTBEATS}. It looks every eighth of that (250 ms at
 * most); a look that comes late because this process itself stalled (a long synchronous task, a
 * paused process) starts the count again rather than blame the broker. Returns the function that
 * stops watching (call it when the connection closes). `now` is a clock, for tests.
 */
export function watchReceive(
  socket: ReceivingSocket,
  heartbeatSeconds: number,
  now: () => number = () => performance.now(),
): () => void {
  const stallMs = heartbeatSeconds * 1000 * STALL_HEARTBEATS;
  const everyMs = Math.min(250, stallMs / 8);
  let bytes = socket.bytesRead;
  let heardAt = now();
  let lookedAt = heardAt;
  const timer = setInterval(() => {
    const at = now();
    const late = at - lookedAt > 2 * everyMs;
    lookedAt = at;
    if (socket.bytesRead !== bytes || late) {
      bytes = socket.bytesRead;
      heardAt = at;
      return;
    }
    if (at - heardAt >= stallMs) {
      clearInterval(timer);
      socket.destroy(new ConnectionStalledError(at - heardAt, heartbeatSeconds));
    }
  }, everyMs);
  Deno.unrefTimer(timer);
  return () => clearInterval(timer);
}

/** Files for `amqps://` connections, all optional; PEM format. */
export interface TlsFiles {
  /** The CA certificate(s) to trust instead of the system's. */
  readonly caFile?: string | undefined;
  /** The client certificate, for brokers that ask for one (`verify_peer`). */
  readonly certFile?: string | undefined;
  /** The client certificate's private key. */
  readonly keyFile?: string | undefined;
}

/** Node's TLS codes for a broker certificate that does not verify: a reconnect cannot cure it. */
const UNTRUSTED_CERTIFICATE = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

/**
 * Why a connection attempt failed, as an error whose class says whether to try again: a
 * {@linkcode FatalError} for a refused login (`fatal-auth`), a vhost the broker will not open, an
 * untrusted certificate or a bad TLS file (`fatal-config`); a plain error (worth another try) for
 * everything else. amqplib gives the handshake's refusals as text only, so this is where they are
 * told apart.
 */
function connectError(error: unknown, url: string, safeUrl: string): Error {
  const text = redactUrl(describeError(error));
  const message = `cannot connect to RabbitMQ at ${safeUrl}: ${text}`;
  if (error instanceof FatalError) {
    return new FatalError(message, { cause: error, code: error.code, kind: error.kind });
  }
  const code = errorCode(error);
  if (code !== undefined && UNTRUSTED_CERTIFICATE.has(code)) {
    return new FatalError(
      `${message}: the broker's TLS certificate does not verify; give its CA with --tls-ca`,
      { cause: error, code: "tls_untrusted" },
    );
  }
  const raw = error instanceof Error ? error.message : "";
  if (/^Handshake terminated by server: 403\b/.test(raw)) {
    return new FatalError(`${message} (check the user and password)`, {
      cause: error,
      code: "access_refused",
      kind: "fatal-auth",
    });
  }
  if (/^Expected ConnectionOpenOk; got <ConnectionClose/.test(raw)) {
    // The broker closed the connection in answer to connection.open: the vhost is missing or
    // the user may not use it (530 NOT_ALLOWED; amqplib keeps only the method's name).
    const target = new URL(url);
    const vhost = target.pathname.length > 1 ? decodeURIComponent(target.pathname.slice(1)) : "/";
    return new FatalError(
      `cannot connect to RabbitMQ at ${safeUrl}: the broker refused to open vhost ` +
        `${JSON.stringify(vhost)}: it does not exist, or user ` +
        `${JSON.stringify(decodeURIComponent(target.username) || "guest")} may not use it ` +
        `(the vhost is the URL's path)`,
      { cause: error, code: "vhost_refused" },
    );
  }
  return new Error(message, { cause: error });
}

/** Reads the TLS files into socket options. @throws {Error} naming a file that cannot be read. */
function tlsSocketOptions(tls: TlsFiles): Record<string, unknown> {
  const read = (what: string, path: string | undefined) => {
    if (path === undefined || path === "") return undefined;
    try {
      return readFileSync(path);
    } catch (error) {
      throw new FatalError(`cannot read the TLS ${what} ${path}: ${describeError(error)}`, {
        code: "tls_file",
        cause: error,
      });
    }
  };
  const options: Record<string, unknown> = {};
  const ca = read("CA file", tls.caFile);
  if (ca) options.ca = [ca];
  const cert = read("certificate file", tls.certFile);
  if (cert) options.cert = cert;
  const key = read("key file", tls.keyFile);
  if (key) options.key = key;
  if ((cert === undefined) !== (key === undefined)) {
    throw new FatalError("a TLS client certificate needs its key, and a key its certificate", {
      code: "tls_file",
    });
  }
  return options;
}

/** Options for {@linkcode Broker.connect}. */
export interface ConnectOptions {
  /** CA, certificate and key files for `amqps://` URLs. */
  tls?: TlsFiles;
  /** Shown in the management UI as the connection's name. */
  name?: string;
  /**
   * Heartbeat interval in seconds, when the URL has no `?heartbeat=N`; 0 turns heartbeats off (and
   * with them the check that drops a connection on which the broker went silent).
   * @default {DEFAULT_HEARTBEAT_SECONDS}
   */
  heartbeatSeconds?: number;
  /**
   * How long the attempt may wait for the broker to answer, in milliseconds.
   * @default {DEFAULT_CONNECT_TIMEOUT_MS}
   */
  connectTimeoutMs?: number;
  /**
   * Whether the frames written in one turn of the event loop go to the socket as one write
   * (`writev`) rather than a system call each. Off only to measure amqplib as it comes (the
   * bench's raw baseline).
   * @default {true}
   */
  coalesceWrites?: boolean;
}

/** An open connection to RabbitMQ. Close it with `await using` or {@linkcode Broker.close}. */
export class Broker implements AsyncDisposable {
  /** The amqplib connection. */
  readonly model: ChannelModel;
  /** The URL with its password hidden. */
  readonly safeUrl: string;
  /** Settles when the connection closes: with the error for an abnormal close, else undefined. */
  readonly closed: Promise<Error | undefined>;
  #closeError: Error | undefined;
  #closing = false;
  #open = true;
  #blocked: { reason: string; unblocked: PromiseWithResolvers<void> } | undefined;

  private constructor(model: ChannelModel, safeUrl: string) {
    this.model = model;
    this.safeUrl = safeUrl;
    model.on("blocked", (reason: string) => {
      if (this.#blocked) return;
      this.#blocked = { reason: String(reason), unblocked: Promise.withResolvers<void>() };
      log.warning("the broker blocked publishing on this connection", {
        broker: safeUrl,
        reason: String(reason),
      });
    });
    model.on("unblocked", () => this.#unblock(true));
    this.closed = new Promise((resolve) => {
      model.on("error", (error: Error) => {
        this.#closeError = error;
      });
      model.on("close", (error?: Error) => {
        this.#open = false;
        const cause = error ?? this.#closeError;
        this.#closeError = this.#closing ? undefined : cause ?? new Error("connection closed");
        this.#unblock(false);
        resolve(this.#closeError);
      });
    });
  }

  /**
   * Connects to the broker at `url`.
   *
   * @throws {Error} naming the URL without its password when the broker cannot be reached or
   * refuses the login.
   */
  static async connect(url: string, options: ConnectOptions = {}): Promise<Broker> {
    const safeUrl = redactUrl(url);
    let model: ChannelModel;
    try {
      const target = new URL(url);
      if (!target.searchParams.has("heartbeat")) {
        target.searchParams.set(
          "heartbeat",
          String(options.heartbeatSeconds ?? DEFAULT_HEARTBEAT_SECONDS),
        );
      }
      const tls = target.protocol === "amqps:" && options.tls ? tlsSocketOptions(options.tls) : {};
      model = await amqp.connect(target.href, {
        ...tls,
        // Small frames (acks, confirms, single orders) must not wait for Nagle's algorithm.
        noDelay: true,
        timeout: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
        clientProperties: { connection_name: options.name ?? "productionorder" },
      });
    } catch (error) {
      throw connectError(error, url, safeUrl);
    }
    const connection = model.connection as unknown as {
      stream: CorkableSocket & ReceivingSocket;
      heartbeat?: number;
    };
    if (options.coalesceWrites ?? true) coalesceWrites(connection.stream);
    const broker = new Broker(model, safeUrl);
    // The negotiated interval (the broker's when it asks for less); 0 when heartbeats are off.
    const heartbeat = connection.heartbeat ?? 0;
    if (heartbeat > 0) {
      const stop = watchReceive(connection.stream, heartbeat);
      broker.closed.then(stop);
    }
    return broker;
  }

  /** The broker's version, e.g. `"3.10.8"`. */
  get serverVersion(): string {
    const version = this.model.connection.serverProperties.version;
    return typeof version === "string" ? version : "unknown";
  }

  /** Whether the connection is open. */
  get isOpen(): boolean {
    return this.#open;
  }

  /**
   * Whether the broker blocked publishing on this connection (a memory or disk alarm): published
   * messages are not read until it lifts the block.
   */
  get blocked(): boolean {
    return this.#blocked !== undefined;
  }

  /** Resolves when publishing is not blocked (at once, if it is not). */
  whenUnblocked(): Promise<void> {
    return this.#blocked?.unblocked.promise ?? Promise.resolve();
  }

  #unblock(logIt: boolean): void {
    const blocked = this.#blocked;
    if (!blocked) return;
    this.#blocked = undefined;
    if (logIt) log.info("the broker unblocked publishing", { broker: this.safeUrl });
    blocked.unblocked.resolve();
  }

  /** Why the connection closed, if it closed abnormally. */
  get closeError(): Error | undefined {
    return this.#closeError;
  }

  /**
   * Opens a plain channel. Its errors are not thrown at the connection: an operation that fails
   * rejects, and {@linkcode Broker.explain} tells why.
   */
  async channel(): Promise<Channel> {
    const channel = await this.model.createChannel();
    channel.on("error", () => {});
    return channel;
  }

  /** Opens a channel in confirm mode. */
  async confirmChannel(): Promise<ConfirmChannel> {
    const channel = await this.model.createConfirmChannel();
    channel.on("error", () => {});
    return channel;
  }

  /** How many ready messages a queue holds (unacknowledged ones not counted). */
  async messageCount(queue: string): Promise<number> {
    const channel = await this.channel();
    try {
      return (await channel.checkQueue(queue)).messageCount;
    } catch (error) {
      throw this.explain(error);
    } finally {
      await channel.close().catch(() => {});
    }
  }

  /**
   * Replaces amqplib's "channel ended, no reply" with the reason the broker gave, when the
   * connection closed under an operation: a {@linkcode BrokerError} with the broker's message and
   * reply code (read with `replyCode()`). Any other error is returned as it is (amqplib's own for
   * a closed channel keep their reply code as `code`).
   */
  explain(error: unknown): Error {
    const reason = this.#closeError;
    // amqplib fails the operations of a closing connection with errors of its own that carry no
    // reply code and no class to tell them by ("Channel ended, no reply will be forthcoming", a
    // plain Error; "Connection closed (…)"): their text is all there is to match.
    if (reason && error instanceof Error && /Channel ended|Connection closed/.test(error.message)) {
      return new BrokerError(reason.message, { cause: error, replyCode: replyCode(reason) });
    }
    return error instanceof Error ? error : new Error(String(error));
  }

  /**
   * Closes the connection, waiting at most `timeoutMs` (5 s) for the broker's close-ok before
   * dropping the socket; closing twice, or after the broker closed it, is fine.
   */
  async close(timeoutMs = CLOSE_TIMEOUT_MS): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    // Already closed: the close rejects at once, nothing left to release. A close the broker sent
    // at the same moment ends the connection without calling the close's callback: `closed`.
    if (await settlesWithin(Promise.race([this.model.close(), this.closed]), timeoutMs)) return;
    // The broker never answered the close: the socket is dead. Let it go, with an error: amqplib
    // ends the connection on its socket's error or end only, and a socket destroyed without one
    // leaves it open, its channels' pending calls waiting for ever. It ends it a turn later.
    const { stream } = this.model.connection as unknown as {
      stream?: { destroy(error?: Error): void };
    };
    stream?.destroy(new Error(`the broker did not answer the close in ${timeoutMs} ms`));
    await settlesWithin(this.closed, timeoutMs);
  }

  /** Closes the connection. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
