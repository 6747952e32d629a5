/**
 * One side of the benchmark in a process of its own (bench/_side_process.ts starts it): reads
 * jobs, one JSON line each on stdin, runs each in turn after a forced garbage collection, and
 * answers each with one JSON line on stdout. Exits when stdin closes. Not a command for users.
 *
 * Env: RABBITMQ_URL. Run with `--v8-flags=--expose-gc` (the collection before each job).
 *
 * @module
 */

import { DEFAULT_RABBITMQ_URL } from "../lib/broker.ts";
import { setupLogging } from "../lib/log.ts";
import { oursLatency, rawLatency } from "./_latency.ts";
import { pathNamed, type Role, sideOf } from "./_paths.ts";
import { BenchRunner } from "./_runner.ts";
import { SERVICES } from "./_services_settings.ts";
import type { Settings } from "./_settings.ts";
import { oursRetryLateness, park } from "./ours.ts";
import { type LagStore, movementLag } from "./outbox.ts";
import { cpuDuring, gcPauses, profiled } from "./profile.ts";

/** A job for this process. */
export type Job =
  | {
    /** One timed run of a side of a path; with `park`, that many messages parked first. */
    readonly kind: "run";
    readonly path: string;
    readonly role: Role;
    readonly settings: Settings;
    readonly messages: number;
    readonly park?: number;
    /** Under the CPU profiler, its whole profile written to this file. */
    readonly profile?: string;
  }
  | {
    /** A latency run at `rate` a second. */
    readonly kind: "latency";
    readonly role: "raw" | "ours";
    readonly settings: Settings;
    readonly messages: number;
    readonly rate: number;
  }
  | {
    /** One latency run of ours under the profiler, its ledger's commits timed. */
    readonly kind: "diagnose";
    readonly messages: number;
    readonly rate: number;
  }
  | {
    /** Movements at `rate` a second on `store`, each one's lag to its request's arrival. */
    readonly kind: "movement-lag";
    readonly store: LagStore;
    readonly messages: number;
    readonly rate: number;
    readonly postgresUrl: string;
  }
  | {
    /** How late ours' 200 ms retries come back, orders published at `rate` a second. */
    readonly kind: "lateness";
    readonly messages: number;
    readonly rate: number;
  };

const url = Deno.env.get("RABBITMQ_URL") ?? DEFAULT_RABBITMQ_URL;

async function perform(runner: BenchRunner, job: Job): Promise<unknown> {
  switch (job.kind) {
    case "run": {
      const side = sideOf(pathNamed(job.path), job.role);
      const parked = job.park;
      const options = {
        settings: job.settings,
        messages: job.messages,
        ...(parked === undefined
          ? {}
          : { before: (ctx: Parameters<typeof park>[0]) => park(ctx, parked) }),
      };
      if (job.profile === undefined) return await runner.run(side, options);
      const cpu = await cpuDuring(() => profiled(() => runner.run(side, options)));
      await Deno.writeTextFile(job.profile, JSON.stringify(cpu.result.profile));
      return { ...cpu.result.result, brokerMs: cpu.brokerMs, selfMs: cpu.selfMs };
    }
    case "latency": {
      const fn = job.role === "raw" ? rawLatency : oursLatency;
      return await runner.inTopology((ctx) => fn(ctx, job.rate), job);
    }
    case "diagnose": {
      const commitTimes: number[] = [];
      const { result, profile } = await profiled(() =>
        runner.inTopology((ctx) => oursLatency(ctx, job.rate), {
          settings: SERVICES,
          messages: job.messages,
          commitTimes,
        })
      );
      return { latencies: result.latencies, commitTimes, gcPauses: gcPauses(profile) };
    }
    case "movement-lag":
      return await runner.inTopology((ctx) => movementLag(ctx, job), {
        settings: SERVICES,
        messages: job.messages,
      });
    case "lateness":
      return await runner.inTopology((ctx) => oursRetryLateness(ctx, job.rate), {
        settings: SERVICES,
        messages: job.messages,
      });
  }
}

if (import.meta.main) {
  setupLogging({ level: "error" });
  const dir = await Deno.makeTempDir({ prefix: "productionorder-bench-side-" });
  const runner = new BenchRunner(url, dir);
  const gc = (globalThis as { gc?: () => void }).gc;
  const write = (answer: object) => {
    const bytes = new TextEncoder().encode(JSON.stringify(answer) + "\n");
    for (let at = 0; at < bytes.length;) at += Deno.stdout.writeSync(bytes.subarray(at));
  };
  let rest = "";
  try {
    for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
      const lines = (rest + chunk).split("\n");
      rest = lines.pop()!;
      for (const line of lines) {
        if (line.trim() === "") continue;
        const { id, ...job } = JSON.parse(line) as Job & { id: number };
        gc?.();
        try {
          write({ id, ok: true, value: await perform(runner, job as Job) });
        } catch (error) {
          write({
            id,
            ok: false,
            error: error instanceof Error ? error.stack ?? error.message : String(error),
          });
        }
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
