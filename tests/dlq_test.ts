/**
 * `deno task dlq purge` as an operator runs it: on a terminal it asks first, and then deletes at
 * most what the operator confirmed (never what arrived while it asked); its audit entry is on
 * disk before anything is deleted, so a trail that cannot be written stops the purge.
 */

import { strict as assert } from "node:assert";
import { join } from "node:path";
import { Buffer } from "node:buffer";
import { inspectDeadLetters } from "../lib/dead_letter_ops.ts";
import { ConfirmedPublisher } from "../lib/publisher.ts";
import { deadLetterHeaders, HEADER, int32 } from "../lib/retry_headers.ts";
import { type BrokerContext, runScript, tempDir, withTopology } from "../testing/broker.ts";
import { fillDisk, tinyDisk } from "../testing/disk.ts";
import { DEFAULT_BROKER, otherBroker } from "../testing/other_brokers.ts";
import { dlqOnTerminal } from "../testing/terminal.ts";

/** Puts dead letters `refs` in the DLQ as the consumer would, in order. */
async function seed(
  { broker, topo }: BrokerContext,
  refs: readonly string[],
  extraHeaders: (ref: string) => Record<string, unknown> = () => ({}),
): Promise<void> {
  const channel = await broker.confirmChannel();
  const publisher = new ConfirmedPublisher(channel);
  try {
    for (const ref of refs) {
      const failure = {
        error: new Error("failed: invalid"),
        now: new Date(Date.now() - 60_000),
        exchange: topo.exchange,
        routingKey: topo.routingKey,
      };
      await publisher.publish(
        topo.deadLetterExchange,
        topo.routingKey,
        Buffer.from(`{"${ref}":1}`),
        {
          messageId: ref,
          persistent: true,
          mandatory: true,
          headers: { ...deadLetterHeaders({}, failure, 0, "invalid"), ...extraHeaders(ref) },
        },
      );
    }
  } finally {
    await channel.close();
  }
}

async function refsInDlq(ctx: BrokerContext): Promise<string[]> {
  return (await inspectDeadLetters(ctx.broker, ctx.topo)).letters.map((l) => String(l.refCode));
}

for (const archiving of [false, true]) {
  Deno.test(
    `purge${
      archiving ? "" : " --no-archive"
    } after the prompt deletes at most what the operator confirmed; letters that arrive meanwhile stay`,
    async () => {
      await withTopology("dlq-prompt-window", {}, async (ctx) => {
        await using dir = await tempDir();
        await seed(ctx, ["first-0", "first-1"]);
        const late = ["late-0", "late-1", "late-2"];
        const archiveDir = join(dir.path, "archive");
        const { code, stdout } = await dlqOnTerminal(
          [
            "purge",
            "--prefix",
            ctx.topo.prefix,
            "--audit-log",
            join(dir.path, "audit.jsonl"),
            ...(archiving ? ["--archive-dir", archiveDir] : ["--no-archive"]),
          ],
          "y\n",
          { meanwhile: () => seed(ctx, late) }, // arrive while the operator reads the question
        );
        assert.equal(code, 0, stdout);
        assert.match(stdout, /Delete 2 of 2 matching dead letter\(s\)/);
        assert.match(stdout, /purged 2 of 2 matching dead letter\(s\)/);
        assert.deepEqual(await refsInDlq(ctx), late, "the late letters are all still there");
        if (archiving) {
          const [file] = [...Deno.readDirSync(archiveDir)];
          const archived = (await Deno.readTextFile(join(archiveDir, file!.name))).trim().split(
            "\n",
          )
            .map((line) => JSON.parse(line).refCode);
          assert.deepEqual(archived, ["first-0", "first-1"]);
        }
      });
    },
  );
}

Deno.test("purge whose audit entry cannot be written (a full disk) deletes nothing and says so", async () => {
  await withTopology("dlq-audit-full", {}, async (ctx) => {
    await using dir = await tempDir();
    await using disk = await tinyDisk(64);
    const refs = ["a-0", "a-1", "a-2"];
    await seed(ctx, refs);
    const audit = join(disk.path, "audit.jsonl");
    await fillDisk(join(disk.path, "filler"));
    const archiveDir = join(dir.path, "archive");
    const purge = await runScript("dlq.ts", [
      "purge",
      "--yes",
      "--prefix",
      ctx.topo.prefix,
      "--audit-log",
      audit,
      "--archive-dir",
      archiveDir,
    ]);
    assert.deepEqual(await refsInDlq(ctx), refs, "nothing was deleted");
    assert.notEqual(purge.code, 0, `the purge went ahead: ${purge.stdout}`);
    assert.match(purge.stderr, /audit/i);
    assert.equal(await Deno.readTextFile(audit).catch(() => ""), "", "no torn audit line");
    const archives = await Array.fromAsync(Deno.readDir(archiveDir)).catch(() => []);
    assert.deepEqual(archives.map((a) => a.name), [], "no archive of a purge that did not happen");
  });
});

Deno.test("replay lists a dead letter it could not replay, with its reason, and leaves it in the DLQ (exit 1)", async () => {
  await withTopology("dlq-replay-failure", {}, async (ctx) => {
    await using dir = await tempDir();
    await seed(
      ctx,
      ["fine-0", "overflow", "fine-1"],
      (ref) => ref === "overflow" ? { [HEADER.replayCount]: int32(2_147_483_647) } : {},
    );
    const replay = await runScript("dlq.ts", [
      "replay",
      "--prefix",
      ctx.topo.prefix,
      "--audit-log",
      join(dir.path, "audit.jsonl"),
    ]);
    assert.equal(replay.code, 1, replay.stderr);
    assert.match(
      replay.stdout,
      /replayed 2 of 3 matching dead letter\(s\) to .*, 1 failed and stay in the DLQ; 1 left in /,
    );
    assert.match(
      replay.stdout,
      /not replayed: overflow: cannot count one more replay on x-replay-count 2147483647/,
    );
    assert.deepEqual(await refsInDlq(ctx), ["overflow"]);
    assert.equal(await ctx.broker.messageCount(ctx.topo.queue), 2);
  });
});

for (const target of [DEFAULT_BROKER, otherBroker("4_0")]) {
  Deno.test(`purge --yes and replay act on every letter their count found, run after run (quorum, ${target.name})`, async () => {
    await withTopology("dlq-count-then-act", { queueType: "quorum" }, async (ctx) => {
      await using dir = await tempDir();
      const run = (verb: string, ...flags: string[]) =>
        runScript("dlq.ts", [
          verb,
          ...flags,
          "--prefix",
          ctx.topo.prefix,
          "--audit-log",
          join(dir.path, "audit.jsonl"),
        ], { RABBITMQ_URL: target.url });
      const seen: string[] = [];
      for (let round = 0; round < 8; round++) {
        // Each counts the letters with one pass (the purge's preview, the replay's progress
        // total), then acts with another at once.
        await seed(ctx, Array.from({ length: 10 }, (_, i) => `purge-${round}-${i}`));
        const purge = await run("purge", "--yes", "--no-archive");
        await seed(ctx, Array.from({ length: 10 }, (_, i) => `replay-${round}-${i}`));
        const replay = await run("replay");
        seen.push(
          [purge, replay].map((r) =>
            /(purged|replayed) \d+ of \d+ .*?; \d+ left/.exec(r.stdout)?.[0] ?? r.stderr
          ).join(" | "),
        );
        await ctx.broker.channel().then(async (channel) => {
          await channel.purgeQueue(ctx.topo.queue);
          await channel.close();
        });
      }
      const expected = (dlq: string) =>
        `purged 10 of 10 matching dead letter(s) from ${dlq}; 0 left | ` +
        `replayed 10 of 10 matching dead letter(s) to ${ctx.topo.exchange}; 0 left`;
      assert.deepEqual(seen, Array(8).fill(expected(ctx.topo.deadLetterQueue)));
      const audit = (await Deno.readTextFile(join(dir.path, "audit.jsonl"))).trim().split("\n")
        .map((line) => JSON.parse(line).counts.done);
      assert.deepEqual(audit, Array(16).fill(10), "the audit trail records 10 done each time");
    }, target.url);
  });
}
