/**
 * The operations on the dead-letter queue where they can go wrong, on the real broker and a real
 * disk: an archive whose disk fills, a pass whose channel dies under it, a letter that cannot be
 * replayed, and dead letters of many megabytes. After each, every letter is counted where it
 * should be: in the DLQ, in the archive, or replayed.
 */

import { strict as assert } from "node:assert";
import { serverVersionAtLeast } from "../lib/server_version.ts";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { Broker } from "../lib/broker.ts";
import { inspectDeadLetters, purgeDeadLetters, replayDeadLetters } from "../lib/dead_letter_ops.ts";
import { walkDeadLetters } from "../lib/_dead_letter_walk.ts";
import { ConfirmedPublisher } from "../lib/publisher.ts";
import { deadLetterHeaders, HEADER, int32 } from "../lib/retry_headers.ts";
import {
  type BrokerContext,
  RABBITMQ_URL,
  takeMessages,
  tempDir,
  waitFor,
  within,
  withTopology,
} from "../testing/broker.ts";
import { tinyDisk } from "../testing/disk.ts";
import {
  closeConnectionsNamed,
  connectionsNamed,
  DEFAULT_BROKER,
  EVERY_BROKER,
} from "../testing/other_brokers.ts";

/** A dead letter to seed: its RefCode, body and any extra headers. */
interface Seed {
  readonly ref: string;
  readonly body: Uint8Array;
  readonly headers?: Record<string, unknown>;
}

/** Puts dead letters in the DLQ as the consumer would, in order (one channel keeps it). */
async function seed({ broker, topo }: BrokerContext, letters: readonly Seed[]): Promise<void> {
  const channel = await broker.confirmChannel();
  const publisher = new ConfirmedPublisher(channel, { timeoutMs: 60_000 });
  const failure = {
    error: new Error("failed: exhausted"),
    now: new Date(Date.now() - 60_000),
    exchange: topo.exchange,
    routingKey: topo.routingKey,
  };
  try {
    await Promise.all(
      letters.map(({ ref, body, headers }) =>
        publisher.publish(topo.deadLetterExchange, topo.routingKey, body, {
          messageId: ref,
          persistent: true,
          mandatory: true,
          headers: { ...deadLetterHeaders({}, failure, 3, "exhausted"), ...headers },
        })
      ),
    );
  } finally {
    await channel.close();
  }
}

/** `count` small dead letters `<name>-<i>` of `bytes` bytes each. */
function letters(name: string, count: number, bytes = 64): Seed[] {
  return Array.from({ length: count }, (_, i) => ({
    ref: `${name}-${i}`,
    body: patterned(bytes, i),
  }));
}

/** A body of `bytes` bytes that differs from letter to letter (cheap to make, not all zeros). */
function patterned(bytes: number, seedValue: number): Uint8Array {
  const body = new Uint8Array(bytes);
  let x = (seedValue * 2_654_435_761 + 1) >>> 0;
  for (let i = 0; i < bytes; i += 4) {
    x = (x * 1_103_515_245 + 12_345) >>> 0;
    body[i] = x & 0xff;
    if (i + 1 < bytes) body[i + 1] = (x >>> 8) & 0xff;
    if (i + 2 < bytes) body[i + 2] = (x >>> 16) & 0xff;
    if (i + 3 < bytes) body[i + 3] = x >>> 24;
  }
  return body;
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new Uint8Array(bytes));
  return Buffer.from(digest).toString("hex");
}

/** The RefCodes in the DLQ, in order (a pass that puts everything back). */
async function refsInDlq(ctx: BrokerContext): Promise<string[]> {
  return (await inspectDeadLetters(ctx.broker, ctx.topo)).letters.map((l) => String(l.refCode));
}

/** The RefCodes in the work queue (taking them). */
async function takeReplayed(ctx: BrokerContext): Promise<string[]> {
  const count = await ctx.broker.messageCount(ctx.topo.queue);
  return (await takeMessages(ctx.broker, ctx.topo.queue, count)).map((m) =>
    String(m.properties.messageId)
  );
}

/** What `promise` settles with (its error as a value), or a timeout error after `timeoutMs`. */
function settledWithin<T>(
  promise: Promise<T>,
  timeoutMs: number,
  what: string,
): Promise<T | Error> {
  return within(promise, timeoutMs, what).catch((error: unknown) =>
    error instanceof Error ? error : new Error(String(error))
  );
}

// ---- 3. A purge deletes only what the archive holds -------------------------------------------

Deno.test("purgeDeadLetters() on a disk that fills refuses: nothing is deleted, no torn archive is left", async () => {
  await withTopology("purge-disk-full", {}, async (ctx) => {
    await using disk = await tinyDisk(256);
    // About 40 × 11 KB of archive lines for a disk of 256 KiB.
    const seeded = letters("full", 40, 8_000);
    await seed(ctx, seeded);
    const archive = join(disk.path, "archive", "purge.jsonl");
    const outcome = await settledWithin(
      purgeDeadLetters(ctx.broker, ctx.topo, { archive }),
      20_000,
      "the purge",
    );
    assert.ok(outcome instanceof Error, `the purge went ahead: ${JSON.stringify(outcome)}`);
    assert.equal((outcome as { code?: string }).code, "disk_full", String(outcome));
    // Nothing lost: every letter is still in the DLQ, in order.
    assert.deepEqual(await refsInDlq(ctx), seeded.map((s) => s.ref));
    // The archive holds nothing of a purge that deleted nothing.
    const left = await Deno.readTextFile(archive).catch(() => "");
    assert.equal(left, "", `a torn archive was left: ${left.length} bytes`);
  });
});

Deno.test("purgeDeadLetters() that fits the disk purges exactly what the archive holds, every line whole", async () => {
  await withTopology("purge-disk-fits", {}, async (ctx) => {
    await using disk = await tinyDisk(256);
    const seeded = letters("fits", 40, 8_000);
    await seed(ctx, seeded);
    const archive = join(disk.path, "archive", "purge.jsonl");
    const counts = await purgeDeadLetters(ctx.broker, ctx.topo, { archive, limit: 10 });
    assert.deepEqual(counts, { total: 40, matched: 40, done: 10, failed: 0, left: 30 });
    const lines = (await Deno.readTextFile(archive)).split("\n");
    assert.equal(lines.pop(), "", "the archive ends with a whole line");
    const archived = lines.map((line) => JSON.parse(line));
    assert.deepEqual(archived.map((a) => a.refCode), seeded.slice(0, 10).map((s) => s.ref));
    for (const [i, a] of archived.entries()) {
      assert.deepEqual(new Uint8Array(Buffer.from(a.body, "base64")), seeded[i]!.body);
    }
    assert.deepEqual(await refsInDlq(ctx), seeded.slice(10).map((s) => s.ref));
  });
});

// ---- 7. A pass ends when its channel dies; a letter that cannot be replayed fails alone --------

Deno.test("a pass ends with an error when its connection closes under it, and nothing is lost", async () => {
  await withTopology("pass-closed", {}, async (ctx) => {
    const seeded = letters("closed", 20);
    await seed(ctx, seeded);
    const walker = await Broker.connect(RABBITMQ_URL, { name: "test pass-closed walker" });
    try {
      const outcome = await settledWithin(
        inspectDeadLetters(walker, ctx.topo, {
          onScan: (seen) => {
            if (seen === 1) void walker.close(); // the connection goes while the pass walks
          },
        }),
        10_000,
        "the pass to end",
      );
      assert.ok(outcome instanceof Error, "the pass ended without an error");
      assert.equal((outcome as { code?: string }).code, "channel_closed", String(outcome));
    } finally {
      await walker.close();
    }
    assert.deepEqual(await refsInDlq(ctx), seeded.map((s) => s.ref), "all back, in order");
  });
});

Deno.test("a replay whose connection is closed by the broker ends with an error; every letter is in the DLQ or replayed", async () => {
  await withTopology("replay-forced", {}, async (ctx) => {
    const seeded = letters("forced", 60);
    await seed(ctx, seeded);
    const name = `test replay-forced ${crypto.randomUUID()}`;
    const replayer = await Broker.connect(RABBITMQ_URL, { name });
    await connectionsNamed(DEFAULT_BROKER, name); // listed: the close can come at once
    let closing: Promise<number> | undefined;
    try {
      const outcome = await settledWithin(
        replayDeadLetters(replayer, ctx.topo, {
          ratePerSecond: 20, // three seconds for the sixty: the close comes in the middle
          window: 5,
          onProgress: (n) => {
            // From the broker's side, through the management API of the broker under test.
            if (n === 5) closing ??= closeConnectionsNamed(DEFAULT_BROKER, name);
          },
        }),
        20_000,
        "the replay to end",
      );
      assert.equal(await closing, 1, "the replay's connection was closed");
      assert.ok(outcome instanceof Error, `the replay ended without an error`);
      assert.equal((outcome as { code?: string }).code, "channel_closed", String(outcome));
    } finally {
      await replayer.close();
    }
    const replayed = await takeReplayed(ctx);
    const inDlq = await refsInDlq(ctx);
    assert.ok(replayed.length >= 5, `${replayed.length} replayed`);
    assert.deepEqual(
      new Set([...replayed, ...inDlq]),
      new Set(seeded.map((s) => s.ref)),
      "every letter is in the DLQ or replayed",
    );
  });
});

Deno.test("replayDeadLetters(): a letter whose x-replay-count would overflow fails alone and stays, with its reason", async () => {
  await withTopology("replay-overflow", {}, async (ctx) => {
    const seeded = letters("ok", 40);
    const bad: Seed = {
      ref: "overflow",
      body: patterned(64, 999),
      headers: { [HEADER.replayCount]: int32(2_147_483_647) },
    };
    await seed(ctx, [...seeded.slice(0, 10), bad, ...seeded.slice(10)]);
    const counts = await settledWithin(
      replayDeadLetters(ctx.broker, ctx.topo, { window: 40 }),
      20_000,
      "the replay",
    );
    assert.ok(!(counts instanceof Error), String(counts));
    assert.deepEqual(
      { total: counts.total, matched: counts.matched, done: counts.done, failed: counts.failed },
      { total: 41, matched: 41, done: 40, failed: 1 },
    );
    assert.equal(counts.left, 1);
    assert.deepEqual(counts.failures.map((f) => f.refCode), ["overflow"]);
    assert.match(counts.failures[0]!.reason, /x-replay-count/);
    // The bad letter stays as it was; the others are replayed.
    const { letters: [left] } = await inspectDeadLetters(ctx.broker, ctx.topo);
    assert.equal(left?.refCode, "overflow");
    assert.equal(left?.replays, 2_147_483_647);
    assert.deepEqual(new Set(await takeReplayed(ctx)), new Set(seeded.map((s) => s.ref)));
  });
});

// ---- 8. A pass holds a bounded number of bytes --------------------------------------------------

const MiB = 1024 * 1024;

Deno.test("passes over dead letters of many megabytes hold at most maxHeldBytes of bodies, and lose nothing", async () => {
  await withTopology("pass-bounded", {}, async (ctx) => {
    await using dir = await tempDir();
    // RabbitMQ 4.x takes bodies of at most 16 MiB (max_message_size; 3.x: 128 MiB).
    const sizes = [5, 15, 8, 15, 12, 6].map((mb) => mb * MiB);
    const big: Seed[] = sizes.map((bytes, i) => ({ ref: `big-${i}`, body: patterned(bytes, i) }));
    const hashes = await Promise.all(big.map((s) => sha256(s.body)));
    const maxHeldBytes = 24 * MiB;
    const bound = Math.max(maxHeldBytes, ...sizes);
    let peak = 0;
    const onHeld = (bytes: number) => peak = Math.max(peak, bytes);

    await seed(ctx, big);
    // A look: everything is put back.
    const seen = await inspectDeadLetters(ctx.broker, ctx.topo, {
      maxHeldBytes,
      onHeld,
      previewBytes: 1024,
    });
    assert.ok(peak <= bound, `inspect held ${peak} bytes at once (bound ${bound})`);
    assert.deepEqual(seen.letters.map((l) => l.size), sizes);
    assert.ok(seen.letters.every((l) => l.body.byteLength === 1024));
    assert.deepEqual(await refsInDlq(ctx), big.map((s) => s.ref));

    // A replay: every body arrives in the work queue byte for byte, in order.
    peak = 0;
    const replayed = await replayDeadLetters(ctx.broker, ctx.topo, { maxHeldBytes, onHeld });
    assert.ok(peak <= bound, `replay held ${peak} bytes at once (bound ${bound})`);
    assert.deepEqual([replayed.done, replayed.failed, replayed.left], [6, 0, 0]);
    const copies = await takeMessages(ctx.broker, ctx.topo.queue, 6, 60_000);
    assert.deepEqual(copies.map((m) => m.properties.messageId), big.map((s) => s.ref));
    assert.deepEqual(await Promise.all(copies.map((m) => sha256(m.content))), hashes);

    // A purge: every body in the archive byte for byte, none left.
    await seed(ctx, big);
    peak = 0;
    const archive = join(dir.path, "big.jsonl");
    const purged = await purgeDeadLetters(ctx.broker, ctx.topo, { archive, maxHeldBytes, onHeld });
    assert.ok(peak <= bound, `purge held ${peak} bytes at once (bound ${bound})`);
    assert.deepEqual([purged.done, purged.left], [6, 0]);
    const archived = (await Deno.readTextFile(archive)).trim().split("\n").map((l) =>
      JSON.parse(l)
    );
    assert.deepEqual(archived.map((a) => a.refCode), big.map((s) => s.ref));
    assert.deepEqual(
      await Promise.all(archived.map((a) => sha256(Buffer.from(a.body, "base64")))),
      hashes,
    );
    assert.equal(await ctx.broker.messageCount(ctx.topo.deadLetterQueue), 0);
  });
});

for (const queueType of ["classic", "quorum"] as const) {
  Deno.test(`a pass whose bodies grow puts back what would pass the bound, takes it again, and keeps the order (${queueType})`, async () => {
    await withTopology("pass-growing", { queueType }, async (ctx) => {
      // Small bodies first size the batches; the large ones after them overflow a batch so sized,
      // and a slow replay holds each body until its turn.
      const sizes = [1, 1, 1, 1, 10, 10, 10].map((mb) => mb * MiB);
      const growing: Seed[] = sizes.map((bytes, i) => ({
        ref: `grow-${i}`,
        body: patterned(bytes, i),
      }));
      await seed(ctx, growing);
      const maxHeldBytes = 12 * MiB;
      let peak = 0;
      const counts = await replayDeadLetters(ctx.broker, ctx.topo, {
        maxHeldBytes,
        ratePerSecond: 8,
        onHeld: (bytes) => peak = Math.max(peak, bytes),
      });
      assert.ok(peak <= maxHeldBytes, `held ${peak} bytes at once (bound ${maxHeldBytes})`);
      assert.deepEqual([counts.total, counts.done, counts.failed, counts.left], [7, 7, 0, 0]);
      const copies = await takeMessages(ctx.broker, ctx.topo.queue, 7, 60_000);
      assert.deepEqual(copies.map((m) => m.properties.messageId), growing.map((s) => s.ref));
      assert.deepEqual(
        await Promise.all(copies.map((m) => sha256(m.content))),
        await Promise.all(growing.map((s) => sha256(s.body))),
      );
    });
  });
}

Deno.test("passes over a quorum DLQ put every letter back, batch after batch (in its place from RabbitMQ 4.3)", async () => {
  await withTopology("pass-quorum-order", { queueType: "quorum" }, async (ctx) => {
    const seeded = letters("order", 1200);
    await seed(ctx, seeded);
    const refs = seeded.map((s) => s.ref);
    // A filtered replay takes every third one and leaves the rest, in several batches.
    const third = new Set(refs.filter((_, i) => i % 3 === 0).map((r) => r.toLowerCase()));
    const replayed = await replayDeadLetters(ctx.broker, ctx.topo, { filter: { refs: third } });
    assert.deepEqual([replayed.done, replayed.failed], [400, 0]);
    // Before 4.3 a quorum queue gives back the letters of many consumers in no set order (see
    // lib/_dead_letter_walk.ts): every letter is kept, but only 4.3 keeps them in their places.
    const inPlace = serverVersionAtLeast(ctx.broker.serverVersion, "4.3");
    const left = refs.filter((_, i) => i % 3 !== 0);
    for (let look = 0; look < 3; look++) {
      await waitFor(
        "the letters back",
        async () => await ctx.broker.messageCount(ctx.topo.deadLetterQueue) === 800 || undefined,
      );
      const found = await refsInDlq(ctx);
      if (inPlace) assert.deepEqual(found, left, `look ${look}`);
      else assert.deepEqual([...found].sort(), [...left].sort(), `look ${look}`);
    }
    assert.deepEqual(await takeReplayed(ctx), refs.filter((_, i) => i % 3 === 0));
  });
});

// ---- 9. A pass ends once the broker applied what it did, and a look changes nothing -----------

/** The brokers whose quorum queues the passes are tried on: 3.10 (the default), 4.0 and 4.3. */
const QUORUM_BROKERS = EVERY_BROKER.map(([, target]) => target);

/** What a passive declare of the DLQ reads now: its ready letters and its consumers. */
async function dlqNow(
  { broker, topo }: BrokerContext,
): Promise<{ ready: number; consumers: number }> {
  const channel = await broker.channel();
  try {
    const { messageCount, consumerCount } = await channel.checkQueue(topo.deadLetterQueue);
    return { ready: messageCount, consumers: consumerCount };
  } finally {
    await channel.close().catch(() => {});
  }
}

/** The DLQ once no consumer holds any of its letters: every return applied. */
function dlqSettled(ctx: BrokerContext): Promise<{ ready: number; consumers: number }> {
  return waitFor("no consumer on the DLQ", async () => {
    const now = await dlqNow(ctx);
    return now.consumers === 0 ? now : undefined;
  }, 30_000);
}

/** Empties the work queue and the DLQ between rounds. */
async function emptyQueues({ broker, topo }: BrokerContext): Promise<void> {
  const channel = await broker.channel();
  try {
    await channel.purgeQueue(topo.queue);
    await channel.purgeQueue(topo.deadLetterQueue);
  } finally {
    await channel.close().catch(() => {});
  }
}

for (const target of QUORUM_BROKERS) {
  Deno.test(`passes that remove a third of a quorum DLQ of 1,200 leave exactly the rest, the moment they return, pass after pass (${target.name})`, async () => {
    await withTopology("pass-acks-applied", { queueType: "quorum" }, async (ctx) => {
      const seeded = letters("acked", 1200);
      const third = new Set(
        seeded.filter((_, i) => i % 3 === 0).map((s) => s.ref.toLowerCase()),
      );
      const seen: string[] = [];
      const expected: string[] = [];
      // Another quorum queue on the node takes a flood of writes during each pass: its leader
      // then applies the pass's acks late, as on a busy broker.
      const busy = await ctx.broker.channel();
      const flood = `${ctx.topo.prefix}flood`;
      await busy.assertQueue(flood, { durable: true, arguments: { "x-queue-type": "quorum" } });
      try {
        for (let pass = 0; pass < 10; pass++) {
          await emptyQueues(ctx);
          await busy.purgeQueue(flood);
          await seed(ctx, seeded);
          const body = Buffer.alloc(4096);
          for (let i = 0; i < 3000; i++) busy.sendToQueue(flood, body, { persistent: true });
          // A purge acks its 400 at the end, all at once; a replay acks them as copies confirm.
          const action = pass % 2 === 0 ? "purge" : "replay";
          const counts = action === "purge"
            ? await purgeDeadLetters(ctx.broker, ctx.topo, {
              archive: undefined,
              filter: { refs: third },
            })
            : await replayDeadLetters(ctx.broker, ctx.topo, { filter: { refs: third } });
          const atOnce = await dlqNow(ctx);
          const settled = await dlqSettled(ctx);
          const work = action === "replay" ? await ctx.broker.messageCount(ctx.topo.queue) : 400;
          seen.push(
            `${action}: done ${counts.done}, left ${counts.left}; at once ${atOnce.ready} ready, ` +
              `${atOnce.consumers} consumers; settled ${settled.ready}; work queue ${work}`,
          );
          expected.push(
            `${action}: done 400, left 800; at once 800 ready, 0 consumers; settled 800; work queue 400`,
          );
        }
      } finally {
        await busy.deleteQueue(flood).catch(() => {});
        await busy.close().catch(() => {});
      }
      assert.deepEqual(seen, expected);
    }, target.url);
  });

  Deno.test(`a purge or a replay right after a look acts on every letter the look counted (quorum, ${target.name})`, async () => {
    await withTopology("pass-after-look", { queueType: "quorum" }, async (ctx) => {
      const seen: string[] = [];
      for (let round = 0; round < 10; round++) {
        const seeded = letters(`look-${round}`, 10);
        // As `dlq purge` does: a preview, then a purge of what it counted.
        await seed(ctx, seeded);
        const preview = await inspectDeadLetters(ctx.broker, ctx.topo, {
          limit: 3,
          previewBytes: 0,
        });
        const purged = await purgeDeadLetters(ctx.broker, ctx.topo, {
          archive: undefined,
          limit: preview.matched,
          within: preview.total,
        });
        // As `dlq replay` does: a count, then the replay.
        await seed(ctx, seeded);
        const counted = await inspectDeadLetters(ctx.broker, ctx.topo, { limit: 0 });
        const replayed = await replayDeadLetters(ctx.broker, ctx.topo, {});
        seen.push(
          `look ${preview.total} -> purged ${purged.done}, left ${purged.left}; ` +
            `count ${counted.matched} -> replayed ${replayed.done}, left ${replayed.left}`,
        );
        await dlqSettled(ctx);
        await emptyQueues(ctx);
      }
      assert.deepEqual(
        seen,
        Array(10).fill("look 10 -> purged 10, left 0; count 10 -> replayed 10, left 0"),
      );
    }, target.url);
  });

  for (const shape of ["growing", "even"] as const) {
    Deno.test(`looks and dry runs over a quorum DLQ far larger than maxHeldBytes (${shape} bodies) leave every letter in its place, look after look (${target.name})`, async () => {
      await withTopology("look-order", { queueType: "quorum" }, async (ctx) => {
        // 120 letters looked at holding at most 100 KB: a pass that acts would take them one or
        // two a batch, some 60 or more batches; "growing" bodies (1 to 61 KB, at random) would
        // also outgrow a batch sized on the ones before them, and be put back.
        let x = 7;
        const random = () => (x = (x * 1_103_515_245 + 12_345) % 2_147_483_648) / 2_147_483_648;
        const seeded = Array.from({ length: 120 }, (_, i) => ({
          ref: `look-${String(i).padStart(3, "0")}`,
          body: patterned(shape === "growing" ? 1_000 + Math.floor(random() * 60_000) : 40_000, i),
        }));
        await seed(ctx, seeded);
        const refs = seeded.map((s) => s.ref);
        for (let look = 0; look < 4; look++) {
          const scan = { maxHeldBytes: 100_000 };
          const seen = look % 2 === 0
            ? (await inspectDeadLetters(ctx.broker, ctx.topo, { ...scan, previewBytes: 0 }))
              .letters.map((l) => String(l.refCode))
            : await replayDeadLetters(ctx.broker, ctx.topo, { ...scan, dryRun: true })
              .then((counts) => counts.done === 120 ? refs : [`done ${counts.done}`]);
          assert.deepEqual(seen, refs, `look ${look} saw them in order`);
          await dlqSettled(ctx);
          assert.deepEqual(await refsInDlq(ctx), refs, `after look ${look}: every letter in place`);
        }
      }, target.url);
    });
  }
}

for (const queueType of ["classic", "quorum"] as const) {
  Deno.test(`a pass whose letters another operation removes meanwhile ends with what it walked, instead of waiting for them (${queueType})`, async () => {
    await withTopology(`pass-starved-${queueType}`, { queueType }, async (ctx) => {
      await seed(ctx, letters("starved", 6));
      const other = await ctx.broker.channel();
      try {
        const visited: string[] = [];
        const walked = walkDeadLetters(ctx.broker, ctx.topo, { maxHeldBytes: 100 }, {
          async visit(message, pass) {
            visited.push(String(message.properties.messageId));
            if (visited.length === 1) {
              // Another purge takes every other letter while this pass holds its first.
              for (let got; (got = await other.get(ctx.topo.deadLetterQueue));) other.ack(got);
            }
            pass.ack(message);
          },
        });
        const total = await within(walked, 15_000, "the pass whose letters were taken");
        assert.deepEqual(visited, ["starved-0"]);
        assert.equal(total, 1, "the letters it walked");
        assert.equal(await ctx.broker.messageCount(ctx.topo.deadLetterQueue), 0);
      } finally {
        await other.close().catch(() => {});
      }
    });
  });
}
