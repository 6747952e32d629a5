/**
 * A tiny disk for tests of what happens when a disk fills: a tmpfs of a few kilobytes mounted on a
 * fresh temporary directory (needs root), and a way to fill it. Unmounted and removed afterwards.
 *
 * @module
 */

/** A mounted tmpfs, unmounted and removed when disposed. */
export interface TinyDisk extends AsyncDisposable {
  /** Where it is mounted. */
  readonly path: string;
}

async function run(command: string, args: string[]): Promise<void> {
  const { code, stderr } = await new Deno.Command(command, { args, stderr: "piped" }).output();
  if (code !== 0) {
    throw new Error(`${command} ${args.join(" ")}: ${new TextDecoder().decode(stderr).trim()}`);
  }
}

/**
 * Mounts a tmpfs of `sizeKiB` on a new temporary directory. Fails (it does not skip) when it
 * cannot: the tests that need it are about a disk that really fills.
 */
export async function tinyDisk(sizeKiB = 256): Promise<TinyDisk> {
  const path = await Deno.makeTempDir({ prefix: "productionorder-tiny-disk-" });
  try {
    await run("mount", ["-t", "tmpfs", "-o", `size=${sizeKiB}k`, "tmpfs", path]);
  } catch (error) {
    await Deno.remove(path);
    throw error;
  }
  return {
    path,
    async [Symbol.asyncDispose]() {
      await run("umount", [path]);
      await Deno.remove(path);
    },
  };
}

/**
 * Fills the disk a file `path` is on, by appending zeros to `path` until the disk refuses more.
 * Returns how many bytes went in.
 */
export async function fillDisk(path: string): Promise<number> {
  await using file = await Deno.open(path, { append: true, create: true, write: true });
  const chunk = new Uint8Array(4096);
  let written = 0;
  while (true) {
    try {
      const n = await file.write(chunk);
      written += n;
      if (n < chunk.byteLength) continue; // the next write meets the full disk
    } catch (error) {
      if ((error as { code?: string }).code === "ENOSPC") return written;
      throw error;
    }
  }
}
