/**
 * A number read off a running service's `/metrics` (Prometheus text), for tests that watch a real
 * process.
 *
 * @module
 */

/** The value of the first sample of `name` on `127.0.0.1:port/metrics`; 0 when there is none. */
export async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(" ") + 1));
}
