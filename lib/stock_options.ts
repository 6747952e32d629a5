/**
 * The options of Estoque's stock service: its store, movements, stock items, the relay and the API.
 *
 * @module
 */

import type { OptionSpecs } from "./cli.ts";
import { DEFAULT_STOCK_URL } from "./stock_store.ts";
import { DEFAULT_OUTBOX_BATCH_SIZE } from "./outbox_relay.ts";

import { COMMON_OPTIONS, DECLARE_OPTION, ESTOQUE_OPTIONS } from "./service_options.ts";
import { CONSOLE_OPTIONS } from "./tool_options.ts";

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
  "idempotency-key": {
    type: "string",
    placeholder: "key",
    description:
      "Names the movement for its retries (1 to 200 visible ASCII characters): sent again with a key already recorded, it is not applied again and the first result is printed.",
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
    default: String(DEFAULT_OUTBOX_BATCH_SIZE),
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
