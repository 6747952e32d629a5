/** The benchmark's profiling flags, run as a user runs them against the local broker. */

import { strict as assert } from "node:assert";
import { join } from "node:path";
import { runScript, tempDir } from "../testing/broker.ts";

Deno.test("bench --only <path> --profile --profile-out DIR writes each side's whole CPU profile", async () => {
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
  for (const side of ["raw", "ours"]) {
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
