// appendDurably() on a disk that fills mid-line, through the audit trail, is in audit_test.ts;
// through the purge's archive in dead_letter_ops_test.ts. Here DurableAppend's own steps.
import { strict as assert } from "node:assert";
import { join } from "node:path";
import { appendDurably, DiskWriteError, DurableAppend } from "../lib/_durable_append.ts";
import { tempDir } from "../testing/broker.ts";
import { fillDisk, tinyDisk } from "../testing/disk.ts";

const encoder = new TextEncoder();
const bytes = (text: string) => encoder.encode(text);

/** An archive that holds a line already ("kept\n"), in a temporary directory removed at the end. */
async function keptArchive(): Promise<{ readonly path: string } & AsyncDisposable> {
  const dir = await tempDir();
  const path = join(dir.path, "archive.jsonl");
  await Deno.writeTextFile(path, "kept\n");
  return { path, [Symbol.asyncDispose]: () => dir[Symbol.asyncDispose]() };
}

Deno.test("DiskWriteError calls a full disk or quota disk_full and any other failure write_failed, keeping the cause", () => {
  const cases: [unknown, "disk_full" | "write_failed", string][] = [
    [
      Object.assign(new Error("No space left on device"), { code: "ENOSPC" }),
      "disk_full",
      "the disk is full",
    ],
    [{ code: "EDQUOT" }, "disk_full", "the disk is full"],
    [
      Object.assign(new Error("Input/output error"), { code: "EIO" }),
      "write_failed",
      "the write failed",
    ],
    [new Error("no code"), "write_failed", "the write failed"],
    [undefined, "write_failed", "the write failed"],
    ["ENOSPC", "write_failed", "the write failed"],
  ];
  for (const [cause, code, words] of cases) {
    const error = new DiskWriteError("the archive", "/data/archive.jsonl", cause);
    assert.deepEqual(
      [error.name, error.code, error.path, error.message, error.cause],
      [
        "DiskWriteError",
        code,
        "/data/archive.jsonl",
        `cannot write the archive /data/archive.jsonl: ${words}`,
        cause,
      ],
    );
  }
});

Deno.test("DurableAppend.open() makes the file and the folders above it, empty until written", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "a", "b", "archive.jsonl");
  const file = await DurableAppend.open(path, "the archive");
  try {
    assert.equal((await Deno.stat(path)).size, 0);
    await file.write(bytes("one\n"));
    await file.write(bytes(""));
    await file.write(bytes("two\n"));
    await file.commit();
  } finally {
    file.close();
  }
  assert.equal(await Deno.readTextFile(path), "one\ntwo\n");
});

Deno.test("DurableAppend appends after what the file held, and discard() cuts it back there, committed or not", async () => {
  await using archive = await keptArchive();
  const path = archive.path;
  const committed = await DurableAppend.open(path, "the archive");
  await committed.write(bytes("first\n"));
  await committed.commit();
  await committed.write(bytes("second, half"));
  assert.equal(await Deno.readTextFile(path), "kept\nfirst\nsecond, half");
  await committed.discard();
  assert.equal(await Deno.readTextFile(path), "kept\n");
  // A later append starts from there.
  await appendDurably(path, "the archive", bytes("next\n"));
  assert.equal(await Deno.readTextFile(path), "kept\nnext\n");
});

Deno.test("DurableAppend.discard() removes a file it made, and leaves the folders", async () => {
  await using dir = await tempDir();
  const folder = join(dir.path, "new");
  const path = join(folder, "archive.jsonl");
  const file = await DurableAppend.open(path, "the archive");
  await file.write(bytes("line\n"));
  await file.commit();
  await file.discard();
  await assert.rejects(Deno.stat(path), Deno.errors.NotFound);
  assert.ok((await Deno.stat(folder)).isDirectory);
  file.close(); // closed already: nothing happens
});

Deno.test("DurableAppend.close() closes once; discard() of a file it did not make fails once closed", async () => {
  await using archive = await keptArchive();
  const file = await DurableAppend.open(archive.path, "the archive");
  await file.write(bytes("more\n"));
  file.close();
  file.close();
  const error = await file.discard().then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof DiskWriteError, String(error));
  assert.equal(error.code, "write_failed");
  assert.match(String((error.cause as Error).message), /closed before it was cut back/);
});

Deno.test("DurableAppend.open() fails as a DiskWriteError naming what and where, when the file cannot be made", async () => {
  await using dir = await tempDir();
  const blocker = join(dir.path, "a-file");
  await Deno.writeTextFile(blocker, "");
  const under = join(blocker, "archive.jsonl");
  const error = await DurableAppend.open(under, "the archive").then(
    (file) => (file.close(), undefined),
    (e: unknown) => e,
  );
  assert.ok(error instanceof DiskWriteError, String(error));
  assert.deepEqual([error.code, error.path], ["write_failed", under]);
  assert.equal(error.message, `cannot write the archive ${under}: the write failed`);
  // A folder where the file should be.
  const folder = join(dir.path, "a-folder");
  await Deno.mkdir(folder);
  await assert.rejects(DurableAppend.open(folder, "the trail"), DiskWriteError);
});

Deno.test("DurableAppend on a full disk fails for good at the first refused write, and discard() leaves the file as it was", async () => {
  await using disk = await tinyDisk(64);
  const path = join(disk.path, "archive.jsonl");
  await Deno.writeTextFile(path, "kept\n");
  await fillDisk(join(disk.path, "filler"));
  const file = await DurableAppend.open(path, "the archive");
  const big = new Uint8Array(64 * 1024).fill(0x61);
  const refused = await file.write(big).then(() => undefined, (e: unknown) => e);
  assert.ok(refused instanceof DiskWriteError, String(refused));
  assert.equal(refused.code, "disk_full");
  // Room again, yet the append stays failed: its bytes are not known to be whole.
  await Deno.remove(join(disk.path, "filler"));
  await assert.rejects(file.write(bytes("x")), (e) => e === refused);
  await assert.rejects(file.commit(), (e) => e === refused);
  await file.discard();
  assert.equal(await Deno.readTextFile(path), "kept\n");
});

Deno.test("appendDurably() makes the file and writes every byte, and adds to it the next time", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "trail", "audit.jsonl");
  const large = "y".repeat(1024 * 1024);
  await appendDurably(path, "the audit trail", bytes(`${large}\n`));
  await appendDurably(path, "the audit trail", bytes("two\n"));
  assert.equal(await Deno.readTextFile(path), `${large}\ntwo\n`);
});
