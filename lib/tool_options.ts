/**
 * The options of the tools: the doctor, the dead-letter tooling, the console and ctl.
 *
 * @module
 */

import type { OptionSpecs } from "./cli.ts";
import { LOOPBACK_HOSTS } from "./console/allowed_hosts.ts";
import { DEFAULT_LEDGER_PATH } from "./ledger.ts";

import { COMMON_OPTIONS } from "./service_options.ts";

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
  "stock-url": {
    type: "string",
    env: "STOCK_URL",
    placeholder: "url",
    description:
      "Estoque's stock store (sqlite:PATH or postgres://…): its outbox is checked, read only. Unset: not checked.",
  },
  "outbox-max-age": {
    type: "string",
    env: "OUTBOX_MAX_AGE_S",
    default: "60",
    placeholder: "seconds",
    description: "How long a request may wait unsent before the doctor calls the outbox stuck.",
  },
} as const satisfies OptionSpecs;

/** Where the broker is and the topology's prefix: what the dead-letter tooling and ctl share. */
const BROKER_OPTIONS = {
  url: COMMON_OPTIONS.url,
  user: COMMON_OPTIONS.user,
  password: COMMON_OPTIONS.password,
  "tls-ca": COMMON_OPTIONS["tls-ca"],
  "tls-cert": COMMON_OPTIONS["tls-cert"],
  "tls-key": COMMON_OPTIONS["tls-key"],
  prefix: COMMON_OPTIONS.prefix,
} as const satisfies OptionSpecs;

/** The dead-letter tooling's options. */
export const DLQ_OPTIONS = {
  ...BROKER_OPTIONS,
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
  "stock-url": {
    ...DOCTOR_OPTIONS["stock-url"],
    secret: true,
    description:
      "Estoque's stock store (sqlite:PATH or postgres://…): its outbox (requests unsent, the oldest one's age, the publish lag) is shown on the overview, read only. Unset: not shown. Also from STOCK_URL_FILE.",
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
  ...BROKER_OPTIONS,
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
