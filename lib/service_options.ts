/**
 * The options of the services and the demo (Estoque's order mode, OrdemDeProducao), and those every
 * command that talks to the broker takes: flag, environment variable, default and help text.
 *
 * @module
 */

import { DEFAULT_RABBITMQ_URL } from "./broker.ts";
import type { OptionSpecs } from "./cli.ts";
import { DEFAULT_LEDGER_PATH } from "./ledger.ts";
import { LOG_LEVELS } from "./log.ts";
import { MAX_RANDOM_QUANTITY } from "./order.ts";
import { DEFAULT_RETRY_POLICY } from "./retry_policy.ts";
import { DEFAULT_DELIVERY_LIMIT } from "./topology.ts";

/** Options every command that talks to the broker takes. */
export const COMMON_OPTIONS = {
  url: {
    type: "string",
    env: "RABBITMQ_URL",
    default: DEFAULT_RABBITMQ_URL,
    placeholder: "amqp-url[,...]",
    secret: true,
    description:
      "The broker, as an amqp:// or amqps:// URL; several, comma-separated, for a cluster (tried in turn). ?heartbeat=N sets the heartbeat (default 5 s; a connection silent for 1.5 heartbeats is dropped and another node tried). Also from RABBITMQ_URL_FILE.",
  },
  user: {
    type: "string",
    env: "RABBITMQ_USER",
    placeholder: "name",
    description: "The login for every broker URL, replacing any in the URLs.",
  },
  password: {
    type: "string",
    env: "RABBITMQ_PASSWORD",
    placeholder: "secret",
    secret: true,
    description:
      "The password for every broker URL, as it is (@ : / need no URL encoding). Give it by environment or RABBITMQ_PASSWORD_FILE, not on the command line.",
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
    placeholder: "Q|MIN-MAX",
    description:
      `Quantity of every order, or a range to draw each from, e.g. 1-600 (default: random from 0 to ${MAX_RANDOM_QUANTITY}, as the Go Estoque).`,
  },
  "confirm-timeout": {
    type: "string",
    env: "CONFIRM_TIMEOUT_MS",
    default: "10000",
    placeholder: "ms",
    description: "A publish not confirmed within this long is sent again on a new connection.",
  },
  "first-confirm-timeout": {
    type: "string",
    env: "FIRST_CONFIRM_TIMEOUT_MS",
    default: "3000",
    placeholder: "ms",
    description:
      "The same for the publishes sent before a connection's first confirm (100 at most): a node still naming a quorum queue's cut-off leader holds them until the partition heals. Doubled, up to --confirm-timeout, after a connection that had none.",
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
    description:
      "Publish at most N new orders per second; orders sent again after a failure go at once (default: as fast as confirms allow).",
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
    default: "2000",
    placeholder: "N",
    description: "Unacknowledged deliveries the broker may send at once.",
  },
  "prefetch-bytes": {
    type: "string",
    env: "PREFETCH_BYTES",
    default: String(64 * 1024 * 1024),
    placeholder: "bytes",
    description:
      "Bodies held unsettled at most: the prefetch starts small and grows while bodies fit.",
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
    secret: true,
    description:
      "Where production orders are kept: a SQLite file, or PostgreSQL shared by several instances (overrides --ledger). Also from LEDGER_URL_FILE.",
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
  "first-delivery-timeout": {
    type: "string",
    env: "FIRST_DELIVERY_TIMEOUT_MS",
    default: "4000",
    placeholder: "ms",
    description:
      "On a quorum queue, a consumer whose start the broker does not answer within half this time, or that is sent nothing this long after it started consuming while the queue holds ready messages, is taken for stuck and consumes again on a new connection; doubled each time, up to 60 s (0: never).",
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

/** The demo's options: those of both services with demo defaults, and its own. */
export const DEMO_OPTIONS = {
  ...COMMON_OPTIONS,
  prefix: { ...COMMON_OPTIONS.prefix, env: "DEMO_PREFIX", default: "demo." },
  "retry-delay": { ...COMMON_OPTIONS["retry-delay"], env: "DEMO_RETRY_DELAY_MS", default: "200" },
  "log-level": { ...COMMON_OPTIONS["log-level"], env: "DEMO_LOG_LEVEL", default: "error" },
  orders: {
    type: "string",
    env: "DEMO_ORDERS",
    default: "30",
    placeholder: "N",
    description: "Valid orders to publish; every third is over the limit.",
  },
  ledger: {
    type: "string",
    env: "DEMO_LEDGER_PATH",
    default: "data/demo.sqlite",
    placeholder: "path",
    description: "The demo's ledger file (emptied first).",
  },
  consumers: {
    type: "string",
    env: "DEMO_CONSUMERS",
    default: "1",
    placeholder: "N",
    description: "Consumers competing for the queue, each with its own ledger connection.",
  },
  "ledger-url": {
    type: "string",
    env: "DEMO_LEDGER_URL",
    placeholder: "sqlite:PATH|postgres://...",
    description:
      "The ledger as a URL; a PostgreSQL one is shared by the consumers (emptied first).",
  },
  keep: {
    type: "boolean",
    env: "DEMO_KEEP",
    description: "Keep the demo's queues and exchanges afterwards.",
  },
} as const satisfies OptionSpecs;
