/**
 * The Go original's services as peers, on the same broker in the same run (built by
 * scripts/go_peer.sh, run unchanged as the interoperability suite runs them: interop/_peers.ts).
 * Two rates: the Go Estoque run once per order, as it runs (it publishes one order and exits),
 * into the Go OrdemDeProducao, from the first run's start to the last order it logs; and our
 * Estoque publishing N orders (`--retry-backend plugin`, the Go services' names) into the Go
 * OrdemDeProducao, from Estoque's first publish to the Go consumer's last logged order. The Go
 * OrdemDeProducao keeps no ledger: its "production order" is a log line.
 *
 * @module
 */

import { join } from "node:path";
import {
  CANONICAL,
  goOrdem,
  goPeer,
  goRuns,
  runGoEstoque,
  withCanonicalNames,
} from "../interop/_peers.ts";
import { Peer } from "../testing/process.ts";
import type { BenchOptions } from "./_options.ts";
import type { GoRate, GoResults } from "./_results.ts";

const root = new URL("..", import.meta.url).pathname;
const CREATED = /Created production order for ref\. code: /;
const log = (text: string) => console.error(text);

/**
 * Resolves once `peer` printed `n` lines matching `pattern` (looked for every 20 ms, in the lines
 * new since the last look), with the time it saw the last; rejects after `timeoutMs` without one.
 */
async function linesUntil(
  peer: Peer,
  pattern: RegExp,
  n: number,
  timeoutMs: number,
): Promise<number> {
  let seen = 0;
  let looked = 0;
  let lastNew = performance.now();
  while (true) {
    const lines = peer.lines;
    if (lines.length > looked) lastNew = performance.now();
    for (; looked < lines.length; looked++) if (pattern.test(lines[looked]!)) seen++;
    if (seen >= n) return performance.now();
    if (!peer.running) throw new Error(`${peer.name} exited after ${seen} of ${n} lines`);
    if (performance.now() - lastNew > timeoutMs) {
      throw new Error(`${peer.name}: ${seen} of ${n} lines, then none for ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** What went wrong, in one line. */
const why = (error: unknown): { readonly error: string } => ({
  error: (error instanceof Error ? error.message : String(error)).split("\n")[0]!,
});

/** The Go Estoque run `runs` times into the Go OrdemDeProducao, on the Go topology. */
async function goToGo(url: string, runs: number): Promise<GoRate> {
  let result: GoRate = { error: "not run" };
  await withCanonicalNames(async () => {
    const first = await runGoEstoque(url); // declares the Go topology, publishes one order
    if (first.code !== 0) throw new Error(`the Go Estoque failed (${first.code})`);
    await using go = await goOrdem(url);
    await go.until("the first order", CREATED, 1, 60_000);
    const started = performance.now();
    for (let i = 0; i < runs; i++) {
      const { code } = await runGoEstoque(url);
      if (code !== 0) throw new Error(`the Go Estoque failed (${code})`);
    }
    const ended = await linesUntil(go, CREATED, runs + 1, 60_000);
    const seconds = (ended - started) / 1000;
    result = { orders: runs, rate: runs / seconds, dropped: 0 };
  }, url);
  return result;
}

/** Our Estoque publishing `messages` orders into the Go OrdemDeProducao. */
async function oursToGo(url: string, messages: number): Promise<GoRate> {
  let result: GoRate = { error: "not run" };
  await withCanonicalNames(async (broker) => {
    const tasks = JSON.parse(await Deno.readTextFile(join(root, "deno.json"))).tasks;
    const [_deno, ...estoqueArgs] = String(tasks.estoque).split(/\s+/);
    // Our Estoque declares the canonical names first (plugin backend), then the Go consumer starts.
    const declare = new Peer("our Estoque", Deno.execPath(), [
      ...estoqueArgs,
      "-n",
      "1",
      "--quantity",
      "42",
      "--retry-backend",
      "plugin",
    ], { RABBITMQ_URL: url, NO_COLOR: "1" });
    if (!(await declare.status).success) throw new Error(`our Estoque failed:\n${declare}`);
    await using go = await goOrdem(url);
    await go.until("the first order", CREATED, 1, 60_000);
    await using estoque = new Peer("our Estoque", Deno.execPath(), [
      ...estoqueArgs,
      "-n",
      String(messages),
      "--quantity",
      "42",
      "--retry-backend",
      "plugin",
    ], { RABBITMQ_URL: url, NO_COLOR: "1" });
    await estoque.until("Estoque's first publish", /msg=publishing/, 1, 60_000);
    const started = performance.now();
    const status = await estoque.status;
    if (!status.success) throw new Error(`our Estoque exited with ${status.code}:\n${estoque}`);
    const ended = await linesUntil(go, CREATED, messages + 1, 60_000);
    const seconds = (ended - started) / 1000;
    const dropped = await broker.messageCount(CANONICAL.deadLetterQueue).catch(() => 0);
    result = { orders: goRuns(go).length - 1, rate: messages / seconds, dropped };
  }, url);
  return result;
}

/** Both rates; each one that cannot be measured (no Go toolchain, no root) says why. */
export async function goPeers(options: BenchOptions): Promise<GoResults> {
  try {
    await goPeer();
  } catch (error) {
    log(`  Go peers not measured: ${why(error).error}`);
    return { goEstoque: why(error), goOrdem: why(error) };
  }
  const goEstoque = await goToGo(options.url, options.goRuns).catch(why);
  log(`  Go Estoque -> Go OrdemDeProducao: ${JSON.stringify(goEstoque)}`);
  const goOrdemRate = await oursToGo(options.url, options.method.messages).catch(why);
  log(`  our Estoque -> Go OrdemDeProducao: ${JSON.stringify(goOrdemRate)}`);
  return { goEstoque, goOrdem: goOrdemRate };
}
