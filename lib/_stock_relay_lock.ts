/**
 * The relay lock of a SQLite stock store (`<path>.relay.lock`): one relay per file, as the
 * ledger's lock file (_ledger_file_lock.ts) makes one OrdemDeProducao per ledger.
 *
 * @module
 */

import { FatalError } from "./errors.ts";

/**
 * Takes `<path>.relay.lock` and writes this process's name into it; the lock lasts until the
 * returned file is closed.
 *
 * @throws {FatalError} with code `relay_in_use`, naming the holder, when another relay has it.
 */
export async function lockRelay(path: string): Promise<Deno.FsFile> {
  const lockPath = `${path}.relay.lock`;
  const file = await Deno.open(lockPath, { read: true, write: true, create: true });
  if (!(await file.tryLock(true))) {
    const holder = (await Deno.readTextFile(lockPath).catch(() => "")).trim() || "unknown";
    file.close();
    throw new FatalError(
      `the outbox of the SQLite stock store ${path} is relayed by another process ` +
        `(${holder}); one relay per SQLite file: several relays need a PostgreSQL stock ` +
        `store (STOCK_URL=postgres://...)`,
      { code: "relay_in_use" },
    );
  }
  await file.truncate(0);
  await file.write(new TextEncoder().encode(`${Deno.hostname()}:${Deno.pid}\n`));
  return file;
}
