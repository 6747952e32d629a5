// PostgresLedger's behaviour is in ledger_test.ts (shared with SQLite), postgres_batch_test.ts,
// ledger_probe_test.ts and ledger_outage_test.ts; here only how it says it cannot connect.
import { strict as assert } from "node:assert";
import { formatFailure } from "../lib/main.ts";
import { PostgresLedger } from "../lib/postgres_ledger.ts";
import { dropSchema, freePort } from "../testing/postgres.ts";
import { newOrder } from "../lib/order.ts";
import { POSTGRES_URL } from "../testing/broker.ts";

/** How many times `part` occurs in `text`. */
function occurrences(text: string, part: string): number {
  return text.split(part).length - 1;
}

Deno.test("PostgresLedger.open() says why it cannot connect once, in its message and as the service prints it", async () => {
  const port = freePort();
  const error = await PostgresLedger.open(`postgres://postgres@127.0.0.1:${port}/test`).then(
    async (ledger) => (await ledger.close(), undefined),
    (e: unknown) => e,
  );
  assert.ok(error instanceof Error, String(error));
  const refused = `connect ECONNREFUSED 127.0.0.1:${port}`;
  assert.equal(occurrences(error.message, refused), 1, error.message);
  const printed = formatFailure(error);
  assert.equal(occurrences(printed, refused), 1, printed);
});

Deno.test("PostgresLedger.open() migrating beside commits under way takes their locks in their order: no deadlock", async () => {
  const schema = `test_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  const url = `${POSTGRES_URL}?search_path=${schema}`;
  const running = await PostgresLedger.open(url, { instanceId: "running" });
  try {
    let committing = true;
    const commits = (async () => {
      for (let i = 0; committing; i++) {
        // A batch as the consumer commits one: an order, then a hop passed on.
        await running.commit([
          { kind: "order", order: newOrder({ quantity: 1 }), attempt: 0 },
          {
            kind: "forward",
            messageKey: `m-${i}`,
            hop: "0:0",
            outcome: "retried",
            error: "e",
            delayMs: 5,
          },
        ]);
      }
    })();
    try {
      for (let i = 0; i < 30; i++) {
        const starting = await PostgresLedger.open(url, { instanceId: `starting-${i}` });
        await starting.close();
      }
    } finally {
      committing = false;
      await commits;
    }
  } finally {
    await running.close();
    await dropSchema(POSTGRES_URL, schema);
  }
});
