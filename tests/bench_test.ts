/**
 * The benchmark run as a user runs it against the local broker, at tiny sizes with raw's settings
 * pinned (no sweep): its profiling flags, its method's checks, the services' path; and raw's
 * baseline on retry and dead-letter against ours' copies.
 */

import { strict as assert } from "node:assert";
import { join } from "node:path";
import type { ConsumeMessage } from "amqplib";
import { RABBITMQ_URL, runScript, tempDir } from "../testing/broker.ts";
import { type RunContext, type RunResult, withBenchTopology } from "../bench/_shared.ts";
import { leftBy } from "../testing/bench_side.ts";
import { oursDeadLetter, oursRetry } from "../bench/ours.ts";
import { rawDeadLetter, rawRetry } from "../bench/raw.ts";
import { RAW_START } from "../bench/_settings.ts";
import { oursLatency, rawLatency } from "../bench/_latency.ts";
import { SERVICES } from "../bench/_services_settings.ts";
import { HEADER } from "../lib/retry_headers.ts";
import type { Topology } from "../lib/topology.ts";

/** Tiny sizes, raw's settings pinned: no sweep. */
const TINY = [
  "--rounds",
  "2",
  "--messages",
  "200",
  "--warmup",
  "50",
  "--raw-prefetch",
  "100",
  "--raw-window",
  "256",
  "--raw-connections",
  "2",
  "--raw-writes",
  "as-is",
];

Deno.test("bench --only <path> --profile --profile-out DIR writes each side's whole CPU profile, the bare copy's too", async () => {
  await using dir = await tempDir();
  const out = join(dir.path, "profiles");
  const { code, stderr } = await runScript("bench/main.ts", [
    "--only",
    "dead-letter",
    ...TINY,
    "--profile",
    "--profile-out",
    out,
    "--results",
    dir.path,
  ]);
  assert.equal(code, 0, stderr);
  for (const side of ["raw", "bare", "ours"]) {
    const profile = JSON.parse(
      await Deno.readTextFile(join(out, `dead-letter-${side}.cpuprofile`)),
    );
    // What V8's profiler gives and Chrome DevTools opens: nodes, and samples with their times.
    assert.ok(profile.nodes.length > 0, side);
    assert.ok(profile.samples.length > 0, side);
    assert.equal(profile.samples.length, profile.timeDeltas.length, side);
  }
});

Deno.test("bench --profile-out without --only and --profile stops with exit 2, naming the flags", async () => {
  await using dir = await tempDir();
  const { code, stderr } = await runScript("bench/main.ts", ["--profile-out", dir.path]);
  assert.equal(code, 2);
  assert.match(stderr, /--profile-out needs --only <path> and --profile/);
});

Deno.test("bench --rounds 3 stops with exit 2: the rounds must be even, ABBA", async () => {
  const { code, stderr } = await runScript("bench/main.ts", ["--rounds", "3"]);
  assert.equal(code, 2);
  assert.match(stderr, /--rounds must be even .*got 3/);
});

Deno.test("bench --only retry prints the method, raw's pinned settings, the ratio with its interval, and writes the run's results", async () => {
  await using dir = await tempDir();
  const { code, stdout, stderr } = await runScript("bench/main.ts", [
    "--only",
    "retry",
    ...TINY,
    "--results",
    dir.path,
  ]);
  assert.equal(code, 0, stderr);
  assert.match(stderr, /Every timed run moves 200 persistent messages\. Each path runs 2 rounds/);
  assert.match(stderr, /retry: raw keeps prefetch 100, 2 connections, writes as amqplib does/);
  assert.match(stderr, /retry round 2 \(ours, bare, raw\)/);
  assert.match(stdout, /^retry: raw [\d,]+\/s, ours [\d,]+\/s, ratio [\d.]+ \[[\d.]+–[\d.]+\]/m);
  const [run] = [...Deno.readDirSync(dir.path)];
  const results = JSON.parse(await Deno.readTextFile(join(dir.path, run!.name, "results.json")));
  assert.equal(results.rows[0].ours.rates.length, 2);
  assert.equal(results.rows[0].bare.rates.length, 2);
  assert.deepEqual(results.method.rounds, 2);
});

Deno.test("bench --only services runs deno task ordem and estoque as processes against raw's two processes", async () => {
  await using dir = await tempDir();
  const { code, stdout, stderr } = await runScript("bench/main.ts", [
    "--only",
    "services",
    ...TINY,
    "--results",
    dir.path,
  ]);
  assert.equal(code, 0, stderr);
  assert.match(
    stderr,
    /services round 2: raw processes [\d,]+\/s, deno task ordem \+ estoque [\d,]+\/s/,
  );
  assert.match(stdout, /^services as processes: ours \/ raw [\d.]+ \[/m);
});

/** The copies left in `queue` after `side` ran on 5 orders in a bench topology of its own. */
const copiesOf = (
  side: (ctx: RunContext) => Promise<RunResult>,
  queueOf: (topo: Topology) => string,
  dir: string,
) => leftBy(side, queueOf, dir, { ...RAW_START, prefetch: 100, window: 100 });

/** What a copy carries, less what differs from run to run (ids, times, the topology's names). */
function shape(message: ConsumeMessage) {
  const { headers = {}, ...properties } = message.properties;
  const fixed = new Set<string>([HEADER.lastError, HEADER.retryCount, HEADER.reason]);
  return {
    properties: Object.keys(properties).filter((k) =>
      properties[k as keyof typeof properties] !== undefined
    ).sort(),
    headers: Object.fromEntries(
      Object.keys(headers).sort().map((k) => [k, fixed.has(k) ? headers[k] : typeof headers[k]]),
    ),
    bodySize: message.content.byteLength,
  };
}

for (
  const [path, raw, ours, queueOf] of [
    ["retry", rawRetry, oursRetry, (t: Topology) => t.retryTiers.at(-1)!.queue],
    ["dead-letter", rawDeadLetter, oursDeadLetter, (t: Topology) => t.deadLetterQueue],
  ] as const
) {
  Deno.test(`bench ${path}: raw's baseline publishes the very copy ours publishes`, async () => {
    await using dir = await tempDir();
    const oursCopies = await copiesOf(ours, queueOf, dir.path);
    const rawCopies = await copiesOf(raw, queueOf, dir.path);
    assert.ok(oursCopies[0]!.properties.headers?.[HEADER.lastError], "ours explains the failure");
    for (let i = 0; i < 5; i++) assert.deepEqual(shape(rawCopies[i]!), shape(oursCopies[i]!));
  });
}

Deno.test("bench latency: raw and ours each time every message, from its scheduled send to its durable ack", async () => {
  await using dir = await tempDir();
  for (const [side, settings] of [[rawLatency, RAW_START], [oursLatency, SERVICES]] as const) {
    const run = await withBenchTopology(
      RABBITMQ_URL,
      (broker, topo) =>
        side({ url: RABBITMQ_URL, broker, topo, messages: 100, dir: dir.path, settings }, 1_000),
    );
    assert.equal(run.latencies.total, 100, side.name);
    assert.ok(run.latencies.max > 0 && run.latencies.max < 10_000, side.name);
    assert.ok(run.loopDelays.total > 0, side.name);
  }
});
