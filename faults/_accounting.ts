/**
 * What a fault case measures and checks: how long processing stalled after each fault (from the
 * ledger, sampled as it grows), when the load has settled, and the accounting every case ends
 * with. The ledger and the DLQ are read through the lib's own readers.
 *
 * @module
 */

import { strict as assert } from "node:assert";
import type { Broker } from "../lib/broker.ts";
import { type DeadLetter, toDeadLetter } from "../lib/dead_letters.ts";
import type { LedgerReader } from "../lib/ledger.ts";
import { openLedgerReader } from "../lib/open_ledger.ts";
import { keepConnected } from "../lib/reconnect.ts";
import { type Deployment, ledgerUrlOf } from "./_deployment.ts";
import type { Load } from "./_load.ts";

/** The ledger reader of each deployment, opened once its services have created the ledger. */
const readers = new Map<Deployment, Promise<LedgerReader | undefined>>();

/** The deployment's ledger through the lib's reader, or undefined while it does not exist yet. */
function readerOf(dep: Deployment): Promise<LedgerReader | undefined> {
  let reader = readers.get(dep);
  if (reader === undefined) {
    reader = openLedgerReader(ledgerUrlOf(dep)).catch(() => undefined);
    readers.set(dep, reader);
    reader.then((r) => r === undefined && readers.delete(dep));
  }
  return reader;
}

/** Closes the deployment's ledger reader. */
export async function closeReader(dep: Deployment): Promise<void> {
  const reader = await readers.get(dep);
  readers.delete(dep);
  await reader?.close();
}

/** The production orders of these RefCodes, with the instance that created each. */
export async function ledgerRows(
  dep: Deployment,
  refCodes: Iterable<string>,
): Promise<Map<string, { instance: string; attempt: number }>> {
  const rows = new Map<string, { instance: string; attempt: number }>();
  const reader = await readerOf(dep);
  if (reader === undefined) return rows;
  for (const refCode of refCodes) {
    const order = await reader.findOrder(refCode);
    if (order) rows.set(refCode, { instance: order.instanceId, attempt: order.attempt });
  }
  return rows;
}

/** How many production orders the deployment's ledger holds. */
export async function countProductionOrders(dep: Deployment): Promise<number> {
  return await (await readerOf(dep))?.countOrders() ?? 0;
}

/** Takes every message out of the DLQ, read by the lib's dead-letter reader. */
async function drainDeadLetters(broker: Broker, queue: string): Promise<DeadLetter[]> {
  const channel = await broker.channel();
  const letters: DeadLetter[] = [];
  try {
    while (true) {
      const message = await channel.get(queue, { noAck: true });
      if (!message) break;
      letters.push(toDeadLetter(message));
    }
  } finally {
    await channel.close().catch(() => {});
  }
  return letters;
}

/** Counts production orders as they are made, to measure how long a fault stalls processing. */
export class ProgressWatch {
  readonly #dep: Deployment;
  readonly #timer: ReturnType<typeof setInterval>;
  /** [time, ledger rows] samples, `performance.now()` based. */
  readonly samples: [number, number][] = [];

  #busy = false;

  /** Samples the ledger of `dep` every 50 ms. */
  constructor(dep: Deployment) {
    this.#dep = dep;
    this.#timer = setInterval(() => {
      if (this.#busy) return;
      this.#busy = true;
      this.sample().finally(() => (this.#busy = false));
    }, 50);
  }

  /** Takes one sample now. */
  async sample(): Promise<number> {
    const count = await (await readerOf(this.#dep))?.countOrders().catch(() => 0) ?? 0;
    this.samples.push([performance.now(), count]);
    return count;
  }

  /** The rows counted last. */
  get count(): number {
    return this.samples.at(-1)?.[1] ?? 0;
  }

  /** Resolves once at least `rows` production orders exist; rejects after `timeoutMs`. */
  async until(rows: number, timeoutMs = 60_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (await this.sample() < rows) {
      if (performance.now() > deadline) {
        throw new Error(`timed out after ${timeoutMs} ms: ${this.count}/${rows} production orders`);
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /**
   * How long processing stalled after a fault at `at`: the longest time, from `at` until the
   * ledger held `total` rows (or until `before`, the next fault), in which it did not grow, in
   * milliseconds (undefined when it was already complete at `at`).
   */
  stallAfter(at: number, total: number, before = Infinity): number | undefined {
    let since = at;
    let last = this.samples.filter(([t]) => t <= at).at(-1)?.[1] ?? 0;
    if (last >= total) return undefined;
    let longest = 0;
    for (const [t, n] of this.samples) {
      if (t <= at || n <= last) continue;
      if (t > before) break;
      longest = Math.max(longest, t - since);
      since = t;
      last = n;
      if (n >= total) break;
    }
    return longest;
  }

  /** Stops sampling. */
  stop(): void {
    clearInterval(this.#timer);
  }
}

/** Waits until every order of `load` has ended somewhere and nothing is left in flight. */
export async function waitSettled(
  dep: Deployment,
  load: Load,
  watch: ProgressWatch,
  options: { timeoutMs?: number; onStall?: () => Promise<void> } = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  let lastChange = performance.now();
  let lastState = "";
  let stallHandled = false;
  const { valid } = load;
  const dead = load.expected.size - valid;
  await watch.until(valid, timeoutMs);
  const deadline = performance.now() + timeoutMs;
  await keepConnected({ urls: dep.urls, giveUpAfterMs: timeoutMs }, async (broker) => {
    while (true) {
      const work = await broker.messageCount(dep.topo.queue);
      let tiers = 0;
      for (const tier of dep.topo.retryTiers) tiers += await broker.messageCount(tier.queue);
      const letters = await broker.messageCount(dep.topo.deadLetterQueue);
      if (work === 0 && tiers === 0 && letters >= dead) return;
      const state = `${work}/${tiers}/${letters}`;
      if (state !== lastState) {
        lastState = state;
        lastChange = performance.now();
      } else if (options.onStall && !stallHandled && performance.now() - lastChange > 15_000) {
        stallHandled = true;
        await options.onStall();
      }
      if (performance.now() > deadline) {
        throw new Error(
          `timed out: ${work} in the work queue, ${tiers} in retry tiers, ${letters}/${dead} dead letters`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  });
}

/** What a case's accounting found. */
export interface Accounting {
  readonly orders: number;
  readonly inLedger: number;
  readonly inDlq: number;
  readonly duplicateDeadLetters: number;
  /** Valid orders found in the DLQ (asserted 0: they belong in the ledger). */
  readonly validInDlq: number;
  readonly byInstance: Record<string, number>;
}

/**
 * The accounting every case ends with: every RefCode in exactly one of the ledger and the DLQ,
 * the one where it belongs, none lost, no duplicate production order (the ledger's primary key),
 * each dead letter with the reason it deserves; extra copies of one dead letter are counted.
 * Consumes the DLQ.
 */
export async function account(dep: Deployment, load: Load): Promise<Accounting> {
  const rows = await ledgerRows(dep, load.expected.keys());
  const letters = await keepConnected(
    { urls: dep.urls, giveUpAfterMs: 30_000 },
    (broker) => drainDeadLetters(broker, dep.topo.deadLetterQueue),
  );
  const lettersByRef = new Map<string, DeadLetter[]>();
  for (const letter of letters) {
    const ref = letter.refCode ?? "(no RefCode)";
    const list = lettersByRef.get(ref) ?? [];
    list.push(letter);
    lettersByRef.set(ref, list);
  }
  const lost: string[] = [];
  const both: string[] = [];
  const misplaced: string[] = [];
  const wrongReason: string[] = [];
  for (const [refCode, expected] of load.expected) {
    const inLedger = rows.has(refCode);
    const dead = lettersByRef.get(refCode);
    if (!inLedger && !dead) lost.push(refCode);
    if (inLedger && dead) both.push(refCode);
    if ((expected === "ledger") !== inLedger) misplaced.push(refCode);
    const reason = load.invalidBodies.has(refCode) ? "invalid" : "exhausted";
    if (dead && dead.some((l) => l.reason !== reason)) {
      wrongReason.push(`${refCode}: ${dead.map((l) => l.reason).join(",")} (want ${reason})`);
    }
  }
  const strangers = [...lettersByRef.keys()].filter((r) => !load.expected.has(r));
  const total = await (await readerOf(dep))?.countOrders() ?? rows.size;
  for (let i = rows.size; i < total; i++) strangers.push("(a production order not in the load)");
  const duplicates = [...lettersByRef.values()].filter((list) => list.length > 1);
  const byInstance: Record<string, number> = {};
  for (const { instance } of rows.values()) byInstance[instance] = (byInstance[instance] ?? 0) + 1;
  const sample = (list: string[]) => list.slice(0, 5).join("; ");
  assert.deepEqual(lost.length, 0, `lost: ${lost.length} (${sample(lost)})`);
  assert.deepEqual(both.length, 0, `in the ledger and the DLQ: ${sample(both)}`);
  assert.deepEqual(misplaced.length, 0, `in the wrong place: ${sample(misplaced)}`);
  assert.deepEqual(wrongReason.length, 0, `wrong dead-letter reason: ${sample(wrongReason)}`);
  assert.deepEqual(strangers.length, 0, `unknown RefCodes: ${sample(strangers)}`);
  // Dead letters are delivered at least once: a consumer killed after the broker took a dead
  // letter but before it recorded that fact sends it again when the original comes back. Such
  // copies must be the same dead letter (same reason, same retry count), and are reported.
  const unlike = duplicates.filter((list) =>
    list.some((l) => l.reason !== list[0]!.reason || l.attempts !== list[0]!.attempts)
  );
  assert.equal(unlike.length, 0, `different dead letters for one RefCode: ${unlike.length}`);
  return {
    orders: load.expected.size,
    inLedger: rows.size,
    inDlq: lettersByRef.size,
    duplicateDeadLetters: letters.length - lettersByRef.size,
    validInDlq: [...load.expected].filter(([ref, e]) => e === "ledger" && lettersByRef.has(ref))
      .length,
    byInstance,
  };
}

/** One line of the report the suite prints at the end. */
export interface CaseReport {
  readonly name: string;
  readonly accounting: Accounting;
  /** Each fault and how long processing stalled after it, in milliseconds. */
  readonly outages: { fault: string; ms: number | undefined }[];
  readonly resent: number;
  /** Consumers running at the end, of how many, e.g. `3/3`. */
  readonly alive: string;
}

/** The table the suite prints, and docs/guarantees.md quotes. */
export function formatReport(reports: readonly CaseReport[]): string {
  const lines = [
    "| case | orders | production orders | dead letters | lost | duplicate orders | valid in DLQ | extra DLQ copies | consumers alive | fault: processing stalled for |",
    "| ---- | -----: | ----------------: | -----------: | ---: | ---------------: | -----------: | ---------------: | :-------------: | ----------------------------- |",
  ];
  for (const r of reports) {
    const outages = r.outages.map((o) =>
      o.ms === undefined ? o.fault : `${o.fault}: ${(o.ms / 1000).toFixed(2)} s`
    ).join("; ");
    lines.push(
      `| ${r.name} | ${r.accounting.orders} | ${r.accounting.inLedger} | ${r.accounting.inDlq} | 0 | 0 | ${r.accounting.validInDlq} | ${r.accounting.duplicateDeadLetters} | ${r.alive} | ${outages} |`,
    );
  }
  return lines.join("\n");
}
