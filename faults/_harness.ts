/**
 * The fault-injection harness: how a case is registered and selected, runs on its deployment with a
 * watch on its ledger, and is cleaned up whatever happened, and the load every case publishes. Its
 * pieces: _brokers.ts (the brokers), _deployment.ts (the deployment and its services as
 * subprocesses), _load.ts (the mixed load), _accounting.ts (stalls, settling and the accounting
 * every case ends with) and _report.ts (the table printed at the end).
 *
 * @module
 */

import { type Accounting, closeReader, ProgressWatch } from "./_accounting.ts";
import { type Deployment, keepLog, removeDeployment, type Service } from "./_deployment.ts";

/**
 * Orders per case (`FAULT_ORDERS`).
 * @default {3000}
 */
export const ORDERS = Number(Deno.env.get("FAULT_ORDERS") ?? 3_000);

/**
 * Orders published per second (`FAULT_RATE`); cases that need a longer run publish a fraction.
 * @default {600}
 */
export const RATE = Number(Deno.env.get("FAULT_RATE") ?? 600);

/** `FAULT_CASES=2,3` runs only those cases. */
const CASES = Deno.env.get("FAULT_CASES")?.split(",").map((c) => c.trim());

/**
 * The partition cases (faults/partition.ts), and only them: `--partitions` after the test files
 * (`deno task test:faults -- --partitions`) or `FAULT_PARTITIONS=1`. They take about half an hour,
 * so the suite runs them only when asked (or when `FAULT_CASES` names one).
 */
export const PARTITIONS = Deno.args.includes("--partitions") ||
  ["1", "true"].includes(Deno.env.get("FAULT_PARTITIONS") ?? "");

/** Whether the case `id` runs (every case but the partition ones when `FAULT_CASES` is unset). */
export function selected(id: string): boolean {
  return CASES === undefined ? !PARTITIONS : CASES.includes(id);
}

/** Whether the partition case `id` runs: with {@linkcode PARTITIONS}, or named in `FAULT_CASES`. */
export function partitionSelected(id: string): boolean {
  return CASES === undefined ? PARTITIONS : CASES.includes(id);
}

/** Registers the case `id` as a test of its own, ignored unless {@linkcode selected}. */
export function faultCase(id: string, name: string, fn: () => Promise<void>): void {
  Deno.test({ name, ignore: !selected(id), fn });
}

/** With `FAULT_DEBUG` set, prints a step of a case with the time. */
export function step(what: string): void {
  if (Deno.env.get("FAULT_DEBUG")) console.error(`${new Date().toISOString()} ${what}`);
}

/** A point `share` of the way through the `valid` orders of a load. */
export function validAt(share: number, valid: number): number {
  return Math.max(1, Math.floor(valid * share));
}

/** How many of `services` are running, of how many: `3/3`. */
export function aliveOf(services: readonly Service[]): string {
  return `${services.filter((s) => s.running).length}/${services.length}`;
}

/** How the production orders spread across instances, e.g. `ordem-1 801, ordem-2 799`. */
export function spreadOf(accounting: Accounting): string {
  return Object.entries(accounting.byInstance).sort().map(([id, n]) => `${id} ${n}`).join(", ");
}

/**
 * Runs a case's body with a {@linkcode ProgressWatch} on its ledger; then, whatever happened,
 * kills its services (keeping their logs if it failed), runs `cleanup` and removes the deployment.
 */
export async function runCase(
  dep: Deployment,
  services: readonly Service[],
  body: (watch: ProgressWatch) => Promise<void>,
  cleanup?: () => Promise<void>,
): Promise<void> {
  const watch = new ProgressWatch(dep);
  try {
    await body(watch);
  } catch (error) {
    for (const service of services) keepLog(service);
    throw error;
  } finally {
    watch.stop();
    for (const service of services) await service.kill();
    await cleanup?.();
    await closeReader(dep);
    await removeDeployment(dep);
  }
}
