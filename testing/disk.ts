/**
 * Small disks of a test's own, for what happens when a disk refuses writes (all need root; a
 * test that cannot mount one fails, it does not skip: it is about a real file system).
 *
 * - {@linkcode tinyDisk}: a tmpfs of a few kilobytes, and {@linkcode fillDisk} to fill it to its
 *   last byte (ENOSPC), and emptied again by removing the file.
 * - {@linkcode mountExt4}: an ext4 image the kernel turns read-only under open files.
 *
 * @module
 */

import { join } from "node:path";

/** A mounted tmpfs, unmounted and removed when disposed. */
export interface TinyDisk extends AsyncDisposable {
  /** Where it is mounted. */
  readonly path: string;
}

async function run(command: string, args: string[], ok = [0]): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command(command, {
    args,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!ok.includes(code)) {
    throw new Error(
      `${command} ${args.join(" ")} failed (${code}): ${new TextDecoder().decode(stderr).trim()}` +
        " (these disks need root)",
    );
  }
  return new TextDecoder().decode(stdout).trim();
}

/** Mounts a tmpfs of `sizeKiB` on a new temporary directory. */
export async function tinyDisk(sizeKiB = 256): Promise<TinyDisk> {
  const path = await Deno.makeTempDir({ prefix: "productionorder-tiny-disk-" });
  try {
    await run("mount", ["-t", "tmpfs", "-o", `size=${sizeKiB}k,mode=0755`, "tmpfs", path]);
  } catch (error) {
    await Deno.remove(path);
    throw error;
  }
  return {
    path,
    async [Symbol.asyncDispose]() {
      await run("umount", ["-l", path]);
      await Deno.remove(path, { recursive: true });
    },
  };
}

/**
 * Fills the disk a file `path` is on to its last byte, by appending to `path` (big writes first,
 * then smaller ones down to single bytes) until the disk refuses more. Returns how many bytes went
 * in; removing `path` makes the room again.
 */
export async function fillDisk(path: string): Promise<number> {
  await using file = await Deno.open(path, { append: true, create: true, write: true });
  let written = 0;
  for (let size = 64 * 1024; size >= 1; size = Math.floor(size / 4)) {
    const chunk = new Uint8Array(size);
    while (true) {
      try {
        const n = await file.write(chunk);
        written += n;
        if (n < size) break;
      } catch (error) {
        if ((error as { code?: string }).code === "ENOSPC") break;
        throw error;
      }
    }
  }
  return written;
}

/**
 * An ext4 image on a loop device that the kernel turns read-only under open files, as it does
 * after an error (`errors=remount-ro`; EROFS on every write). Linux does not remount a file system
 * read-only while files on it are open for writing (EBUSY), as a ledger's are, so an error is the
 * only way there; and it stays read-only until unmounted, so the ledger must be closed, the disk
 * repaired (`e2fsck`) and mounted again.
 */
export interface Ext4Disk extends AsyncDisposable {
  /** Where it is mounted. */
  readonly path: string;
  /**
   * Makes the kernel turn the file system read-only, as after an error: every write to it fails
   * with EROFS from then on, to files already open too.
   */
  failReadOnly(): Promise<void>;
  /** Whether the file system is read-only now. */
  readOnly(): Promise<boolean>;
  /**
   * Unmounts it (close what is open on it first), repairs it with `e2fsck` and mounts it again,
   * writable.
   */
  repair(): Promise<void>;
}

/** Makes an ext4 image of `sizeMiB` mebibytes and mounts it on a new temporary directory. */
export async function mountExt4(sizeMiB: number): Promise<Ext4Disk> {
  const dir = await Deno.makeTempDir({ prefix: "productionorder-ext4-" });
  const image = join(dir, "disk.img");
  const path = join(dir, "mnt");
  await Deno.mkdir(path);
  const mount = () => run("mount", ["-o", "loop,errors=remount-ro", image, path]);
  try {
    await (await Deno.create(image)).truncate(sizeMiB * 1024 * 1024);
    // No journal: an error then turns it read-only without aborting a journal.
    await run("mkfs.ext4", ["-q", "-F", "-O", "^has_journal", image]);
    await mount();
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
  const device = () => run("findmnt", ["-n", "-o", "SOURCE", path]);
  return {
    path,
    async failReadOnly() {
      const name = (await device()).replace(/^\/dev\//, "");
      await Deno.writeTextFile(`/sys/fs/ext4/${name}/trigger_fs_error`, "test: read-only\n");
    },
    async readOnly() {
      try {
        await Deno.writeTextFile(join(path, ".writable"), "");
        return false;
      } catch (error) {
        if ((error as { code?: string }).code === "EROFS") return true;
        throw error;
      }
    },
    async repair() {
      await run("umount", [path]);
      await run("e2fsck", ["-f", "-y", image], [0, 1]); // 1: errors were fixed
      await mount();
    },
    async [Symbol.asyncDispose]() {
      await run("umount", ["-l", path]).catch(() => {});
      await Deno.remove(dir, { recursive: true });
    },
  };
}
