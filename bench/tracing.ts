/**
 * What tracing costs, by the bench's method: ours' end-to-end path (Estoque's publisher and
 * OrdemDeProducao's consumer, the services' defaults) with tracing off, with every trace recorded,
 * with one in ten sampled where the trace starts (`--ratio`), and with none recorded
 * (`parentbased_always_off`: what carrying the context and deciding costs alone). Each variant
 * runs in a process of its own (its OTEL_* environment set at start), warmed up by one untimed
 * run; in each round every variant runs once, the order rotated and reversed from round to round
 * (each variant in each place equally often over every 8 rounds). Each variant's ratio to tracing
 * off is the median of the paired ratios with a 95 % bootstrap interval. Spans are exported
 * (OTLP over HTTP, protobuf) to a sink in this process that only counts them.
 *
 * Targets: one trace in ten sampled >= 0.9 of tracing off; every trace >= 0.75.
 *
 *   deno task bench:tracing [--quick] [--rounds R] [--messages N] [--ratio R]
 *
 * @module
 */

import { booleanOption, integerOption, numberOption, UsageError } from "../lib/cli.ts";
import { EXIT, runCommand } from "../lib/main.ts";
import { DEFAULT_RABBITMQ_URL } from "../lib/broker.ts";
import { setupLogging } from "../lib/log.ts";
import { pairedRatio } from "./_bootstrap.ts";
import { rotatedOrder } from "./_method.ts";
import { pathNamed } from "./_paths.ts";
import { brokerQuiet } from "./_quiet.ts";
import { SERVICES } from "./_services_settings.ts";
import type { RunResult } from "./_shared.ts";
import { SideProcess } from "./_side_process.ts";
import { serviceV8Flags } from "../testing/service_flags.ts";
import { rate, sideStats } from "./_stats.ts";

const OPTIONS = {
  rounds: {
    type: "string",
    placeholder: "R",
    description: "Rounds, an even number (default 16; quick 2).",
  },
  messages: {
    type: "string",
    placeholder: "N",
    description: "Messages per run (default 60000; quick 2000).",
  },
  quick: { type: "boolean", description: "Small sizes: 2 rounds of 2,000 messages." },
  ratio: {
    type: "string",
    placeholder: "R",
    description: "The share of traces the sampled runs record (default 0.1).",
  },
} as const;

/** A variant: its name, its environment, and the ratio to tracing off it should reach. */
interface Variant {
  readonly name: string;
  readonly env: Record<string, string>;
  readonly target?: number;
}

runCommand({
  options: OPTIONS,
  usage: "deno task bench:tracing [options]",
  summary: "The cost of tracing on ours' end-to-end path.",
}, async (cl) => {
  setupLogging({ level: "error" });
  const quick = booleanOption(cl.options.quick!);
  const given = (name: string) => cl.options[name]!.value !== undefined;
  const rounds = given("rounds") ? integerOption(cl.options.rounds!, 2, 100) : quick ? 2 : 16;
  if (rounds % 2 !== 0) throw new UsageError(`--rounds must be even, got ${rounds}`);
  const ratio = given("ratio") ? numberOption(cl.options.ratio!, 0, 1) : 0.1;
  const messages = given("messages")
    ? integerOption(cl.options.messages!, 100, 1_000_000)
    : (quick ? 2_000 : 60_000);
  const url = Deno.env.get("RABBITMQ_URL") ?? DEFAULT_RABBITMQ_URL;
  let exports = 0;
  const sink = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    await req.arrayBuffer();
    exports++;
    return new Response(null, { headers: { "content-type": "application/x-protobuf" } });
  });
  const traced = {
    OTEL_DENO: "true",
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${sink.addr.port}`,
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf",
    OTEL_SERVICE_NAME: "bench",
    // Deno's span queue holds 2,048 spans by default and drops what comes while it is full: a
    // queue that holds a run's spans measures tracing that keeps every span.
    OTEL_BSP_MAX_QUEUE_SIZE: "65536",
  };
  const variants: Variant[] = [
    { name: "tracing off", env: { OTEL_DENO: "false" } },
    { name: "every trace recorded", env: traced, target: 0.75 },
    {
      name: `${ratio} of traces (parentbased_traceidratio)`,
      env: {
        ...traced,
        OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG: String(ratio),
      },
      target: 0.9,
    },
    {
      name: "none recorded (parentbased_always_off)",
      env: { ...traced, OTEL_TRACES_SAMPLER: "parentbased_always_off" },
    },
  ];
  const path = pathNamed("end-to-end");
  const v8Flags = serviceV8Flags();
  const processes = variants.map((v) => new SideProcess(v.name, { url, v8Flags, env: v.env }));
  const run = async (i: number, n: number) => {
    await brokerQuiet(url);
    const job = { kind: "run", path: path.name, role: "ours", settings: SERVICES, messages: n };
    return await processes[i]!.request<RunResult>(job);
  };
  const runs: RunResult[][] = variants.map(() => []);
  try {
    for (let i = 0; i < variants.length; i++) await run(i, Math.min(messages, 10_000));
    for (let round = 0; round < rounds; round++) {
      for (const i of rotatedOrder(round, variants.map((_, i) => i))) {
        runs[i]!.push(await run(i, messages));
      }
      console.error(
        `  round ${round + 1}: ` +
          variants.map((v, i) => `${v.name} ${Math.round(rate(runs[i]!.at(-1)!))}/s`).join(", "),
      );
    }
  } finally {
    for (const process of processes) await process.close().catch(() => {});
    await sink.shutdown();
  }
  const off = sideStats(runs[0]!);
  const lines = variants.slice(1).map((v, k) => {
    const stats = sideStats(runs[k + 1]!);
    const r = pairedRatio(stats.rates, off.rates);
    const verdict = v.target === undefined
      ? ""
      : ` target >= ${v.target} ${r.median >= v.target ? "met" : "MISSED"}`;
    return `  ${v.name}: ${r.median.toFixed(2)} [${r.low.toFixed(2)}-${r.high.toFixed(2)}] ` +
      `(${r.min.toFixed(2)}-${r.max.toFixed(2)}; ${Math.round(stats.median)}/s)${verdict}`;
  });
  console.log(
    `end-to-end, ours, tracing on / off (off ${Math.round(off.median)}/s; ${rounds} rounds of ` +
      `${messages} messages; median of paired ratios [95 % interval] (range); ${exports} OTLP ` +
      `exports received):\n${lines.join("\n")}`,
  );
  return EXIT.ok;
});
