// PostgresLedger's behaviour is in ledger_test.ts (shared with SQLite), postgres_batch_test.ts,
// ledger_probe_test.ts and ledger_outage_test.ts; here only how it says it cannot connect.
import { strict as assert } from "node:assert";
import { formatFailure } from "../lib/main.ts";
import { PostgresLedger } from "../lib/postgres_ledger.ts";
import { freePort } from "../testing/postgres.ts";

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
