/**
 * What tracing costs: the end-to-end path of `deno task bench` (`--only end-to-end`) run in paired
 * rounds with tracing off and on (OTEL_DENO=true, exporting to an OTLP sink in this process),
 * and the ratio of the two, median of the pairs. Target: at least 0.85 with tracing on.
 *
 *   deno task bench:tracing [--rounds R] [--messages N]
 *
 * @module
 */

import { booleanOption, integerOption } from "../lib/cli.ts";
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
  };
  const off: number[] = [];
  const on: number[] = [];
  for (let round = 0; round < rounds; round++) {
    off.push(await endToEnd(messages, { OTEL_DENO: "false" }));
    on.push(await endToEnd(messages, traced));
    console.error(`  round ${round + 1}: tracing off ${off.at(-1)}/s, on ${on.at(-1)}/s`);
  }
  await sink.shutdown();
  const ratios = on.map((rate, i) => rate / off[i]!);
  const ratio = quantile(ratios, 0.5);
  console.log(
    `end-to-end with tracing on / off: ${ratio.toFixed(2)} (median of ${rounds} paired runs; ` +
      `${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}); off ` +
      `${Math.round(quantile(off, 0.5))}/s, on ${Math.round(quantile(on, 0.5))}/s; ` +
      `${exports} OTLP exports received; target >= 0.85 ${ratio >= 0.85 ? "met" : "MISSED"}`,
  );
  return EXIT.ok;
});
