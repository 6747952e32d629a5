/**
 * The partition cases' report: one line per run, with the accounting, how long the flow stalled
 * after the fault and after the heal, what Estoque sent again and what else happened. The suite
 * prints it at the end and, with `FAULT_DOCS=1`, writes it into docs/guarantees.md between
 * `<!-- partitions:start -->` and `<!-- partitions:end -->` (faults/_report.ts).
 *
 * @module
 */

import type { Accounting } from "./_accounting.ts";

/** One run of a partition case. */
export interface PartitionRun {
  /** The case, e.g. `P1. services' node cut off for 20 s`. */
  readonly name: string;
  /** 1-based. */
  readonly run: number;
  /** The accounting, when the run got that far. */
  readonly accounting?: Accounting;
  /** Consumers alive at the end, e.g. `3/3`. */
  readonly alive?: string;
  /** The longest stall of the ledger from the fault to the heal, in ms. */
  readonly afterFault?: number;
  /** The longest stall of the ledger from the heal until it was complete, in ms. */
  readonly afterHeal?: number;
  /** Publishes Estoque sent again. */
  readonly resent?: number;
  /** Anything else worth knowing (a measured link, a hung node, a replay run twice). */
  readonly notes: readonly string[];
  /** Why the run failed; undefined when it passed. */
  readonly failure?: string;
}

/** Targets: the flow resumes on the majority within 10 s of the fault and 5 s of the heal. */
export const TARGETS = { afterFaultMs: 10_000, afterHealMs: 5_000 } as const;

const runs: PartitionRun[] = [];
let settings = "";

/**
 * The settings the runs were made with (the cluster's `net_ticktime`, the services' heartbeat),
 * said above the table.
 */
export function reportPartitionSettings(text: string): void {
  settings = text;
}

/** Adds a run to the report. */
export function reportPartitionRun(run: PartitionRun): void {
  runs.push(run);
}

/** Whether any partition run was reported. */
export function hasPartitionRuns(): boolean {
  return runs.length > 0;
}

function seconds(ms: number | undefined): string {
  return ms === undefined ? "-" : `${(ms / 1000).toFixed(2)} s`;
}

/** The table: the settings, then a line per run, the cases in order. */
export function formatPartitionReport(): string {
  const lines = [
    ...(settings ? [settings, ""] : []),
    "| case | run | orders | production orders | dead letters | lost | duplicate orders | consumers alive | flow stalled after the fault | after the heal | Estoque resent | notes |",
    "| ---- | --: | -----: | ----------------: | -----------: | ---: | ---------------: | :-------------: | ---------------------------: | -------------: | -------------: | ----- |",
  ];
  const sorted = [...runs].sort((a, b) => a.name.localeCompare(b.name) || a.run - b.run);
  for (const r of sorted) {
    const a = r.accounting;
    const notes = [...(r.failure ? [`**FAILED**: ${r.failure}`] : []), ...r.notes]
      .join("; ").replaceAll("|", "\\|").replaceAll("\n", " ");
    lines.push(
      `| ${r.name} | ${r.run} | ${a?.orders ?? "-"} | ${a?.inLedger ?? "-"} | ${
        a?.inDlq ?? "-"
      } | ${a ? 0 : "-"} | ${a ? 0 : "-"} | ${r.alive ?? "-"} | ${seconds(r.afterFault)} | ${
        seconds(r.afterHeal)
      } | ${r.resent ?? "-"} | ${notes} |`,
    );
  }
  return lines.join("\n");
}
