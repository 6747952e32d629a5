/**
 * The benchmark's profiling flags, run as a user runs them against the local broker, and its
 * control sides against ours.
 */

import { strict as assert } from "node:assert";
import { join } from "node:path";
import type { ConsumeMessage } from "amqplib";
import { RABBITMQ_URL, runScript, takeMessages, tempDir } from "../testing/broker.ts";
import { type RunContext, type RunResult, withBenchTopology } from "../bench/_shared.ts";
import { oursDeadLetter, oursRetry } from "../bench/ours.ts";
import { rawDeadLetterExplained, rawRetryExplained } from "../bench/raw.ts";
import { HEADER } from "../lib/retry_headers.ts";
import type { Topology } from "../lib/topology.ts";

Deno.test("bench --only <path> --profile --profile-out DIR writes each side's whole CPU profile, the control's too", async () => {
  await using dir = await tempDir();
  const out = join(dir.path, "profiles");
  const { code, stderr } = await runScript("bench/main.ts", [
    "--only",
    "dead-letter",
    "--rounds",
    "1",
    "--messages",
    "200",
    "--prefetch",
    "100",
    "--raw-prefetch",
    "100",
    "--profile",
    "--profile-out",
    out,
  ]);
  assert.equal(code, 0, stderr);
  for (const side of ["raw", "control", "ours"]) {
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
  assert.match(stderr, /--profile-out needs --only and --profile/);
});

/** The copies left in `queue` after `side` ran on 5 orders in a bench topology of its own. */
async function copiesOf(
  side: (ctx: RunContext) => Promise<RunResult>,
  queueOf: (topo: Topology) => string,
  dir: string,
): Promise<ConsumeMessage[]> {
  return await withBenchTopology(RABBITMQ_URL, async (broker, topo) => {
    const ctx = {
      url: RABBITMQ_URL,
      broker,
      topo,
      messages: 5,
      dir,
      prefetch: 100,
      window: 100,
      rawPrefetch: 100,
      rawWindow: 100,
    };
    await side(ctx);
    return await takeMessages(broker, queueOf(topo), 5);
  });
}

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
    ["retry", rawRetryExplained, oursRetry, (t: Topology) => t.retryTiers.at(-1)!.queue],
    ["dead-letter", rawDeadLetterExplained, oursDeadLetter, (t: Topology) => t.deadLetterQueue],
  ] as const
) {
  Deno.test(`bench ${path}: the control publishes the very copy ours publishes`, async () => {
    await using dir = await tempDir();
    const oursCopies = await copiesOf(ours, queueOf, dir.path);
    const rawCopies = await copiesOf(raw, queueOf, dir.path);
    assert.ok(oursCopies[0]!.properties.headers?.[HEADER.lastError], "ours explains the failure");
    for (let i = 0; i < 5; i++) assert.deepEqual(shape(rawCopies[i]!), shape(oursCopies[i]!));
  });
}
