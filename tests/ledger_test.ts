import { strict as assert } from "node:assert";
import { join } from "node:path";
import { SqliteLedger } from "../lib/ledger.ts";
import { newOrder } from "../lib/order.ts";
import { tempDir } from "./_broker.ts";

const now = () => new Date("2026-11-24T12:00:00.000Z");

Deno.test("SqliteLedger creates one production order per RefCode", async () => {
  await using ledger = await SqliteLedger.open(":memory:", { instanceId: "test:1", now });
  const order = newOrder({ quantity: 10 });
  const results = await ledger.commit([
    { kind: "order", order, attempt: 0 },
    { kind: "order", order, attempt: 1 },
  ]);
  assert.deepEqual(results, ["created", "duplicate"]);
  assert.deepEqual(await ledger.commit([{ kind: "order", order, attempt: 2 }]), ["duplicate"]);
  assert.equal(await ledger.countOrders(), 1);
  assert.deepEqual(await ledger.findOrder(order.refCode), {
    refCode: order.refCode,
    colorCode: order.colorCode,
    quantity: 10,
    createdAt: "2026-11-24T12:00:00.000Z",
    attempt: 0,
    instanceId: "test:1",
  });
});

Deno.test("SqliteLedger remembers which hops of a message were passed on", async () => {
  await using ledger = await SqliteLedger.open(":memory:");
  await ledger.commit([{ kind: "forward", messageKey: "m1", hop: "0:1", outcome: "retried" }]);
  assert.equal(await ledger.wasForwarded("m1", "0:1"), true);
  assert.equal(await ledger.wasForwarded("m1", "0:2"), false);
  assert.equal(await ledger.wasForwarded("m2", "0:1"), false);
});

Deno.test("SqliteLedger keeps committed orders across a reopen, and creates its directory", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "nested", "ledger.sqlite");
  const order = newOrder();
  {
    await using ledger = await SqliteLedger.open(path);
    await ledger.commit([{ kind: "order", order, attempt: 0 }]);
  }
  await using reopened = await SqliteLedger.open(path);
  assert.equal((await reopened.findOrder(order.refCode))?.quantity, order.quantity);
});

Deno.test("SqliteLedger.open() fails at once, naming the path, when the file cannot be made", async () => {
  await using dir = await tempDir();
  const blocker = join(dir.path, "not-a-directory");
  await Deno.writeTextFile(blocker, "");
  await assert.rejects(
    () => SqliteLedger.open(join(blocker, "ledger.sqlite")),
    /^Error: cannot open the ledger at .*not-a-directory\/ledger\.sqlite: /,
  );
});
