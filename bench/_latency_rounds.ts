/**
 * The latency path: at each load (a fraction of raw's end-to-end rate, measured in the same run),
 * the method's rounds in ABBA order, each side in a process of its own warmed up by one untimed
 * run; each side's histograms merged over the rounds.
 *
 * @module
 */

import { merge, tailOf } from "./_histogram.ts";
import type { LatencyRun } from "./_latency.ts";
import { sideOrder } from "./_method.ts";
import type { BenchOptions } from "./_options.ts";
import { brokerQuiet } from "./_quiet.ts";
import type { LatencyResults, LatencyRow } from "./_results.ts";
import { SERVICES } from "./_services_settings.ts";
import type { Settings } from "./_settings.ts";
import { sideProcess } from "./_rounds.ts";
import type { SideProcess } from "./_side_process.ts";

const log = (text: string) => console.error(text);
const count = (n: number) => Math.round(n).toLocaleString("en-US");

/** The loads at which ours' p99 is held to raw's plus 10 ms. */
const HELD = new Set([0.25, 0.5]);

/**
 * Latency at each of the method's loads of `baseRate` (raw's end-to-end median), raw at
 * `rawSettings` (its end-to-end ones), ours at the services'.
 */
export async function latencyPath(
  options: BenchOptions,
  baseRate: number,
  rawSettings: Settings,
): Promise<LatencyResults> {
  const { method } = options;
  const settings = { raw: rawSettings, ours: SERVICES };
  const processes: Record<"raw" | "ours", SideProcess> = {
    raw: sideProcess(options, "latency raw", "raw"),
    ours: sideProcess(options, "latency ours", "ours"),
  };
  const run = async (side: "raw" | "ours", rate: number, seconds: number) => {
    await brokerQuiet(options.url);
    return await processes[side].request<LatencyRun>({
      kind: "latency",
      role: side,
      settings: settings[side],
      messages: Math.max(1, Math.round(rate * seconds)),
      rate,
    });
  };
  try {
    const lowest = Math.min(...method.loads) * baseRate;
    for (const side of ["raw", "ours"] as const) await run(side, lowest, method.latencySeconds);
    const rows: LatencyRow[] = [];
    const histograms: LatencyResults["histograms"][number][] = [];
    for (const load of method.loads) {
      const rate = load * baseRate;
      const runs = { raw: [] as LatencyRun[], ours: [] as LatencyRun[] };
      for (let round = 0; round < method.rounds; round++) {
        for (const side of sideOrder(round, ["raw", "ours"] as const)) {
          runs[side].push(await run(side, rate, method.latencySeconds));
        }
        const p99 = (side: "raw" | "ours") => tailOf(runs[side].at(-1)!.latencies).p99.toFixed(1);
        log(
          `  latency at ${Math.round(load * 100)} % (${count(rate)}/s) round ${round + 1}: ` +
            `p99 raw ${p99("raw")} ms, ours ${p99("ours")} ms`,
        );
      }
      const raw = merge(runs.raw.map((r) => r.latencies));
      const ours = merge(runs.ours.map((r) => r.latencies));
      const rawTail = tailOf(raw);
      const oursTail = tailOf(ours);
      rows.push({
        load,
        rate,
        raw: rawTail,
        ours: oursTail,
        held: HELD.has(load),
        met: oursTail.p99 <= rawTail.p99 + 10,
        loopDelay: {
          raw: tailOf(merge(runs.raw.map((r) => r.loopDelays))),
          ours: tailOf(merge(runs.ours.map((r) => r.loopDelays))),
        },
      });
      histograms.push({ load, raw, ours });
    }
    return { baseRate, rows, histograms };
  } finally {
    await processes.raw.close().catch(() => {});
    await processes.ours.close().catch(() => {});
  }
}
