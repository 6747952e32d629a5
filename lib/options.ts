/**
 * The options of every command, in one place: flag, environment variable, default and help text.
 * The entry scripts parse them (lib/cli.ts), lib/config.ts turns them into validated configs, and
 * scripts/config_doc.ts writes docs/configuration.md from them.
 *
 * @module
 */

import { DEFAULT_RABBITMQ_URL } from "./broker.ts";
import type { OptionSpecs } from "./cli.ts";
import { LOOPBACK_HOSTS } from "./console/allowed_hosts.ts";
import type { CommandSpec } from "./main.ts";
import { DEFAULT_LEDGER_PATH } from "./ledger.ts";
import { LOG_LEVELS } from "./log.ts";
import { MAX_RANDOM_QUANTITY } from "./order.ts";
import { DEFAULT_STOCK_URL } from "./stock_store.ts";
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
      "The broker, as an amqp:// or amqps:// URL; several, comma-separated, for a cluster (tried in turn). Also from RABBITMQ_URL_FILE.",
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
/** The doctor's options. */
export const DOCTOR_OPTIONS = {
  ...COMMON_OPTIONS,
  "management-url": {
    type: "string",
    env: "RABBITMQ_MANAGEMENT_URL",
    placeholder: "http-url",
    description:
      "The management API, for argument, binding and quorum checks (default: the broker's host, port 15672; the broker's login unless the URL has one).",
  },
  management: {
    type: "boolean",
    default: "true",
    description: "Skip the checks that need the management API.",
  },
  json: { type: "boolean", description: "Print the findings as JSON." },
} as const satisfies OptionSpecs;
/** The dead-letter tooling's options. */
export const DLQ_OPTIONS = {
  url: COMMON_OPTIONS.url,
  user: COMMON_OPTIONS.user,
  password: COMMON_OPTIONS.password,
  "tls-ca": COMMON_OPTIONS["tls-ca"],
  "tls-cert": COMMON_OPTIONS["tls-cert"],
  "tls-key": COMMON_OPTIONS["tls-key"],
  prefix: COMMON_OPTIONS.prefix,
  reason: {
    type: "string",
    placeholder: "reason",
    description: "Only dead letters with this reason (exhausted, invalid, unroutable, ...).",
  },
  since: {
    type: "string",
    placeholder: "90s|15m|2h|7d|date",
    description: "Only dead letters dead-lettered since then.",
  },
  ref: { type: "string", placeholder: "RefCode", description: "Only this RefCode." },
  limit: { type: "string", placeholder: "N", description: "At most N dead letters." },
  json: { type: "boolean", description: "list, show: print JSON for scripts." },
  "dry-run": { type: "boolean", description: "replay: say what would be replayed, move nothing." },
  rate: { type: "string", placeholder: "N", description: "replay: at most N messages a second." },
  yes: { type: "boolean", short: "y", description: "purge: do not ask for confirmation." },
  window: {
    type: "string",
    env: "DLQ_WINDOW",
    default: "5000",
    placeholder: "N",
    description: "replay: republishes awaiting their confirm at once.",
  },
  "from-file": {
    type: "string",
    placeholder: "path",
    description: "replay: send back the dead letters of a purge archive instead of the DLQ's.",
  },
  archive: {
    type: "boolean",
    default: "true",
    description: "purge: delete without writing the dead letters to an archive first.",
  },
  "archive-dir": {
    type: "string",
    env: "DLQ_ARCHIVE_DIR",
    default: "data/dlq-archive",
    placeholder: "dir",
    description: "purge: where the archive (JSON Lines, one file per purge) is written.",
  },
  "audit-log": {
    type: "string",
    env: "DLQ_AUDIT_LOG",
    default: "data/dlq-audit.jsonl",
    placeholder: "path",
    description: "replay, purge: the audit trail every run (dry runs too) is appended to.",
  },
  operator: {
    type: "string",
    env: "DLQ_OPERATOR",
    placeholder: "name",
    description: "replay, purge: who, for the audit trail (default: user@host).",
  },
  "log-level": { ...COMMON_OPTIONS["log-level"], default: "warning" },
} as const satisfies OptionSpecs;

/** The browser console's options. */
export const CONSOLE_OPTIONS = {
  // The services' own: the console finds the same queues (retry tiers included) they declare.
  ...COMMON_OPTIONS,
  hostname: {
    type: "string",
    env: "CONSOLE_HOSTNAME",
    default: "127.0.0.1",
    placeholder: "address",
    description:
      "The address the console listens on. Anything but a loopback address needs --token, --operator-token or --users-file.",
  },
  port: {
    type: "string",
    env: "CONSOLE_PORT",
    default: "8090",
    placeholder: "port",
    description: "The console's port (0 picks a free one).",
  },
  "allowed-hosts": {
    type: "string",
    env: "CONSOLE_ALLOWED_HOSTS",
    default: LOOPBACK_HOSTS,
    placeholder: "host[:port][,...]",
    description:
      "The host names the console answers to (the Host header), comma-separated; one without :port goes with the console's own port (or none, behind a proxy). Any other gets 421, so a page whose name was rebound to this address reads nothing. The --hostname address is always answered to.",
  },
  token: {
    type: "string",
    env: "CONSOLE_TOKEN",
    placeholder: "secret",
    secret: true,
    description:
      "A bearer token that may read (Authorization: Bearer ...). Also from CONSOLE_TOKEN_FILE.",
  },
  "operator-token": {
    type: "string",
    env: "CONSOLE_OPERATOR_TOKEN",
    placeholder: "secret",
    secret: true,
    description:
      "A bearer token that may also replay and purge. Also from CONSOLE_OPERATOR_TOKEN_FILE.",
  },
  "users-file": {
    type: "string",
    env: "CONSOLE_USERS_FILE",
    placeholder: "path",
    description:
      "Basic-auth users, one per line: name:role:password, role viewer or operator, the password as it is or sha256:HEX.",
  },
  "read-only": {
    type: "boolean",
    env: "CONSOLE_READ_ONLY",
    description: "Nobody may replay or purge, whatever their role.",
  },
  "ledger-url": {
    type: "string",
    env: "LEDGER_URL",
    default: `sqlite:${DEFAULT_LEDGER_PATH}`,
    placeholder: "sqlite:PATH|postgres://...",
    secret: true,
    description:
      "The ledger OrdemDeProducao writes, read for counts and journeys (never written). Also from LEDGER_URL_FILE.",
  },
  "metrics-url": {
    type: "string",
    env: "CONSOLE_METRICS_URLS",
    default: "http://127.0.0.1:9464/metrics",
    placeholder: "http-url[,...]",
    description:
      "OrdemDeProducao's /metrics endpoints (comma-separated, one per instance), for the rates.",
  },
  "management-url": DOCTOR_OPTIONS["management-url"],
  management: {
    type: "boolean",
    default: "true",
    description: "Do not ask the management API (no publish rate; everything else still shows).",
  },
  "index-max-age": {
    type: "string",
    env: "CONSOLE_INDEX_MAX_AGE_MS",
    default: "5000",
    placeholder: "ms",
    description:
      "How old the console's index of the dead-letter queue may get before a page asks for a new walk.",
  },
  "history-interval": {
    type: "string",
    env: "CONSOLE_HISTORY_INTERVAL_MS",
    default: "5000",
    placeholder: "ms",
    description:
      "How often the overview's charts take a point; the last hour is kept in the console's memory (gone when it restarts).",
  },
  "max-selection": {
    type: "string",
    env: "CONSOLE_MAX_SELECTION",
    default: "1000",
    placeholder: "N",
    description: "The most dead letters one selection (ticked one by one) may name.",
  },
  "archive-dir": DLQ_OPTIONS["archive-dir"],
  "audit-log": DLQ_OPTIONS["audit-log"],
} as const satisfies OptionSpecs;

/** The options of `deno task ctl` (pause, resume, status). */
export const CTL_OPTIONS = {
  url: COMMON_OPTIONS.url,
  user: COMMON_OPTIONS.user,
  password: COMMON_OPTIONS.password,
  "tls-ca": COMMON_OPTIONS["tls-ca"],
  "tls-cert": COMMON_OPTIONS["tls-cert"],
  "tls-key": COMMON_OPTIONS["tls-key"],
  prefix: COMMON_OPTIONS.prefix,
  "queue-type": {
    ...COMMON_OPTIONS["queue-type"],
    description:
      "The type of the services' queues: the control plane's state queue is declared alike.",
  },
  reason: {
    type: "string",
    placeholder: "text",
    description: "Why: pause needs one (shown on the console, in /readyz and in the audit trail).",
  },
  wait: {
    type: "string",
    env: "CTL_WAIT_MS",
    default: "2000",
    placeholder: "ms",
    description: "How long to collect the running instances' answers (0: do not ask).",
  },
  json: { type: "boolean", description: "Print JSON for scripts." },
  "audit-log": {
    ...DLQ_OPTIONS["audit-log"],
    description: "pause, resume: the audit trail each change is appended to.",
  },
  operator: {
    ...DLQ_OPTIONS.operator,
    description: "pause, resume: who, for the state and the audit trail (default: user@host).",
  },
  "log-level": { ...COMMON_OPTIONS["log-level"], default: "warning" },
} as const satisfies OptionSpecs;

/** Where Estoque keeps its stock: the option of every stock subcommand. */
export const STOCK_STORE_OPTION = {
  "stock-url": {
    type: "string",
    env: "STOCK_URL",
    default: DEFAULT_STOCK_URL,
    placeholder: "sqlite:PATH|postgres://...",
    secret: true,
    description:
      "Where Estoque keeps its stock, movements and outbox: a SQLite file (one relay), or PostgreSQL shared by several instances and relays. Also from STOCK_URL_FILE.",
  },
} as const satisfies OptionSpecs;

/** `estoque move`'s options. */
export const ESTOQUE_MOVE_OPTIONS = {
  ...STOCK_STORE_OPTION,
  color: {
    type: "string",
    placeholder: "code",
    description: "The colour whose stock moves: its code, a UUID (the ColorCode of its orders).",
  },
  delta: {
    type: "string",
    placeholder: "N",
    description:
      "Units in (positive) or out (negative, e.g. --delta -5): a whole number other than 0.",
  },
  reason: {
    type: "string",
    placeholder: "text",
    description: "Why, for the stock's history (an order number, a count), at most 200 characters.",
  },
  json: { type: "boolean", description: "Print the movement as JSON." },
  "log-level": { ...COMMON_OPTIONS["log-level"], default: "warning" },
} as const satisfies OptionSpecs;

/** `estoque stock`'s options (`set` and `list`). */
export const ESTOQUE_STOCK_OPTIONS = {
  ...STOCK_STORE_OPTION,
  color: {
    type: "string",
    placeholder: "code",
    description: "set: the colour, by its code, a UUID (the ColorCode of its orders).",
  },
  quantity: { type: "string", placeholder: "N", description: "set: units in stock." },
  "reorder-point": {
    type: "string",
    placeholder: "N",
    description: "set: when stock falls below this, production is asked for.",
  },
  "reorder-quantity": {
    type: "string",
    placeholder: "N",
    description: "set: how many units a production-order request asks for (at least 1).",
  },
  json: { type: "boolean", description: "Print JSON." },
  "log-level": { ...COMMON_OPTIONS["log-level"], default: "warning" },
} as const satisfies OptionSpecs;

/** The options of Estoque's relay, alone (`estoque relay`) or inside `estoque serve`. */
export const ESTOQUE_RELAY_OPTIONS = {
  ...COMMON_OPTIONS,
  ...DECLARE_OPTION,
  ...STOCK_STORE_OPTION,
  "confirm-timeout": {
    ...ESTOQUE_OPTIONS["confirm-timeout"],
    description: "A request not confirmed within this long is published again.",
  },
  "batch-size": {
    type: "string",
    env: "OUTBOX_BATCH_SIZE",
    default: "500",
    placeholder: "N",
    description: "Outbox rows a relay takes, publishes and marks sent at once.",
  },
  "poll-interval": {
    type: "string",
    env: "OUTBOX_POLL_MS",
    default: "1000",
    placeholder: "ms",
    description:
      "How long an idle relay sleeps before it looks anyway; it wakes at each commit of its own process (SQLite) or of any instance (PostgreSQL LISTEN/NOTIFY).",
  },
  retention: {
    type: "string",
    env: "OUTBOX_RETENTION_MS",
    default: String(7 * 86_400_000),
    placeholder: "ms",
    description: "How long sent requests stay in the outbox, for audit, before they are deleted.",
  },
  "instance-id": {
    type: "string",
    env: "INSTANCE_ID",
    placeholder: "text",
    description: "This process's name in the metrics and logs (default: hostname:pid).",
  },
  http: {
    type: "boolean",
    env: "ESTOQUE_HTTP_ENABLED",
    default: "true",
    description: "Turn off the HTTP endpoint (/metrics, /healthz, /readyz and the stock API).",
  },
  "http-port": {
    type: "string",
    env: "ESTOQUE_HTTP_PORT",
    default: "9465",
    placeholder: "port",
    description: "The port of Estoque's HTTP endpoint (0 picks a free one).",
  },
  "http-host": {
    type: "string",
    env: "ESTOQUE_HTTP_HOST",
    default: "127.0.0.1",
    placeholder: "address",
    description:
      "The address the endpoint listens on. With `serve`, anything but a loopback address needs --token, --operator-token or --users-file.",
  },
} as const satisfies OptionSpecs;

/** `estoque serve`'s options: the relay's, the stock API's and the guard of its movements. */
export const ESTOQUE_SERVE_OPTIONS = {
  ...ESTOQUE_RELAY_OPTIONS,
  relay: {
    type: "boolean",
    env: "ESTOQUE_RELAY",
    default: "true",
    description:
      "Take movements only, relay nothing: the outbox is published by relays run apart (deno task estoque relay).",
  },
  "allowed-hosts": {
    ...CONSOLE_OPTIONS["allowed-hosts"],
    env: "ESTOQUE_ALLOWED_HOSTS",
    description:
      "The host names the stock API answers to (the Host header), comma-separated, as the console's --allowed-hosts; any other gets 421. The --http-host address is always answered to.",
  },
  token: {
    ...CONSOLE_OPTIONS.token,
    env: "ESTOQUE_TOKEN",
    description:
      "A bearer token that may read the stock API (Authorization: Bearer ...). Also from ESTOQUE_TOKEN_FILE.",
  },
  "operator-token": {
    ...CONSOLE_OPTIONS["operator-token"],
    env: "ESTOQUE_OPERATOR_TOKEN",
    description:
      "A bearer token that may also post stock movements. Also from ESTOQUE_OPERATOR_TOKEN_FILE.",
  },
  "users-file": {
    ...CONSOLE_OPTIONS["users-file"],
    env: "ESTOQUE_USERS_FILE",
    description:
      "Basic-auth users of the stock API, as the console's: name:role:password, an operator may post movements.",
  },
} as const satisfies OptionSpecs;

/** Every command, by task name. */
export const COMMANDS = {
  estoque: {
    usage:
      "deno task estoque [options] (the stock service: estoque <move|stock|serve|relay> --help)",
    summary: "Estoque: declares the topology and publishes production-order requests.",
    options: ESTOQUE_OPTIONS,
  },
  "estoque move": {
    usage: "deno task estoque move --color CODE --delta N [--reason TEXT] [options]",
    summary:
      "Moves a colour's stock; a movement that takes it below its reorder point puts a production-order request in the outbox, in the same transaction.",
    options: ESTOQUE_MOVE_OPTIONS,
    allowPositionals: true,
  },
  "estoque stock": {
    usage:
      "deno task estoque stock <set --color CODE --quantity N --reorder-point P --reorder-quantity Q|list> [options]",
    summary: "Sets up a colour's stock item, or lists every item.",
    options: ESTOQUE_STOCK_OPTIONS,
    allowPositionals: true,
  },
  "estoque serve": {
    usage: "deno task estoque serve [options]",
    summary:
      "Estoque's stock service: the stock API (POST /api/stock/movements), /metrics, /healthz and /readyz, and the outbox relay unless --no-relay.",
    options: ESTOQUE_SERVE_OPTIONS,
    allowPositionals: true,
  },
  "estoque relay": {
    usage: "deno task estoque relay [options]",
    summary:
      "The outbox relay alone: publishes the requests stock movements committed, each marked sent once the broker confirmed it.",
    options: ESTOQUE_RELAY_OPTIONS,
    allowPositionals: true,
  },
  ordem: {
    usage: "deno task ordem [options]",
    summary:
      "OrdemDeProducao: consumes production-order requests, retries failures, dead-letters the rest.",
    options: ORDEM_OPTIONS,
  },
  demo: {
    usage: "deno task demo [options]",
    summary: "The whole flow in one command.",
    options: DEMO_OPTIONS,
  },
  doctor: {
    usage: "deno task doctor [options]",
    summary: "Checks the broker against the services' topology.",
    options: DOCTOR_OPTIONS,
  },
  dlq: {
    usage:
      "deno task dlq <list|show REF|replay|purge> [options] (dlq <command> --help: its options)",
    summary: "Dead-letter tooling: list, show, replay or purge dead-lettered production orders.",
    options: DLQ_OPTIONS,
    allowPositionals: true,
  },
  console: {
    usage: "deno task console [options]",
    summary:
      "The browser console: the flow live, failures by cause, an order's journey, replay and purge.",
    options: CONSOLE_OPTIONS,
  },
  ctl: {
    usage: "deno task ctl <pause --reason TEXT|resume|status> [options]",
    summary:
      "Pauses or resumes every OrdemDeProducao through the broker (orders wait in the queue), or says whether they are paused.",
    options: CTL_OPTIONS,
    allowPositionals: true,
  },
} as const satisfies Record<string, CommandSpec>;
