/**
 * The outbox under faults (issue 29, item 5): Estoque takes stock movements through its real
 * stock API (`estoque serve`), thousands of them crossing small reorder points, its relay
 * publishes the requests they commit, OrdemDeProducao consumes them into its ledger, and a fault
 * hits mid-run:
 *
 * - o1: `estoque serve` (the API and the relay) kill -9'd three times at random points, restarted
 *   each time, on PostgreSQL; o1s: the same on SQLite, run only when `FAULT_CASES` names it (it
 *   adds about 15 s to the suite);
 * - o2: `estoque relay` (beside `estoque serve --no-relay`) kill -9'd between publish and
 *   mark-sent, three times: its confirms held in a TCP proxy until a request it published is in
 *   the ledger while its outbox row is unsent;
 * - o3: the relay's broker connection closed by the broker (management API) three times;
 * - o4: the stock store's PostgreSQL (a scratch cluster) stopped (immediate) for 8 s, then started.
 *
 * Each run makes `FAULT_MOVEMENTS` (3,000) committed movements, and ends with the accounting of
 * faults/_outbox_accounting.ts: the store's history replayed, every call's answer against it (a
 * call the fault cut short decided by its idempotency key), the outbox's RefCodes against the
 * ledger's (0 lost, 0 invented, 0 duplicate production orders), every process alive. Each case
 * runs `FAULT_RUNS` times (1); the table is printed after the cases and, with `FAULT_DOCS=1`,
 * written into docs/outbox.md. Part of faults/suite.ts; runs alone with
 * `deno test -P faults/outbox.ts`; `FAULT_CASES=o1,o4` picks cases. Env: `FAULT_MOVE_RATE`
 * (movements sent per second, 400).
 *
 * @module
 */

import { strict as assert } from "node:assert";
import { waitFor } from "../testing/broker.ts";
import { HoldingProxy } from "../testing/proxy.ts";
import { type ScratchPostgres, scratchPostgres } from "../testing/postgres.ts";
import type { ProgressWatch } from "./_accounting.ts";
import { LOCAL_URL } from "./_brokers.ts";
import type { Service } from "./_deployment.ts";
import { aliveOf, runCase, selected, step } from "./_harness.ts";
import { accountOutbox, waitDrained } from "./_outbox_accounting.ts";
import { publishedUnmarked, stillUnsent } from "./_outbox_window.ts";
import { MovementDriver } from "./_outbox_driver.ts";
import { hasOutboxRuns, printOutboxReport, reportOutboxRun } from "./_outbox_report.ts";
import {
  closeConnection,
  connectionsOf,
  type EstoqueProcess,
  estoqueProcess,
  logged,
  ordemCounter,
  type OutboxRig,
  outboxRig,
  ready,
  removeRig,
  startReady,
  type StockKind,
} from "./_outbox_rig.ts";

/**
 * Committed movements per run (`FAULT_MOVEMENTS`).
 * @default {3000}
 */
const MOVEMENTS = Number(Deno.env.get("FAULT_MOVEMENTS") ?? 3_000);

/**
 * Movements sent per second (`FAULT_MOVE_RATE`).
 * @default {400}
 */
const MOVE_RATE = Number(Deno.env.get("FAULT_MOVE_RATE") ?? 400);

/**
 * Runs of each case (`FAULT_RUNS`).
 * @default {1}
 */
const RUNS = Number(Deno.env.get("FAULT_RUNS") ?? 1);

/** How long the stock store's PostgreSQL stays stopped in o4. */
const STORE_DOWN_MS = 8_000;

/** What a case's body works with. */
interface Run {
  readonly rig: OutboxRig;
  /** The services runCase kills at the end: add each process started. */
  readonly services: Service[];
  readonly watch: ProgressWatch;
  /** The scratch PostgreSQL of the stock store (o4). */
  readonly pg: ScratchPostgres | undefined;
  /** What lives until the run is over (disposed after its services are killed). */
  readonly stack: AsyncDisposableStack;
}

/** What a case's body hands back. */
interface Outcome {
  readonly driver: MovementDriver;
  /** The processes that must be alive at the end. */
  readonly living: readonly Service[];
  /** Each fault: when (`performance.now()`), and what it did. */
  readonly faults: readonly { readonly at: number; readonly note: string }[];
  /** Anything else worth knowing. */
  readonly notes?: readonly string[];
}

/** An outbox case. */
interface OutboxCase {
  readonly id: string;
  readonly name: string;
  readonly kind: StockKind;
  /** The stock store on a scratch PostgreSQL (a case that stops it). */
  readonly scratch?: boolean;
  readonly body: (run: Run) => Promise<Outcome>;
}

/** The movement driver of a run, on `api`'s stock API, at `rate` movements a second. */
function drive(rig: OutboxRig, api: EstoqueProcess, rate = MOVE_RATE): MovementDriver {
  return new MovementDriver({
    base: `http://127.0.0.1:${api.port}`,
    items: rig.items,
    target: MOVEMENTS,
    rate,
    keyPrefix: crypto.randomUUID().slice(0, 8),
  });
}

/** Says that a fault lands while movements are made, and how many were committed by then. */
function midRun(driver: MovementDriver): number {
  assert.ok(driver.committed < MOVEMENTS, "the fault came after the movements were all made");
  return driver.committed;
}

/**
 * Points of the run, in committed movements: at each share of it, plus up to a tenth of the run
 * at random.
 */
function points(shares: readonly number[]): number[] {
  return shares.map((s) => Math.floor(MOVEMENTS * (s + Math.random() * 0.1)));
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** o1 and o1s: `estoque serve` kill -9'd three times, restarted each time. */
async function killServe({ rig, services }: Run): Promise<Outcome> {
  const estoque = estoqueProcess(rig, "serve", "estoque-serve");
  services.push(estoque.service);
  await startReady(estoque);
  const driver = drive(rig, estoque);
  const faults: { at: number; note: string }[] = [];
  for (const [i, point] of points([0.15, 0.4, 0.65]).entries()) {
    await driver.until(point);
    const committed = midRun(driver);
    step(`kill -9 estoque serve at ${committed}`);
    await estoque.service.kill("SIGKILL");
    const at = performance.now();
    await startReady(estoque);
    faults.push({
      at,
      note: `kill ${i + 1} at ${committed} movements: ready again after ${
        seconds(performance.now() - at)
      }`,
    });
  }
  await driver.done;
  return { driver, living: [rig.ordem, estoque.service], faults };
}

/**
 * o2: `estoque relay` (beside `estoque serve --no-relay`) kill -9'd between publish and
 * mark-sent. The relay reaches the broker through a TCP proxy (testing/proxy.ts) that can hold
 * what the broker sends it: at three points of the run the proxy holds the broker's confirms, so
 * the relay publishes and waits; once OrdemDeProducao has a request in its ledger whose outbox row
 * is unsent (the broker took it, the relay has not marked it), the relay is kill -9'd, the proxy
 * drops what it held, and the relay is started again. The kill counts when such a row is still
 * unsent once the killed relay's claim is over (a row whose confirm had come just before the hold
 * may be marked meanwhile: then it is tried again, ten kills at most). Unaided, the window (the
 * broker's confirm, then one UPDATE) is a few milliseconds and a watcher outside hit it too rarely
 * to count on (see docs/outbox.md).
 */
async function killRelay({ rig, services, stack }: Run): Promise<Outcome> {
  const proxy = stack.use(HoldingProxy.start(LOCAL_URL));
  const api = estoqueProcess(rig, "api", "estoque-api");
  const relay = estoqueProcess(rig, "relay", "estoque-relay", { RABBITMQ_URL: proxy.url });
  services.push(api.service, relay.service);
  await startReady(api);
  await startReady(relay);
  const driver = drive(rig, api);
  const faults: { at: number; note: string }[] = [];
  let kills = 0;
  for (const point of points([0.15, 0.4, 0.65])) {
    await driver.until(point);
    while (true) {
      assert.ok(++kills <= 10, `only ${faults.length} of 3 kills caught a request in ten kills`);
      proxy.hold();
      const seen = await publishedUnmarked(rig);
      const committed = midRun(driver);
      await relay.service.kill("SIGKILL");
      const at = performance.now();
      proxy.cut();
      const caught = await stillUnsent(rig, seen);
      await startReady(relay);
      if (caught.length === 0) continue; // marked before the hold: again
      faults.push({
        at,
        note: `kill ${faults.length + 1} at ${committed} movements: ${caught.length} ` +
          "request(s) published (in the ledger), not marked",
      });
      break;
    }
  }
  await driver.done;
  return {
    driver,
    living: [rig.ordem, api.service, relay.service],
    faults,
    notes: [`${kills} kills to catch 3`],
  };
}

/**
 * o3: the relay's broker connection closed by the broker three times (its name looked up through
 * the management API beforehand, so that the close lands at its point).
 */
async function dropConnection({ rig, services }: Run): Promise<Outcome> {
  const estoque = estoqueProcess(rig, "serve", "estoque-serve");
  services.push(estoque.service);
  await startReady(estoque);
  // A third of the rate: the management API lists a new connection up to 5 s late (its
  // statistics interval), and the drops are that far apart at least.
  const driver = drive(rig, estoque, MOVE_RATE / 3);
  const faults: { at: number; note: string }[] = [];
  const closed = new Set<string>();
  for (const [i, point] of points([0.1, 0.45, 0.8]).entries()) {
    const names = await connectionsOf(estoque.connectionName!, closed);
    await driver.until(point);
    const sessions = logged(estoque.service, "relaying the outbox");
    const committed = midRun(driver);
    const at = performance.now();
    let dropped = 0;
    for (const name of names) {
      if (await closeConnection(name)) dropped++;
      closed.add(name);
    }
    assert.equal(dropped, 1, "closed the relay's connection");
    await waitFor(
      "the relay relaying again",
      () => logged(estoque.service, "relaying the outbox") > sessions || undefined,
      30_000,
    );
    faults.push({
      at,
      note: `drop ${i + 1} at ${committed} movements: relaying again after ${
        seconds(performance.now() - at)
      }`,
    });
  }
  await driver.done;
  return { driver, living: [rig.ordem, estoque.service], faults };
}

/**
 * o4: the stock store's PostgreSQL stopped (immediate: a crash, as far as its clients can tell)
 * for 8 s mid-run, then started.
 */
async function stopStore({ rig, services, pg, watch }: Run): Promise<Outcome> {
  const estoque = estoqueProcess(rig, "serve", "estoque-serve");
  services.push(estoque.service);
  await startReady(estoque);
  const driver = drive(rig, estoque);
  const [point] = points([0.3]);
  await driver.until(point!);
  const committed = midRun(driver);
  step(`stopping the stock store's PostgreSQL at ${committed}`);
  const at = performance.now();
  await pg!.stop("immediate");
  const stopped = performance.now();
  const failedBefore = driver.unknownKeys().length;
  // The outage itself: the store stays down this long while movements keep coming.
  await new Promise((resolve) => setTimeout(resolve, STORE_DOWN_MS));
  const failed = driver.unknownKeys().length - failedBefore;
  const starting = performance.now();
  await pg!.start();
  const back = performance.now();
  const during = driver.committed;
  const orders = await watch.sample();
  await waitFor("a movement committed again", () => driver.committed > during || undefined, 30_000);
  const moving = performance.now() - back;
  await waitFor("a request published again", async () => {
    return await watch.sample() > orders || undefined;
  }, 60_000);
  const publishing = performance.now() - back;
  await ready(estoque);
  await driver.done;
  return {
    driver,
    living: [rig.ordem, estoque.service],
    faults: [{
      at,
      note:
        `stopped at ${committed} movements (stop ${seconds(stopped - at)}), down ${
          seconds(starting - stopped)
        } (${failed} calls failed), start ${seconds(back - starting)}; after it, movements ` +
        `committed again in ${seconds(moving)}, requests published again in ${seconds(publishing)}`,
    }],
  };
}

const CASES: OutboxCase[] = [
  { id: "o1", name: "o1. Estoque kill -9 (x3)", kind: "postgres", body: killServe },
  { id: "o1s", name: "o1s. Estoque kill -9 (x3), SQLite", kind: "sqlite", body: killServe },
  {
    id: "o2",
    name: "o2. relay kill -9 between publish and mark (x3)",
    kind: "postgres",
    body: killRelay,
  },
  { id: "o3", name: "o3. relay's connection dropped (x3)", kind: "postgres", body: dropConnection },
  {
    id: "o4",
    name: "o4. stock PostgreSQL stopped for 8 s",
    kind: "postgres",
    scratch: true,
    body: stopStore,
  },
];

/** One run of a case, reported; resolves with why it failed, or undefined. */
async function runOnce(c: OutboxCase, run: number): Promise<string | undefined> {
  const started = performance.now();
  const store = c.kind === "sqlite" ? "SQLite" : "PostgreSQL";
  await using pg = c.scratch ? await scratchPostgres() : undefined;
  const rig = await outboxRig(`outbox-${c.id}`, {
    kind: c.kind,
    ...(pg ? { postgresUrl: pg.url } : {}),
  });
  const services: Service[] = [rig.ordem];
  await using stack = new AsyncDisposableStack();
  let reported = false;
  try {
    await runCase(rig.dep, services, async (watch) => {
      const outcome = await c.body({ rig, services, watch, pg, stack });
      const alive = aliveOf(outcome.living);
      await waitDrained(rig);
      const copies = await ordemCounter(rig, "productionorder_orders_duplicate_total");
      const { accounting, problems } = await accountOutbox(rig, outcome.driver);
      const total = accounting.published;
      const notes = outcome.faults.map((f, i) => {
        const stall = watch.stallAfter(f.at, total, outcome.faults[i + 1]?.at);
        return stall === undefined ? f.note : `${f.note}, ledger stalled ${seconds(stall)}`;
      });
      if (alive !== `${outcome.living.length}/${outcome.living.length}`) {
        problems.push(`alive: ${alive}`);
      }
      const failure = problems.length > 0 ? problems.join("; ") : undefined;
      reportOutboxRun({
        name: c.name,
        run,
        store,
        accounting,
        copies,
        alive,
        notes: [...notes, ...(outcome.notes ?? [])],
        ms: performance.now() - started,
        ...(failure ? { failure } : {}),
      });
      reported = true;
      if (failure) throw new Error(failure);
    }, () => removeRig(rig));
    return undefined;
  } catch (error) {
    const failure = error instanceof Error ? error.message : String(error);
    if (!reported) {
      reportOutboxRun({
        name: c.name,
        run,
        store,
        notes: [],
        ms: performance.now() - started,
        failure: failure.split("\n")[0]!,
      });
    }
    console.error(`${c.name}, run ${run}: ${failure}`);
    return failure;
  }
}

/** `FAULT_CASES`, read as faults/_harness.ts reads it. */
const NAMED = Deno.env.get("FAULT_CASES")?.split(",").map((c) => c.trim());

/** Whether case `id` runs: o1 to o4 as the suite's other cases do; o1s only when named. */
function runs(id: string): boolean {
  return id === "o1s" ? NAMED?.includes(id) ?? false : selected(id);
}

for (const c of CASES) {
  Deno.test({
    name: c.name,
    ignore: !runs(c.id),
    async fn() {
      const failures: string[] = [];
      for (let run = 1; run <= RUNS; run++) {
        const failure = await runOnce(c, run);
        if (failure) failures.push(`run ${run}: ${failure}`);
      }
      assert.deepEqual(failures, [], `${failures.length} of ${RUNS} runs failed`);
    },
  });
}

Deno.test({
  name: "the outbox cases' report",
  ignore: !CASES.some((c) => runs(c.id)),
  async fn() {
    if (!hasOutboxRuns()) return;
    await printOutboxReport(
      `${MOVEMENTS} committed movements per run at up to ${MOVE_RATE}/s, ${RUNS} run(s) per case`,
    );
  },
});
