import { strict as assert } from "node:assert";
import type { DatabaseSync } from "node:sqlite";
import { sqliteWriterHandler } from "../lib/_sqlite_worker.ts";

type Request =
  | { readonly kind: "open"; readonly id: number; readonly path: string }
  | { readonly kind: "close"; readonly id: number }
  | { readonly kind: "run"; readonly id: number; readonly fail?: string };

/** A writer that answers a run with the journal mode its database was opened with. */
class FakeWriter {
  closed = false;
  constructor(readonly db: DatabaseSync) {}
  run(fail: string | undefined): string[] {
    if (fail !== undefined) throw new Error(fail);
    const row = this.db.prepare("PRAGMA journal_mode").get() as { journal_mode: string };
    return [row.journal_mode];
  }
  close(): void {
    this.closed = true;
    this.db.close();
  }
}

function handler(writers: FakeWriter[]) {
  return sqliteWriterHandler<Request, FakeWriter, string>({
    what: "the test worker",
    open: (db) => {
      const writer = new FakeWriter(db);
      writers.push(writer);
      return writer;
    },
    run: (writer, request) => writer.run(request.fail),
  });
}

Deno.test("sqliteWriterHandler() answers a request before open with its failure", () => {
  const handle = handler([]);
  assert.deepEqual(handle({ kind: "run", id: 1 }), {
    id: 1,
    error: "the test worker was not opened",
  });
});

Deno.test("sqliteWriterHandler() opens the writer on the file, runs on it and closes it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const writers: FakeWriter[] = [];
    const handle = handler(writers);
    assert.deepEqual(handle({ kind: "open", id: 1, path: `${dir}/test.db` }), {
      id: 1,
      results: [],
    });
    // Opened with the ledger's settings (openDatabase): WAL.
    assert.deepEqual(handle({ kind: "run", id: 2 }), { id: 2, results: ["wal"] });
    assert.deepEqual(handle({ kind: "close", id: 3 }), { id: 3, closed: true });
    assert.deepEqual(writers.map((writer) => writer.closed), [true]);
    assert.deepEqual(handle({ kind: "run", id: 4 }), {
      id: 4,
      error: "the test worker was not opened",
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sqliteWriterHandler() answers an outage with its code, another failure without", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const writers: FakeWriter[] = [];
    const handle = handler(writers);
    handle({ kind: "open", id: 1, path: `${dir}/test.db` });
    assert.deepEqual(handle({ kind: "run", id: 2, fail: "database or disk is full" }), {
      id: 2,
      error: "database or disk is full",
      unavailable: "full",
    });
    assert.deepEqual(handle({ kind: "run", id: 3, fail: "constraint failed" }), {
      id: 3,
      error: "constraint failed",
    });
    handle({ kind: "close", id: 4 });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
