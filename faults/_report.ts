/**
 * The report the fault suite prints at the end: each case adds its line, and the module run as the
 * test file (faults/suite.ts, or one family's file run alone) prints the table.
 *
 * @module
 */

import { writeDocBlock } from "../scripts/doc_block.ts";
import { type CaseReport, formatReport } from "./_accounting.ts";
import { BROKER_LINE } from "./_brokers.ts";
import { ORDERS, RATE } from "./_harness.ts";
import { formatPartitionReport, hasPartitionRuns } from "./_partition_report.ts";

const reports: CaseReport[] = [];

/** Adds a case's line to the report. */
export function report(line: CaseReport): void {
  reports.push(line);
}

/**
 * Registers the test that prints the report, when `moduleUrl` (the caller's `import.meta.url`) is
 * the test file `deno test` runs, so that it comes after every case of that file. With
 * `FAULT_DOCS=1` the table goes into docs/guarantees.md: its `faults` block on RabbitMQ 3.10, its
 * `faults-<line>` block (e.g. `faults-4.3`) on another line; the partition cases' table goes into
 * its `partitions` block on 3.10, its `partitions-<line>` block on another line.
 */
export function reportTest(moduleUrl: string): void {
  if (moduleUrl !== Deno.mainModule) return;
  Deno.test("report", async () => {
    const date = new Date().toISOString().slice(0, 10);
    if (reports.length > 0 || !hasPartitionRuns()) {
      const table = formatReport(reports.sort((a, b) => a.name.localeCompare(b.name)));
      const what = `RabbitMQ ${BROKER_LINE}, ${ORDERS} orders per case at ${RATE}/s`;
      console.log(`\nFault-injection report (${what}):\n`);
      console.log(table);
      if (Deno.env.get("FAULT_DOCS") && reports.length > 0) {
        const block = BROKER_LINE === "3.10" ? "faults" : `faults-${BROKER_LINE}`;
        await writeDocBlock("guarantees.md", block, `Last run: ${date}.\n\n${table}`);
      }
    }
    if (hasPartitionRuns()) {
      // The partition cases run on their own cluster of the line.
      const table = formatPartitionReport();
      console.log(`\nNetwork partitions (RabbitMQ ${BROKER_LINE}, ${ORDERS} orders per case):\n`);
      console.log(table);
      if (Deno.env.get("FAULT_DOCS")) {
        const block = BROKER_LINE === "3.10" ? "partitions" : `partitions-${BROKER_LINE}`;
        await writeDocBlock("guarantees.md", block, `Last run: ${date}.\n\n${table}`);
      }
    }
  });
}
