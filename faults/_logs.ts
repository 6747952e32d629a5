/**
 * The services' log lines read back as records: each logfmt line (`key=value`, a value with spaces
 * or quotes in double quotes, `\"` and `\n` escaped; lib/log.ts) split into its fields, so a case
 * decides on a field (`msg`, `code`), not on a line's text.
 *
 * @module
 */

const FIELD = /([^\s="]+)=("(?:[^"\\]|\\.)*"|\S*)/g;

/**
 * The fields of one logfmt line.
 *
 * @example
 * ```ts
 * logFields('msg="retry scheduled" retry=1 code=quantity_exceeded error="a \\"b\\""');
 * // { msg: "retry scheduled", retry: "1", code: "quantity_exceeded", error: 'a "b"' }
 * ```
 */
export function logFields(line: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const [, key, raw] of line.matchAll(FIELD)) {
    fields[key!] = raw!.startsWith('"') ? unquote(raw!) : raw!;
  }
  return fields;
}

/** A quoted value without its quotes and escapes (as JSON spells them), or as written. */
function unquote(raw: string): string {
  try {
    return JSON.parse(raw) as string;
  } catch {
    return raw.slice(1, -1);
  }
}
