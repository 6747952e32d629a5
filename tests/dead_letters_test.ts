import { strict as assert } from "node:assert";
import { join } from "node:path";
import { formatAge, formatDeadLetterTable, parseSince, toDeadLetter } from "../lib/dead_letters.ts";
import {
  inspectDeadLetters,
  purgeDeadLetters,
  replayArchive,
  replayDeadLetters,
} from "../lib/dead_letter_ops.ts";
import { encodeOrder, newOrder } from "../lib/order.ts";
import { ConfirmedPublisher } from "../lib/publisher.ts";
import { deadLetterHeaders, HEADER } from "../lib/retry_headers.ts";
import type { DeadLetterReason } from "../lib/retry_policy.ts";
import { dlqOnTerminal } from "../testing/terminal.ts";
import {
  type BrokerContext,
  runScript,
  scriptCommand,
  takeMessages,
  tempDir,
  waitFor,
  withTopology,
} from "../testing/broker.ts";

/** Puts dead letters in the DLQ as the consumer would, oldest first. */
async function seed(
  { broker, topo }: BrokerContext,
  letters: { reason: DeadLetterReason; at: Date; retries?: number }[],
): Promise<string[]> {
  const publisher = new ConfirmedPublisher(await broker.confirmChannel());
  const refs: string[] = [];
  for (const { reason, at, retries } of letters) {
    const order = newOrder({ quantity: 900 });
    refs.push(order.refCode);
    const failure = {
      error: new Error(`failed: ${reason}`),
      now: at,
      exchange: topo.exchange,
      routingKey: "create",
    };
    await publisher.publish(topo.deadLetterExchange, topo.routingKey, encodeOrder(order), {
      messageId: order.refCode,
      contentType: "application/json",
      persistent: true,
      mandatory: true,
      headers: deadLetterHeaders({}, failure, retries ?? 3, reason),
    });
  }
  return refs;
}

const hourAgo = new Date(Date.now() - 3_600_000);
const dayAgo = new Date(Date.now() - 86_400_000);

Deno.test("parseSince() takes durations and dates", () => {
  const now = new Date("2026-11-24T12:00:00Z");
  assert.deepEqual(parseSince("15m", now), new Date("2026-11-24T11:45:00Z"));
  assert.deepEqual(parseSince("7d", now), new Date("2026-11-17T12:00:00Z"));
  assert.deepEqual(parseSince("2026-11-01", now), new Date("2026-11-01T00:00:00Z"));
  assert.equal(parseSince("yesterday", now), undefined);
  assert.equal(formatAge(90_000), "90s");
  assert.equal(formatAge(3 * 86_400_000), "3d");
});

Deno.test("toDeadLetter() reads the broker's own x-death reason when ours is missing", () => {
  const letter = toDeadLetter({
    content: new Uint8Array() as never,
    properties: { headers: { "x-death": [{ reason: "delivery_limit" }] } } as never,
  });
  assert.equal(letter.reason, "broker:delivery_limit");
  assert.equal(letter.attempts, 0);
});

Deno.test("inspectDeadLetters() lists without consuming: same order, same every time", async () => {
  await withTopology("dlq-list", {}, async (ctx) => {
    const refs = await seed(ctx, [
      { reason: "exhausted", at: dayAgo },
      { reason: "invalid", at: hourAgo, retries: 0 },
      { reason: "exhausted", at: new Date() },
    ]);
    const { letters: first } = await inspectDeadLetters(ctx.broker, ctx.topo);
    const { letters: second } = await inspectDeadLetters(ctx.broker, ctx.topo);
    assert.deepEqual(first.map((l) => l.refCode), refs);
    assert.deepEqual(second.map((l) => l.refCode), refs);
    assert.equal(await ctx.broker.messageCount(ctx.topo.deadLetterQueue), 3);
    assert.deepEqual(first.map((l) => [l.reason, l.attempts]), [["exhausted", 3], ["invalid", 0], [
      "exhausted",
      3,
    ]]);
    assert.equal(first[0]!.lastError, "failed: exhausted");

    const invalid = await inspectDeadLetters(ctx.broker, ctx.topo, {
      filter: { reason: "invalid" },
    });
    assert.deepEqual(invalid.letters.map((l) => l.refCode), [refs[1]]);
    assert.deepEqual([invalid.total, invalid.matched, invalid.done], [3, 1, 1]);
    const recent = await inspectDeadLetters(ctx.broker, ctx.topo, {
      filter: { since: new Date(Date.now() - 7_200_000) },
    });
    assert.deepEqual(recent.letters.map((l) => l.refCode), refs.slice(1));
    const one = await inspectDeadLetters(ctx.broker, ctx.topo, {
      filter: { ref: refs[2]!.toUpperCase() },
    });
    assert.equal(one.letters.length, 1);
    // A limit shows fewer, and still counts every match exactly.
    const limited = await inspectDeadLetters(ctx.broker, ctx.topo, { limit: 2 });
    assert.deepEqual([limited.letters.length, limited.matched, limited.total], [2, 3, 3]);

    const table = formatDeadLetterTable(first, new Date());
    assert.match(table.split("\n")[0]!, /^REF +REASON +ATTEMPTS +AGE +FIRST FAILURE +LAST ERROR$/);
    assert.match(table.split("\n")[1]!, new RegExp(`^${refs[0]} +exhausted +3 +24h`));
  });
});

Deno.test("replayDeadLetters() sends matching dead letters back with the count reset, and keeps the rest in order", async () => {
  await withTopology("dlq-replay", {}, async (ctx) => {
    const refs = await seed(ctx, [
      { reason: "exhausted", at: hourAgo },
      { reason: "invalid", at: hourAgo },
      { reason: "exhausted", at: hourAgo },
      { reason: "invalid", at: hourAgo },
    ]);
    const dry = await replayDeadLetters(ctx.broker, ctx.topo, {
      filter: { reason: "exhausted" },
      dryRun: true,
    });
    assert.deepEqual(dry, { total: 4, matched: 2, done: 2, failed: 0, left: 4, failures: [] });
    assert.equal(await ctx.broker.messageCount(ctx.topo.queue), 0);

    const now = new Date("2026-11-24T12:00:00Z");
    const progress: number[] = [];
    const summary = await replayDeadLetters(ctx.broker, ctx.topo, {
      filter: { reason: "exhausted" },
      now: () => now,
      onProgress: (n) => progress.push(n),
    });
    assert.deepEqual(summary, { total: 4, matched: 2, done: 2, failed: 0, left: 2, failures: [] });
    assert.deepEqual(progress, [1, 2]);
    const replayed = await takeMessages(ctx.broker, ctx.topo.queue, 2);
    assert.deepEqual(replayed.map((m) => m.properties.messageId), [refs[0], refs[2]]);
    const headers = replayed[0]!.properties.headers!;
    assert.equal(headers[HEADER.retryCount], undefined);
    assert.equal(headers[HEADER.reason], undefined);
    assert.equal(headers[HEADER.replayCount], 1);
    assert.equal(headers[HEADER.replayedAt], "2026-11-24T12:00:00.000Z");
    assert.equal(headers[HEADER.lastError], "failed: exhausted");
    const { letters: left } = await inspectDeadLetters(ctx.broker, ctx.topo);
    assert.deepEqual(left.map((l) => l.refCode), [refs[1], refs[3]]);

    // A limit acts on fewer, and the counts stay exact: 1 of 2 matching replayed, 1 left.
    const limited = await replayDeadLetters(ctx.broker, ctx.topo, { limit: 1 });
    assert.deepEqual(limited, { total: 2, matched: 2, done: 1, failed: 0, left: 1, failures: [] });
  });
});

Deno.test("an interrupted replay (kill -9) loses nothing", async () => {
  await withTopology("dlq-kill", {}, async (ctx) => {
    const refs = await seed(
      ctx,
      Array.from({ length: 60 }, () => ({ reason: "exhausted" as const, at: hourAgo })),
    );
    const child = scriptCommand("dlq.ts", [
      "replay",
      "--prefix",
      ctx.topo.prefix,
      "--rate",
      "40",
      "--window",
      "5",
    ]).spawn();
    await waitFor(
      "some replayed messages",
      async () => (await ctx.broker.messageCount(ctx.topo.queue)) >= 10 ? true : undefined,
    );
    child.kill("SIGKILL");
    await child.output(); // reads (and closes) its pipes
    const inWork = (await takeMessages(
      ctx.broker,
      ctx.topo.queue,
      await ctx.broker.messageCount(ctx.topo.queue),
    ))
      .map((m) => String(m.properties.messageId));
    const inDlq = (await inspectDeadLetters(ctx.broker, ctx.topo)).letters.map((l) =>
      String(l.refCode)
    );
    assert.ok(inWork.length >= 10 && inWork.length < 60, `${inWork.length} replayed`);
    assert.deepEqual(
      new Set([...inWork, ...inDlq]),
      new Set(refs),
      "every dead letter is somewhere",
    );
    assert.ok(inWork.length + inDlq.length <= 65, "at most those in flight (window 5) in both");
  });
});

Deno.test("purgeDeadLetters() archives what it removes first; replayArchive() brings it back byte for byte", async () => {
  await withTopology("dlq-purge", {}, async (ctx) => {
    await using dir = await tempDir();
    const archive = join(dir.path, "purge.jsonl");
    const refs = await seed(ctx, [
      { reason: "invalid", at: hourAgo },
      { reason: "exhausted", at: hourAgo },
      { reason: "invalid", at: hourAgo },
    ]);
    const purged = await purgeDeadLetters(ctx.broker, ctx.topo, {
      filter: { reason: "invalid" },
      archive,
    });
    assert.deepEqual(purged, { total: 3, matched: 2, done: 2, failed: 0, left: 1 });
    const lines = (await Deno.readTextFile(archive)).trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => l.refCode), [refs[0], refs[2]]);
    assert.equal(lines[0].headers[HEADER.reason], "invalid");
    assert.deepEqual(
      (await inspectDeadLetters(ctx.broker, ctx.topo)).letters.map((l) => l.refCode),
      [refs[1]],
    );
    const back = await replayArchive(ctx.broker, ctx.topo, archive);
    assert.deepEqual([back.matched, back.done, back.failed], [2, 2, 0]);
    const replayed = await takeMessages(ctx.broker, ctx.topo.queue, 2);
    const original = encodeOrder({
      refCode: refs[0]!,
      colorCode: JSON.parse(new TextDecoder().decode(replayed[0]!.content)).ColorCode,
      quantity: 900,
      eventType: "CREATE",
    });
    assert.deepEqual(new Uint8Array(replayed[0]!.content), original, "body byte for byte");
    assert.equal(replayed[0]!.properties.headers![HEADER.replayCount], 1);
    // Without an archive and without a filter, every dead letter there is deleted.
    assert.deepEqual(await purgeDeadLetters(ctx.broker, ctx.topo, { archive: undefined }), {
      total: 1,
      matched: 1,
      done: 1,
      failed: 0,
      left: 0,
    });
  });
});

Deno.test("dlq commands: list, show, a dry run deletes nothing, purge archives and asks, every change is audited, misplaced flags are refused", async () => {
  await withTopology("dlq-cli", {}, async (ctx) => {
    await using dir = await tempDir();
    const [ref, other] = await seed(ctx, [
      { reason: "exhausted", at: hourAgo },
      { reason: "invalid", at: hourAgo },
    ]);
    const audit = join(dir.path, "audit.jsonl");
    const env = { DLQ_AUDIT_LOG: audit, DLQ_ARCHIVE_DIR: join(dir.path, "archive") };
    const run = (...args: string[]) =>
      runScript("dlq.ts", [...args, "--prefix", ctx.topo.prefix], env);
    const list = await run("list", "--json");
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(JSON.parse(list.stdout).map((l: { refCode: string }) => l.refCode), [
      ref,
      other,
    ]);
    // A filtered list says how many match of how many there are.
    const filtered = await run("list", "--reason", "invalid");
    assert.match(filtered.stdout, /1 shown of 1 matching dead letter\(s\); 2 in /);
    const show = await run("show", ref!);
    assert.equal(show.code, 0);
    assert.match(show.stdout, /reason: +exhausted after 3 retries/);
    assert.match(show.stdout, /"Quantity":900/);
    assert.equal((await run("show", "no-such-ref")).code, 1);
    const refused = await run("purge");
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /add --yes/);
    // A dry run never deletes, --yes or not.
    const dry = await run("purge", "--dry-run", "--yes");
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(
      dry.stdout,
      /dry run: 2 of 2 matching dead letter\(s\) would be purged .* nothing was deleted/,
    );
    assert.equal(await ctx.broker.messageCount(ctx.topo.deadLetterQueue), 2);
    // A flag of another subcommand, or an unknown reason, stops the command naming it.
    const misplaced = await run("list", "--rate", "5");
    assert.equal(misplaced.code, 2);
    assert.match(misplaced.stderr, /--rate does not apply to "dlq list"/);
    const bogus = await run("list", "--reason", "bogus");
    assert.equal(bogus.code, 2);
    assert.match(bogus.stderr, /--reason must be one of exhausted, invalid/);
    // Each subcommand's --help lists its own options.
    const help = await run("list", "--help");
    assert.match(help.stdout, /--reason/);
    assert.doesNotMatch(help.stdout, /--rate|--yes|--archive/);
    const purge = await run("purge", "--reason", "invalid", "--yes", "--operator", "ops-test");
    assert.equal(purge.code, 0, purge.stderr);
    assert.match(purge.stdout, /purged 1 of 1 matching dead letter\(s\) .*archived to .*; 1 left/);
    const archive = /archived to (\S+\.jsonl)/.exec(purge.stdout)![1]!;
    const archived = (await Deno.readTextFile(archive)).trim().split("\n").map((l) =>
      JSON.parse(l)
    );
    assert.deepEqual(archived.map((a) => a.refCode), [other]);
    const entries = (await Deno.readTextFile(audit)).trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(entries.map((e) => [e.action, e.dryRun]), [["purge", true], ["purge", false]]);
    assert.equal(entries[1].who, "ops-test");
    assert.equal(entries[1].file, archive);
    assert.deepEqual(entries[1].counts, { total: 2, matched: 1, done: 1, failed: 0, left: 1 });
    assert.match(entries[0].who, /.+@.+/, "user@host when no --operator is given");
    assert.equal((await run("frobnicate")).code, 2);
  });
});

Deno.test("replayDeadLetters() holds --rate: 60 dead letters at 100/s take 0.59-0.65 s", async () => {
  await withTopology("dlq-rate", {}, async (ctx) => {
    await seed(
      ctx,
      Array.from({ length: 60 }, () => ({ reason: "exhausted" as const, at: hourAgo })),
    );
    const started = performance.now();
    const counts = await replayDeadLetters(ctx.broker, ctx.topo, { ratePerSecond: 100 });
    const seconds = (performance.now() - started) / 1000;
    assert.equal(counts.done, 60);
    // 59 intervals of 10 ms: never sooner, and within 10 % of the rate.
    assert.ok(seconds >= 0.59, `${seconds} s: faster than the rate`);
    assert.ok(seconds <= 0.65, `${seconds} s: more than 10 % slower than the rate`);
  });
});

Deno.test("on a terminal, purge asks first, showing how many match and a sample; 'n' deletes nothing", async () => {
  await withTopology("dlq-prompt", {}, async (ctx) => {
    await using dir = await tempDir();
    const refs = await seed(ctx, [
      { reason: "exhausted", at: hourAgo },
      { reason: "exhausted", at: hourAgo },
    ]);
    // On a pseudo-terminal, as an operator's shell would run it.
    const purge = (answer: string) =>
      dlqOnTerminal([
        "purge",
        "--prefix",
        ctx.topo.prefix,
        "--archive-dir",
        join(dir.path, "archive"),
        "--audit-log",
        join(dir.path, "audit.jsonl"),
      ], answer);
    const no = await purge("n\n");
    assert.equal(no.code, 0, no.stdout);
    assert.match(
      no.stdout,
      new RegExp(
        `Delete 2 of 2 matching dead letter\\(s\\) from .*archived first to .*\\(e\\.g\\. ${
          refs[0]
        } \\(exhausted\\), ${refs[1]} \\(exhausted\\)\\)\\? \\[y/N\\]`,
      ),
    );
    assert.match(no.stdout, /nothing purged/);
    assert.equal(await ctx.broker.messageCount(ctx.topo.deadLetterQueue), 2);
    const yes = await purge("y\n");
    assert.match(yes.stdout, /purged 2 of 2 matching dead letter\(s\)/);
    assert.equal(await ctx.broker.messageCount(ctx.topo.deadLetterQueue), 0);
  });
});
