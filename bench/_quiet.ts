/**
 * Letting the broker go idle between two timed runs: a run leaves the broker work to finish after
 * it (deleting its queues and the messages left in them), which the next run would otherwise pay
 * for. Waits until the broker's process (the one listening on the broker URL's port, read from
 * `ss` and /proc) used under a tenth of a core for 100 ms, or for at most two seconds.
 *
 * @module
 */

/** The id of the process listening on `port` here, if `ss` can tell. */
async function listenerPid(port: string): Promise<number | undefined> {
  const out = await new Deno.Command("ss", {
    args: ["-Hltnp", `sport = :${port}`],
    stdout: "piped",
    stderr: "null",
  }).output().catch(() => undefined);
  const pid = /pid=(\d+)/.exec(new TextDecoder().decode(out?.stdout ?? new Uint8Array()))?.[1];
  return pid === undefined ? undefined : Number(pid);
}

/** CPU time of process `pid`, user and system, in clock ticks (1/100 s); undefined when gone. */
async function cpuTicks(pid: number): Promise<number | undefined> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`).catch(() => undefined);
  if (stat === undefined) return undefined;
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
}

const pids = new Map<string, Promise<number | undefined>>();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Resolves once the broker at `url` has been idle for 100 ms (at most 1 clock tick of CPU), or
 * after `maxMs`; where its process cannot be seen (another host, no /proc), after a 200 ms pause.
 * Resolves with how long it waited, in milliseconds.
 */
export async function brokerQuiet(url: string, maxMs = 2_000): Promise<number> {
  const started = performance.now();
  const port = new URL(url).port || "5672";
  const local = ["127.0.0.1", "localhost", "[::1]"].includes(new URL(url).hostname);
  let pid = local ? pids.get(port) : Promise.resolve(undefined);
  if (pid === undefined) pids.set(port, pid = listenerPid(port));
  const broker = await pid;
  if (broker === undefined) {
    await sleep(200);
    return performance.now() - started;
  }
  let before = await cpuTicks(broker);
  while (before !== undefined && performance.now() - started < maxMs) {
    await sleep(100);
    const after = await cpuTicks(broker);
    if (after === undefined || after - before <= 1) break;
    before = after;
  }
  return performance.now() - started;
}
