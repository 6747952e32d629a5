/**
 * Faults that hit the ledger, on the line's single node: the PostgreSQL ledger of three consumers
 * stopped twice under load, and the SQLite ledger locked by another process past its busy
 * timeout. Neither may cost a message a retry or a dead letter: the consumers pause and resume.
 * Part of faults/suite.ts; runs alone with `deno test -P faults/ledger.ts`.
 *
 * @module
 */

import { strict as assert } from "node:assert";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { scratchPostgres } from "../testing/postgres.ts";
import { account, type CaseReport, waitSettled } from "./_accounting.ts";
import { LOCAL_URL } from "./_brokers.ts";
import { deployment, type Service, startOrdem } from "./_deployment.ts";
import { aliveOf, faultCase, ORDERS, RATE, runCase, validAt } from "./_harness.ts";
import { makeLoad, publishLoad } from "./_load.ts";
import { logFields } from "./_logs.ts";
import { report, reportTest } from "./_report.ts";

/** Waits until each of `services` has logged `pattern` at least `count` times. */
async function eachLogged(services: readonly Service[], pattern: RegExp, count: number) {
  const deadline = performance.now() + 30_000;
  const times = (s: Service) => s.output().split("\n").filter((l) => pattern.test(l)).length;
  while (services.some((s) => times(s) < count)) {
    assert.ok(performance.now() < deadline, `not every consumer logged ${pattern} ${count} times`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * The failure codes (`code=` of the forwarder's log lines, lib/errors.ts) of the load's own
 * failures: orders over the quantity limit and malformed bodies.
 */
const LOAD_FAILURE_CODES: ReadonlySet<string> = new Set(["quantity_exceeded", "invalid"]);

/**
 * The retries and dead letters a consumer logged because of the ledger rather than the message:
 * those whose failure code is none of the load's own (an outage's carries another code, or none).
 */
function spentOnOutage(service: Service): string[] {
  return service.output().split("\n").filter((line) => {
    const { msg, code } = logFields(line);
    return (msg === "retry scheduled" || msg === "dead-lettered") &&
      (code === undefined || !LOAD_FAILURE_CODES.has(code));
  });
}

faultCase(
  "8",
  "8. the PostgreSQL ledger of three consumers stopped under load twice (immediate, then fast)",
  async () => {
    await using pg = await scratchPostgres();
    const dep = await deployment("ledger-down", [LOCAL_URL], "classic", "postgres", pg.url);
    const consumers: Service[] = [];
    for (const id of ["ordem-1", "ordem-2", "ordem-3"]) consumers.push(await startOrdem(dep, id));
    await runCase(dep, [...consumers], async (watch) => {
      const load = makeLoad(ORDERS, 0.1, 0.1);
      const { valid } = load;
      const publishing = publishLoad(dep, load, RATE / 3);
      const outages: CaseReport["outages"] = [];
      const stops: number[] = [];
      const backs: number[] = [];
      /** From the database answering to the last of the three consumers consuming again. */
      const resumed: number[] = [];
      for (const [round, share, mode] of [[1, 0.25, "immediate"], [2, 0.6, "fast"]] as const) {
        await watch.until(validAt(share, valid));
        stops.push(performance.now());
        await pg.stop(mode);
        await eachLogged(consumers, /ledger unavailable/, round);
        // The outage lasts a while, with orders still arriving at the broker.
        await new Promise((resolve) => setTimeout(resolve, 3_000));
        await pg.start();
        const back = performance.now();
        backs.push(back);
        await eachLogged(consumers, /ledger back/, round);
        resumed.push(performance.now() - back);
      }
      const { resent } = await publishing;
      await waitSettled(dep, load, watch);
      const alive = aliveOf(consumers);
      assert.equal(alive, "3/3", "every consumer lived through both outages");
      for (const consumer of consumers) {
        assert.deepEqual(spentOnOutage(consumer), [], "no retry or dead letter for the outage");
        await consumer.kill("SIGTERM");
      }
      const accounting = await account(dep, load);
      for (const [i, at] of backs.entries()) {
        const ms = resumed[i]!;
        assert.ok(ms <= 2_000, `consumers consuming again ${ms} ms after the database`);
        outages.push({
          fault: `${i === 0 ? "immediate" : "fast"} stop for 3 s: all 3 consuming again after ${
            (ms / 1000).toFixed(2)
          } s; production orders stalled`,
          // Measured up to the next outage, not into it.
          ms: watch.stallAfter(at, valid, stops[i + 1]),
        });
      }
      report({
        name: "8. PostgreSQL ledger stopped twice, 3 consumers",
        accounting,
        outages,
        resent,
        alive,
      });
    });
  },
);

faultCase(
  "9",
  "9. the SQLite ledger locked by another process for longer than its busy timeout, mid-run",
  async () => {
    const dep = await deployment("ledger-locked", [LOCAL_URL]);
    const ordem = await startOrdem(dep);
    await runCase(dep, [ordem], async (watch) => {
      const load = makeLoad(ORDERS, 0.1, 0.1);
      const { valid } = load;
      const publishing = publishLoad(dep, load, RATE);
      await watch.until(validAt(0.4, valid));
      // Another process's write transaction: commits wait 5 s for the lock, then give up.
      const holder = new DatabaseSync(join(dep.dir, "ledger.sqlite"));
      let at: number;
      try {
        holder.exec("PRAGMA busy_timeout = 5000; BEGIN IMMEDIATE");
        await eachLogged([ordem], /ledger unavailable/, 1);
        await new Promise((resolve) => setTimeout(resolve, 2_000));
      } finally {
        holder.exec("ROLLBACK");
        holder.close();
        at = performance.now();
      }
      const { resent } = await publishing;
      await waitSettled(dep, load, watch);
      const alive = aliveOf([ordem]);
      assert.equal(alive, "1/1");
      assert.deepEqual(spentOnOutage(ordem), [], "no retry or dead letter for the outage");
      await ordem.kill("SIGTERM");
      const accounting = await account(dep, load);
      report({
        name: "9. SQLite ledger locked > busy timeout",
        accounting,
        outages: [{ fault: "lock released", ms: watch.stallAfter(at, valid) }],
        resent,
        alive,
      });
    });
  },
);

reportTest(import.meta.url);
