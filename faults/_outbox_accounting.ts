/**
 * What an outbox case checks once its faults are over and the outbox has drained: that the stock
 * store committed exactly the movements it said it did and a request for exactly the movements
 * that crossed a reorder point, and that OrdemDeProducao's ledger holds exactly the outbox's
 * RefCodes, each once.
 *
 * - **The history** is replayed colour by colour from the quantity each was set up with: each
 *   movement starts where the one before it left the colour, and it carries a RefCode exactly
 *   when it took the colour from at or above its reorder point to below it.
 * - **The calls**: a movement answered 201 is in the history with the RefCode it was answered
 *   with; one refused (4xx) is not; one whose call failed (a killed Estoque, a stopped store) is
 *   decided by its idempotency key: in the history, or not. The history holds no other movement.
 * - **The outbox** holds one row per crossing (the RefCodes of the history), all sent.
 * - **The ledger**: lost = outbox RefCodes not in it, invented = its RefCodes not in the outbox,
 *   duplicates = its rows beyond one per RefCode. All three must be 0; so must the DLQ be empty.
 *
 * @module
 */

import { keepConnected } from "../lib/reconnect.ts";
import { waitFor } from "../testing/broker.ts";
import type { MovementDriver } from "./_outbox_driver.ts";
import { historyOf, ledgerRefCodes, type OutboxRig } from "./_outbox_rig.ts";

/** What an outbox case's accounting found. */
export interface OutboxAccounting {
  /** Movements sent through the API. */
  readonly sent: number;
  /** Movements the store committed (its history). */
  readonly committed: number;
  /** Calls that failed (killed, cut off, the store away). */
  readonly unknown: number;
  /** Of those, the ones the store had committed all the same. */
  readonly unknownCommitted: number;
  /** Reorder crossings committed: the history's movements with a RefCode, one outbox row each. */
  readonly crossings: number;
  /** Distinct RefCodes in OrdemDeProducao's ledger. */
  readonly published: number;
  /** Production orders in the ledger (rows). */
  readonly productionOrders: number;
  readonly lost: number;
  readonly invented: number;
  readonly duplicates: number;
}

/**
 * Waits until the outbox has no unsent row and the ledger holds as many RefCodes as the outbox
 * has rows (or more: the accounting says which).
 */
export async function waitDrained(rig: OutboxRig, timeoutMs = 60_000): Promise<void> {
  await waitFor("the outbox drained into the ledger", async () => {
    const stats = await rig.store.outboxStats().catch(() => undefined);
    if (stats === undefined || stats.depth > 0) return undefined;
    const rows = (await rig.store.outboxRows()).length;
    return new Set(await ledgerRefCodes(rig)).size >= rows || undefined;
  }, timeoutMs);
  // What the relay published last may still be in the queue (a duplicate on its way): waited for,
  // so that the ledger is read once the work queue is empty.
  await keepConnected({ urls: rig.dep.urls, giveUpAfterMs: 30_000 }, async (broker) => {
    await waitFor("the work queue empty", async () => {
      return await broker.messageCount(rig.dep.topo.queue) === 0 || undefined;
    }, timeoutMs);
  });
}

/**
 * Accounts for a case once drained (see the module doc): what it found, and what is wrong (empty
 * when all is well).
 */
export async function accountOutbox(
  rig: OutboxRig,
  driver: MovementDriver,
): Promise<{ accounting: OutboxAccounting; problems: string[] }> {
  const problems: string[] = [];
  const check = (ok: boolean, what: string) => ok || problems.push(what);
  const history = await historyOf(rig);
  const byKey = new Map(history.map((row) => [row.key, row]));
  const sample = (list: readonly string[]) => `${list.length} (${list.slice(0, 3).join("; ")})`;

  // The history, replayed.
  const wrongStart: string[] = [];
  const wrongCrossing: string[] = [];
  const quantity = new Map(rig.items.map((item) => [item.color, item.quantity]));
  const point = new Map(rig.items.map((item) => [item.color, item.reorderPoint]));
  for (const row of history) {
    const before = quantity.get(row.color);
    if (before === undefined) {
      wrongStart.push(`movement ${row.id} of an unknown colour ${row.color}`);
      continue;
    }
    if (row.quantityAfter - row.delta !== before) {
      wrongStart.push(
        `movement ${row.id} started at ${row.quantityAfter - row.delta}, not ${before}`,
      );
    }
    const crossed = before >= point.get(row.color)! && row.quantityAfter < point.get(row.color)!;
    if (crossed !== (row.refCode !== null)) {
      wrongCrossing.push(`movement ${row.id} ${before} -> ${row.quantityAfter}: ${row.refCode}`);
    }
    quantity.set(row.color, row.quantityAfter);
  }
  check(wrongStart.length === 0, `movements out of sequence: ${sample(wrongStart)}`);
  check(wrongCrossing.length === 0, `crossings misjudged: ${sample(wrongCrossing)}`);
  for (const item of await rig.store.listItems()) {
    const replayed = quantity.get(item.color);
    check(
      item.quantity === replayed,
      `colour ${item.color}: ${item.quantity}, replayed ${replayed}`,
    );
  }

  // The calls, against the history.
  const strangers = history.filter((row) => row.key === null || !driver.sent.has(row.key));
  check(
    strangers.length === 0,
    `movements nobody sent: ${sample(strangers.map((r) => `${r.id}`))}`,
  );
  const missing: string[] = [];
  const applied: string[] = [];
  let unknown = 0;
  let unknownCommitted = 0;
  for (const [key, movement] of driver.sent) {
    const row = byKey.get(key);
    const { answer } = movement;
    if (answer.kind === "committed") {
      if (row === undefined) missing.push(key);
      else if (row.refCode !== answer.refCode) missing.push(`${key}: RefCode ${row.refCode}`);
    } else if (answer.kind === "refused") {
      if (row !== undefined) applied.push(`${key} (${answer.status} ${answer.code})`);
    } else {
      unknown++;
      if (row !== undefined) unknownCommitted++;
    }
  }
  check(missing.length === 0, `answered 201 but not in the history: ${sample(missing)}`);
  check(applied.length === 0, `refused but applied: ${sample(applied)}`);

  // The outbox: a row per crossing, each sent.
  const outbox = await rig.store.outboxRows();
  const unsent = outbox.filter((row) => row.sentAt === undefined);
  check(unsent.length === 0, `unsent outbox rows: ${unsent.length}`);
  const crossingRefs = new Set(history.flatMap((row) => row.refCode ?? []));
  const outboxRefs = new Set(outbox.map((row) => row.refCode));
  check(outboxRefs.size === outbox.length, "an outbox RefCode twice");
  const noRow = [...crossingRefs].filter((ref) => !outboxRefs.has(ref));
  const noCrossing = [...outboxRefs].filter((ref) => !crossingRefs.has(ref));
  check(noRow.length === 0, `crossings without an outbox row: ${sample(noRow)}`);
  check(noCrossing.length === 0, `outbox rows without a crossing: ${sample(noCrossing)}`);

  // The ledger, against the outbox.
  const ledger = await ledgerRefCodes(rig);
  const ledgerRefs = new Set(ledger);
  const lost = [...outboxRefs].filter((ref) => !ledgerRefs.has(ref));
  const invented = [...ledgerRefs].filter((ref) => !outboxRefs.has(ref));
  const duplicates = ledger.length - ledgerRefs.size;
  const deadLetters = await keepConnected(
    { urls: rig.dep.urls, giveUpAfterMs: 30_000 },
    (broker) => broker.messageCount(rig.dep.topo.deadLetterQueue),
  );
  const accounting = {
    sent: driver.sent.size,
    committed: history.length,
    unknown,
    unknownCommitted,
    crossings: crossingRefs.size,
    published: ledgerRefs.size,
    productionOrders: ledger.length,
    lost: lost.length,
    invented: invented.length,
    duplicates,
  };
  check(lost.length === 0, `lost: ${sample(lost)}`);
  check(invented.length === 0, `invented: ${sample(invented)}`);
  check(duplicates === 0, `duplicate production orders: ${duplicates}`);
  check(deadLetters === 0, `requests dead-lettered: ${deadLetters}`);
  return { accounting, problems };
}
