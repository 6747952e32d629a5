/**
 * What o2 (faults/outbox.ts) looks at to kill the relay between publish and mark-sent, in the
 * stock store and the ledger, both in the machine's PostgreSQL: the requests OrdemDeProducao has
 * while their outbox rows are unsent, and which of them a killed relay left unsent.
 *
 * @module
 */

import { waitFor } from "../testing/broker.ts";
import { postgresClient } from "../testing/postgres.ts";
import type { OutboxRig } from "./_outbox_rig.ts";

/**
 * The RefCodes in the ledger whose outbox rows are not marked sent (published, not marked), once
 * there are any.
 */
export async function publishedUnmarked(rig: OutboxRig): Promise<string[]> {
  const stock = new URL(rig.stockUrl).searchParams.get("search_path")!;
  const ledger = new URL(rig.dep.ledgerUrl!).searchParams.get("search_path")!;
  await using client = await postgresClient(rig.stockUrl);
  return await waitFor("a request in the ledger whose outbox row is unsent", async () => {
    const { rows } = await client.query(
      `SELECT o.ref_code FROM ${stock}.stock_outbox o
       JOIN ${ledger}.production_orders p ON p.ref_code = o.ref_code
       WHERE o.sent_at IS NULL`,
    );
    return rows.length > 0 ? rows.map((r: { ref_code: string }) => r.ref_code) : undefined;
  }, 20_000);
}

/**
 * Of `refCodes`, those still unsent once the claim of a killed relay is over (its transaction
 * ended: rolled back, or committed if its COMMIT was on its way): `FOR UPDATE` waits for it.
 */
export async function stillUnsent(rig: OutboxRig, refCodes: readonly string[]): Promise<string[]> {
  const stock = new URL(rig.stockUrl).searchParams.get("search_path")!;
  await using client = await postgresClient(rig.stockUrl);
  await client.query("BEGIN");
  await client.query("SET LOCAL statement_timeout = 30000");
  const { rows } = await client.query(
    `SELECT ref_code FROM ${stock}.stock_outbox
     WHERE ref_code = ANY($1::text[]) AND sent_at IS NULL FOR UPDATE`,
    [refCodes],
  );
  await client.query("COMMIT");
  return rows.map((r: { ref_code: string }) => r.ref_code);
}
