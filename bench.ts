/**
 * The benchmark: our services against the raw amqplib client on the same paths, in one run,
 * interleaved (raw, ours, raw, ours, …) so drift hits both sides alike. Reports msg/s (median
 * and range) and the ratio ours/raw per path, end-to-end latency, retry-delay lateness, the
 * slowdown with 100k messages parked in the retry tiers, and peak RSS. Writes
 * bench/results/latest.json and latest.md; `--readme` also puts the table in README.md.
 *
 *   deno task bench [--quick] [--messages N] [--rounds R] [--parked P] [--readme]
 *
 * Env: RABBITMQ_URL. Each run uses its own throwaway topology on the broker.
 *
 * @module
 */

import { DEFAULT_RABBITMQ_URL } from "./lib/broker.ts";
import {
  booleanOption,
  formatHelp,
  integerOption,
  parseCommandLine,
  stringOption,
} from "./lib/cli.ts";
import { setupLogging } from "./lib/log.ts";
import { EXIT, runMain } from "./lib/main.ts";
import { quantile, type RunContext, type RunResult, withBenchTopology } from "./bench/_shared.ts";
import {
  oursConsume,
  oursDeadLetter,
  oursEndToEnd,
  oursPublish,
  oursRetry,
  oursRetryLateness,
  park,
} from "./bench/ours.ts";
import { rawConsume, rawDeadLetter, rawEndToEnd, rawPublish, rawRetry } from "./bench/raw.ts";

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
    description: "Messages per run (default 20000; quick 3000).",
  },
  rounds: {
    type: "string",
    placeholder: "R",
    description: "Runs per side and path (default 5; quick 2).",
  },
  parked: {
    type: "string",
    placeholder: "P",
    description: "Messages parked for the scale case (default 100000; quick 10000).",
  },
  readme: { type: "boolean", description: "Also write the table into README.md." },
} as const;

type Side = (ctx: RunContext) => Promise<RunResult>;
interface PathSpec {
  readonly name: string;
  readonly raw: Side;
  readonly ours: Side;
  readonly target: number;
  readonly what: string;
}

const PATHS: PathSpec[] = [
  {
    name: "publish",
    raw: rawPublish,
    ours: oursPublish,
    target: 0.9,
    what: "Estoque bulk publish, confirmed",
  },
  {
    name: "consume",
    raw: rawConsume,
    ours: oursConsume,
    target: 0.8,
    what: "consume valid orders; ours writes the durable ledger",
  },
  {
    name: "end-to-end",
    raw: rawEndToEnd,
    ours: oursEndToEnd,
    target: 0.85,
    what: "publish while consuming",
  },
  {
    name: "retry",
    raw: rawRetry,
    ours: oursRetry,
    target: 0.9,
    what: "republish to a retry queue with confirm, then ack",
  },
  {
    name: "dead-letter",
    raw: rawDeadLetter,
    ours: oursDeadLetter,
    target: 0.9,
    what: "publish to the DLX with confirm, then ack",
  },
];

interface SideStats {
  readonly rates: number[];
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

function stats(results: RunResult[]): SideStats {
  const rates = results.map((r) => r.messages / (r.elapsedMs / 1000));
  return { rates, median: quantile(rates, 0.5), min: Math.min(...rates), max: Math.max(...rates) };
}

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

runMain(async () => {
  const cl = parseCommandLine(OPTIONS, Deno.args, Deno.env.toObject());
  if (cl.help) {
    console.log(
      formatHelp(
        "deno task bench [options]",
        "Our services against the raw amqplib client.",
        OPTIONS,
      ),
    );
    return EXIT.ok;
  }
  setupLogging({ level: "error" });
  const quick = booleanOption(cl.options.quick!);
  const url = stringOption(cl.options.url!);
  const opt = (name: string, fallback: number, max: number) =>
    cl.options[name]!.value === undefined ? fallback : integerOption(cl.options[name]!, 1, max);
  const messages = opt("messages", quick ? 3_000 : 20_000, 1_000_000);
  const rounds = opt("rounds", quick ? 2 : 5, 100);
  const parked = opt("parked", quick ? 10_000 : 100_000, 10_000_000);
  const dir = await Deno.makeTempDir({ prefix: "productionorder-bench-" });
  const run = (side: Side, extra?: (ctx: RunContext) => Promise<void>) =>
    withBenchTopology(url, async (broker, topo) => {
      const ctx = { url, broker, topo, messages, dir };
      await extra?.(ctx);
      return await side(ctx);
    });

  const log = (text: string) => console.error(text);
  log(`bench: ${messages} messages per run, ${rounds} rounds per side, ${parked} parked`);
  const results: Record<string, { raw: RunResult[]; ours: RunResult[] }> = {};
  for (const path of PATHS) {
    results[path.name] = { raw: [], ours: [] };
    for (let round = 0; round < rounds; round++) {
      const raw = await run(path.raw);
      const ours = await run(path.ours);
      results[path.name]!.raw.push(raw);
      results[path.name]!.ours.push(ours);
      log(
        `  ${path.name} round ${round + 1}: raw ${
          fmt(raw.messages / (raw.elapsedMs / 1000))
        }/s, ours ${fmt(ours.messages / (ours.elapsedMs / 1000))}/s`,
      );
    }
  }

  log("  retry lateness");
  const lateness = await withBenchTopology(
    url,
    (broker, topo) =>
      oursRetryLateness({ url, broker, topo, messages: Math.min(messages, 2_000), dir }),
  );

  log(`  scale: ${parked} parked`);
  const scale = { without: [] as RunResult[], with: [] as RunResult[] };
  for (let round = 0; round < Math.max(1, Math.min(rounds, 3)); round++) {
    scale.without.push(await run(oursEndToEnd));
    scale.with.push(await run(oursEndToEnd, (ctx) => park(ctx, parked)));
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
    const ratio = ours.median / raw.median;
    return {
      path: path.name,
      what: path.what,
      raw,
      ours,
      ratio,
      target: path.target,
      met: ratio >= path.target,
    };
  });
  const e2eLatencies = (side: "raw" | "ours") =>
    results["end-to-end"]![side].flatMap((r) => r.latenciesMs ?? []);
  const latency = {
    raw: { p50: quantile(e2eLatencies("raw"), 0.5), p99: quantile(e2eLatencies("raw"), 0.99) },
    ours: { p50: quantile(e2eLatencies("ours"), 0.5), p99: quantile(e2eLatencies("ours"), 0.99) },
  };
  const late = { p50: quantile(lateness, 0.5), p99: quantile(lateness, 0.99) };
  const slowdown = 1 - stats(scale.with).median / stats(scale.without).median;
  const peakRss = Math.max(
    ...results.consume!.ours.map((r) => r.peakRss ?? 0),
    ...results["end-to-end"]!.ours.map((r) => r.peakRss ?? 0),
  );
  const mb = (bytes: number) => (bytes / 1_048_576).toFixed(0);
  const broker = await (async () => {
    const { Broker } = await import("./lib/broker.ts");
    const b = await Broker.connect(url);
    const v = b.serverVersion;
    await b.close();
    return v;
  })();

  const md = [
    `Measured ${new Date().toISOString().slice(0, 10)} with \`deno task bench${
      quick ? " --quick" : ""
    }\`: RabbitMQ ${broker}, Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores; ${messages} persistent messages per run, ${rounds} interleaved runs per side.`,
    "",
    "| path | raw amqplib msg/s (median, range) | ours msg/s (median, range) | ours / raw | target |",
    "| --- | --- | --- | --- | --- |",
    ...rows.map((r) =>
      `| ${r.path} | ${fmt(r.raw.median)} (${fmt(r.raw.min)}–${fmt(r.raw.max)}) | ${
        fmt(r.ours.median)
      } (${fmt(r.ours.min)}–${fmt(r.ours.max)}) | **${r.ratio.toFixed(2)}** | ≥ ${r.target} ${
        r.met ? "met" : "MISSED"
      } |`
    ),
    "",
    "| measure | raw | ours | target |",
    "| --- | --- | --- | --- |",
    `| end-to-end latency p50 / p99 | ${latency.raw.p50.toFixed(1)} / ${
      latency.raw.p99.toFixed(1)
    } ms | ${latency.ours.p50.toFixed(1)} / ${latency.ours.p99.toFixed(1)} ms | p99 < 50 ms ${
      latency.ours.p99 < 50 ? "met" : "MISSED"
    } |`,
    `| retry lateness p50 / p99 (ttl backend, 200 ms delay) | | ${late.p50.toFixed(1)} / ${
      late.p99.toFixed(1)
    } ms | p99 < 100 ms ${late.p99 < 100 ? "met" : "MISSED"} |`,
    `| end-to-end slowdown with ${fmt(parked)} parked in the retry tiers | | ${
      (slowdown * 100).toFixed(1)
    } % (${fmt(stats(scale.without).median)} → ${fmt(stats(scale.with).median)} msg/s) | < 10 % ${
      slowdown < 0.1 ? "met" : "MISSED"
    } |`,
    `| peak RSS of the process running the consumer | | ${mb(peakRss)} MB | < 150 MB ${
      peakRss < 150 * 1_048_576 ? "met" : "MISSED"
    } |`,
  ].join("\n");

  const json = {
    date: new Date().toISOString(),
    broker,
    deno: Deno.version.deno,
    messages,
    rounds,
    parked,
    rows,
    latency,
    lateness: late,
    scale: { slowdown, without: stats(scale.without), with: stats(scale.with) },
    peakRss,
  };
  await Deno.mkdir("bench/results", { recursive: true });
  await Deno.writeTextFile("bench/results/latest.json", JSON.stringify(json, null, 2) + "\n");
  await Deno.writeTextFile("bench/results/latest.md", md + "\n");
  if (booleanOption(cl.options.readme!)) {
    const readme = await Deno.readTextFile("README.md");
    const start = "<!-- bench:start -->";
    const end = "<!-- bench:end -->";
    const a = readme.indexOf(start);
    const b = readme.indexOf(end);
    if (a < 0 || b < a) throw new Error(`README.md has no ${start} … ${end} block`);
    await Deno.writeTextFile(
      "README.md",
      readme.slice(0, a + start.length) + "\n\n" + md + "\n\n" + readme.slice(b),
    );
  }
  console.log(md);
  return EXIT.ok;
});
