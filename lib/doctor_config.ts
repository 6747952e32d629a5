/**
 * The doctor's command line, read once: the services' options (broker, topology, retry policy),
 * from which it knows what they would declare, and its own (the management API, JSON output).
 *
 * @module
 */

import {
  booleanOption,
  httpUrlOption,
  integerOption,
  type OptionValue,
  type ParsedCommandLine,
  stringOption,
} from "./cli.ts";
import { type CommonConfig, commonConfig } from "./config.ts";
import { managementUrlFor, managementUrlWithLogin } from "./management.ts";
import type { DOCTOR_OPTIONS } from "./options.ts";

/** The doctor's configuration. */
export interface DoctorConfig extends CommonConfig {
  /**
   * The management API, with a login (its own, else the broker's); undefined with
   * `--no-management`, which skips the checks that need it.
   */
  readonly managementUrl: string | undefined;
  /** Print the findings as JSON rather than a checklist. */
  readonly json: boolean;
  /** Estoque's stock store, whose outbox is checked; undefined: not checked. */
  readonly stockUrl: string | undefined;
  /** How long a request may wait unsent before the outbox is stuck, in milliseconds. */
  readonly outboxMaxAgeMs: number;
}

/**
 * Builds the doctor's configuration, every option checked before anything is done
 * (`--management-url` too, when `--no-management` leaves it unused).
 *
 * @throws {UsageError} naming the first bad option.
 */
export function doctorConfig(cl: ParsedCommandLine): DoctorConfig {
  const config = commonConfig(cl);
  const o = cl.options as Record<keyof typeof DOCTOR_OPTIONS, OptionValue>;
  const managementUrl = o["management-url"].value === undefined
    ? managementUrlFor(config.url)
    : managementUrlWithLogin(httpUrlOption(o["management-url"]), config.url);
  return Object.freeze({
    ...config,
    managementUrl: booleanOption(o.management) ? managementUrl : undefined,
    json: booleanOption(o.json),
    stockUrl: o["stock-url"].value === undefined || o["stock-url"].value === ""
      ? undefined
      : stringOption(o["stock-url"]),
    outboxMaxAgeMs: integerOption(o["outbox-max-age"], 1, 86_400) * 1000,
  });
}
