/**
 * The configuration of every command: option tables (flag, env variable, default, help) and the
 * functions that turn a parsed command line into a validated, read-only config.
 *
 * @module
 */

import type { LogLevel } from "@logtape/logtape";
import { DEFAULT_RABBITMQ_URL, redactUrl, type TlsFiles } from "./broker.ts";
import {
  booleanOption,
  choiceOption,
  integerOption,
  numberOption,
  type OptionSpecs,
  type OptionValue,
  type ParsedCommandLine,
  stringOption,
  UsageError,
} from "./cli.ts";
import { DEFAULT_LEDGER_PATH, defaultInstanceId } from "./ledger.ts";
import { LOG_LEVELS } from "./log.ts";
import { MAX_RANDOM_QUANTITY } from "./order.ts";
import {
  type BackoffStrategy,
  DEFAULT_RETRY_POLICY,
  retryDelays,
  type RetryPolicy,
} from "./retry_policy.ts";
import { parseBrokerUrls } from "./reconnect.ts";
import {
  DEFAULT_DELIVERY_LIMIT,
  type QueueType,
  type RetryBackend,
  type Topology,
  topology,
} from "./topology.ts";

/** Options every command that talks to the broker takes. */
export const COMMON_OPTIONS = {
  url: {
    type: "string",
    env: "RABBITMQ_URL",
    default: DEFAULT_RABBITMQ_URL,
    placeholder: "amqp-url[,...]",
    description:
      "The broker, as an amqp:// or amqps:// URL; several, comma-separated, for a cluster (tried in turn).",
  },
  "tls-ca": {
    type: "string",
    env: "RABBITMQ_CA_FILE",
    placeholder: "path",
    description: "amqps://: the CA certificate (PEM) to trust instead of the system's.",
  },
  "tls-cert": {
    type: "string",
    env: "RABBITMQ_CERT_FILE",
    placeholder: "path",
    description: "amqps://: a client certificate (PEM), for brokers that verify clients.",
  },
  "tls-key": {
    type: "string",
    env: "RABBITMQ_KEY_FILE",
    placeholder: "path",
    description: "amqps://: the client certificate's private key (PEM).",
  },
  "reconnect-timeout": {
    type: "string",
    env: "RECONNECT_TIMEOUT_MS",
    default: "300000",
    placeholder: "ms",
    description:
      "Give up when no broker could be reached for this long (0: one round of attempts).",
  },
  "queue-type": {
    type: "string",
    env: "QUEUE_TYPE",
    default: "classic",
    placeholder: "classic|quorum",
    description: "The type of every queue: classic, or quorum (replicated across a cluster).",
  },
  "delivery-limit": {
    type: "string",
    env: "DELIVERY_LIMIT",
    default: String(DEFAULT_DELIVERY_LIMIT),
    placeholder: "N",
    description:
      "Quorum queues: returns to the queue (crashed consumers) before the broker dead-letters a message.",
  },
  prefix: {
    type: "string",
    env: "TOPOLOGY_PREFIX",
    default: "",
    placeholder: "text",
    description: "Put before every exchange and queue name, to share a broker.",
  },
  "retry-backend": {
    type: "string",
    env: "RETRY_BACKEND",
    default: "ttl",
    placeholder: "ttl|plugin",
    description: "How retries wait: per-delay TTL queues, or the delayed-message plugin.",
  },
  "max-retries": {
    type: "string",
    env: "RETRY_MAX",
    default: String(DEFAULT_RETRY_POLICY.maxRetries),
    placeholder: "N",
    description: "Retries before a failing message is dead-lettered.",
  },
  "retry-delay": {
    type: "string",
    env: "RETRY_DELAY_MS",
    default: String(DEFAULT_RETRY_POLICY.delayMs),
    placeholder: "ms",
    description: "Delay before the first retry, and the linear step.",
  },
  "retry-strategy": {
    type: "string",
    env: "RETRY_STRATEGY",
    default: DEFAULT_RETRY_POLICY.strategy,
    placeholder: "linear|exponential",
    description: "How the delay grows: delay x n, or delay x 2^(n-1).",
  },
  "retry-max-delay": {
    type: "string",
    env: "RETRY_MAX_DELAY_MS",
    default: String(DEFAULT_RETRY_POLICY.maxDelayMs),
    placeholder: "ms",
    description: "No retry waits longer than this.",
  },
  "retry-jitter": {
    type: "string",
    env: "RETRY_JITTER",
    default: String(DEFAULT_RETRY_POLICY.jitter),
    placeholder: "0..1",
    description: "Random spread of each delay, plugin backend only (0.2 = +/-20%).",
  },
  "log-level": {
    type: "string",
    env: "LOG_LEVEL",
    default: "info",
    placeholder: LOG_LEVELS.join("|"),
    description: "The lowest level of log lines written to stderr.",
  },
} as const satisfies OptionSpecs;

/** The option of both services that turns declaring off (`--no-declare`). */
export const DECLARE_OPTION = {
  declare: {
    type: "boolean",
    env: "TOPOLOGY_DECLARE",
    default: "true",
    description:
      "Declare nothing; only check that the exchanges and queues exist (a topology declared by someone else, e.g. the Go services).",
  },
} as const satisfies OptionSpecs;

/** Estoque's options. */
export const ESTOQUE_OPTIONS = {
  ...COMMON_OPTIONS,
  ...DECLARE_OPTION,
  count: {
    type: "string",
    short: "n",
    env: "ESTOQUE_COUNT",
    default: "1",
    placeholder: "N",
    description: "How many orders to publish.",
  },
  quantity: {
    type: "string",
    env: "ESTOQUE_QUANTITY",
    placeholder: "Q",
    description: `Quantity of every order (default: random from 0 to ${MAX_RANDOM_QUANTITY}).`,
  },
  "confirm-timeout": {
    type: "string",
    env: "CONFIRM_TIMEOUT_MS",
    default: "10000",
    placeholder: "ms",
    description: "A publish not confirmed within this long is sent again on a new connection.",
  },
  window: {
    type: "string",
    env: "PUBLISH_WINDOW",
    default: "20000",
    placeholder: "N",
    description: "Publishes awaiting their confirm at once.",
  },
  rate: {
    type: "string",
    env: "ESTOQUE_RATE",
    placeholder: "N",
    description: "Publish at most N orders per second (default: as fast as confirms allow).",
  },
  "confirmed-log": {
    type: "string",
    env: "ESTOQUE_CONFIRMED_LOG",
    placeholder: "path",
    description: "Append the RefCode of every order the broker confirmed to this file.",
  },
} as const satisfies OptionSpecs;

/** OrdemDeProducao's options. */
export const ORDEM_OPTIONS = {
  ...COMMON_OPTIONS,
  ...DECLARE_OPTION,
  prefetch: {
    type: "string",
    env: "PREFETCH",
    default: "500",
    placeholder: "N",
    description: "Unacknowledged deliveries the broker may send at once.",
  },
  "max-quantity": {
    type: "string",
    env: "MAX_QUANTITY",
    default: "500",
    placeholder: "Q",
    description: "Orders above this quantity fail and are retried.",
  },
  ledger: {
    type: "string",
    env: "LEDGER_PATH",
    default: DEFAULT_LEDGER_PATH,
    placeholder: "path",
    description: "The SQLite file of production orders.",
  },
  "ledger-url": {
    type: "string",
    env: "LEDGER_URL",
    placeholder: "sqlite:PATH|postgres://...",
    description:
      "Where production orders are kept: a SQLite file, or PostgreSQL shared by several instances (overrides --ledger).",
  },
  "instance-id": {
    type: "string",
    env: "INSTANCE_ID",
    placeholder: "text",
    description: "This consumer's name in the ledger and logs (default: hostname:pid).",
  },
  drain: {
    type: "boolean",
    env: "ORDEM_DRAIN",
    description: "Exit once the work queue and its retries are empty.",
  },
  "confirm-timeout": {
    ...ESTOQUE_OPTIONS["confirm-timeout"],
    description: "A retry or dead-letter copy not confirmed within this long is published again.",
  },
  http: {
    type: "boolean",
    env: "HTTP_ENABLED",
    default: "true",
    description: "Turn off the /metrics, /healthz and /readyz endpoint.",
  },
  "http-port": {
    type: "string",
    env: "HTTP_PORT",
    default: "9464",
    placeholder: "port",
    description: "The port of the metrics and health endpoint.",
  },
  "http-host": {
    type: "string",
    env: "HTTP_HOST",
    default: "127.0.0.1",
    placeholder: "address",
    description: "The address the endpoint listens on (0.0.0.0 for all).",
  },
  "shutdown-timeout": {
    type: "string",
    env: "SHUTDOWN_TIMEOUT_MS",
    default: "10000",
    placeholder: "ms",
    description: "On SIGINT/SIGTERM, how long in-flight messages may take to finish.",
  },
} as const satisfies OptionSpecs;

/** What every broker command is configured with. */
export interface CommonConfig {
  /** The first broker URL (holds the password: log it through `redactUrl`). */
  readonly url: string;
  /** Every broker URL, in the order given. */
  readonly urls: readonly string[];
  /** TLS files for amqps:// URLs. */
  readonly tls: TlsFiles;
  /** Give up reconnecting after this long without a connection, in milliseconds. */
  readonly reconnectTimeoutMs: number;
  /** The topology, from prefix, backend and retry policy. */
  readonly topology: Topology;
  /** The retry policy. */
  readonly policy: RetryPolicy;
  /** The lowest level logged. */
  readonly logLevel: LogLevel;
}

/** What both services are configured with. */
export interface ServiceConfig extends CommonConfig {
  /** Declare the topology (true), or only check that it exists (`--no-declare`). */
  readonly declare: boolean;
}

/** Estoque's configuration. */
export interface EstoqueConfig extends ServiceConfig {
  /** How many orders to publish. */
  readonly count: number;
  /** A fixed quantity, or undefined for random ones. */
  readonly quantity: number | undefined;
  /** Confirm timeout, in milliseconds. */
  readonly confirmTimeoutMs: number;
  /** Publishes in flight at once. */
  readonly window: number;
  /** Publishes per second at most; undefined for no limit. */
  readonly rate: number | undefined;
  /** The file confirmed RefCodes are appended to, if any. */
  readonly confirmedLog: string | undefined;
}

/** OrdemDeProducao's configuration. */
export interface OrdemConfig extends ServiceConfig {
  /** The consumer prefetch. */
  readonly prefetch: number;
  /** The business rule's limit. */
  readonly maxQuantity: number;
  /** The SQLite ledger file (`--ledger`), when the ledger is SQLite. */
  readonly ledgerPath: string;
  /** Where the ledger is: `sqlite:<path>` or a `postgres://` URL (holds a password: redact it). */
  readonly ledgerUrl: string;
  /** The instance name written to the ledger. */
  readonly instanceId: string;
  /** Exit when drained. */
  readonly drain: boolean;
  /** Confirm timeout of retry and dead-letter copies, in milliseconds. */
  readonly confirmTimeoutMs: number;
  /** Grace period on shutdown, in milliseconds. */
  readonly shutdownTimeoutMs: number;
  /** The metrics and health endpoint, or undefined when turned off with `--no-http`. */
  readonly http: { readonly port: number; readonly hostname: string } | undefined;
}

const DAY_MS = 86_400_000;

/** The options {@linkcode connectionConfig} reads. */
type ConnectionOptionValues = Record<"url" | "tls-ca" | "tls-cert" | "tls-key", OptionValue>;

/**
 * The broker URLs (`--url`, comma-separated) and TLS files (`--tls-*`) of a command.
 * @throws {UsageError} naming a bad URL without its password.
 */
export function connectionConfig(o: ConnectionOptionValues): { urls: string[]; tls: TlsFiles } {
  let urls: string[];
  try {
    urls = parseBrokerUrls(stringOption(o.url));
  } catch (error) {
    throw new UsageError(`${o.url.label}: ${(error as Error).message}`);
  }
  const path = (option: OptionValue) =>
    option.value === undefined || option.value === "" ? undefined : stringOption(option);
  return {
    urls,
    tls: { caFile: path(o["tls-ca"]), certFile: path(o["tls-cert"]), keyFile: path(o["tls-key"]) },
  };
}

/**
 * Reads a ledger URL option: `sqlite:PATH` (its path returned too) or a `postgres://` URL;
 * undefined when the option is not given.
 * @throws {UsageError} naming the option, the URL shown without its password.
 */
export function ledgerUrlOption(
  option: OptionValue,
): { url: string; sqlitePath: string | undefined } | undefined {
  if (option.value === undefined || option.value === "") return undefined;
  const url = stringOption(option).trim();
  if (url.startsWith("sqlite:")) {
    const sqlitePath = url.slice("sqlite:".length);
    if (sqlitePath === "") {
      throw new UsageError(`${option.label} sqlite: needs a path, e.g. sqlite:data/ledger.sqlite`);
    }
    return { url, sqlitePath };
  }
  if (!/^postgres(ql)?:\/\/\S+$/.test(url)) {
    throw new UsageError(
      `${option.label} must be sqlite:PATH or a postgres:// URL, got ${
        JSON.stringify(redactUrl(url))
      }`,
    );
  }
  return { url, sqlitePath: undefined };
}

/** Builds the parts every command shares. */
export function commonConfig(cl: ParsedCommandLine): CommonConfig {
  const o = cl.options as Record<keyof typeof COMMON_OPTIONS, ParsedCommandLine["options"][string]>;
  const { urls, tls } = connectionConfig(o);
  const backend = choiceOption<RetryBackend>(o["retry-backend"], ["ttl", "plugin"]);
  const delayMs = integerOption(o["retry-delay"], 0, DAY_MS);
  const policy: RetryPolicy = Object.freeze({
    maxRetries: integerOption(o["max-retries"], 0, 100),
    delayMs,
    strategy: choiceOption<BackoffStrategy>(o["retry-strategy"], ["linear", "exponential"]),
    maxDelayMs: integerOption(o["retry-max-delay"], 0, DAY_MS),
    jitter: numberOption(o["retry-jitter"], 0, 1),
  });
  if (policy.maxDelayMs < delayMs) {
    throw new UsageError(
      `${o["retry-max-delay"].label} (${policy.maxDelayMs}) must not be below ${
        o["retry-delay"].label
      } (${delayMs})`,
    );
  }
  if (backend === "ttl" && policy.jitter > 0) {
    throw new UsageError(
      `${
        o["retry-jitter"].label
      } needs --retry-backend plugin: the ttl backend's delays are fixed per queue`,
    );
  }
  let topo: Topology;
  try {
    topo = topology({
      prefix: stringOption(o.prefix),
      backend,
      retryDelays: retryDelays(policy),
      queueType: choiceOption<QueueType>(o["queue-type"], ["classic", "quorum"]),
      deliveryLimit: integerOption(o["delivery-limit"], 1, 1_000_000),
    });
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const option = /queue/.test((error as Error).message) ? o["queue-type"] : o.prefix;
    throw new UsageError(`${option.label}: ${(error as Error).message}`);
  }
  return {
    url: urls[0]!,
    urls,
    tls,
    reconnectTimeoutMs: integerOption(o["reconnect-timeout"], 0, DAY_MS),
    topology: topo,
    policy,
    logLevel: choiceOption(o["log-level"], LOG_LEVELS),
  };
}

/** Builds Estoque's configuration. @throws {UsageError} naming the first bad option. */
export function estoqueConfig(cl: ParsedCommandLine): EstoqueConfig {
  const o = cl.options as Record<
    keyof typeof ESTOQUE_OPTIONS,
    ParsedCommandLine["options"][string]
  >;
  return Object.freeze({
    ...commonConfig(cl),
    declare: booleanOption(o.declare),
    count: integerOption(o.count, 1, 10_000_000),
    quantity: o.quantity.value === undefined
      ? undefined
      : integerOption(o.quantity, 0, Number.MAX_SAFE_INTEGER),
    confirmTimeoutMs: integerOption(o["confirm-timeout"], 1, 600_000),
    window: integerOption(o.window, 1, 100_000),
    rate: o.rate.value === undefined ? undefined : integerOption(o.rate, 1, 1_000_000),
    confirmedLog: o["confirmed-log"].value === undefined || o["confirmed-log"].value === ""
      ? undefined
      : stringOption(o["confirmed-log"]),
  });
}

/** Builds OrdemDeProducao's configuration. @throws {UsageError} naming the first bad option. */
export function ordemConfig(cl: ParsedCommandLine): OrdemConfig {
  const o = cl.options as Record<keyof typeof ORDEM_OPTIONS, ParsedCommandLine["options"][string]>;
  let ledgerPath = stringOption(o.ledger);
  if (ledgerPath.trim() === "") throw new UsageError(`${o.ledger.label} must not be empty`);
  const ledger = ledgerUrlOption(o["ledger-url"]);
  ledgerPath = ledger?.sqlitePath ?? ledgerPath;
  const ledgerUrl = ledger?.url ?? `sqlite:${ledgerPath}`;
  const instanceId = o["instance-id"].value === undefined
    ? defaultInstanceId()
    : stringOption(o["instance-id"]);
  return Object.freeze({
    ...commonConfig(cl),
    declare: booleanOption(o.declare),
    prefetch: integerOption(o.prefetch, 1, 65_535),
    maxQuantity: integerOption(o["max-quantity"], 0, Number.MAX_SAFE_INTEGER),
    ledgerPath,
    ledgerUrl,
    instanceId,
    drain: booleanOption(o.drain),
    confirmTimeoutMs: integerOption(o["confirm-timeout"], 1, 600_000),
    shutdownTimeoutMs: integerOption(o["shutdown-timeout"], 0, 600_000),
    http: booleanOption(o.http)
      ? { port: integerOption(o["http-port"], 0, 65_535), hostname: stringOption(o["http-host"]) }
      : undefined,
  });
}
