/**
 * The benchmark: our services against raw amqplib at its best on the same paths, in one run, by a
 * method fixed before it starts (bench/_method.ts, printed first): raw tuned by a sweep as long as
 * the timed runs, each side in its own process with a warm-up run, even ABBA rounds, ratios as the
 * median of paired ratios with a bootstrap interval. Then the services as users run them (each
 * its own process), latency at three loads without coordinated omission, the outbox's movement lag
 * on SQLite and PostgreSQL, the Go services as peers, and the other measures. Writes bench/results/<run id>/ (results.json, report.md,
 * latency.svg) and bench/results/latest.json and latest.md; `--docs` puts the report into
 * docs/performance.md and the plot into docs/performance-latency.svg.
 *
 *   deno task bench [--quick] [--messages N] [--rounds R] [--only part] [--docs]
 *
 * Env: RABBITMQ_URL, POSTGRES_URL (the movement lag's PostgreSQL). Each run uses its own throwaway
 * topology on the broker (and schema in PostgreSQL). Runs with --allow-all: it spawns processes
 * and reads their CPU and RSS from /proc.
 *
 * @module
 */

import { join } from "node:path";
import { Broker } from "../lib/broker.ts";
import { setupLogging } from "../lib/log.ts";
import { EXIT, runCommand } from "../lib/main.ts";
import { writeDocBlock } from "../scripts/doc_block.ts";
import { pairedRatio } from "./_bootstrap.ts";
import { goPeers } from "./_go.ts";
import { latencyPath } from "./_latency_rounds.ts";
import { measureTheRest } from "./_measures.ts";
import { movementLagPart, printMovementLag } from "./_movement_lag.ts";
import { methodText } from "./_method.ts";
import { printOnly, profileOnly } from "./_only.ts";
import { BENCH_OPTIONS, benchOptions } from "./_options.ts";
import { pathNamed } from "./_paths.ts";
import type { BenchResults, PathRow, ServicesRow } from "./_results.ts";
import { printSweep, runPath, sweepRaw } from "./_rounds.ts";
import { servicesCommands, servicesPath } from "./_services.ts";
import type { Settings } from "./_settings.ts";
import { pathRow, sideStats } from "./_stats.ts";
import { latencySvg } from "./_svg.ts";
import { renderReport } from "./report.ts";

const root = new URL("..", import.meta.url).pathname;

runCommand({
  options: BENCH_OPTIONS,
  usage: "deno task bench [options]",
  summary: "Our services against raw amqplib at its best, by a method fixed in advance.",
}, async (cl) => {
  setupLogging({ level: "error" });
  const options = benchOptions(cl);
  const { url, method } = options;
  const started = new Date();
  const commit = await gitCommit();
  const runId = `${started.toISOString().replace(/[-:]|\.\d+/g, "")}-${commit}`;
  console.error(`bench run ${runId}\n\n${methodText(method)}\n`);
  if (options.profileOut !== undefined) await Deno.mkdir(options.profileOut, { recursive: true });

  const rows: PathRow[] = [];
  let e2e: { raw: Settings; rawRate: number } | undefined;
  for (const path of options.paths) {
    const { runs, settings } = await runPath(options, path);
    const row = pathRow(path, runs, settings, method.resamples);
    rows.push(row);
    if (path.name === "end-to-end") e2e = { raw: settings.raw, rawRate: row.raw.median };
    if (options.only === path.name) {
      printOnly(row);
      if (options.profile) {
        await profileOnly(options, path, {
          raw: settings.raw,
          bare: settings.raw,
          ours: settings.ours,
        });
      }
    }
  }

  let services: ServicesRow | undefined;
  if (options.parts.services) {
    let raw = e2e?.raw;
    if (raw === undefined) {
      const found = await sweepRaw(options, pathNamed("end-to-end"));
      printSweep(pathNamed("end-to-end"), found.settings, found.sweep);
      raw = found.settings;
    }
    console.error("  services as processes");
    const runs = await servicesPath(options, raw);
    const ratio = pairedRatio(
      sideStats(runs.ours).rates,
      sideStats(runs.raw).rates,
      method.resamples,
    );
    services = {
      raw: sideStats(runs.raw),
      ours: sideStats(runs.ours),
      ratio,
      target: 0.9,
      met: ratio.median >= 0.9,
      rawSettings: raw,
      commands: servicesCommands(method.messages),
    };
    console.log(
      `services as processes: ours / raw ${ratio.median.toFixed(2)} ` +
        `[${ratio.low.toFixed(2)}–${ratio.high.toFixed(2)}]`,
    );
  }

  const latency = options.parts.latency && e2e !== undefined
    ? await latencyPath(options, e2e.rawRate, e2e.raw)
    : undefined;
  const movementLag = options.parts["movement lag"] ? await movementLagPart(options) : undefined;
  if (movementLag && options.only !== undefined) printMovementLag(movementLag);
  const go = options.parts.go ? await goPeers(options) : undefined;
  const measures = options.parts.measures
    ? await measureTheRest(options, (e2e?.rawRate ?? 10_000) * 0.5)
    : undefined;

  const results: BenchResults = {
    runId,
    date: started.toISOString(),
    commit,
    command: `deno task bench${Deno.args.length > 0 ? ` ${Deno.args.join(" ")}` : ""}`,
    broker: await brokerVersion(url),
    deno: Deno.version.deno,
    cores: navigator.hardwareConcurrency,
    method,
    parked: options.parked,
    rows,
    ...(services ? { services } : {}),
    ...(latency ? { latency } : {}),
    ...(movementLag ? { movementLag } : {}),
    ...(go ? { go } : {}),
    ...(measures ? { measures } : {}),
  };
  const dir = join(options.results, runId);
  await Deno.mkdir(dir, { recursive: true });
  const json = JSON.stringify(results, null, 2) + "\n";
  await Deno.writeTextFile(join(dir, "results.json"), json);
  await Deno.writeTextFile(
    join(dir, "report.md"),
    renderReport(results, { plot: "latency.svg" }) + "\n",
  );
  const svg = latency && latencySvg(
    latency.histograms.map((h) => ({
      title: `${Math.round(h.load * 100)} % of raw's end-to-end rate (${
        Math.round(h.load * latency.baseRate).toLocaleString("en-US")
      } msg/s)`,
      raw: h.raw,
      ours: h.ours,
    })),
    `End-to-end latency, scheduled send to durable ack (run ${runId})`,
  );
  if (svg) await Deno.writeTextFile(join(dir, "latency.svg"), svg);
  console.error(`\nwrote ${dir}/`);
  if (options.only !== undefined) return EXIT.ok;

  const md = renderReport(results, { plot: "performance-latency.svg" });
  await Deno.writeTextFile(join(options.results, "latest.json"), json);
  await Deno.writeTextFile(join(options.results, "latest.md"), md + "\n");
  if (options.docs) {
    await writeDocBlock("performance.md", "bench", md);
    if (svg) await Deno.writeTextFile(join(root, "docs/performance-latency.svg"), svg);
  }
  console.log(md);
  return EXIT.ok;
});

/** The commit checked out (short), `-dirty` when the work tree has changes; `unknown` outside git. */
async function gitCommit(): Promise<string> {
  const git = async (...args: string[]) => {
    const out = await new Deno.Command("git", { args, cwd: root, stdout: "piped", stderr: "null" })
      .output().catch(() => undefined);
    return out?.success ? new TextDecoder().decode(out.stdout).trim() : undefined;
  };
  const head = await git("rev-parse", "--short", "HEAD");
  if (head === undefined) return "unknown";
  const changes = await git("status", "--porcelain", "--untracked-files=no");
  return changes === "" ? head : `${head}-dirty`;
}

/** The version of the broker at `url`. */
async function brokerVersion(url: string): Promise<string> {
  const broker = await Broker.connect(url);
  try {
    return broker.serverVersion;
  } finally {
    await broker.close();
  }
}
