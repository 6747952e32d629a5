/**
 * The services as users run them: OrdemDeProducao and Estoque each in its own process, started
 * exactly as `deno task ordem` and `deno task estoque -n N` start them (deno.json's command
 * lines, the services' defaults; only the broker, a topology prefix, the ledger's file and a free
 * metrics port come by environment, as a deployment gives them), timed from Estoque's first
 * publish (its `publishing` line) to the last production order (the latest `created_at` in the
 * ledger). Against raw amqplib in two processes likewise (bench/raw_service.ts, raw's end-to-end
 * settings), timed from its first publish to its consumer's last ack. ABBA rounds, a fresh set of
 * processes each run.
 *
 * @module
 */

import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { DEFAULT_RETRY_POLICY, retryDelays } from "../lib/retry_policy.ts";
import { Peer } from "../testing/process.ts";
import { sideOrder } from "./_method.ts";
import type { BenchOptions } from "./_options.ts";
import { brokerQuiet } from "./_quiet.ts";
import type { Settings } from "./_settings.ts";
import { type RunResult, withBenchTopology } from "./_shared.ts";
import { rate } from "./_stats.ts";

const root = new URL("..", import.meta.url).pathname;
const log = (text: string) => console.error(text);
const count = (n: number) => Math.round(n).toLocaleString("en-US");
const epochMs = () => performance.timeOrigin + performance.now();

/** A deno.json task's command line, less its leading `deno`. */
async function taskArgs(name: string): Promise<string[]> {
  const tasks = JSON.parse(await Deno.readTextFile(join(root, "deno.json"))).tasks;
  const [_deno, ...args] = String(tasks[name]).split(/\s+/);
  return args;
}

/** The orders Estoque is told to make: valid ones, so every one becomes a production order. */
const ESTOQUE_FLAGS = ["--quantity", "42"];

/** The command lines ours runs, as a user types them. */
export function servicesCommands(messages: number): string[] {
  return ["deno task ordem", `deno task estoque -n ${messages} ${ESTOQUE_FLAGS.join(" ")}`];
}

/** Stops a process and waits for it. */
async function stop(peer: Peer): Promise<void> {
  await peer.stop().catch(() => {});
}

/** One run of ours: the two services, timed from Estoque's first publish to the last order. */
async function oursRun(url: string, messages: number, dir: string): Promise<RunResult> {
  return await withBenchTopology(url, async (_broker, topo) => {
    const ledger = join(dir, `ordem-${crypto.randomUUID()}.sqlite`);
    const env = { RABBITMQ_URL: url, TOPOLOGY_PREFIX: topo.prefix, NO_COLOR: "1" };
    const ordem = new Peer("OrdemDeProducao", Deno.execPath(), await taskArgs("ordem"), {
      ...env,
      LEDGER_PATH: ledger,
      HTTP_PORT: "0",
    });
    try {
      await ordem.until("OrdemDeProducao ready", /msg=ready/, 1, 60_000);
      const [serving] = ordem.grep(/serving \/metrics/);
      const port = /port=(\d+)/.exec(serving ?? "")?.[1];
      if (port === undefined) throw new Error(`OrdemDeProducao did not say its port:\n${ordem}`);
      const estoque = new Peer(
        "Estoque",
        Deno.execPath(),
        [...await taskArgs("estoque"), "-n", String(messages), ...ESTOQUE_FLAGS],
        env,
      );
      let started: number;
      try {
        await estoque.until("Estoque's first publish", /msg=publishing/, 1, 60_000);
        started = epochMs();
        const status = await estoque.status;
        if (!status.success) throw new Error(`Estoque exited with ${status.code}:\n${estoque}`);
      } finally {
        await stop(estoque);
      }
      const deadline = performance.now() + 600_000;
      while (await createdSoFar(port) < messages) {
        if (performance.now() > deadline || !ordem.running) {
          throw new Error(`OrdemDeProducao did not create ${messages} orders:\n${ordem}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      await stop(ordem);
      const last = lastOrderAt(ledger, messages);
      return { messages, elapsedMs: last - started };
    } finally {
      await stop(ordem);
    }
  }, retryDelays(DEFAULT_RETRY_POLICY));
}

/** OrdemDeProducao's count of production orders created, from its metrics endpoint. */
async function createdSoFar(port: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return Number(/^productionorder_orders_created_total\S* (\d+)/m.exec(text)?.[1] ?? 0);
}

/**
 * When the last production order was created (milliseconds since the epoch), from the ledger.
 *
 * @throws {Error} when the ledger holds another count.
 */
function lastOrderAt(path: string, messages: number): number {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const row = db.prepare("SELECT count(*) AS n, max(created_at) AS last FROM production_orders")
      .get() as { n: number; last: string };
    if (Number(row.n) !== messages) throw new Error(`the ledger holds ${row.n}, not ${messages}`);
    return Date.parse(row.last);
  } finally {
    db.close();
  }
}

/** One run of raw: its consumer and publisher processes, first publish to last ack. */
async function rawRun(url: string, messages: number, settings: Settings): Promise<RunResult> {
  return await withBenchTopology(url, async (_broker, topo) => {
    const script = join(root, "bench/raw_service.ts");
    const writes = ["--writes", settings.writes];
    const consumer = new Peer("raw consumer", Deno.execPath(), [
      "run",
      "-A",
      script,
      "consume",
      "--queue",
      topo.queue,
      "-n",
      String(messages),
      "--prefetch",
      String(settings.prefetch),
      ...writes,
    ], { RABBITMQ_URL: url });
    try {
      await consumer.until("the raw consumer ready", /^ready$/, 1, 60_000);
      const publisher = new Peer("raw publisher", Deno.execPath(), [
        "run",
        "-A",
        script,
        "publish",
        "--exchange",
        topo.exchange,
        "--routing-key",
        topo.routingKey,
        "-n",
        String(messages),
        "--window",
        String(settings.window),
        ...writes,
      ], { RABBITMQ_URL: url });
      let started: number;
      try {
        await publisher.until("the raw publisher's first publish", /^publishing$/, 1, 60_000);
        started = epochMs();
        const status = await publisher.status;
        if (!status.success) throw new Error(`the raw publisher exited with ${status.code}`);
      } finally {
        await stop(publisher);
      }
      const [done] = await consumer.until("the raw consumer's last ack", /^done /, 1, 600_000);
      return { messages, elapsedMs: Number(done!.slice(5)) - started };
    } finally {
      await stop(consumer);
    }
  });
}

/** The services' path: warm-up runs, then the method's rounds of raw and ours, ABBA. */
export async function servicesPath(
  options: BenchOptions,
  rawSettings: Settings,
): Promise<{ raw: RunResult[]; ours: RunResult[] }> {
  const { method, url } = options;
  const dir = await Deno.makeTempDir({ prefix: "productionorder-bench-services-" });
  try {
    const run = async (side: "raw" | "ours", messages: number) => {
      await brokerQuiet(url);
      return side === "raw"
        ? await rawRun(url, messages, rawSettings)
        : await oursRun(url, messages, dir);
    };
    if (method.warmup > 0) {
      await run("raw", method.warmup);
      await run("ours", method.warmup);
    }
    const runs = { raw: [] as RunResult[], ours: [] as RunResult[] };
    for (let round = 0; round < method.rounds; round++) {
      for (const side of sideOrder(round, ["raw", "ours"] as const)) {
        runs[side].push(await run(side, method.messages));
      }
      log(
        `  services round ${round + 1}: raw processes ${count(rate(runs.raw.at(-1)!))}/s, ` +
          `deno task ordem + estoque ${count(rate(runs.ours.at(-1)!))}/s`,
      );
    }
    return runs;
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
