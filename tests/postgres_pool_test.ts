/**
 * postgresPool() (lib/_postgres.ts) against the real PostgreSQL: a connection the server ends while
 * it is checked out and between queries (a shutdown, `pg_terminate_backend`) must not end the
 * process. node-postgres emits "error" on such a client, and an "error" nobody listens to is thrown
 * from the socket's callback (brianc/node-postgres#2762, open): OrdemDeProducao died so once in about
 * ten runs of tests/ledger_outage_test.ts under load.
 */

import { strict as assert } from "node:assert";
import pg from "pg";
import { postgresPool, postgresTarget } from "../lib/_postgres.ts";
import { POSTGRES_URL, waitFor } from "../testing/broker.ts";

Deno.test("postgresPool(): a checked-out connection the server terminates between queries does not throw, and the pool goes on with a new one", async () => {
  const pool = postgresPool(postgresTarget(POSTGRES_URL, undefined), {
    applicationName: "postgres-pool-test",
    max: 2,
    statementTimeoutMs: 5_000,
  });
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  try {
    const client = await pool.connect();
    const { rows: [{ pid }] } = await client.query("SELECT pg_backend_pid() AS pid");
    // Checked out, no query under way, and no listener of the caller's: the server ends it.
    const ended = new Promise<void>((resolve) => client.once("end", () => resolve()));
    await admin.query("SELECT pg_terminate_backend($1)", [pid]);
    await ended;
    await assert.rejects(client.query("SELECT 1"));
    client.release(true);
    const { rows: [{ one }] } = await pool.query("SELECT 1 AS one");
    assert.equal(one, 1);
    await waitFor(
      "the terminated connection gone from the pool",
      () => pool.totalCount <= 1 ? true : undefined,
    );
  } finally {
    await admin.end();
    await pool.end();
  }
});
