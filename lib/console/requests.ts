/**
 * Reading what the console's pages send: filters from a query string or a JSON body, page bounds,
 * and action requests. Everything is checked; a bad value is a {@linkcode BadRequest} naming it,
 * which the page shows and which changes nothing.
 *
 * @module
 */

import { type DeadLetterFilter, parseSince } from "../dead_letters.ts";

/** A request the console refuses, with the message the page shows. */
export class BadRequest extends Error {
  override name = "BadRequest";
  /** The HTTP status: 400, or 404 for something that does not exist. */
  readonly status: number;

  constructor(message: string, status = 400) {
    super(message);
    this.status = status;
  }
}

/** The longest text a filter field may be. */
const MAX_TEXT = 600;

function text(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value !== "string") throw new BadRequest(`${field} must be text`);
  if (value.length > MAX_TEXT) {
    throw new BadRequest(`${field} is longer than ${MAX_TEXT} characters`);
  }
  return value;
}

function time(value: unknown, field: string, now: Date): Date | undefined {
  const given = text(value, field);
  if (given === undefined) return undefined;
  const parsed = parseSince(given, now);
  if (parsed === undefined) {
    throw new BadRequest(
      `${field} must be a duration back from now (90s, 15m, 2h, 7d) or a date (2026-11-28T10:00Z), got ${
        JSON.stringify(given)
      }`,
    );
  }
  return parsed;
}

/** The fields of a filter, as a page sends them (query string or JSON). */
export interface FilterFields {
  readonly reason?: unknown;
  readonly ref?: unknown;
  readonly since?: unknown;
  readonly until?: unknown;
  readonly text?: unknown;
  readonly group?: unknown;
  readonly refs?: unknown;
}

/**
 * A dead-letter filter from a page's fields. `refs` (a selection) may name at most
 * `maxSelection` RefCodes.
 *
 * @throws {BadRequest} naming the field that is wrong.
 */
export function readFilter(
  fields: FilterFields,
  options: { now: Date; maxSelection: number },
): DeadLetterFilter {
  const since = time(fields.since, "since", options.now);
  const until = time(fields.until, "until", options.now);
  if (since !== undefined && until !== undefined && since >= until) {
    throw new BadRequest("since must be before until");
  }
  let refs: Set<string> | undefined;
  if (fields.refs !== undefined && fields.refs !== null) {
    if (!Array.isArray(fields.refs) || fields.refs.some((r) => typeof r !== "string")) {
      throw new BadRequest("refs must be a list of RefCodes");
    }
    if (fields.refs.length === 0) throw new BadRequest("the selection is empty: tick some rows");
    if (fields.refs.length > options.maxSelection) {
      throw new BadRequest(
        `a selection may name at most ${options.maxSelection} dead letters, this one names ${fields.refs.length}: act on a group or a filter instead`,
      );
    }
    refs = new Set((fields.refs as string[]).map((r) => r.toLowerCase()));
  }
  return {
    reason: text(fields.reason, "reason"),
    ref: text(fields.ref, "ref"),
    since,
    until,
    text: text(fields.text, "text"),
    errorGroup: text(fields.group, "group"),
    refs,
  };
}

/** The fields of a query string, for {@linkcode readFilter}. */
export function queryFields(params: URLSearchParams): FilterFields {
  const get = (name: string) => params.get(name) ?? undefined;
  return {
    reason: get("reason"),
    ref: get("ref"),
    since: get("since"),
    until: get("until"),
    text: get("text"),
    group: get("group"),
  };
}

/**
 * A whole number from a query parameter, `fallback` when absent.
 * @throws {BadRequest} when it is not a whole number within bounds.
 */
export function wholeNumber(
  value: string | null | undefined,
  field: string,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === null || value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new BadRequest(`${field} must be a whole number from ${min} to ${max}, got ${value}`);
  }
  return n;
}

/** An action as a page posts it. */
export interface ActionRequest {
  readonly action: "replay" | "purge";
  readonly filter: DeadLetterFilter;
  /** For a confirmed action: the previewed count, the most it acts on. */
  readonly expected: number | undefined;
}

/**
 * Reads an action's JSON body: `{action, filter: {...}, expected?}`.
 * @throws {BadRequest} naming what is wrong.
 */
export function readAction(
  body: unknown,
  options: { now: Date; maxSelection: number },
): ActionRequest {
  if (body === null || typeof body !== "object") throw new BadRequest("send a JSON object");
  const { action, filter, expected } = body as Record<string, unknown>;
  if (action !== "replay" && action !== "purge") {
    throw new BadRequest(`action must be replay or purge, got ${JSON.stringify(action)}`);
  }
  if (filter !== undefined && (filter === null || typeof filter !== "object")) {
    throw new BadRequest("filter must be an object");
  }
  if (
    expected !== undefined &&
    (typeof expected !== "number" || !Number.isInteger(expected) || expected < 0)
  ) {
    throw new BadRequest("expected must be the previewed count, a whole number");
  }
  return {
    action,
    filter: readFilter((filter ?? {}) as FilterFields, options),
    expected: expected as number | undefined,
  };
}

/** A pause or resume as a page posts it. */
export interface ControlRequest {
  readonly action: "pause" | "resume";
  /** Why; a pause needs one. */
  readonly reason: string;
}

/**
 * Reads a pause or resume's JSON body: `{action: "pause"|"resume", reason}`.
 * @throws {BadRequest} naming what is wrong.
 */
export function readControl(body: unknown): ControlRequest {
  if (body === null || typeof body !== "object") throw new BadRequest("send a JSON object");
  const { action, reason } = body as Record<string, unknown>;
  if (action !== "pause" && action !== "resume") {
    throw new BadRequest(`action must be pause or resume, got ${JSON.stringify(action)}`);
  }
  const why = (text(reason, "reason") ?? "").trim();
  if (why.length > 500) throw new BadRequest("reason is longer than 500 characters");
  if (action === "pause" && why === "") {
    throw new BadRequest("say why the fleet is paused: the reason is shown to everyone");
  }
  return { action, reason: why };
}
