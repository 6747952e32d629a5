/**
 * Faults that hit the services themselves, on the line's single node: OrdemDeProducao kill -9'd
 * (alone, and one of three sharing a PostgreSQL ledger), Estoque kill -9'd mid-publish, and the
 * consumer's connection dropped by the broker while retry and dead-letter copies are in flight.
 * Part of faults/suite.ts; runs alone with `deno test -P faults/services.ts`.
 *
 * @module
 */

import { strict as assert } from "node:assert";
import { join } from "node:path";
import { account, type CaseReport, ledgerRows, waitSettled } from "./_accounting.ts";
import { closeConnections, LOCAL_URL } from "./_brokers.ts";
import { deployment, Service, serviceEnv, startOrdem } from "./_deployment.ts";
import { aliveOf, faultCase, ORDERS, RATE, runCase, spreadOf, validAt } from "./_harness.ts";
import { makeLoad, publishLoad } from "./_load.ts";
import { report, reportTest } from "./_report.ts";

faultCase(
  "1",
  "1. OrdemDeProducao kill -9'd at random points three times, restarted each time",
  async () => {
    const dep = await deployment("kill-consumer", [LOCAL_URL]);
    const ordem = await startOrdem(dep);
    await runCase(dep, [ordem], async (watch) => {
      const load = makeLoad(ORDERS, 0.1, 0.1);
      const { valid } = load;
      const publishing = publishLoad(dep, load, RATE);
      const outages: CaseReport["outages"] = [];
      const kills: number[] = [];
      for (const share of [0.15, 0.4, 0.65].map((s) => s + Math.random() * 0.1)) {
        await watch.until(validAt(share, valid));
        await ordem.kill("SIGKILL");
        kills.push(performance.now());
        await ordem.start();
      }
      const { resent } = await publishing;
      await waitSettled(dep, load, watch);
      for (const [i, at] of kills.entries()) {
        outages.push({ fault: `kill ${i + 1}`, ms: watch.stallAfter(at, valid, kills[i + 1]) });
      }
      const alive = aliveOf([ordem]);
      await ordem.kill("SIGTERM");
      const accounting = await account(dep, load);
      report({ name: "1. consumer kill -9 (x3)", accounting, outages, resent, alive });
    });
  },
);

faultCase(
  "4",
  "4. Estoque kill -9'd mid-publish: every order it reported as confirmed is processed",
  async () => {
    const dep = await deployment("kill-estoque", [LOCAL_URL]);
    const ordem = await startOrdem(dep);
    const confirmedLog = join(dep.dir, "confirmed.txt");
    const estoque = new Service(
      "estoque.ts",
      ["--count", String(ORDERS), "--quantity", "42", "--rate", String(RATE)],
      serviceEnv(dep, { ESTOQUE_CONFIRMED_LOG: confirmedLog }),
      join(dep.dir, "estoque.log"),
    );
    await runCase(dep, [estoque, ordem], async (watch) => {
      await estoque.start();
      await watch.until(Math.floor(ORDERS / 3));
      await estoque.kill("SIGKILL");
      const confirmed = Deno.readTextFileSync(confirmedLog).split("\n").filter((l) => l !== "");
      assert.ok(confirmed.length > 0 && confirmed.length < ORDERS, `${confirmed.length} confirmed`);
      const load = {
        orders: [],
        invalidBodies: new Map<string, Uint8Array>(),
        expected: new Map(confirmed.map((ref) => [ref, "ledger" as const])),
        valid: confirmed.length,
      };
      // What was sent but not reported as confirmed may be there too; wait for the reported ones.
      await watch.until(confirmed.length);
      await waitSettled(dep, load, watch);
      const alive = aliveOf([ordem]);
      await ordem.kill("SIGTERM");
      const rows = await ledgerRows(dep, confirmed);
      const missing = confirmed.filter((ref) => !rows.has(ref));
      assert.equal(missing.length, 0, `confirmed but not processed: ${missing.slice(0, 5)}`);
      report({
        name: "4. estoque kill -9 mid-publish",
        accounting: {
          orders: confirmed.length,
          inLedger: confirmed.length,
          inDlq: 0,
          duplicateDeadLetters: 0,
          validInDlq: 0,
          byInstance: {},
        },
        outages: [{
          fault:
            `estoque killed after ${confirmed.length} reported confirmed; ${rows.size} processed`,
          ms: undefined,
        }],
        resent: 0,
        alive,
      });
    });
  },
);

faultCase(
  "5",
  "5. retry and dead-letter copies in flight when the consumer's connection is dropped",
  async () => {
    const dep = await deployment("drop-connection", [LOCAL_URL]);
    const ordem = await startOrdem(dep, "ordem-5");
    await runCase(dep, [ordem], async (watch) => {
      // Half the orders fail and are retried twice: many copies are always in flight.
      const load = makeLoad(ORDERS, 0.5, 0.1);
      const { valid } = load;
      // Slower, so that both drops (rabbitmqctl takes seconds) land mid-run.
      const publishing = publishLoad(dep, load, RATE / 3);
      const drops: number[] = [];
      for (const share of [0.3, 0.6]) {
        await watch.until(validAt(share, valid));
        const closed = await closeConnections("ordem ordem-5");
        assert.ok(closed > 0, "found the consumer's connection");
        drops.push(performance.now());
      }
      const { resent } = await publishing;
      await waitSettled(dep, load, watch);
      const alive = aliveOf([ordem]);
      await ordem.kill("SIGTERM");
      assert.match(ordem.output(), /msg=reconnected/);
      const accounting = await account(dep, load);
      report({
        name: "5. connection dropped under retries",
        accounting,
        outages: drops.map((at, i) => ({
          fault: `drop ${i + 1}`,
          ms: watch.stallAfter(at, valid, drops[i + 1]),
        })),
        resent,
        alive,
      });
    });
  },
);

faultCase(
  "6",
  "6. three consumers on one queue sharing a PostgreSQL ledger, one kill -9'd and restarted",
  async () => {
    const dep = await deployment("shared-ledger", [LOCAL_URL], "classic", "postgres");
    const consumers: Service[] = [];
    for (const id of ["ordem-1", "ordem-2", "ordem-3"]) consumers.push(await startOrdem(dep, id));
    await runCase(dep, [...consumers], async (watch) => {
      const load = makeLoad(ORDERS, 0.1, 0.1);
      const { valid } = load;
      const publishing = publishLoad(dep, load, RATE / 2);
      await watch.until(validAt(0.4, valid));
      const at = performance.now();
      await consumers[1]!.kill("SIGKILL");
      await consumers[1]!.start();
      const { resent } = await publishing;
      await waitSettled(dep, load, watch);
      const alive = aliveOf(consumers);
      for (const consumer of consumers) await consumer.kill("SIGTERM");
      const accounting = await account(dep, load);
      const spread = spreadOf(accounting);
      assert.equal(Object.keys(accounting.byInstance).length, 3, `work spread: ${spread}`);
      report({
        name: "6. 3 consumers, PostgreSQL ledger",
        accounting,
        outages: [
          { fault: "ordem-2 kill -9", ms: watch.stallAfter(at, valid) },
          { fault: `production orders by instance: ${spread}`, ms: undefined },
        ],
        resent,
        alive,
      });
    });
  },
);

reportTest(import.meta.url);
