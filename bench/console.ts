/**
 * Whether the console stays responsive under load: 100,000 dead letters in the DLQ and 5,000
 * orders a second flowing through a running OrdemDeProducao, while a client asks the console for
 * its page and each API (overview, failure groups, a page of dead letters at a random offset, a
 * text filter, a journey) in turn. Reports each one's p50, p99 and max time, how long the console
 * took to walk the whole DLQ, and the orders actually created a second. With `--write-docs` the
 * table goes into docs/console.md.
 *
 *   deno task bench:console [--dead-letters N] [--rate R] [--seconds S] [--quick] [--write-docs]
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { join } from "node:path";
import { booleanOption, integerOption } from "../lib/cli.ts";
import { publishOrder } from "../lib/estoque.ts";
import { EXIT, runCommand } from "../lib/main.ts";
import { newOrder } from "../lib/order.ts";
import { ConfirmedPublisher } from "../lib/publisher.ts";
import { HEADER } from "../lib/retry_headers.ts";
import { writeDocBlock } from "../scripts/doc_block.ts";
import { RABBITMQ_URL as url } from "../testing/broker.ts";
import { ourService } from "../testing/process.ts";
import { freePort } from "../testing/postgres.ts";
import { paced, quantile, withBenchTopology } from "./_shared.ts";

const OPTIONS = {
  "dead-letters": {
    type: "string",
    placeholder: "N",
    description: "Dead letters in the DLQ (default 100000).",
  },
  rate: { type: "string", placeholder: "R", description: "Orders a second (default 5000)." },
  seconds: { type: "string", placeholder: "S", description: "How long to measure (default 30)." },
  quick: { type: "boolean", description: "Small sizes: 2,000 dead letters, 500/s, 5 s." },
  "write-docs": { type: "boolean", description: "Write the table into docs/console.md." },
} as const;

const ERRORS = [
  (i: number) => `maximum quantity exceeded: ${600 + (i % 400)} > 500`,
  (i: number) => `invalid order: field Quantity is not a number (got "x${i}")`,
  () => "invalid order: body is not JSON: Unexpected end of JSON input",
];

runCommand({
  options: OPTIONS,
  usage: "deno task bench:console [options]",
  summary: "The console's page and API times with a full DLQ and orders flowing.",
}, async (cl) => {
  const o = cl.options;
  const quick = booleanOption(o.quick!);
  const count = o["dead-letters"]!.value === undefined
    ? (quick ? 2_000 : 100_000)
    : integerOption(o["dead-letters"]!, 1, 10_000_000);
  const rate = o.rate!.value === undefined ? (quick ? 500 : 5_000) : integerOption(o.rate!, 1, 1e6);
  const seconds = o.seconds!.value === undefined
    ? (quick ? 5 : 30)
    : integerOption(o.seconds!, 1, 3600);
  const dir = await Deno.makeTempDir({ prefix: "bench-console-" });
  try {
    return await withBenchTopology(url, async (broker, topo) => {
      // The dead letters: three causes, realistic headers.
      const refs: string[] = [];
      const fill = await broker.confirmChannel();
      for (let i = 0; i < count; i++) {
        const order = newOrder({ quantity: 600 + (i % 400) });
        refs.push(order.refCode);
        const ok = fill.sendToQueue(
          topo.deadLetterQueue,
          Buffer.from(JSON.stringify({ RefCode: order.refCode, Quantity: order.quantity })),
          {
            persistent: true,
            messageId: order.refCode,
            contentType: "application/json",
            headers: {
              [HEADER.reason]: i % 3 === 0 ? "exhausted" : "invalid",
              [HEADER.lastError]: ERRORS[i % 3]!(i),
              [HEADER.retryCount]: 2,
              [HEADER.deadLetteredAt]: new Date(Date.now() - (count - i) * 10).toISOString(),
            },
          },
        );
        if (!ok) await new Promise((resolve) => fill.once("drain", resolve));
      }
      await fill.waitForConfirms();
      await fill.close();

      const env = {
        TOPOLOGY_PREFIX: topo.prefix,
        RETRY_DELAY_MS: "200",
        RETRY_MAX_DELAY_MS: "3600000",
        RETRY_MAX: "2",
        RETRY_STRATEGY: "linear",
      };
      const metricsPort = freePort();
      const ledger = join(dir, "ledger.sqlite");
      await using ordem = ourService("OrdemDeProducao", "ordem_de_producao.ts", [], {
        ...env,
        LEDGER_PATH: ledger,
        HTTP_PORT: String(metricsPort),
        TOPOLOGY_DECLARE: "false",
        LOG_LEVEL: "info",
      });
      await using console_ = ourService("console", "console.ts", [], {
        ...env,
        CONSOLE_PORT: "0",
        LEDGER_URL: `sqlite:${ledger}`,
        CONSOLE_METRICS_URLS: `http://127.0.0.1:${metricsPort}/metrics`,
        DLQ_AUDIT_LOG: join(dir, "audit.jsonl"),
        LOG_LEVEL: "warning",
      });
      const [listening] = await console_.until("the console", /^console: http:\/\/\S+\//);
      const base = listening!.slice("console: ".length).trim().replace(/\/$/, "");
      await ordem.until("OrdemDeProducao", /msg=ready/, 1, 60_000);
      // The first walk of the whole DLQ.
      const walkStarted = performance.now();
      const first = await fetch(`${base}/api/groups`);
      const firstBody = await first.json();
      const walkMs = performance.now() - walkStarted;
      if (firstBody.total !== count) {
        throw new Error(`the console saw ${firstBody.total} dead letters, not ${count}`);
      }

      // Orders flowing at `rate` a second while the client asks.
      const publisher = new ConfirmedPublisher(await broker.confirmChannel());
      const stop = new AbortController();
      const confirms: Promise<void>[] = [];
      const flow = paced(Number.POSITIVE_INFINITY, rate, () => {
        confirms.push(publishOrder(publisher, topo, newOrder({ quantity: 10 })));
      }, stop.signal);
      const scrape = async () => {
        const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
        return Number(/^productionorder_orders_created_total\S* (\d+)/m.exec(text)?.[1] ?? 0);
      };
      const createdBefore = await scrape();
      const asks: Array<[string, () => string]> = [
        ["page (/)", () => "/"],
        ["overview", () => "/api/overview"],
        ["failure groups", () => "/api/groups"],
        [
          "dead letters, random page",
          () => `/api/dead-letters?offset=${Math.floor(Math.random() * (count - 50))}`,
        ],
        ["dead letters, text filter", () => "/api/dead-letters?text=not%20a%20number"],
        ["journey", () => `/api/journey?ref=${refs[Math.floor(Math.random() * refs.length)]}`],
      ];
      const times = new Map<string, number[]>(asks.map(([name]) => [name, []]));
      const started = performance.now();
      while (performance.now() - started < seconds * 1000) {
        for (const [name, path] of asks) {
          const t = performance.now();
          const response = await fetch(`${base}${path()}`);
          await response.arrayBuffer();
          if (!response.ok) throw new Error(`${path()} answered ${response.status}`);
          times.get(name)!.push(performance.now() - t);
        }
      }
      const elapsed = (performance.now() - started) / 1000;
      const created = (await scrape()) - createdBefore;
      stop.abort();
      await flow;
      await Promise.all(confirms);

      const ms = (v: number) => v < 10 ? v.toFixed(1) : Math.round(v).toLocaleString("en");
      const rows = [...times].map(([name, values]) =>
        `| ${name} | ${values.length} | ${ms(quantile(values, 0.5))} | ${
          ms(quantile(values, 0.99))
        } | ${ms(Math.max(...values))} |`
      );
      const table = [
        `${count.toLocaleString("en")} dead letters; orders published at ${
          rate.toLocaleString("en")
        }/s, ` +
        `${Math.round(created / elapsed).toLocaleString("en")}/s created while measuring; ` +
        `${seconds} s of requests, one client, each API in turn. The console's first walk of the ` +
        `whole DLQ took ${
          (walkMs / 1000).toFixed(1)
        } s; it walks again when the DLQ's depth changes, for at most a fifth of the time, while ` +
        "the last snapshot answers.",
        "",
        "| request | n | p50 ms | p99 ms | max ms |",
        "| ------- | - | ------ | ------ | ------ |",
        ...rows,
      ].join("\n");
      console.log(table);
      if (booleanOption(o["write-docs"]!)) {
        await writeDocBlock("console.md", "console-bench", table);
      }
      return EXIT.ok;
    }, [200, 400]);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
