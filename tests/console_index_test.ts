/**
 * When the console walks the dead-letter queue again, on the real broker: not while its snapshot
 * is young, not when the queue's depth is unchanged, yes when the depth changed, when the console
 * itself changed the queue, or once the snapshot is older than `fullWalkMs` whatever the depth;
 * and never for more than a fifth of the time.
 */

import { strict as assert } from "node:assert";
import { Buffer } from "node:buffer";
import { DeadLetterIndex, TakeTurns } from "../lib/console/dead_letter_index.ts";
import { type BrokerContext, takeMessages, waitFor, withTopology } from "../testing/broker.ts";

async function deadLetter(ctx: BrokerContext, ref: string): Promise<void> {
  const channel = await ctx.broker.confirmChannel();
  channel.sendToQueue(ctx.topo.deadLetterQueue, Buffer.from("{}"), {
    messageId: ref,
    headers: { "x-dead-letter-reason": "invalid", "x-last-error": "boom" },
  });
  await channel.waitForConfirms();
  await channel.close();
}

Deno.test("the console's index walks the DLQ again only when it changed, and at most a fifth of the time", async () => {
  await withTopology("console-index", {}, async (ctx) => {
    await deadLetter(ctx, "A");
    const index = new DeadLetterIndex({
      broker: () => Promise.resolve(ctx.broker),
      topology: ctx.topo,
      maxAgeMs: 50,
      turns: new TakeTurns(),
    });
    const first = await index.snapshot();
    assert.deepEqual(first.letters.map((l) => l.refCode), ["A"]);
    // Young: the same snapshot, no walk.
    assert.equal(await index.snapshot(), first);
    assert.equal(index.progress, undefined);
    // Old, but the depth is unchanged: still the same snapshot, and no walk started.
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.equal(await index.snapshot(), first);
    assert.equal(index.progress, undefined);
    // The depth changed: the old snapshot answers while a walk runs, then the new one.
    await deadLetter(ctx, "B");
    const second = await waitFor("a walk that sees B", async () => {
      const snapshot = await index.snapshot();
      return snapshot.letters.length === 2 ? snapshot : undefined;
    });
    assert.notEqual(second, first);
    // The console changed the queue itself: walked at once, whatever the depth says.
    index.invalidate();
    assert.equal(await index.snapshot(), second); // answers from the last one meanwhile
    const third = await waitFor("the walk after the change", async () => {
      const snapshot = await index.snapshot();
      return snapshot !== second ? snapshot : undefined;
    });
    assert.deepEqual(third.letters.map((l) => l.refCode).sort(), ["A", "B"]);
    // Unchanged depth, but older than fullWalkMs: walked again all the same.
    const patient = new DeadLetterIndex({
      broker: () => Promise.resolve(ctx.broker),
      topology: ctx.topo,
      maxAgeMs: 10,
      fullWalkMs: 150,
      turns: new TakeTurns(),
    });
    const kept = await patient.snapshot();
    await waitFor("a walk after fullWalkMs", async () => {
      const snapshot = await patient.snapshot();
      return snapshot !== kept ? snapshot : undefined;
    });
    assert.ok(Date.now() - kept.at.getTime() >= 150);
    // A changed depth within four times the last walk's length waits: at most a fifth walking.
    const slow = new DeadLetterIndex({
      broker: async () => {
        await new Promise((resolve) => setTimeout(resolve, 200)); // a walk of about 200 ms
        return ctx.broker;
      },
      topology: ctx.topo,
      maxAgeMs: 1,
      turns: new TakeTurns(),
    });
    const walked = await slow.snapshot();
    await deadLetter(ctx, "C");
    await new Promise((resolve) => setTimeout(resolve, 100)); // past maxAgeMs, within 4 walks
    assert.equal(await slow.snapshot(), walked);
    assert.equal(slow.progress, undefined);
    const later = await waitFor("the walk once four walks' time passed", async () => {
      const snapshot = await slow.snapshot();
      return snapshot.letters.length === 3 ? snapshot : undefined;
    }, 10_000);
    assert.ok(later.at.getTime() - walked.at.getTime() >= 800);
  });
});

Deno.test("the console's index keeps a preview and the size of a large dead letter, not its body", async () => {
  await withTopology("console-index-large", {}, async (ctx) => {
    // RabbitMQ 4.x takes bodies of at most 16 MiB (max_message_size; 3.x: 128 MiB).
    const sizes = [5, 15, 12].map((mb) => mb * 1024 * 1024);
    const bodies = sizes.map((bytes, i) => new Uint8Array(bytes).fill(0x41 + i));
    const channel = await ctx.broker.confirmChannel();
    for (const [i, body] of bodies.entries()) {
      channel.sendToQueue(ctx.topo.deadLetterQueue, Buffer.from(body), {
        messageId: `large-${i}`,
        headers: { "x-dead-letter-reason": "invalid", "x-last-error": "too large" },
      });
    }
    await channel.waitForConfirms();
    await channel.close();
    const index = new DeadLetterIndex({
      broker: () => Promise.resolve(ctx.broker),
      topology: ctx.topo,
      maxAgeMs: 60_000,
      turns: new TakeTurns(),
    });
    const { letters } = await index.snapshot();
    assert.deepEqual(letters.map((l) => l.refCode), ["large-0", "large-1", "large-2"]);
    const kept = letters.reduce((sum, l) => sum + l.body.byteLength, 0);
    assert.ok(kept <= 3 * 64 * 1024, `the index keeps ${kept} bytes of bodies`);
    assert.deepEqual(letters.map((l) => l.size), sizes);
    assert.deepEqual(letters.map((l) => l.body[0]), [0x41, 0x42, 0x43], "a preview of each");
    // Nothing lost: all three are still in the DLQ, byte for byte.
    const taken = await takeMessages(ctx.broker, ctx.topo.deadLetterQueue, 3, 30_000);
    assert.deepEqual(taken.map((m) => m.properties.messageId), ["large-0", "large-1", "large-2"]);
    for (const [i, message] of taken.entries()) {
      assert.ok(Buffer.from(bodies[i]!).equals(message.content), `large-${i} byte for byte`);
    }
  });
});
