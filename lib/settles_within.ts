/**
 * Waiting on a broker's answer with a bound: a link gone silent (a half-open TCP connection, a
 * stalled node) never answers, and a shutdown must not wait for it.
 *
 * @module
 */

/**
 * Resolves `true` once `promise` settles (fulfilled or rejected) within `timeoutMs`, else `false`
 * when the time is up; the promise's outcome itself is not passed on, and a rejection after the
 * deadline is observed, not thrown.
 *
 * @example
 * ```ts
 * if (!(await settlesWithin(channel.close(), 1_000))) log.warning("no close-ok from the broker");
 * ```
 */
export function settlesWithin(promise: Promise<unknown>, timeoutMs: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, timeoutMs));
  });
  const settled = promise.then(() => true, () => true);
  return Promise.race([settled, timedOut]).finally(() => clearTimeout(timer));
}
