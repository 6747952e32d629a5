/**
 * A number read off a running service's `/metrics` (Prometheus text), for tests and fault cases
 * that watch a real process.
 *
 * @module
 */

/**
 * The value of `name` on `127.0.0.1:port/metrics`, summed over its labels (one series for most:
 * a service labels them with its instance); 0 when there is none.
 */
export async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let total = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) {
      total += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return total;
}
