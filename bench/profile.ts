/**
 * Where a run's time goes: V8's sampling CPU profiler (through `node:inspector`, in this
 * process's main thread) around one run, summed by where each sampled function lives (amqplib,
 * each of our modules, Deno's runtime, garbage collection, idle) and divided by the messages, in
 * microseconds a message; and the garbage collector's pauses, read as runs of consecutive GC
 * samples. The SQLite ledger's commits run in a worker thread, outside this profile; the
 * latency path times them on its own.
 *
 * @module
 */

import { Session } from "node:inspector";

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}

/** A profile as V8's `Profiler.stop` returns it. */
export interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  /** Microseconds since the previous sample, one per sample. */
  readonly timeDeltas: readonly number[];
  readonly startTime: number;
  readonly endTime: number;
}

function post<T>(session: Session, method: string, params?: object): Promise<T> {
  return new Promise((resolve, reject) => {
    session.post(method, params ?? {}, (error: Error | null, result: unknown) => {
      if (error) reject(error);
      else resolve(result as T);
    });
  });
}

/** Runs `fn` under the CPU profiler, sampling every `intervalUs` microseconds. */
export async function profiled<T>(
  fn: () => Promise<T>,
  intervalUs = 100,
): Promise<{ result: T; profile: CpuProfile }> {
  const session = new Session();
  session.connect();
  try {
    await post(session, "Profiler.enable");
    await post(session, "Profiler.setSamplingInterval", { interval: intervalUs });
    await post(session, "Profiler.start");
    const outcome = await fn().then(
      (value) => ({ ok: true as const, value }),
      (error: unknown) => ({ ok: false as const, error }),
    );
    const { profile } = await post<{ profile: CpuProfile }>(session, "Profiler.stop");
    if (!outcome.ok) throw outcome.error;
    return { result: outcome.value, profile };
  } finally {
    session.disconnect();
  }
}

const root = new URL("..", import.meta.url).href;

/** Where a function lives, as a row of the summary. */
export function category(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (url === "") {
    if (functionName === "(garbage collector)") return "garbage collection";
    if (functionName === "(idle)") return "idle (waiting for I/O)";
    if (functionName === "(program)") return "V8 and native code";
    return `native: ${functionName || "(anonymous)"}`;
  }
  const npm = /registry\.npmjs\.org\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (npm) return `npm: ${npm[1]}`;
  if (url.startsWith(root)) {
    return `${url.slice(root.length).replace(/\?.*$/, "")} ${functionName || "(anonymous)"}`;
  }
  if (url.startsWith("ext:deno_node") || url.startsWith("node:")) return "Deno: node compatibility";
  if (url.startsWith("ext:")) return "Deno: runtime";
  return url;
}

/**
 * Self time by category, in milliseconds. A builtin called from JavaScript (`native: get`) is
 * named with the category of its caller, so that what it costs shows where it is spent.
 */
export function selfTimes(profile: CpuProfile): Map<string, number> {
  const parent = new Map<number, ProfileNode>();
  for (const node of profile.nodes) {
    for (const child of node.children ?? []) parent.set(child, node);
  }
  const byNode = new Map(profile.nodes.map((n) => {
    let where = category(n.callFrame);
    if (where.startsWith("native: ")) {
      let caller = parent.get(n.id);
      while (caller !== undefined && category(caller.callFrame).startsWith("native: ")) {
        caller = parent.get(caller.id);
      }
      if (caller !== undefined) where = `${where} (from ${category(caller.callFrame)})`;
    }
    return [n.id, where];
  }));
  const times = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const where = byNode.get(id) ?? "unknown";
    times.set(where, (times.get(where) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  });
  return times;
}

/**
 * The garbage collector's pauses: each run of consecutive GC samples is one pause, as long as the
 * run's samples (to the sampling interval's resolution), in milliseconds.
 */
export function gcPauses(profile: CpuProfile): number[] {
  const gc = new Set(
    profile.nodes.filter((n) => n.callFrame.functionName === "(garbage collector)").map((n) =>
      n.id
    ),
  );
  const pauses: number[] = [];
  let current = 0;
  profile.samples.forEach((id, i) => {
    const delta = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    if (gc.has(id)) current += delta;
    else if (current > 0) {
      pauses.push(current);
      current = 0;
    }
  });
  if (current > 0) pauses.push(current);
  return pauses;
}

/** One profiled run of one side, for {@linkcode profileTable}. */
export interface ProfiledSide {
  /** The column's heading, e.g. `raw` or `ours`. */
  readonly label: string;
  readonly profile: CpuProfile;
  readonly messages: number;
  /** CPU of the broker during the run, in milliseconds. */
  readonly brokerMs?: number;
  /** CPU of this process (all threads) during the run, in milliseconds. */
  readonly selfMs?: number;
}

/**
 * A markdown table of where each side's main thread went, in microseconds a message, rows under
 * `minUs` on every side summed as "other"; the last column is the last side less the first,
 * rows sorted by it.
 */
export function profileTable(sides: readonly ProfiledSide[], minUs = 0.5): string {
  const times = sides.map((side) => selfTimes(side.profile));
  const us = (ms: number | undefined, n: number) => ((ms ?? 0) * 1000) / n;
  const names = new Set(times.flatMap((t) => [...t.keys()]));
  const rows = [...names].map((name) => ({
    name,
    values: sides.map((side, i) => us(times[i]!.get(name), side.messages)),
  }));
  const shown = rows.filter((r) => r.values.some((v) => v >= minUs));
  const rest = rows.filter((r) => r.values.every((v) => v < minUs));
  shown.push({
    name: "other",
    values: sides.map((_, i) => rest.reduce((sum, r) => sum + r.values[i]!, 0)),
  });
  const difference = (values: readonly number[]) => values.at(-1)! - values[0]!;
  shown.sort((x, y) => difference(y.values) - difference(x.values));
  const f = (n: number) => n.toFixed(1);
  const line = (name: string, values: readonly number[]) =>
    `| ${name} | ${values.map(f).join(" | ")} | ${f(difference(values))} |`;
  const totals = sides.map((_, i) => rows.reduce((sum, r) => sum + r.values[i]!, 0));
  const measured = sides.every((side) => side.brokerMs !== undefined && side.selfMs !== undefined);
  return [
    `| where (main thread, self time) | ${
      sides.map((side) => `${side.label} µs/msg`).join(" | ")
    } | difference |`,
    `| --- | ${sides.map(() => "---").join(" | ")} | --- |`,
    ...shown.map((r) => line(r.name, r.values)),
    line("**wall time**", totals),
    ...(measured
      ? [
        line(
          "CPU of this process, all threads (from /proc)",
          sides.map((side) => us(side.selfMs, side.messages)),
        ),
        line(
          "CPU of the broker (beam.smp, from /proc)",
          sides.map((side) => us(side.brokerMs, side.messages)),
        ),
      ]
      : []),
  ].join("\n");
}

/** CPU time (user and system, every thread) of processes, in milliseconds, from /proc. */
async function cpuMs(pids: readonly (number | "self")[]): Promise<number> {
  let ticks = 0;
  for (const pid of pids) {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`).catch(() => "");
    // The fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    ticks += Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
  }
  return ticks * 10; // USER_HZ is 100 on Linux
}

/** The local broker's processes (beam.smp), if it runs here. */
async function brokerPids(): Promise<number[]> {
  const { stdout } = await new Deno.Command("pgrep", { args: ["-x", "beam.smp"], stdout: "piped" })
    .output().catch(() => ({ stdout: new Uint8Array() }));
  return new TextDecoder().decode(stdout).split("\n").filter((l) => l !== "").map(Number);
}

/** CPU spent by the local broker and by this process (all its threads) while `fn` runs. */
export async function cpuDuring<T>(
  fn: () => Promise<T>,
): Promise<{ result: T; brokerMs: number; selfMs: number }> {
  const pids = await brokerPids();
  const [broker0, self0] = [await cpuMs(pids), await cpuMs(["self"])];
  const result = await fn();
  const [broker1, self1] = [await cpuMs(pids), await cpuMs(["self"])];
  return { result, brokerMs: broker1 - broker0, selfMs: self1 - self0 };
}
