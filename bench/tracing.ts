/**
 * What tracing costs: the end-to-end path of `deno task bench` (`--only end-to-end`) run in paired
 * rounds with tracing off and on (OTEL_DENO=true, exporting to an OTLP sink in this process),
 * and the ratio of the two, median of the pairs: with every trace recorded, with one in ten
 * (`--ratio`) sampled where the trace starts, and with none recorded (what carrying the context
 * and deciding costs alone). Target: at least 0.85 with tracing on.
 *
 *   deno task bench:tracing [--rounds R] [--messages N] [--ratio R]
 *
 * @module
 */

import { booleanOption, integerOption, numberOption } from "../lib/cli.ts";
import { EXIT, runCommand } from "../lib/main.ts";
import { quantile } from "./_shared.ts";

const OPTIONS = {
  rounds: { type: "string", placeholder: "R", description: "Paired rounds (default 5)." },
  messages: {
    type: "string",
    placeholder: "N",
    description: "Messages per run (default 20000).",
  },
  quick: { type: "boolean", description: "Small sizes: 3 rounds of 3000 messages." },
  ratio: {
    type: "string",
    placeholder: "R",
    description: "The share of traces the sampled runs record (default 0.1).",
  },
} as const;

const root = new URL("..", import.meta.url).pathname;

/** One end-to-end run of ours in its own process; its rate in messages a second. */
async function endToEnd(messages: number, env: Record<string, string>): Promise<number> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${root}bench/main.ts`,
      "--only",
      "end-to-end",
      "--rounds",
      "1",
      "--messages",
      String(messages),
      // Settings pinned (no sweep in each run): the ones the full bench's end-to-end sweep keeps.
      "--prefetch",
      "1000",
      "--window",
      "20000",
      "--raw-prefetch",
      "1000",
      "--raw-window",
      "1024",
    ],
    env,
  }).output();
  const text = new TextDecoder().decode(stdout);
  const rate = /ours ([\d,]+)\/s/.exec(text)?.[1];
  if (code !== 0 || rate === undefined) {
    throw new Error(`bench run failed: ${new TextDecoder().decode(stderr)}`);
  }
  return Number(rate.replaceAll(",", ""));
}

runCommand({
  options: OPTIONS,
  usage: "deno task bench:tracing [options]",
  summary: "The cost of tracing on the end-to-end path.",
}, async (cl) => {
  const quick = booleanOption(cl.options.quick!);
  const rounds = cl.options.rounds!.value === undefined
    ? (quick ? 3 : 5)
    : integerOption(cl.options.rounds!, 1, 50);
  const ratio = cl.options.ratio!.value === undefined ? 0.1 : numberOption(cl.options.ratio!, 0, 1);
  const messages = cl.options.messages!.value === undefined
    ? (quick ? 3_000 : 20_000)
    : integerOption(cl.options.messages!, 100, 1_000_000);
  // The exporter's default protocol (protobuf), as a deployment would use; the sink only counts.
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
    // Deno's span queue holds 2,048 spans by default and drops what comes while it is full: at
    // this rate about half of Estoque's publish spans were lost. A queue that holds a run's
    // spans measures tracing that keeps every span (the rate was the same either way).
    OTEL_BSP_MAX_QUEUE_SIZE: "65536",
  };
  // Every trace recorded (OpenTelemetry's default sampler), and one in ten, decided where the
  // trace starts (Estoque) and followed by OrdemDeProducao from the message's context.
  const sampled = {
    ...traced,
    OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
    OTEL_TRACES_SAMPLER_ARG: String(ratio),
  };
  const unsampled = { ...traced, OTEL_TRACES_SAMPLER: "parentbased_always_off" };
  const off: number[] = [];
  const on: number[] = [];
  const some: number[] = [];
  const none: number[] = [];
  for (let round = 0; round < rounds; round++) {
    off.push(await endToEnd(messages, { OTEL_DENO: "false" }));
    on.push(await endToEnd(messages, traced));
    some.push(await endToEnd(messages, sampled));
    none.push(await endToEnd(messages, unsampled));
    console.error(
      `  round ${round + 1}: tracing off ${off.at(-1)}/s, every trace ${on.at(-1)}/s, ` +
        `${ratio} of traces ${some.at(-1)}/s, none recorded ${none.at(-1)}/s`,
    );
  }
  await sink.shutdown();
  const summary = (rates: number[]) => {
    const ratios = rates.map((rate, i) => rate / off[i]!);
    const median = quantile(ratios, 0.5);
    return `${median.toFixed(2)} (median of ${rounds} paired runs; ${
      Math.min(...ratios).toFixed(2)
    }-${Math.max(...ratios).toFixed(2)}; ${Math.round(quantile(rates, 0.5))}/s) target >= 0.85 ${
      median >= 0.85 ? "met" : "MISSED"
    }`;
  };
  console.log(
    `end-to-end, tracing on / off (off ${Math.round(quantile(off, 0.5))}/s; ${exports} OTLP ` +
      `exports received):\n  every trace recorded: ${summary(on)}\n  ${ratio} of traces ` +
      `(parentbased_traceidratio): ${summary(some)}\n  none recorded ` +
      `(parentbased_always_off): ${summary(none)}`,
  );
  return EXIT.ok;
});
