/**
 * The audit trail on a real disk that fills: an entry is written whole and synced, or the append
 * fails and leaves the trail as it was (no torn line).
 */

import { strict as assert } from "node:assert";
import { join } from "node:path";
import { appendAudit, type AuditEntry } from "../lib/audit.ts";
import { fillDisk, tinyDisk } from "../testing/disk.ts";

const entry: AuditEntry = {
  at: "2026-11-24T12:00:00.000Z",
  who: "ops@host",
  action: "purge",
  dryRun: false,
  queue: "orders.dlx",
  filter: { reason: "invalid", limit: 10 },
  counts: { total: 20, matched: 10, done: 10, failed: 0, left: 10 },
  file: "data/dlq-archive/orders.dlx-2026-11-24T12-00-00-000Z.jsonl",
};

Deno.test("appendAudit() on a disk that fills fails, and leaves the trail as it was: no torn line", async () => {
  await using disk = await tinyDisk(64);
  const path = join(disk.path, "audit.jsonl");
  // A trail whose last page has a few bytes free, on a disk with no free page: the next entry
  // can be written only in part (a short write).
  const bare = JSON.stringify({ ...entry, who: "" }).length;
  const before = `${JSON.stringify({ ...entry, who: "x".repeat(4096 - 100 - 1 - bare) })}\n`;
  assert.equal(before.length, 4096 - 100);
  await Deno.writeTextFile(path, before);
  await fillDisk(join(disk.path, "filler"));
  const error = await appendAudit(path, entry).then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof Error, "the append said it was done");
  assert.equal((error as { code?: string }).code, "disk_full", String(error));
  assert.equal(await Deno.readTextFile(path), before);
});

Deno.test("appendAudit() writes one whole line per entry, creating the file and its folder", async () => {
  await using disk = await tinyDisk(64);
  const path = join(disk.path, "nested", "audit.jsonl");
  await appendAudit(path, entry);
  await appendAudit(path, { ...entry, dryRun: true });
  const lines = (await Deno.readTextFile(path)).split("\n");
  assert.equal(lines.pop(), "");
  assert.deepEqual(lines.map((l) => JSON.parse(l).dryRun), [false, true]);
});
