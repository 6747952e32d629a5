/**
 * The measures besides throughput: end-to-end latency at a steady rate (and the event loop's delay
 * meanwhile), one profiled latency run of ours (ledger commits, GC pauses), the disk's fsync time,
 * retry lateness, OrdemDeProducao's peak RSS, and end-to-end with messages parked in a retry tier.
 *
 * @module
 */

import { DEFAULT_RETRY_POLICY, retryDelays } from "../lib/retry_policy.ts";
import type { BenchOptions } from "./_options.ts";
import { inTurn, type SideName } from "./_paths.ts";
import type { BenchRunner } from "./_runner.ts";
import { fsyncTimes, type RunContext, type RunResult, sampleLoopDelay } from "./_shared.ts";
import type { Measurements } from "./_stats.ts";
import { stats } from "./_stats.ts";
import { oursEndToEnd, oursLatency, oursRetryLateness, oursServiceRss, park } from "./ours.ts";
import { gcPauses, profiled } from "./profile.ts";
import { rawLatency } from "./raw.ts";
import { fmt, type Settings } from "./report.ts";

/** The steady rate of the latency path, in messages a second. */
const LATENCY_RATE = 2_000;

/** The measures besides throughput, as {@linkcode Measurements} holds them. */
export type OtherMeasures = Omit<Measurements, "runs" | "chosen">;

/**
 * Runs every measure besides throughput, logging each step; `e2e` is the settings each side's
 * end-to-end sweep kept, which the latency path runs at.
 */
export async function measureTheRest(
  runner: BenchRunner,
  options: BenchOptions,
  e2e: Readonly<Record<SideName, Settings>>,
): Promise<OtherMeasures> {
  const log = (text: string) => console.error(text);
  const { quick, rounds, parked, shortRunMessages } = options;
  const latencyMessages = quick ? 1_000 : 5_000;
  log(`  latency at ${LATENCY_RATE} msg/s`);
  const latencies = { raw: [] as number[], ours: [] as number[] };
  // The event loop's delay while each side's latency path runs (both run in this process).
  const loopDelays = { raw: [] as number[], ours: [] as number[] };
  for (let round = 0; round < rounds; round++) {
    const latencyRun = (fn: (ctx: RunContext, rate: number) => Promise<number[]>) =>
      runner.inTopology((ctx) => fn(ctx, LATENCY_RATE), { ...e2e, messages: latencyMessages });
    for (const side of inTurn(round)) {
      const sampler = sampleLoopDelay();
      latencies[side].push(...await latencyRun(side === "raw" ? rawLatency : oursLatency));
      loopDelays[side].push(...sampler.stop());
    }
  }

  // One more run of ours, not counted above, under the CPU profiler and with the ledger's commits
  // timed: what the tail is made of (commit time, GC pauses) on that path.
  log("  latency diagnostics (one profiled run of ours)");
  const commitTimes: number[] = [];
  const diagnosed = await profiled(() =>
    runner.inTopology((ctx) => oursLatency({ ...ctx, commitTimes }, LATENCY_RATE), {
      ...e2e,
      messages: latencyMessages,
    })
  );

  log("  disk fsync");
  const fsyncs = await fsyncTimes(runner.dir, quick ? 200 : 1_000);

  log("  retry lateness");
  const lateness = await runner.inTopology((ctx) => oursRetryLateness(ctx, 1_000), {
    messages: quick ? 500 : 2_000,
  });

  log("  service RSS");
  const service = await runner.inTopology(oursServiceRss, {
    messages: quick ? 10_000 : 50_000,
    retryDelays: retryDelays(DEFAULT_RETRY_POLICY),
  });

  log(`  scale: ${parked} parked`);
  const scale = { without: [] as RunResult[], with: [] as RunResult[] };
  for (let round = 0; round < Math.max(1, Math.min(rounds, 5)); round++) {
    scale.without.push(await runner.run(oursEndToEnd, { messages: shortRunMessages }));
    scale.with.push(
      await runner.run(oursEndToEnd, {
        messages: shortRunMessages,
        before: (ctx) => park(ctx, parked),
      }),
    );
    log(
      `  scale round ${round + 1}: ${fmt(stats(scale.without.slice(-1)).median)}/s without, ${
        fmt(stats(scale.with.slice(-1)).median)
      }/s with`,
    );
  }
  return {
    latencyRate: LATENCY_RATE,
    latencies,
    loopDelays,
    diagnosed: {
      latencies: diagnosed.result,
      commitTimes,
      gcPauses: gcPauses(diagnosed.profile),
    },
    fsyncs,
    lateness,
    service,
    scale,
  };
}
