/**
 * The movement-lag part: movements at {@linkcode MOVEMENT_RATE} a second, each one crossing its
 * colour's reorder point, on SQLite and on PostgreSQL, the outbox relay beside them; each store in
 * a process of its own warmed up by one untimed run, the method's rounds in ABBA order (SQLite
 * first in odd rounds, PostgreSQL in even ones), each store's lags merged over the rounds. There is
 * no raw side (raw amqplib keeps no stock): each store is held to an absolute p99.
 *
 * @module
 */

import { describeError } from "../lib/errors.ts";
import { merge, tailOf } from "./_histogram.ts";
import { MOVEMENT_LAG_TARGET_MS, MOVEMENT_RATE, sideOrder } from "./_method.ts";
import type { BenchOptions } from "./_options.ts";
import { brokerQuiet } from "./_quiet.ts";
import type { MovementLagResults, MovementLagRow } from "./_results.ts";
import { sideProcess } from "./_rounds.ts";
import type { SideProcess } from "./_side_process.ts";
import { sideStats } from "./_stats.ts";
import type { LagStore, MovementLagRun } from "./outbox.ts";

const STORES: readonly LagStore[] = ["sqlite", "postgres"];
const log = (text: string) => console.error(text);

/** The movement-lag part, for `latencySeconds` of movements a run. */
export async function movementLagPart(options: BenchOptions): Promise<MovementLagResults> {
  const { method } = options;
  const movements = Math.round(MOVEMENT_RATE * method.latencySeconds);
  const processes = new Map<LagStore, SideProcess>();
  const runs = new Map<LagStore, MovementLagRun[]>(STORES.map((s) => [s, []]));
  const failed = new Map<LagStore, string>();
  const run = async (store: LagStore) => {
    await brokerQuiet(options.url);
    return await processes.get(store)!.request<MovementLagRun>({
      kind: "movement-lag",
      store,
      messages: movements,
      rate: MOVEMENT_RATE,
      postgresUrl: options.postgresUrl,
    });
  };
  try {
    for (const store of STORES) {
      processes.set(store, sideProcess(options, `movement lag ${store}`, "ours"));
    }
    for (const store of STORES) {
      // The warm-up; a store that cannot run (no PostgreSQL here) is reported, not measured.
      await run(store).catch((error) => failed.set(store, describeError(error)));
    }
    for (let round = 0; round < method.rounds; round++) {
      const order = sideOrder(round, STORES).filter((s) => !failed.has(s));
      for (const store of order) runs.get(store)!.push(await run(store));
      log(
        `  movement lag round ${round + 1} (${order.join(", ")}): ` +
          order.map((store) => {
            const last = runs.get(store)!.at(-1)!;
            return `${store} p99 ${tailOf(last.lags).p99.toFixed(1)} ms, ` +
              `${Math.round(last.committedRate).toLocaleString("en-US")} movements/s`;
          }).join("; "),
      );
    }
  } finally {
    for (const process of processes.values()) await process.close().catch(() => {});
  }
  const rows: MovementLagRow[] = STORES.map((store) => {
    const error = failed.get(store);
    if (error !== undefined) return { store, error };
    const taken = runs.get(store)!;
    const lag = tailOf(merge(taken.map((r) => r.lags)));
    return {
      store,
      lag,
      committed: sideStats(taken.map((r) => r.committedRate)),
      target: MOVEMENT_LAG_TARGET_MS,
      met: lag.p99 < MOVEMENT_LAG_TARGET_MS,
    };
  });
  return { rate: MOVEMENT_RATE, movements, rounds: method.rounds, rows };
}

/** Prints each store's movement lag to stdout, one line each. */
export function printMovementLag(results: MovementLagResults): void {
  for (const row of results.rows) {
    if ("error" in row) {
      console.log(`movement lag ${row.store}: not measured: ${row.error}`);
      continue;
    }
    const { p50, p99 } = row.lag;
    console.log(
      `movement lag ${row.store}: p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms at ` +
        `${results.rate.toLocaleString("en-US")} movements/s (committed ${
          Math.round(row.committed.median).toLocaleString("en-US")
        }/s), p99 < ${row.target} ms ${row.met ? "met" : "MISSED"}`,
    );
  }
}
