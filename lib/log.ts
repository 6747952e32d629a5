/**
 * The one logger setup of the services: LogTape, structured records, written to stderr as logfmt
 * (`key=value` pairs), so stdout stays free for summaries and tables.
 *
 * @module
 */

import {
  configureSync,
  getLogfmtFormatter,
  getLogger,
  type Logger,
  type LogLevel,
  type LogRecord,
  resetSync,
} from "@logtape/logtape";
import { currentTraceIds, TRACING } from "./tracing.ts";
import { redactUrl } from "./redact.ts";

/** The levels `--log-level` accepts, quietest last. */
export const LOG_LEVELS = ["trace", "debug", "info", "warning", "error", "fatal"] as const;

/** The root category of every logger in the project. */
export const ROOT_CATEGORY = "productionorder";

const encoder = new TextEncoder();

/** Options for {@linkcode setupLogging}. */
export interface LoggingOptions {
  /**
   * The lowest level written.
   * @default {"info"}
   */
  level?: LogLevel;
  /**
   * Where the formatted lines go (each ends in a newline, passwords already hidden).
   * @default {writes to stderr}
   */
  write?: (line: string) => void;
  /**
   * Fields added at the end of every line, e.g. `{ instanceId }` when several instances log side
   * by side.
   */
  fields?: Record<string, unknown>;
}

/**
 * Configures logging for the process. Any URL in a message or a property has its password
 * hidden before it is written.
 */
export function setupLogging(options: LoggingOptions = {}): void {
  const formatter = getLogfmtFormatter();
  const write = options.write ?? ((line: string) => Deno.stderr.writeSync(encoder.encode(line)));
  const fields = options.fields;
  // A line written while a message is handled under tracing carries its trace and span ids.
  const sink = fields === undefined && !TRACING
    ? (record: LogRecord) => write(redactUrl(formatter(record)))
    : (record: LogRecord) =>
      write(redactUrl(formatter({
        ...record,
        properties: { ...record.properties, ...fields, ...currentTraceIds() },
      })));
  resetSync();
  configureSync({
    reset: true,
    sinks: { main: sink },
    loggers: [
      { category: [ROOT_CATEGORY], lowestLevel: options.level ?? "info", sinks: ["main"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["main"] },
    ],
  });
}

/** A logger under the project's root category, e.g. `logger("consumer")`. */
export function logger(...category: string[]): Logger {
  return getLogger([ROOT_CATEGORY, ...category]);
}
