/**
 * Appending to a file so that what is said to be written is on disk: every byte written (a short
 * write is carried on, never taken for the whole), the file synced, and the folder synced too when
 * the file (or the folder) is new, so that the file's name survives a crash as well as its bytes.
 * An append that fails is rolled back: the file is cut back to where it ended before (removed if
 * it was new), so no torn line is ever left for a reader.
 *
 * @module
 */

import { dirname } from "node:path";

/** Why an append failed: the disk (or quota) is full, or another I/O error. */
export type DiskWriteFailure = "disk_full" | "write_failed";

/** An append that did not reach the disk; the file is as it was before it. */
export class DiskWriteError extends Error {
  /** `disk_full` (ENOSPC, EDQUOT) or `write_failed`. */
  readonly code: DiskWriteFailure;
  /** The file. */
  readonly path: string;

  /** Describes a failed append of `what` at `path`. */
  constructor(what: string, path: string, cause: unknown) {
    const osCode = (cause as { code?: unknown })?.code;
    const full = osCode === "ENOSPC" || osCode === "EDQUOT";
    super(
      `cannot write ${what} ${path}: ${full ? "the disk is full" : "the write failed"}`,
      { cause },
    );
    this.name = "DiskWriteError";
    this.code = full ? "disk_full" : "write_failed";
    this.path = path;
  }
}

/** The folders of `dir` and above that do not exist yet, deepest first. */
async function missingFolders(dir: string): Promise<string[]> {
  const missing: string[] = [];
  for (let current = dir;; current = dirname(current)) {
    try {
      await Deno.stat(current);
      return missing;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
      missing.push(current);
      if (dirname(current) === current) return missing;
    }
  }
}

async function syncFolder(dir: string): Promise<void> {
  using folder = await Deno.open(dir, { read: true });
  await folder.sync();
}

/**
 * One file being appended to, durably: {@linkcode DurableAppend.write} as often as needed, then
 * {@linkcode DurableAppend.commit} (synced) and {@linkcode DurableAppend.close}, or
 * {@linkcode DurableAppend.discard} (cut back to what it was, and closed).
 */
export class DurableAppend {
  readonly #file: Deno.FsFile;
  readonly #path: string;
  readonly #what: string;
  /** Where the file ended when it was opened. */
  readonly #start: number;
  /** Folders to sync at the commit: the file's, when it is new, and those above new folders. */
  readonly #folders: string[];
  readonly #created: boolean;
  #failed: DiskWriteError | undefined;
  #closed = false;

  private constructor(
    file: Deno.FsFile,
    path: string,
    what: string,
    start: number,
    folders: string[],
    created: boolean,
  ) {
    this.#file = file;
    this.#path = path;
    this.#what = what;
    this.#start = start;
    this.#folders = folders;
    this.#created = created;
  }

  /**
   * Opens `path` to append to, making it and its folders if missing; `what` names it in errors
   * (`"the archive"`).
   *
   * @throws {DiskWriteError} when it cannot be made or opened.
   */
  static async open(path: string, what: string): Promise<DurableAppend> {
    const dir = dirname(path);
    try {
      const newFolders = await missingFolders(dir);
      await Deno.mkdir(dir, { recursive: true });
      let file: Deno.FsFile;
      let created = true;
      try {
        file = await Deno.open(path, { append: true, createNew: true, write: true });
      } catch (error) {
        if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
        file = await Deno.open(path, { append: true, write: true });
        created = false;
      }
      const start = created ? 0 : (await file.stat()).size;
      const folders = new Set(newFolders.map((folder) => dirname(folder)));
      if (created) folders.add(dir);
      for (const folder of newFolders) folders.add(folder);
      return new DurableAppend(file, path, what, start, [...folders], created);
    } catch (error) {
      throw error instanceof DiskWriteError ? error : new DiskWriteError(what, path, error);
    }
  }

  /**
   * Appends every byte of `bytes` (carrying on after a short write).
   *
   * @throws {DiskWriteError} when the disk takes no more; the append is then failed for good.
   */
  async write(bytes: Uint8Array): Promise<void> {
    if (this.#failed) throw this.#failed;
    try {
      let offset = 0;
      while (offset < bytes.byteLength) {
        const n = await this.#file.write(bytes.subarray(offset));
        if (n <= 0) throw new Error(`the file took none of ${bytes.byteLength - offset} bytes`);
        offset += n;
      }
    } catch (error) {
      this.#failed = new DiskWriteError(this.#what, this.#path, error);
      throw this.#failed;
    }
  }

  /**
   * Syncs what was written, and the folders a new file or folder is in.
   *
   * @throws {DiskWriteError} when the sync fails (what was written may not be on disk).
   */
  async commit(): Promise<void> {
    if (this.#failed) throw this.#failed;
    try {
      await this.#file.sync();
      for (const folder of this.#folders) await syncFolder(folder);
    } catch (error) {
      this.#failed = new DiskWriteError(this.#what, this.#path, error);
      throw this.#failed;
    }
  }

  /**
   * Takes back everything written since it was opened (committed or not): the file is cut back
   * to its old end, or removed if it was new; then closed.
   *
   * @throws {DiskWriteError} when the file could not be put back as it was.
   */
  async discard(): Promise<void> {
    try {
      if (this.#created) {
        this.close();
        await Deno.remove(this.#path).catch((error) => {
          if (!(error instanceof Deno.errors.NotFound)) throw error;
        });
        await syncFolder(dirname(this.#path));
      } else {
        if (this.#closed) throw new Error("the file was closed before it was cut back");
        await this.#file.truncate(this.#start);
        await this.#file.sync();
        this.close();
      }
    } catch (error) {
      this.close();
      throw new DiskWriteError(this.#what, this.#path, error);
    }
  }

  /** Closes the file (once; closing again does nothing). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#file.close();
  }
}

/**
 * Appends `bytes` to `path` durably ({@linkcode DurableAppend}): all of it, synced, or nothing.
 *
 * @throws {DiskWriteError} when it could not; the file is then as it was.
 */
export async function appendDurably(path: string, what: string, bytes: Uint8Array): Promise<void> {
  const file = await DurableAppend.open(path, what);
  try {
    await file.write(bytes);
    await file.commit();
  } catch (error) {
    await file.discard().catch(() => {}); // the error says the append failed either way
    throw error;
  } finally {
    file.close();
  }
}
