import { strict as assert } from "node:assert";
import {
  formatAge,
  formatDeadLetterTable,
  inspectDeadLetters,
  parseSince,
  purgeDeadLetters,
  replayDeadLetters,
  toDeadLetter,
} from "../lib/dead_letters.ts";
import { encodeOrder, newOrder } from "../lib/order.ts";
import { ConfirmedPublisher } from "../lib/publisher.ts";
import { deadLetterHeaders, HEADER } from "../lib/retry_headers.ts";
import type { DeadLetterReason } from "../lib/retry_policy.ts";
import {
  type BrokerContext,
  runScript,
  scriptCommand,
  takeMessages,
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
    const first = await inspectDeadLetters(ctx.broker, ctx.topo);
    const second = await inspectDeadLetters(ctx.broker, ctx.topo);
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
    assert.deepEqual(invalid.map((l) => l.refCode), [refs[1]]);
    const recent = await inspectDeadLetters(ctx.broker, ctx.topo, {
      filter: { since: new Date(Date.now() - 7_200_000) },
    });
    assert.deepEqual(recent.map((l) => l.refCode), refs.slice(1));
    const one = await inspectDeadLetters(ctx.broker, ctx.topo, {
      filter: { ref: refs[2]!.toUpperCase() },
    });
    assert.equal(one.length, 1);
    assert.equal((await inspectDeadLetters(ctx.broker, ctx.topo, { limit: 2 })).length, 2);

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
    assert.deepEqual(dry, { matched: 2, replayed: 0, failed: 0, kept: 2 });
    assert.equal(await ctx.broker.messageCount(ctx.topo.queue), 0);

    const now = new Date("2026-11-24T12:00:00Z");
    const progress: number[] = [];
    const summary = await replayDeadLetters(ctx.broker, ctx.topo, {
      filter: { reason: "exhausted" },
      now: () => now,
      onProgress: (n) => progress.push(n),
    });
    assert.deepEqual(summary, { matched: 2, replayed: 2, failed: 0, kept: 2 });
    assert.deepEqual(progress, [1, 2]);
    const replayed = await takeMessages(ctx.broker, ctx.topo.queue, 2);
    assert.deepEqual(replayed.map((m) => m.properties.messageId), [refs[0], refs[2]]);
    const headers = replayed[0]!.properties.headers!;
    assert.equal(headers[HEADER.retryCount], undefined);
    assert.equal(headers[HEADER.reason], undefined);
    assert.equal(headers[HEADER.replayCount], 1);
    assert.equal(headers[HEADER.replayedAt], "2026-11-24T12:00:00.000Z");
    assert.equal(headers[HEADER.lastError], "failed: exhausted");
    const left = await inspectDeadLetters(ctx.broker, ctx.topo);
    assert.deepEqual(left.map((l) => l.refCode), [refs[1], refs[3]]);

    const limited = await replayDeadLetters(ctx.broker, ctx.topo, { limit: 1 });
    assert.equal(limited.replayed, 1);
    assert.equal(await ctx.broker.messageCount(ctx.topo.deadLetterQueue), 1);
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
    const inDlq = (await inspectDeadLetters(ctx.broker, ctx.topo)).map((l) => String(l.refCode));
    assert.ok(inWork.length >= 10 && inWork.length < 60, `${inWork.length} replayed`);
    assert.deepEqual(
      new Set([...inWork, ...inDlq]),
      new Set(refs),
      "every dead letter is somewhere",
    );
    assert.ok(inWork.length + inDlq.length <= 61, "at most the one in flight is in both");
  });
});

Deno.test("purgeDeadLetters() removes only what matches, or everything", async () => {
  await withTopology("dlq-purge", {}, async (ctx) => {
    const refs = await seed(ctx, [
      { reason: "invalid", at: hourAgo },
      { reason: "exhausted", at: hourAgo },
      { reason: "invalid", at: hourAgo },
    ]);
    assert.deepEqual(
      await purgeDeadLetters(ctx.broker, ctx.topo, { filter: { reason: "invalid" } }),
      { purged: 2, kept: 1 },
    );
    assert.deepEqual((await inspectDeadLetters(ctx.broker, ctx.topo)).map((l) => l.refCode), [
      refs[1],
    ]);
    assert.deepEqual(await purgeDeadLetters(ctx.broker, ctx.topo), { purged: 1, kept: 0 });
    assert.equal(await ctx.broker.messageCount(ctx.topo.deadLetterQueue), 0);
  });
});

Deno.test("dlq commands: list --json, show, purge needs --yes off a terminal, a dry run deletes nothing, misplaced flags are refused", async () => {
  await withTopology("dlq-cli", {}, async (ctx) => {
    const [ref] = await seed(ctx, [{ reason: "exhausted", at: hourAgo }]);
    const run = (...args: string[]) => runScript("dlq.ts", [...args, "--prefix", ctx.topo.prefix]);
    const list = await run("list", "--json");
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(JSON.parse(list.stdout).map((l: { refCode: string }) => l.refCode), [ref]);
    const show = await run("show", ref!);
    assert.equal(show.code, 0);
    assert.match(show.stdout, /reason: +exhausted after 3 retries/);
    assert.match(show.stdout, /"Quantity":900/);
    assert.equal((await run("show", "no-such-ref")).code, 1);
    const refused = await run("purge");
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /add --yes/);
    assert.equal(await ctx.broker.messageCount(ctx.topo.deadLetterQueue), 1);
    // A dry run never deletes, --yes or not.
    const dry = await run("purge", "--dry-run", "--yes");
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /dry run: 1 dead letter\(s\) would be purged .* nothing was deleted/);
    assert.equal(await ctx.broker.messageCount(ctx.topo.deadLetterQueue), 1);
    // A flag of another subcommand, or an unknown reason, stops the command naming it.
    const misplaced = await run("list", "--rate", "5");
    assert.equal(misplaced.code, 2);
    assert.match(misplaced.stderr, /--rate does not apply to "dlq list"/);
    const bogus = await run("list", "--reason", "bogus");
    assert.equal(bogus.code, 2);
    assert.match(bogus.stderr, /--reason must be one of exhausted, invalid/);
    const purge = await run("purge", "--yes");
    assert.match(purge.stdout, /purged 1 dead letter/);
    assert.equal((await run("frobnicate")).code, 2);
  });
});
