/**
 * The outbox cases' report: a line per run, with what the store committed, what reached the
 * ledger, and what each fault did. faults/outbox.ts prints it after its cases and, with
 * `FAULT_DOCS=1`, writes it into docs/outbox.md between `<!-- outbox-faults:start -->` and
 * `<!-- outbox-faults:end -->` (scripts/doc_block.ts, as the suite's other tables are written).
 *
 * @module
 */

import { writeDocBlock } from "../scripts/doc_block.ts";
import type { OutboxAccounting } from "./_outbox_accounting.ts";

/** One run of an outbox case. */
export interface OutboxRun {
  /** The case, e.g. `o1. Estoque kill -9 (x3)`. */
  readonly name: string;
  /** 1-based. */
  readonly run: number;
  /** The stock store: `PostgreSQL` or `SQLite`. */
  readonly store: string;
  /** The accounting, when the run got that far. */
  readonly accounting?: OutboxAccounting;
  /** Copies OrdemDeProducao took as duplicates (a request published again). */
  readonly copies?: number;
  /** Processes alive at the end, of those that should be, e.g. `2/2`. */
  readonly alive?: string;
  /** What the faults did. */
  readonly notes: readonly string[];
  /** How long the run took, in ms. */
  readonly ms: number;
  /** Why the run failed; undefined when it passed. */
  readonly failure?: string;
}

const runs: OutboxRun[] = [];

/** Adds a run to the report. */
export function reportOutboxRun(run: OutboxRun): void {
  runs.push(run);
}

/** Whether any run was reported. */
export function hasOutboxRuns(): boolean {
  return runs.length > 0;
}

/** The table: a line per run, the cases in order. */
export function formatOutboxReport(): string {
  const lines = [
    "| case | run | store | movements committed (sent) | calls failed: applied / not | crossings committed | requests in the ledger | lost | invented | duplicate orders | copies absorbed | alive | took | faults |",
    "| ---- | --: | ----- | -------------------------: | --------------------------: | ------------------: | ---------------------: | ---: | -------: | ---------------: | --------------: | :---: | ---: | ------ |",
  ];
  const sorted = [...runs].sort((a, b) => a.name.localeCompare(b.name) || a.run - b.run);
  for (const r of sorted) {
    const a = r.accounting;
    const notes = [...(r.failure ? [`**FAILED**: ${r.failure}`] : []), ...r.notes]
      .join("; ").replaceAll("|", "\\|").replaceAll("\n", " ");
    const cells = a === undefined ? Array(8).fill("-") : [
      `${a.committed} (${a.sent})`,
      `${a.unknownCommitted} / ${a.unknown - a.unknownCommitted}`,
      a.crossings,
      a.published,
      a.lost,
      a.invented,
      a.duplicates,
      r.copies ?? "-",
    ];
    lines.push(
      `| ${
        [r.name, r.run, r.store, ...cells, r.alive ?? "-", `${(r.ms / 1000).toFixed(1)} s`, notes]
          .join(" | ")
      } |`,
    );
  }
  return lines.join("\n");
}

/**
 * Prints the table and, with `FAULT_DOCS=1`, writes it into docs/outbox.md with the date and
 * what the runs were.
 */
export async function printOutboxReport(what: string): Promise<void> {
  const table = formatOutboxReport();
  console.log(`\nThe outbox under faults (${what}):\n`);
  console.log(table);
  if (Deno.env.get("FAULT_DOCS")) {
    const date = new Date().toISOString().slice(0, 10);
    await writeDocBlock("outbox.md", "outbox-faults", `Last run: ${date}, ${what}.\n\n${table}`);
  }
}
