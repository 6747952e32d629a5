/**
 * The measures besides throughput and latency: one profiled latency run of ours (ledger commits,
 * GC pauses), the disk's fsync time, retry lateness, OrdemDeProducao's peak RSS draining as many
 * orders as a timed run, and end-to-end with messages parked in a retry tier (with and without in
 * ABBA rounds). Ours runs in a process of its own, with the services' settings.
 *
 * @module
 */

import { median } from "./_bootstrap.ts";
import type { Histogram } from "./_histogram.ts";
import { quantileOf } from "./_histogram.ts";
import { sideOrder } from "./_method.ts";
import type { BenchOptions } from "./_options.ts";
import { pathNamed } from "./_paths.ts";
import type { OtherMeasures } from "./_results.ts";
import { sideProcess, timedRun } from "./_rounds.ts";
import { SERVICES } from "./_services_settings.ts";
import { fsyncTimes, quantile, type RunResult, withBenchTopology } from "./_shared.ts";
import { rate, sideStats } from "./_stats.ts";
import { oursServiceRss } from "./ours.ts";
import { DEFAULT_RETRY_POLICY, retryDelays } from "../lib/retry_policy.ts";

const log = (text: string) => console.error(text);
const count = (n: number) => Math.round(n).toLocaleString("en-US");

/** Every measure besides throughput and latency; `latencyRate` is the diagnosed run's rate. */
export async function measureTheRest(
  options: BenchOptions,
  latencyRate: number,
): Promise<OtherMeasures> {
  const { method, quick, parked, url } = options;
  await using ours = sideProcess(options, "measures ours", "ours");

  log(`  latency diagnostics (one profiled run of ours at ${count(latencyRate)}/s)`);
  const diagnosed = await ours.request<
    { latencies: Histogram; commitTimes: number[]; gcPauses: number[] }
  >({
    kind: "diagnose",
    messages: Math.max(1, Math.round(latencyRate * method.latencySeconds)),
    rate: latencyRate,
  });

  log("  disk fsync");
  const dir = await Deno.makeTempDir({ prefix: "productionorder-bench-fsync-" });
  const fsyncs = await fsyncTimes(dir, quick ? 200 : 1_000);

  log("  retry lateness");
  const lateness = await ours.request<number[]>({
    kind: "lateness",
    messages: quick ? 500 : 2_000,
    rate: 1_000,
  });

  log(`  service RSS, draining ${count(method.messages)} orders`);
  const service = await withBenchTopology(
    url,
    (broker, topo) =>
      oursServiceRss({ url, broker, topo, messages: method.messages, dir, settings: SERVICES }),
    retryDelays(DEFAULT_RETRY_POLICY),
  );
  await Deno.remove(dir, { recursive: true }).catch(() => {});

  log(`  scale: ${count(parked)} parked`);
  const e2e = pathNamed("end-to-end");
  const scale = { without: [] as RunResult[], with: [] as RunResult[] };
  const scaleRounds = quick ? 2 : 4;
  for (let round = 0; round < scaleRounds; round++) {
    for (const which of sideOrder(round, ["without", "with"] as const)) {
      scale[which].push(
        await timedRun(options, ours, e2e, "ours", SERVICES, method.messages, {
          ...(which === "with" ? { park: parked } : {}),
        }),
      );
    }
    log(
      `  scale round ${round + 1}: ${count(rate(scale.without.at(-1)!))}/s without, ` +
        `${count(rate(scale.with.at(-1)!))}/s with`,
    );
  }
  // Paired like the paths: each round ran both, in ABBA order.
  const slowdowns = scale.with.map((r, i) => 1 - scale.without[i]!.elapsedMs / r.elapsedMs);
  const { commitTimes, gcPauses: pauses } = diagnosed;
  return {
    fsync: { p50: quantile(fsyncs, 0.5), p99: quantile(fsyncs, 0.99), count: fsyncs.length },
    diagnostics: {
      rate: latencyRate,
      latencyP99: quantileOf(diagnosed.latencies, 0.99),
      commit: {
        count: commitTimes.length,
        p50: quantile(commitTimes, 0.5),
        p99: quantile(commitTimes, 0.99),
        max: Math.max(0, ...commitTimes),
      },
      gc: {
        pauses: pauses.length,
        p50: quantile(pauses, 0.5),
        p99: quantile(pauses, 0.99),
        max: Math.max(0, ...pauses),
        totalMs: pauses.reduce((a, b) => a + b, 0),
      },
    },
    lateness: { p50: quantile(lateness, 0.5), p99: quantile(lateness, 0.99) },
    scale: {
      slowdown: median(slowdowns),
      slowdowns,
      without: sideStats(scale.without),
      with: sideStats(scale.with),
    },
    service: { ...service, messages: method.messages },
  };
}
