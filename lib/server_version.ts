/**
 * The RabbitMQ release a connection reports (its `version` server property, e.g. `"4.3.6"`),
 * compared by major and minor number: what differs between releases is decided here, from what
 * the broker says it is, before anything is asked of it. A pure module: no I/O.
 *
 * @module
 */

/** The major and minor numbers of a version such as `"4.0.5"` or `"4.3.6+1"`; undefined if none. */
function release(version: string): [major: number, minor: number] | undefined {
  const match = /^(\d+)\.(\d+)(?:[.+~-]|$)/.exec(version.trim());
  return match ? [Number(match[1]), Number(match[2])] : undefined;
}

/**
 * Whether `serverVersion` is `atLeast` (a release, `"4.3"`) or later. A version that cannot be
 * read (`"unknown"`) is not.
 *
 * @example
 * ```ts
 * serverVersionAtLeast("4.3.6", "4.3"); // true
 * serverVersionAtLeast("4.0.5", "4.3"); // false
 * serverVersionAtLeast("3.10.8", "4.0"); // false
 * ```
 */
export function serverVersionAtLeast(serverVersion: string, atLeast: string): boolean {
  const found = release(serverVersion);
  const wanted = release(atLeast);
  if (found === undefined || wanted === undefined) return false;
  return found[0] > wanted[0] || (found[0] === wanted[0] && found[1] >= wanted[1]);
}
