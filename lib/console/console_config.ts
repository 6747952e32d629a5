/**
 * The console's command line read once, into one record, before anything connects or listens:
 * a bad option stops it naming the option (exit 2), with nothing started.
 *
 * @module
 */

import {
  booleanOption,
  httpUrlOption,
  integerOption,
  type ParsedCommandLine,
  stringOption,
} from "../cli.ts";
import { type CommonConfig, commonConfig, ledgerUrlOption } from "../config.ts";
import { managementUrlFor, vhostOf } from "../management.ts";
import type { CONSOLE_OPTIONS } from "../options.ts";
import { type Gate, gateOf } from "./admission.ts";

type Options = Record<keyof typeof CONSOLE_OPTIONS, ParsedCommandLine["options"][string]>;

/** Everything the console runs with. */
export interface ConsoleConfig {
  /** The broker, topology, TLS and log level, as the services read them. */
  readonly common: CommonConfig;
  readonly hostname: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** Its host names, who may read and act, and the count of failed logins. */
  readonly gate: Gate;
  /** The ledger the journeys are read from. */
  readonly ledgerUrl: string;
  /** Estoque's stock store, whose outbox the overview shows (read only); undefined: not shown. */
  readonly stockUrl: string | undefined;
  /** The services' `/metrics` endpoints the overview reads. */
  readonly metricsUrls: readonly string[];
  /** The management API and its vhost, unless `--no-management`. */
  readonly management: { readonly url: string; readonly vhost: string } | undefined;
  /** How old the dead-letter snapshot may be before it is taken again, in milliseconds. */
  readonly indexMaxAgeMs: number;
  readonly auditLog: string;
  readonly archiveDir: string;
  /** How often the overview's history takes a point, in milliseconds. */
  readonly historyIntervalMs: number;
  readonly readOnly: boolean;
  /** The most dead letters one action may select. */
  readonly maxSelection: number;
}

/**
 * Reads the console's options (and its users file) once.
 *
 * @throws {UsageError} naming the option that is wrong.
 */
export async function consoleConfig(cl: ParsedCommandLine): Promise<ConsoleConfig> {
  const o = cl.options as Options;
  const common = commonConfig(cl);
  const url = common.urls[0]!;
  const gate = await gateOf({
    hostname: o.hostname,
    allowedHosts: o["allowed-hosts"],
    token: o.token,
    operatorToken: o["operator-token"],
    usersFile: o["users-file"],
  }, "productionorder console");
  return {
    common,
    hostname: stringOption(o.hostname),
    port: integerOption(o.port, 0, 65_535),
    gate,
    ledgerUrl: ledgerUrlOption(o["ledger-url"])!.url,
    // sqlite:PATH or postgres://, checked as the ledger's URL is.
    stockUrl: ledgerUrlOption(o["stock-url"])?.url,
    metricsUrls: stringOption(o["metrics-url"]).split(",").map((u) => u.trim())
      .filter((u) => u !== "").map((u) =>
        httpUrlOption({ value: u, label: o["metrics-url"].label })
      ),
    management: booleanOption(o.management)
      ? {
        url: o["management-url"].value === undefined
          ? managementUrlFor(url)
          : httpUrlOption(o["management-url"]),
        vhost: vhostOf(url),
      }
      : undefined,
    indexMaxAgeMs: integerOption(o["index-max-age"], 0, 86_400_000),
    auditLog: stringOption(o["audit-log"]),
    archiveDir: stringOption(o["archive-dir"]),
    historyIntervalMs: integerOption(o["history-interval"], 200, 60_000),
    readOnly: booleanOption(o["read-only"]),
    maxSelection: integerOption(o["max-selection"], 1, 1_000_000),
  };
}
