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

import { Broker } from "../lib/broker.ts";
import { setupLogging } from "../lib/log.ts";
import { EXIT, runCommand } from "../lib/main.ts";
import { writeDocBlock } from "../scripts/doc_block.ts";
import { measureTheRest } from "./_measures.ts";
import { printOnly, profileOnly } from "./_only.ts";
import { BENCH_OPTIONS, benchOptions } from "./_options.ts";
import { runPaths } from "./_rounds.ts";
import { BenchRunner } from "./_runner.ts";
import { benchResults } from "./_stats.ts";
import { renderReport } from "./report.ts";

runCommand({
  options: BENCH_OPTIONS,
  usage: "deno task bench [options]",
  summary: "Our services against the raw amqplib client.",
}, async (cl) => {
  setupLogging({ level: "error" });
  const options = benchOptions(cl);
  const { url, messages, shortRunMessages, rounds, parked } = options;
  const dir = await Deno.makeTempDir({ prefix: "productionorder-bench-" });
  const runner = new BenchRunner({ url, dir, messages, defaults: options.defaults });
  console.error(
    `bench: ${messages} messages per timed run (${shortRunMessages} in the sweep), ${rounds} rounds ` +
      `per side, ${parked} parked`,
  );
  if (options.profileOut !== undefined) await Deno.mkdir(options.profileOut, { recursive: true });
  const { runs, chosen } = await runPaths(runner, options);

  if (options.only !== undefined) {
    const path = options.paths[0]!;
    printOnly(path, runs[path.name]!);
    if (options.profile) await profileOnly(runner, options, path, chosen[path.name]!);
    await Deno.remove(dir, { recursive: true });
    return EXIT.ok;
  }

  const rest = await measureTheRest(runner, options, chosen["end-to-end"]!);
  await Deno.remove(dir, { recursive: true });
  const results = benchResults({
    date: new Date().toISOString(),
    command: `deno task bench${Deno.args.length > 0 ? ` ${Deno.args.join(" ")}` : ""}`,
    broker: await brokerVersion(url),
    deno: Deno.version.deno,
    cores: navigator.hardwareConcurrency,
    messages,
    shortRunMessages,
    sweepRuns: options.sweepRuns,
    rounds,
    parked,
  }, { runs, chosen, ...rest });
  const md = renderReport(results);
  await Deno.mkdir("bench/results", { recursive: true });
  await Deno.writeTextFile("bench/results/latest.json", JSON.stringify(results, null, 2) + "\n");
  await Deno.writeTextFile("bench/results/latest.md", md + "\n");
  if (options.docs) await writeDocBlock("performance.md", "bench", md);
  console.log(md);
  return EXIT.ok;
});

/** The version of the broker at `url`. */
async function brokerVersion(url: string): Promise<string> {
  const broker = await Broker.connect(url);
  try {
    return broker.serverVersion;
  } finally {
    await broker.close();
  }
}
