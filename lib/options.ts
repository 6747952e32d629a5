/**
 * The options of every command, in one place: flag, environment variable, default and help text.
 * The entry scripts parse them (lib/cli.ts), lib/config.ts turns them into validated configs, and
 * scripts/config_doc.ts writes docs/configuration.md from them.
 *
 * @module
 */

import type { CommandSpec } from "./main.ts";
import { DEMO_OPTIONS, ESTOQUE_OPTIONS, ORDEM_OPTIONS } from "./service_options.ts";
import {
  ESTOQUE_MOVE_OPTIONS,
  ESTOQUE_RELAY_OPTIONS,
  ESTOQUE_SERVE_OPTIONS,
  ESTOQUE_STOCK_OPTIONS,
} from "./stock_options.ts";
import { CONSOLE_OPTIONS, CTL_OPTIONS, DLQ_OPTIONS, DOCTOR_OPTIONS } from "./tool_options.ts";

export * from "./service_options.ts";
export * from "./stock_options.ts";
export * from "./tool_options.ts";

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
