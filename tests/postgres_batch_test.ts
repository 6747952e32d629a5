/**
 * One message that the PostgreSQL ledger cannot store must not fail the orders committed beside
 * it: a NUL in its key or in its parse error (PostgreSQL's text refuses NUL, 22021).
 */
import { strict as assert } from "node:assert";
import { Buffer } from "node:buffer";
import { publishOrder } from "../lib/estoque.ts";
import { newOrder } from "../lib/order.ts";
import { PostgresLedger } from "../lib/postgres_ledger.ts";
import { fastPolicy, POSTGRES_URL, startConsumer, withTopology } from "../testing/broker.ts";
import { dropSchema } from "../testing/postgres.ts";

const policy = fastPolicy(3, 100);

Deno.test("a message whose key or error holds a NUL fails no order committed beside it on PostgreSQL", async () => {
  await withTopology("pg-nul", { retryDelays: [100, 200, 300] }, async (ctx) => {
    const schema = `test_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
    const ledger = await PostgresLedger.open(POSTGRES_URL, { schema, instanceId: "nul" });
    const { consumer, outcomes, publisher } = await startConsumer(ctx, policy, { ledger });
    try {
      const orders = Array.from({ length: 30 }, () => newOrder({ quantity: 5 }));
      const raw = (body: string, messageId: string) =>
        publisher.publish(ctx.topo.exchange, ctx.topo.routingKey, Buffer.from(body), {
          persistent: true,
          mandatory: true,
          messageId,
        });
      // Published together, so they share the ledger's commits.
      await Promise.all([
        ...orders.slice(0, 15).map((o) => publishOrder(publisher, ctx.topo, o)),
        raw("\u0000", "nul-in-error"), // "Unexpected token '\0'": the NUL is in the error
        raw("not json", "nul\u0000in-key"),
        ...orders.slice(15).map((o) => publishOrder(publisher, ctx.topo, o)),
      ]);
      const settled = await outcomes.until("every message", (o) => o.kind !== "requeued", 32);
      const created = settled.filter((o) => o.kind === "created");
      assert.equal(created.length, 30, JSON.stringify(settled.filter((o) => o.kind !== "created")));
      assert.ok(
        created.every((o) => o.kind === "created" && o.attempt === 0),
        "no order spent a retry",
      );
      assert.deepEqual(
        settled.filter((o) => o.kind !== "created").map((o) => o.kind),
        ["dead-lettered", "dead-lettered"],
      );
      assert.equal(await ledger.countOrders(), 30);
      const journey = await ledger.journey("nul-in-error");
      assert.equal(journey.forwards.length, 1, "the pass-on is recorded, its NUL replaced");
      assert.match(journey.forwards[0]!.error ?? "", /Unexpected token/);
    } finally {
      await consumer.stop();
      await ledger.close();
      await dropSchema(POSTGRES_URL, schema);
    }
  });
});
