/**
 * Scale-out benchmark: throughput of 1, 2 and 3 OrdemDeProducao processes consuming one queue
 * and sharing one PostgreSQL ledger.
 *
 *   deno task bench:scale [--messages N] [--rounds R] [--docs]
 *
 * Each run prefills N valid orders into a fresh work queue, starts the consumer processes (each
 * its own Deno, as on separate hosts) and measures from the first production order to the last
 * (the ledger's created_at), so process start-up is not counted. Rounds interleave 1, 2 and 3
 * consumers; the table gives the median rate of each and its ratio to one consumer in the same
 * round. Env: RABBITMQ_URL, POSTGRES_URL.
 *
 * @module
 */

import { join } from "node:path";
import { postgresClient } from "../testing/postgres.ts";
import { serviceV8Flags } from "../testing/service_flags.ts";
import { booleanOption, integerOption, type OptionSpecs, stringOption } from "../lib/cli.ts";
import { EXIT, runCommand } from "../lib/main.ts";
import { writeDocBlock } from "../scripts/doc_block.ts";
import { orders, prefill, withBenchTopology } from "./_shared.ts";

const OPTIONS = {
  messages: {
    type: "string",
    default: "20000",
    placeholder: "N",
    description: "Orders per run.",
  },
  rounds: { type: "string", default: "3", placeholder: "R", description: "Runs per size." },
  url: {
    type: "string",
    env: "RABBITMQ_URL",
    default: "amqp://guest:guest@127.0.0.1:5672",
    placeholder: "amqp-url",
    description: "The broker.",
  },
  "postgres-url": {
    type: "string",
    env: "POSTGRES_URL",
    default: "postgres://postgres:postgres@127.0.0.1:5432/test",
    placeholder: "postgres-url",
    description: "The PostgreSQL the shared ledger lives in (a schema per run, dropped after).",
  },
  docs: { type: "boolean", description: "Also write the table into docs/architecture.md." },
} as const satisfies OptionSpecs;

const ROOT = new URL("..", import.meta.url).pathname;
const SIZES = [1, 2, 3];

async function run(
  url: string,
  postgresUrl: string,
  consumers: number,
  messages: number,
): Promise<number> {
  return await withBenchTopology(url, async (broker, topo) => {
    await prefill(broker, topo.queue, orders(messages, 7));
    const schema = `bench_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
    await using sql = await postgresClient(postgresUrl);
    const children: Deno.ChildProcess[] = [];
    try {
      for (let i = 0; i < consumers; i++) {
        children.push(
          new Deno.Command(Deno.execPath(), {
            args: [
              "run",
              "-A",
              `--v8-flags=${serviceV8Flags().join(",")}`,
              join(ROOT, "ordem_de_producao.ts"),
              "--no-http",
            ],
            env: {
              RABBITMQ_URL: url,
              TOPOLOGY_PREFIX: topo.prefix,
              RETRY_DELAY_MS: "200",
              RETRY_MAX: "2",
              LEDGER_URL: `${postgresUrl}?search_path=${schema}`,
              INSTANCE_ID: `bench-${i + 1}`,
              LOG_LEVEL: "error",
            },
            stdin: "null",
            stdout: "null",
            stderr: "inherit",
          }).spawn(),
        );
      }
      const deadline = performance.now() + 300_000;
      while (true) {
        const { rows: [row] } = await sql.query(
          `SELECT count(*)::bigint AS n,
                  extract(epoch from max(created_at) - min(created_at)) * 1000 AS ms
           FROM ${schema}.production_orders`,
        ).catch(() => ({ rows: [undefined] }));
        if (row && Number(row.n) >= messages) return (messages - 1) / (Number(row.ms) / 1000);
        if (performance.now() > deadline) throw new Error(`run did not finish: ${row?.n}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } finally {
      for (const child of children) {
        try {
          child.kill("SIGTERM");
        } catch {
          // Already gone.
        }
        await child.status;
      }
      await sql.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
    }
  }, [200, 400]);
}

const median = (values: number[]) => {
  const sorted = values.toSorted((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

runCommand({
  options: OPTIONS,
  usage: "deno task bench:scale [options]",
  summary: "Throughput of 1, 2 and 3 consumer processes sharing a PostgreSQL ledger.",
}, async (cl) => {
  const messages = integerOption(cl.options.messages!, 100, 10_000_000);
  const rounds = integerOption(cl.options.rounds!, 1, 100);
  const url = stringOption(cl.options.url!);
  const postgresUrl = stringOption(cl.options["postgres-url"]!);
  const rates = new Map<number, number[]>(SIZES.map((n) => [n, []]));
  const ratios = new Map<number, number[]>(SIZES.map((n) => [n, []]));
  for (let round = 1; round <= rounds; round++) {
    const inRound = new Map<number, number>();
    for (const n of SIZES) {
      const rate = await run(url, postgresUrl, n, messages);
      inRound.set(n, rate);
      rates.get(n)!.push(rate);
      console.error(`round ${round}: ${n} consumer(s): ${Math.round(rate)} orders/s`);
    }
    for (const n of SIZES) ratios.get(n)!.push(inRound.get(n)! / inRound.get(1)!);
  }
  const lines = [
    "| consumers | orders/s (median) | vs 1 consumer (median of paired rounds) |",
    "| --------: | ----------------: | --------------------------------------: |",
    ...SIZES.map((n) =>
      `| ${n} | ${Math.round(median(rates.get(n)!))} | ${median(ratios.get(n)!).toFixed(2)} |`
    ),
  ];
  const cpus = navigator.hardwareConcurrency;
  const table = `${lines.join("\n")}\n\n` +
    `${messages} orders per run, ${rounds} rounds, on one machine with ${cpus} cores running ` +
    `RabbitMQ, PostgreSQL and every consumer (\`deno task bench:scale\`, ` +
    `${new Date().toISOString().slice(0, 10)}).`;
  console.log(table);
  if (booleanOption(cl.options.docs!)) {
    await writeDocBlock("architecture.md", "scale", table);
  }
  return EXIT.ok;
});
