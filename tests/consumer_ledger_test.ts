/**
 * The consumer on a SQLite ledger whose disk refuses writes: full, or turned read-only. Valid
 * orders are an outage's victims, not failures: they go back to the queue unchanged (no retry
 * spent, never dead-lettered) while consumption pauses, and each is created once when the ledger
 * takes writes again. Real file systems (testing/ledger_disk.ts; needs root).
 */

import { strict as assert } from "node:assert";
import { join } from "node:path";
import { publishOrder } from "../lib/estoque.ts";
import { newOrder, type Order } from "../lib/order.ts";
import type { LedgerEvent, Outcome } from "../lib/outcome.ts";
import { retryDelays } from "../lib/retry_policy.ts";
import { SqliteLedger } from "../lib/sqlite_ledger.ts";
import type { Ledger } from "../lib/ledger.ts";
import {
  type BrokerContext,
  fastPolicy,
  type OutcomeLog,
  POSTGRES_URL,
  startConsumer,
  waitFor,
  withTopology,
} from "../testing/broker.ts";
import { fillDisk, mountExt4, tinyDisk } from "../testing/disk.ts";
import { impatientLedger, uniqueSchema } from "../testing/locked_ledger.ts";
import { dropSchema, postgresClient } from "../testing/postgres.ts";

const policy = fastPolicy(3, 100);
const tiers = { retryDelays: retryDelays(policy) };
/** Probes 50 ms apart, so that the test sees consumption resume at once. */
const probeDelay = () => 50;

const creates = (orders: readonly Order[]) => {
  const refs = new Set(orders.map((o) => o.refCode));
  return (o: Outcome) => o.kind === "created" && refs.has(o.refCode);
};

/**
 * What an outage may do to valid orders: put them back (`requeued`), then create each once, on
 * its first attempt. Nothing retried, dead-lettered or dropped.
 */
async function assertWaitedAndCreated(
  ctx: BrokerContext,
  outcomes: OutcomeLog,
  orders: readonly Order[],
  ledger: Ledger,
): Promise<void> {
  const others = outcomes.outcomes.filter((o) => o.kind !== "created" && o.kind !== "requeued");
  assert.deepEqual(others, [], "only put back, then created");
  const created = outcomes.outcomes.filter(creates(orders));
  assert.equal(created.length, orders.length, "each order created once");
  assert.deepEqual(
    created.filter((o) => o.kind === "created" && o.attempt !== 0),
    [],
    "a retry spent",
  );
  for (const order of orders) assert.equal((await ledger.findOrder(order.refCode))?.attempt, 0);
  assert.equal(await ctx.broker.messageCount(ctx.topo.deadLetterQueue), 0, "dead letters");
  for (const tier of ctx.topo.retryTiers) {
    assert.equal(await ctx.broker.messageCount(tier.queue), 0, `retries in ${tier.queue}`);
  }
  assert.equal(await ctx.broker.messageCount(ctx.topo.queue), 0, "left in the work queue");
}

Deno.test("a SQLite ledger whose disk fills up pauses the consumer: valid orders wait, unretried, and are created once there is room", async () => {
  await using disk = await tinyDisk(2_048);
  await withTopology("ledger-full", tiers, async (ctx) => {
    const ledger = await SqliteLedger.open(join(disk.path, "ledger.sqlite"), {
      instanceId: "full",
    });
    const events: LedgerEvent["kind"][] = [];
    const { consumer, outcomes, publisher } = await startConsumer(ctx, policy, {
      ledger,
      probeDelay,
      onLedger: (event) => events.push(event.kind),
    });
    try {
      const before = newOrder({ quantity: 5 });
      await publishOrder(publisher, ctx.topo, before);
      await outcomes.until("the order before", creates([before]));
      await fillDisk(join(disk.path, "filler"));
      const orders = Array.from({ length: 300 }, () => newOrder({ quantity: 5 }));
      await Promise.all(orders.map((o) => publishOrder(publisher, ctx.topo, o)));
      await outcomes.until("an order put back", (o) => o.kind === "requeued");
      await waitFor("the consumer paused", () => consumer.paused || undefined);
      // Paused for as long as the disk is full: probes fail, nothing more is taken.
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.equal(consumer.paused, true);
      assert.ok(!events.includes("back"), `resumed on a full disk: ${events}`);
      const waiting = await ctx.broker.messageCount(ctx.topo.queue);
      assert.ok(waiting > 0, "nothing waits in the queue");
      await Deno.remove(join(disk.path, "filler"));
      await outcomes.until("every order created", creates(orders), orders.length, 30_000);
      await consumer.drained();
      await assertWaitedAndCreated(ctx, outcomes, [before, ...orders], ledger);
      assert.equal(await ledger.countOrders(), orders.length + 1);
    } finally {
      await consumer.stop();
      await ledger.close();
    }
  });
});

Deno.test("a SQLite ledger whose disk turns read-only pauses the consumer: valid orders wait, unretried, and are created once the disk is repaired", async () => {
  await using disk = await mountExt4(16);
  await withTopology("ledger-read-only", tiers, async (ctx) => {
    const path = join(disk.path, "ledger.sqlite");
    const events: LedgerEvent["kind"][] = [];
    const first = await startConsumer(ctx, policy, {
      ledger: await SqliteLedger.open(path, { instanceId: "read-only" }),
      probeDelay,
      onLedger: (event) => events.push(event.kind),
    });
    const before = newOrder({ quantity: 5 });
    const orders = Array.from({ length: 50 }, () => newOrder({ quantity: 5 }));
    try {
      await publishOrder(first.publisher, ctx.topo, before);
      await first.outcomes.until("the order before", creates([before]));
      await disk.failReadOnly();
      assert.equal(await disk.readOnly(), true);
      await Promise.all(orders.map((o) => publishOrder(first.publisher, ctx.topo, o)));
      await first.outcomes.until("an order put back", (o) => o.kind === "requeued");
      await waitFor("the consumer paused", () => first.consumer.paused || undefined);
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.equal(first.consumer.paused, true);
      assert.ok(!events.includes("back"), `resumed on a read-only disk: ${events}`);
      assert.equal(await ctx.broker.messageCount(ctx.topo.queue), orders.length, "all wait");
      const kinds = new Set(first.outcomes.outcomes.map((o) => o.kind));
      assert.deepEqual([...kinds].sort(), ["created", "requeued"]);
    } finally {
      await first.consumer.stop();
      await first.ledger.close();
    }
    // The kernel keeps it read-only until it is unmounted: the operator repairs it and the
    // service starts again, on the same ledger file.
    await disk.repair();
    const ledger = await SqliteLedger.open(path, { instanceId: "read-only" });
    const second = await startConsumer(ctx, policy, { ledger, probeDelay });
    try {
      await second.outcomes.until("every order created", creates(orders), orders.length, 30_000);
      await second.consumer.drained();
      await assertWaitedAndCreated(ctx, second.outcomes, orders, ledger);
      assert.equal(await ledger.countOrders(), orders.length + 1);
    } finally {
      await second.consumer.stop();
      await ledger.close();
    }
  });
});

Deno.test("a PostgreSQL table locked past the statement timeout keeps the consumer paused: valid orders on a quorum queue spend no delivery and are created once the lock goes", async () => {
  const schema = uniqueSchema();
  const ledger = await impatientLedger(schema, "table-locked");
  await using admin = await postgresClient(POSTGRES_URL);
  try {
    // A delivery limit of 3: a consumer that takes the orders back again and again dead-letters
    // them within a few tries, where the broker's 20 would take a minute to show it.
    const options = { ...tiers, queueType: "quorum", deliveryLimit: 3 } as const;
    await withTopology("ledger-locked", options, async (ctx) => {
      let probes = 0;
      const { consumer, outcomes, publisher } = await startConsumer(ctx, policy, {
        ledger,
        probeDelay: () => (probes++, 50),
      });
      try {
        const before = newOrder({ quantity: 5 });
        await publishOrder(publisher, ctx.topo, before);
        await outcomes.until("the order before", creates([before]));
        await admin.query("BEGIN");
        // What a migration or an operator's LOCK TABLE holds: reads go on, every insert waits.
        await admin.query(`LOCK TABLE ${schema}.production_orders IN EXCLUSIVE MODE`);
        const orders = Array.from({ length: 5 }, () => newOrder({ quantity: 5 }));
        await Promise.all(orders.map((o) => publishOrder(publisher, ctx.topo, o)));
        // Ten probes (each waits out the 300 ms timeout) is more than the delivery limit's worth
        // of tries; a dead letter ends the wait at once.
        await waitFor(
          "ten probes, or a dead letter",
          async () =>
            probes >= 10 || await ctx.broker.messageCount(ctx.topo.deadLetterQueue) > 0 ||
            undefined,
          30_000,
        );
        assert.equal(await ctx.broker.messageCount(ctx.topo.deadLetterQueue), 0, "dead letters");
        assert.equal(consumer.paused, true, "the consumer took deliveries on a locked table");
        await admin.query("ROLLBACK");
        await outcomes.until("every order created", creates(orders), orders.length, 30_000);
        await consumer.drained();
        await assertWaitedAndCreated(ctx, outcomes, [before, ...orders], ledger);
      } finally {
        await consumer.stop();
      }
    });
  } finally {
    await admin.query("ROLLBACK").catch(() => {});
    await ledger.close();
    await dropSchema(POSTGRES_URL, schema);
  }
});
