/**
 * The benchmark: our services against the raw amqplib client on the same paths, in one run,
 * interleaved (raw, ours; ours, raw; …) so drift hits both sides alike. Reports msg/s (median
 * and range) and the ratio ours/raw per path; end-to-end latency at a steady 2,000 msg/s;
 * retry-delay lateness; the slowdown with 100k messages parked in the retry tiers; and the peak
 * RSS of OrdemDeProducao itself, run as its own process. Writes
 * bench/results/latest.json and latest.md; `--docs` also puts the table in docs/performance.md.
 *
 *   deno task bench [--quick] [--messages N] [--rounds R] [--parked P] [--docs]
 *
 * Env: RABBITMQ_URL. Each run uses its own throwaway topology on the broker. Runs with
 * --allow-all: it spawns OrdemDeProducao and reads its peak RSS from /proc, which Deno grants
 * only to fully trusted scripts.
 *
 * @module
 */

import { join } from "node:path";
import { Broker, DEFAULT_RABBITMQ_URL } from "../lib/broker.ts";
import { DEFAULT_RETRY_POLICY, retryDelays } from "../lib/retry_policy.ts";
import { booleanOption, integerOption, stringOption, UsageError } from "../lib/cli.ts";
import { setupLogging } from "../lib/log.ts";
import { EXIT, runCommand } from "../lib/main.ts";
import { writeDocBlock } from "../scripts/doc_block.ts";
import { cpuDuring, gcPauses, profiled, profileTable } from "./profile.ts";
import {
  fsyncTimes,
  quantile,
  type RunContext,
  type RunResult,
  sampleLoopDelay,
  withBenchTopology,
} from "./_shared.ts";
import {
  oursConsume,
  oursDeadLetter,
  oursEndToEnd,
  oursLatency,
  oursPublish,
  oursReplay,
  oursRetry,
  oursRetryLateness,
  oursServiceRss,
  park,
} from "./ours.ts";
import {
  rawConsume,
  rawDeadLetter,
  rawDeadLetterExplained,
  rawEndToEnd,
  rawLatency,
  rawPublish,
  rawReplay,
  rawRetry,
  rawRetryExplained,
} from "./raw.ts";

const OPTIONS = {
  url: {
    type: "string",
    env: "RABBITMQ_URL",
    default: DEFAULT_RABBITMQ_URL,
    description: "The broker.",
  },
  quick: { type: "boolean", description: "Small sizes: done in under a minute." },
  messages: {
    type: "string",
    placeholder: "N",
    description:
      "Messages per timed run (default 60000; quick 3000); the sweep's runs and the scale case take at most 20000.",
  },
  rounds: {
    type: "string",
    placeholder: "R",
    description: "Runs per side and path (default 5; quick 3).",
  },
  parked: {
    type: "string",
    placeholder: "P",
    description: "Messages parked for the scale case (default 100000; quick 10000).",
  },
  prefetch: {
    type: "string",
    placeholder: "N",
    description: "Our consumer's prefetch (default: swept over 100, 500, 1000).",
  },
  "raw-prefetch": {
    type: "string",
    placeholder: "N",
    description: "The raw baseline's prefetch (default: swept over 100, 500, 1000).",
  },
  window: {
    type: "string",
    placeholder: "N",
    description: "Our publishers' confirm window (default: swept; Estoque's default is 20000).",
  },
  "raw-window": {
    type: "string",
    placeholder: "N",
    description:
      "How many publishes the raw baseline's publisher keeps awaiting their confirm (default: swept).",
  },
  docs: { type: "boolean", description: "Also write the table into docs/performance.md." },
  profile: {
    type: "boolean",
    description:
      "With --only: after the rounds, one more run of each side (and of the control, for retry and dead-letter) under the CPU profiler, and where each one's time went, in microseconds a message (--docs: into docs/performance.md).",
  },
  "profile-out": {
    type: "string",
    placeholder: "DIR",
    description:
      "With --profile: also write each side's whole profile to DIR as <path>-raw.cpuprofile, <path>-ours.cpuprofile and, for retry and dead-letter, <path>-control.cpuprofile (open them in Chrome DevTools or read them by function).",
  },
  only: {
    type: "string",
    placeholder: "path",
    description:
      "Run one throughput path alone (publish, consume, end-to-end, retry, dead-letter, dlq replay) and print its ratio.",
  },
} as const;

type Side = (ctx: RunContext) => Promise<RunResult>;
/** A setting a side of a path is swept over before its timed rounds. */
type Knob = "prefetch" | "window";
interface PathSpec {
  readonly name: string;
  readonly raw: Side;
  readonly ours: Side;
  readonly target: number;
  readonly what: string;
  /** The raw side's settings that change this path (swept unless pinned by a flag). */
  readonly rawKnobs: readonly Knob[];
  /** Our side's settings that change this path. */
  readonly oursKnobs: readonly Knob[];
  /**
   * Raw publishing the very copy ours publishes (every property, the failure headers), at raw's
   * settings: run in the same rounds, it tells what the copy carries from what ours' code costs.
   */
  readonly control?: Side;
}

/** The values the sweep tries. */
const SWEEP: Record<Knob, readonly number[]> = {
  prefetch: [100, 500, 1_000],
  window: [256, 1_024, 20_000],
};

/** One side's settings. */
interface Settings {
  readonly prefetch: number;
  readonly window: number;
}

const PATHS: PathSpec[] = [
  {
    name: "publish",
    rawKnobs: [],
    oursKnobs: [],
    raw: rawPublish,
    ours: oursPublish,
    target: 0.95,
    what: "Estoque bulk publish, confirmed",
  },
  {
    name: "consume",
    rawKnobs: ["prefetch"],
    oursKnobs: ["prefetch"],
    raw: rawConsume,
    ours: oursConsume,
    target: 0.9,
    what: "consume valid orders; ours writes the durable ledger",
  },
  {
    name: "end-to-end",
    rawKnobs: ["prefetch", "window"],
    oursKnobs: ["prefetch", "window"],
    raw: rawEndToEnd,
    ours: oursEndToEnd,
    target: 0.9,
    what: "publish while consuming",
  },
  {
    name: "retry",
    rawKnobs: ["prefetch"],
    oursKnobs: ["prefetch"],
    raw: rawRetry,
    ours: oursRetry,
    control: rawRetryExplained,
    target: 0.9,
    what: "republish to a retry queue with confirm, then ack",
  },
  {
    name: "dead-letter",
    rawKnobs: ["prefetch"],
    oursKnobs: ["prefetch"],
    raw: rawDeadLetter,
    ours: oursDeadLetter,
    control: rawDeadLetterExplained,
    target: 0.9,
    what: "publish to the DLX with confirm, then ack",
  },
  {
    name: "dlq replay",
    rawKnobs: ["prefetch"],
    oursKnobs: ["window"],
    raw: rawReplay,
    ours: oursReplay,
    target: 0.9,
    what: "consume the DLQ, republish to the work exchange with confirm, then ack",
  },
];

interface SideStats {
  readonly rates: number[];
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

type SideName = "raw" | "ours";

/**
 * The order of the two sides in round `round`: raw first in even rounds, ours first in odd ones
 * (the control, where a path has one, runs between them), so that a place in the round counts for
 * both alike: a run may pay for what the broker still does after the one before it (deleting that
 * run's queues and the messages left in them).
 */
function inTurn(round: number): readonly [SideName, SideName] {
  return round % 2 === 0 ? ["raw", "ours"] : ["ours", "raw"];
}

/** Messages a second of one run. */
const rate = (r: RunResult) => r.messages / (r.elapsedMs / 1000);

/** A ratio to two places, or to four where two would put it on the other side of its target. */
function ratioText(ratio: number, target: number): string {
  const short = ratio.toFixed(2);
  return (Number(short) >= target) === (ratio >= target) ? short : ratio.toFixed(4);
}

function stats(results: RunResult[]): SideStats {
  const rates = results.map(rate);
  return { rates, median: quantile(rates, 0.5), min: Math.min(...rates), max: Math.max(...rates) };
}

/**
 * The median and range of the ratios of `a` to `b` run by run: each round ran them back to back,
 * and the median of those paired ratios cancels the drift between rounds better than a ratio of
 * medians.
 */
function paired(a: SideStats, b: SideStats): { median: number; min: number; max: number } {
  const ratios = a.rates.map((rate, i) => rate / b.rates[i]!);
  return { median: quantile(ratios, 0.5), min: Math.min(...ratios), max: Math.max(...ratios) };
}

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

runCommand({
  options: OPTIONS,
  usage: "deno task bench [options]",
  summary: "Our services against the raw amqplib client.",
}, async (cl) => {
  setupLogging({ level: "error" });
  const quick = booleanOption(cl.options.quick!);
  const url = stringOption(cl.options.url!);
  const opt = (name: string, fallback: number, max: number) =>
    cl.options[name]!.value === undefined ? fallback : integerOption(cl.options[name]!, 1, max);
  // A timed run long enough to average over the broker's hiccups: at 20,000 messages (about two
  // seconds) one run of a side moved by up to half either way, at 60,000 by a tenth.
  const messages = opt("messages", quick ? 3_000 : 60_000, 1_000_000);
  /**
   * The size of the runs that need not average as long: the sweep's, which only pick settings,
   * and the scale case's, which compares ours with itself.
   */
  const shortRunMessages = Math.min(messages, 20_000);
  const rounds = opt("rounds", quick ? 3 : 5, 100);
  const parked = opt("parked", quick ? 10_000 : 100_000, 10_000_000);
  const prefetch = opt("prefetch", 500, 65_535);
  const rawPrefetch = opt("raw-prefetch", 100, 65_535);
  const rawWindow = opt("raw-window", 256, 1_000_000);
  const window = opt("window", 20_000, 1_000_000);
  // A knob given on the command line is pinned; the others are swept per path and side.
  const pinned = (flag: string) => cl.options[flag]!.value !== undefined;
  const pins = {
    raw: { prefetch: pinned("raw-prefetch"), window: pinned("raw-window") },
    ours: { prefetch: pinned("prefetch"), window: pinned("window") },
  };
  const defaults = {
    raw: { prefetch: rawPrefetch, window: rawWindow },
    ours: { prefetch, window },
  };
  const dir = await Deno.makeTempDir({ prefix: "productionorder-bench-" });
  interface ContextOptions {
    readonly raw?: Settings;
    readonly ours?: Settings;
    readonly messages?: number;
    readonly retryDelays?: readonly number[];
  }
  /** Runs `fn` in a fresh topology with the context those settings make. */
  const inTopology = <T>(fn: (ctx: RunContext) => Promise<T>, options: ContextOptions = {}) => {
    const { raw = defaults.raw, ours = defaults.ours } = options;
    return withBenchTopology(url, (broker, topo) =>
      fn({
        url,
        broker,
        topo,
        messages: options.messages ?? messages,
        dir,
        prefetch: ours.prefetch,
        window: ours.window,
        rawPrefetch: raw.prefetch,
        rawWindow: raw.window,
      }), options.retryDelays);
  };
  /** One timed run of a side; `before` is untimed set-up in the run's topology. */
  const run = (
    side: Side,
    options: ContextOptions & { before?: (ctx: RunContext) => Promise<void> } = {},
  ) =>
    inTopology(async (ctx) => {
      await options.before?.(ctx);
      return await side(ctx);
    }, options);
  const sweepRuns = quick ? 1 : 2;
  /** Runs a side once per combination of its unpinned knobs' values; returns the fastest. */
  const sweep = async (path: PathSpec, which: "raw" | "ours"): Promise<Settings> => {
    let candidates: Settings[] = [defaults[which]];
    for (const knob of which === "raw" ? path.rawKnobs : path.oursKnobs) {
      if (pins[which][knob]) continue;
      candidates = candidates.flatMap((c) => SWEEP[knob].map((v) => ({ ...c, [knob]: v })));
    }
    if (candidates.length === 1) return candidates[0]!;
    let best = { settings: candidates[0]!, rate: 0 };
    for (const settings of candidates) {
      // One run moves by up to half either way on this kind of machine: a full run averages two.
      let sum = 0;
      for (let i = 0; i < sweepRuns; i++) {
        sum += rate(
          which === "raw"
            ? await run(path.raw, { raw: settings, messages: shortRunMessages })
            : await run(path.ours, { ours: settings, messages: shortRunMessages }),
        );
      }
      if (sum / sweepRuns > best.rate) best = { settings, rate: sum / sweepRuns };
    }
    return best.settings;
  };
  const describe = (s: Settings, knobs: readonly Knob[]) =>
    knobs.length === 0 ? "defaults" : knobs.map((k) => `${k} ${fmt(s[k])}`).join(", ");

  const log = (text: string) => console.error(text);
  log(
    `bench: ${messages} messages per timed run (${shortRunMessages} in the sweep), ${rounds} rounds ` +
      `per side, ${parked} parked`,
  );
  const only = cl.options.only!.value === undefined ? undefined : stringOption(cl.options.only!);
  const paths = only === undefined ? PATHS : PATHS.filter((p) => p.name === only);
  if (paths.length === 0) {
    throw new UsageError(
      `--only must be one of ${PATHS.map((p) => p.name).join(", ")}, got ${JSON.stringify(only)}`,
    );
  }
  const profileOut = cl.options["profile-out"]!.value === undefined
    ? undefined
    : stringOption(cl.options["profile-out"]!);
  if (profileOut !== undefined && (only === undefined || !booleanOption(cl.options.profile!))) {
    throw new UsageError("--profile-out needs --only and --profile");
  }
  if (profileOut !== undefined) await Deno.mkdir(profileOut, { recursive: true });
  const results: Record<string, { raw: RunResult[]; ours: RunResult[]; control: RunResult[] }> = {};
  const chosen: Record<string, { raw: Settings; ours: Settings }> = {};
  for (const path of paths) {
    results[path.name] = { raw: [], ours: [], control: [] };
    const rawSettings = await sweep(path, "raw");
    const oursSettings = await sweep(path, "ours");
    chosen[path.name] = { raw: rawSettings, ours: oursSettings };
    log(
      `  ${path.name}: raw ${describe(rawSettings, path.rawKnobs)}; ours ${
        describe(oursSettings, path.oursKnobs)
      }`,
    );
    const timed = {
      raw: () => run(path.raw, { raw: rawSettings }),
      ours: () => run(path.ours, { ours: oursSettings }),
    };
    for (let round = 0; round < rounds; round++) {
      const [first, second] = inTurn(round);
      const ran = {} as Record<SideName, RunResult>;
      ran[first] = await timed[first]();
      const control = path.control && await run(path.control, { raw: rawSettings });
      ran[second] = await timed[second]();
      const { raw, ours } = ran;
      results[path.name]!.raw.push(raw);
      if (control) results[path.name]!.control.push(control);
      results[path.name]!.ours.push(ours);
      log(
        `  ${path.name} round ${round + 1}: raw ${fmt(rate(raw))}/s, ${
          control ? `raw with ours' copy ${fmt(rate(control))}/s, ` : ""
        }ours ${fmt(rate(ours))}/s`,
      );
    }
  }

  if (only !== undefined) {
    const raw = stats(results[only]!.raw);
    const ours = stats(results[only]!.ours);
    const ratios = paired(ours, raw);
    console.log(
      `${only}: raw ${fmt(raw.median)}/s, ours ${fmt(ours.median)}/s, ratio ${
        ratioText(ratios.median, paths[0]!.target)
      } (median of ${ours.rates.length} paired runs; ${ratios.min.toFixed(2)}-${
        ratios.max.toFixed(2)
      })`,
    );
    if (results[only]!.control.length > 0) {
      const control = stats(results[only]!.control);
      const vsControl = paired(ours, control);
      const carried = paired(control, raw);
      console.log(
        `  raw publishing ours' copy ${fmt(control.median)}/s: ours / that ${
          vsControl.median.toFixed(2)
        } (${vsControl.min.toFixed(2)}-${vsControl.max.toFixed(2)}); that / raw ${
          carried.median.toFixed(2)
        } (${carried.min.toFixed(2)}-${carried.max.toFixed(2)})`,
      );
    }
    if (booleanOption(cl.options.profile!)) {
      const path = paths[0]!;
      const settings = chosen[only]!;
      /** One profiled run; its profile goes to `<path>-<name>.cpuprofile` under --profile-out. */
      const measured = async (label: string, name: string, side: Side, options: ContextOptions) => {
        const cpu = await cpuDuring(() => profiled(() => run(side, options)));
        const { result, profile } = cpu.result;
        return {
          label,
          name,
          result,
          profile,
          messages: result.messages,
          brokerMs: cpu.brokerMs,
          selfMs: cpu.selfMs,
        };
      };
      const sides = [await measured("raw", "raw", path.raw, { raw: settings.raw })];
      if (path.control) {
        sides.push(
          await measured("raw with ours' copy", "control", path.control, { raw: settings.raw }),
        );
      }
      sides.push(await measured("ours", "ours", path.ours, { ours: settings.ours }));
      if (profileOut !== undefined) {
        for (const side of sides) {
          const out = join(
            profileOut,
            `${only.replaceAll(" ", "-")}-${side.name}.cpuprofile`,
          );
          await Deno.writeTextFile(out, JSON.stringify(side.profile));
          log(`  profile of ${side.label}: ${out}`);
        }
      }
      const rates = sides.map((side) => `${fmt(rate(side.result))}/s ${side.label}`);
      console.log(`\n${only}, one run each under the profiler (${rates.join(", ")}):\n`);
      const table = profileTable(sides);
      console.log(table);
      if (booleanOption(cl.options.docs!)) {
        await writeDocBlock(
          "performance.md",
          `profile-${only}`,
          `\`deno task bench ${Deno.args.join(" ")}\` on ${
            new Date().toISOString().slice(0, 10)
          }, ${only}: one run of each side under V8's sampling profiler (0.1 ms), after ${rounds} ` +
            `timed rounds; this run moved ${rates.join(", ")}. The difference is ours less raw.` +
            `\n\n${table}`,
        );
      }
    }
    await Deno.remove(dir, { recursive: true });
    return EXIT.ok;
  }

  const latencyMessages = quick ? 1_000 : 5_000;
  const latencyRate = 2_000;
  log(`  latency at ${latencyRate} msg/s`);
  const latencies = { raw: [] as number[], ours: [] as number[] };
  // The event loop's delay while each side's latency path runs (both run in this process).
  const loopDelays = { raw: [] as number[], ours: [] as number[] };
  // Each side at the settings its end-to-end sweep picked.
  const e2e = chosen["end-to-end"]!;
  for (let round = 0; round < rounds; round++) {
    const latencyRun = (fn: (ctx: RunContext, rate: number) => Promise<number[]>) =>
      inTopology((ctx) => fn(ctx, latencyRate), { ...e2e, messages: latencyMessages });
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
    inTopology((ctx) => oursLatency({ ...ctx, commitTimes }, latencyRate), {
      ...e2e,
      messages: latencyMessages,
    })
  );
  const pauses = gcPauses(diagnosed.profile);

  log("  disk fsync");
  const fsyncs = await fsyncTimes(dir, quick ? 200 : 1_000);

  log("  retry lateness");
  const lateness = await inTopology((ctx) => oursRetryLateness(ctx, 1_000), {
    messages: quick ? 500 : 2_000,
  });

  log("  service RSS");
  const service = await inTopology(oursServiceRss, {
    messages: quick ? 10_000 : 50_000,
    retryDelays: retryDelays(DEFAULT_RETRY_POLICY),
  });

  log(`  scale: ${parked} parked`);
  const scale = { without: [] as RunResult[], with: [] as RunResult[] };
  for (let round = 0; round < Math.max(1, Math.min(rounds, 5)); round++) {
    scale.without.push(await run(oursEndToEnd, { messages: shortRunMessages }));
    scale.with.push(
      await run(oursEndToEnd, { messages: shortRunMessages, before: (ctx) => park(ctx, parked) }),
    );
    log(
      `  scale round ${round + 1}: ${fmt(stats(scale.without.slice(-1)).median)}/s without, ${
        fmt(stats(scale.with.slice(-1)).median)
      }/s with`,
    );
  }
  await Deno.remove(dir, { recursive: true });

  const rows = PATHS.map((path) => {
    const raw = stats(results[path.name]!.raw);
    const ours = stats(results[path.name]!.ours);
    const ratios = paired(ours, raw);
    const ratio = ratios.median;
    const control = results[path.name]!.control.length === 0
      ? undefined
      : stats(results[path.name]!.control);
    return {
      path: path.name,
      what: path.what,
      raw,
      ours,
      ratio,
      ratioRange: [ratios.min, ratios.max],
      control: control && {
        ...control,
        oursToControl: paired(ours, control),
        controlToRaw: paired(control, raw),
      },
      target: path.target,
      met: ratio >= path.target,
      picked: {
        raw: describe(chosen[path.name]!.raw, path.rawKnobs),
        ours: describe(chosen[path.name]!.ours, path.oursKnobs),
      },
    };
  });
  const latency = {
    raw: { p50: quantile(latencies.raw, 0.5), p99: quantile(latencies.raw, 0.99) },
    ours: { p50: quantile(latencies.ours, 0.5), p99: quantile(latencies.ours, 0.99) },
  };
  const late = { p50: quantile(lateness, 0.5), p99: quantile(lateness, 0.99) };
  const loopDelay = {
    raw: { p99: quantile(loopDelays.raw, 0.99), max: Math.max(...loopDelays.raw) },
    ours: { p99: quantile(loopDelays.ours, 0.99), max: Math.max(...loopDelays.ours) },
  };
  const fsync = { p50: quantile(fsyncs, 0.5), p99: quantile(fsyncs, 0.99) };
  const diagnostics = {
    latencyP99: quantile(diagnosed.result, 0.99),
    commit: {
      count: commitTimes.length,
      p50: quantile(commitTimes, 0.5),
      p99: quantile(commitTimes, 0.99),
      max: Math.max(...commitTimes),
    },
    gc: {
      pauses: pauses.length,
      p50: quantile(pauses, 0.5),
      p99: quantile(pauses, 0.99),
      max: Math.max(0, ...pauses),
      totalMs: pauses.reduce((a, b) => a + b, 0),
    },
  };
  // The tail target: ours within raw's p99 plus 10 ms.
  const tailBound = latency.raw.p99 + 10;
  // Paired like the paths: each round ran without, then with, parked messages.
  const slowdowns = scale.with.map((r, i) => 1 - scale.without[i]!.elapsedMs / r.elapsedMs);
  const slowdown = quantile(slowdowns, 0.5);
  const mb = (bytes: number) => (bytes / 1_048_576).toFixed(0);
  const broker = await (async () => {
    const b = await Broker.connect(url);
    const v = b.serverVersion;
    await b.close();
    return v;
  })();

  const ms = (n: number) => n.toFixed(1);
  const verdict = (ok: boolean) => (ok ? "met" : "MISSED");
  const pct = (n: number) => `${(n * 100).toFixed(1)} %`;
  const command = `deno task bench${Deno.args.length > 0 ? ` ${Deno.args.join(" ")}` : ""}`;
  const md = [
    `Measured ${new Date().toISOString().slice(0, 10)} with \`${command}\`: RabbitMQ ${broker}, ` +
    `Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores; ${fmt(messages)} ` +
    `persistent messages per timed run, ${rounds} interleaved runs per side, which side goes ` +
    "first alternating from round to round. Before its timed runs, " +
    `each side of each path ran ${sweepRuns === 1 ? "once" : `${sweepRuns} times`} ` +
    `(${fmt(shortRunMessages)} messages a run) per value ` +
    "of the settings that change it (prefetch " +
    `${SWEEP.prefetch.join(", ")}; publish window ${SWEEP.window.join(", ")}; a setting given ` +
    "as a flag is not swept) and kept the fastest; the table names what was kept. Where a path " +
    "publishes while it consumes, both sides publish on a connection of their own. Raw's " +
    "connections write as amqplib does, a socket write a frame; ours send each turn's frames " +
    "in one write.",
    "",
    "| path | raw amqplib msg/s (median, range) | ours msg/s (median, range) | ours / raw (median, range of paired runs) | target | settings kept (raw; ours) |",
    "| --- | --- | --- | --- | --- | --- |",
    ...rows.map((r) => {
      const raw = `${fmt(r.raw.median)} (${fmt(r.raw.min)}–${fmt(r.raw.max)})`;
      const ours = `${fmt(r.ours.median)} (${fmt(r.ours.min)}–${fmt(r.ours.max)})`;
      const range = `${r.ratioRange[0]!.toFixed(2)}–${r.ratioRange[1]!.toFixed(2)}`;
      return `| ${r.path} | ${raw} | ${ours} | **${
        ratioText(r.ratio, r.target)
      }** (${range}) | ≥ ${r.target} ${verdict(r.met)} | ${r.picked.raw}; ${r.picked.ours} |`;
    }),
    "",
    "What the copies carry, measured in the same rounds: raw publishing the very copy ours " +
    "publishes (every property of the message and the headers that explain the failure, made " +
    "by ours' own functions), at raw's settings.",
    "",
    "| path | raw publishing ours' copy msg/s (median, range) | that / raw (median, range) | ours / that (median, range) |",
    "| --- | --- | --- | --- |",
    ...rows.flatMap((r) => {
      if (r.control === undefined) return [];
      const c = r.control;
      const range = (p: { min: number; max: number }) => `${p.min.toFixed(2)}–${p.max.toFixed(2)}`;
      return [
        `| ${r.path} | ${fmt(c.median)} (${fmt(c.min)}–${fmt(c.max)}) | ` +
        `${c.controlToRaw.median.toFixed(2)} (${range(c.controlToRaw)}) | ` +
        `**${c.oursToControl.median.toFixed(2)}** (${range(c.oursToControl)}) |`,
      ];
    }),
    "",
    "| measure | raw | ours | target |",
    "| --- | --- | --- | --- |",
    `| end-to-end latency p50 / p99 at ${fmt(latencyRate)} msg/s | ` +
    `${ms(latency.raw.p50)} / ${ms(latency.raw.p99)} ms | ` +
    `${ms(latency.ours.p50)} / ${ms(latency.ours.p99)} ms | ` +
    `p99 ≤ raw p99 + 10 ms ${verdict(latency.ours.p99 <= tailBound)} |`,
    `| event-loop delay p99 / max during that latency path (10 ms timer) | ` +
    `${ms(loopDelay.raw.p99)} / ${ms(loopDelay.raw.max)} ms | ` +
    `${ms(loopDelay.ours.p99)} / ${ms(loopDelay.ours.max)} ms | |`,
    `| the disk's fsync p50 / p99 (4 KiB append + fdatasync, ${fmt(fsyncs.length)} times): ` +
    `the floor of a durable commit | ${ms(fsync.p50)} / ${ms(fsync.p99)} ms | | |`,
    `| ledger commit time p50 / p99 / max (${fmt(diagnostics.commit.count)} commits; one more ` +
    `profiled run of ours, whose latency p99 was ${ms(diagnostics.latencyP99)} ms) | | ` +
    `${ms(diagnostics.commit.p50)} / ${ms(diagnostics.commit.p99)} / ${
      ms(diagnostics.commit.max)
    } ms | |`,
    `| GC pauses p50 / p99 / max in that run (${fmt(diagnostics.gc.pauses)} pauses, ` +
    `${ms(diagnostics.gc.totalMs)} ms in all; runs of GC samples at 0.1 ms) | | ` +
    (diagnostics.gc.pauses === 0
      ? "none sampled | |"
      : `${ms(diagnostics.gc.p50)} / ${ms(diagnostics.gc.p99)} / ${ms(diagnostics.gc.max)} ms | |`),
    `| retry lateness p50 / p99 (ttl backend, 200 ms delay, 1,000 msg/s) | | ` +
    `${ms(late.p50)} / ${ms(late.p99)} ms | p99 < 100 ms ${verdict(late.p99 < 100)} |`,
    `| end-to-end slowdown with ${fmt(parked)} messages parked in a retry tier | | ` +
    `${pct(slowdown)} (median of paired runs; from ${pct(Math.min(...slowdowns))} to ` +
    `${pct(Math.max(...slowdowns))}) | < 10 % ${verdict(slowdown < 0.1)} |`,
    `| peak RSS of OrdemDeProducao draining a full queue (${fmt(service.rate)} msg/s) | | ` +
    (service.peakRss > 0
      ? `${mb(service.peakRss)} MB | < 150 MB ${verdict(service.peakRss < 150 * 1_048_576)} |`
      : "n/a (no /proc here) | < 150 MB |"),
  ].join("\n");

  const json = {
    date: new Date().toISOString(),
    broker,
    deno: Deno.version.deno,
    messages,
    shortRunMessages,
    rounds,
    parked,
    rows,
    latency,
    loopDelay,
    fsync,
    diagnostics,
    lateness: late,
    scale: { slowdown, slowdowns, without: stats(scale.without), with: stats(scale.with) },
    service,
    chosen,
  };
  await Deno.mkdir("bench/results", { recursive: true });
  await Deno.writeTextFile("bench/results/latest.json", JSON.stringify(json, null, 2) + "\n");
  await Deno.writeTextFile("bench/results/latest.md", md + "\n");
  if (booleanOption(cl.options.docs!)) {
    await writeDocBlock("performance.md", "bench", md);
  }
  console.log(md);
  return EXIT.ok;
});
