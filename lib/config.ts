/**
 * Turns a parsed command line into a validated, read-only config for each command. The option
 * tables themselves (flag, env variable, default, help) are in lib/options.ts.
 *
 * @module
 */

import type { LogLevel } from "@logtape/logtape";
import { redactUrl, type TlsFiles } from "./broker.ts";
import {
  booleanOption,
  choiceOption,
  integerOption,
  numberOption,
  type OptionValue,
  type ParsedCommandLine,
  stringOption,
  UsageError,
} from "./cli.ts";
import { defaultInstanceId } from "./ledger.ts";
import { LOG_LEVELS } from "./log.ts";
import type { QuantityRange } from "./order.ts";
import type { COMMON_OPTIONS, CTL_OPTIONS, ESTOQUE_OPTIONS, ORDEM_OPTIONS } from "./options.ts";
import { type BackoffStrategy, retryDelays, type RetryPolicy } from "./retry_policy.ts";
import { parseBrokerUrls } from "./reconnect.ts";
import {
  type QueueType,
  type RetryBackend,
  type Topology,
  topology,
  TopologyOptionError,
} from "./topology.ts";

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
  /** A fixed quantity, a range to draw each from, or undefined for the Go Estoque's range. */
  readonly quantity: number | QuantityRange | undefined;
  /** Confirm timeout, in milliseconds. */
  readonly confirmTimeoutMs: number;
  /** Confirm timeout of the publishes sent before a connection's first confirm, in milliseconds. */
  readonly firstConfirmTimeoutMs: number;
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
  /** The bytes of bodies the consumer holds unsettled at most. */
  readonly prefetchBytes: number;
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
  /** How long the consumer may be sent nothing while its queue holds messages (0: no limit). */
  readonly firstDeliveryTimeoutMs: number;
  /** Grace period on shutdown, in milliseconds. */
  readonly shutdownTimeoutMs: number;
  /** The metrics and health endpoint, or undefined when turned off with `--no-http`. */
  readonly http: { readonly port: number; readonly hostname: string } | undefined;
}

const DAY_MS = 86_400_000;

/** The options {@linkcode connectionConfig} reads. */
type ConnectionOptionValues = Record<
  "url" | "user" | "password" | "tls-ca" | "tls-cert" | "tls-key",
  OptionValue
>;

/**
 * A broker URL with its login replaced by `user` and `password` where given, percent-encoded so
 * that any character works (amqplib decodes them).
 */
export function withLogin(url: string, user?: string, password?: string): string {
  if (user === undefined && password === undefined) return url;
  const parsed = new URL(url);
  if (user !== undefined) parsed.username = encodeURIComponent(user);
  if (password !== undefined) parsed.password = encodeURIComponent(password);
  return parsed.href;
}

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
  // A TLS file that cannot be read is a setting to fix, named once, before any connection.
  for (const option of [o["tls-ca"], o["tls-cert"], o["tls-key"]]) {
    const file = path(option);
    if (file === undefined) continue;
    try {
      Deno.statSync(file);
    } catch (error) {
      throw new UsageError(`${option.label} ${file} cannot be read (${(error as Error).name})`);
    }
  }
  const user = path(o.user);
  const password = o.password.value === undefined ? undefined : stringOption(o.password);
  urls = urls.map((url) => withLogin(url, user, password));
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
    if (!(error instanceof TopologyOptionError)) throw error;
    const option = {
      prefix: o.prefix,
      backend: o["retry-backend"],
      queueType: o["queue-type"],
      deliveryLimit: o["delivery-limit"],
      retryDelays: o["retry-delay"],
    }[error.option];
    throw new UsageError(`${option.label}: ${error.message}`, { cause: error });
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

/**
 * Reads `--quantity`: `Q`, or `MIN-MAX` for a range to draw each order's quantity from.
 * @throws {UsageError} naming the option and the value seen.
 */
function quantityOption(option: OptionValue): number | QuantityRange | undefined {
  if (option.value === undefined) return undefined;
  const text = stringOption(option).trim();
  const range = /^(\d+)\s*-\s*(\d+)$/.exec(text);
  if (range === null) return integerOption(option, 0, Number.MAX_SAFE_INTEGER);
  const [min, max] = [Number(range[1]), Number(range[2])];
  if (!Number.isSafeInteger(max) || min > max) {
    throw new UsageError(
      `${option.label} must be Q or MIN-MAX with MIN <= MAX, got ${JSON.stringify(option.value)}`,
    );
  }
  return { min, max };
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
    quantity: quantityOption(o.quantity),
    confirmTimeoutMs: integerOption(o["confirm-timeout"], 1, 600_000),
    firstConfirmTimeoutMs: integerOption(o["first-confirm-timeout"], 1, 600_000),
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
    prefetchBytes: integerOption(o["prefetch-bytes"], 1_024, Number.MAX_SAFE_INTEGER),
    maxQuantity: integerOption(o["max-quantity"], 0, Number.MAX_SAFE_INTEGER),
    ledgerPath,
    ledgerUrl,
    instanceId,
    drain: booleanOption(o.drain),
    confirmTimeoutMs: integerOption(o["confirm-timeout"], 1, 600_000),
    firstDeliveryTimeoutMs: integerOption(o["first-delivery-timeout"], 0, 600_000),
    shutdownTimeoutMs: integerOption(o["shutdown-timeout"], 0, 600_000),
    http: booleanOption(o.http)
      ? { port: integerOption(o["http-port"], 0, 65_535), hostname: stringOption(o["http-host"]) }
      : undefined,
  });
}

/** What `deno task ctl` does. */
export const CTL_VERBS = ["pause", "resume", "status"] as const;

/** `deno task ctl`'s configuration. */
export interface CtlConfig {
  /** pause, resume or status. */
  readonly verb: typeof CTL_VERBS[number];
  /** Every broker URL, in the order given (they hold the password: log them redacted). */
  readonly urls: readonly string[];
  /** TLS files for amqps:// URLs. */
  readonly tls: TlsFiles;
  /** The topology of `--prefix` and `--queue-type`: its control plane. */
  readonly topology: Topology;
  /** Why (`--reason`); a pause needs one. */
  readonly reason: string | undefined;
  /** How long to collect the instances' answers, in milliseconds; 0 asks none. */
  readonly waitMs: number;
  /** Print JSON. */
  readonly json: boolean;
  /** The audit trail file. */
  readonly auditLog: string;
  /** Who, as given (`--operator`); undefined for user@host. */
  readonly operator: string | undefined;
  /** The lowest level logged. */
  readonly logLevel: LogLevel;
}

/** Builds `deno task ctl`'s configuration. @throws {UsageError} naming what is wrong. */
export function ctlConfig(cl: ParsedCommandLine): CtlConfig {
  const o = cl.options as Record<keyof typeof CTL_OPTIONS, ParsedCommandLine["options"][string]>;
  const [verb, ...rest] = cl.positionals;
  if (verb === undefined || !(CTL_VERBS as readonly string[]).includes(verb)) {
    throw new UsageError(
      `say what to do: ${CTL_VERBS.join(", ")}${
        verb === undefined ? "" : ` (got ${JSON.stringify(verb)})`
      }`,
    );
  }
  if (rest.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(rest[0])}`);
  const text = (option: OptionValue) =>
    option.value === undefined || String(option.value).trim() === ""
      ? undefined
      : stringOption(option).trim();
  const reason = text(o.reason);
  if (verb === "pause" && reason === undefined) {
    throw new UsageError(`pause needs ${o.reason.label.replace(" (default)", "")}: say why`);
  }
  if (verb === "status" && reason !== undefined) {
    throw new UsageError(`${o.reason.label} is for pause and resume, not status`);
  }
  const { urls, tls } = connectionConfig(o);
  let topo: Topology;
  try {
    topo = topology({
      prefix: stringOption(o.prefix),
      queueType: choiceOption<QueueType>(o["queue-type"], ["classic", "quorum"]),
    });
  } catch (error) {
    if (!(error instanceof TopologyOptionError)) throw error;
    throw new UsageError(`${o.prefix.label}: ${error.message}`, { cause: error });
  }
  return Object.freeze({
    verb: verb as CtlConfig["verb"],
    urls,
    tls,
    topology: topo,
    reason,
    waitMs: integerOption(o.wait, 0, 600_000),
    json: booleanOption(o.json),
    auditLog: stringOption(o["audit-log"]),
    operator: text(o.operator),
    logLevel: choiceOption(o["log-level"], LOG_LEVELS),
  });
}
