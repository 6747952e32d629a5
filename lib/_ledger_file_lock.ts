/**
 * The lock file beside a SQLite ledger (`<path>.lock`): one process per ledger file, the ledgers
 * one process opens sharing its lock.
 *
 * @module
 */

import { FatalError } from "./errors.ts";

interface HeldLock {
  readonly file: Deno.FsFile;
  users: number;
}

/** The lock files this process holds (or is taking), by path. */
const heldLocks = new Map<string, Promise<HeldLock>>();

async function acquire(path: string, lockPath: string, instanceId: string): Promise<HeldLock> {
  const file = await Deno.open(lockPath, { read: true, write: true, create: true });
  if (!(await file.tryLock(true))) {
    const holder = (await Deno.readTextFile(lockPath).catch(() => "")).trim() || "unknown";
    file.close();
    throw new FatalError(
      `the SQLite ledger ${path} is in use by another process (${holder}); several ` +
        `OrdemDeProducao instances need one shared PostgreSQL ledger: LEDGER_URL=postgres://…`,
      { code: "ledger_in_use" },
    );
  }
  await file.truncate(0);
  await file.write(new TextEncoder().encode(`${instanceId}\n`));
  return { file, users: 0 };
}

/**
 * Takes the process-wide lock on a ledger file (`<path>.lock`), so that two processes never share
 * one SQLite ledger (two OrdemDeProducao instances on one file, say several compose replicas
 * without a PostgreSQL ledger). Ledgers opened by one process share its lock. Returns the release.
 *
 * @throws {FatalError} with code `ledger_in_use`, naming the holder, when another process has it.
 */
export async function lockLedgerFile(path: string, instanceId: string): Promise<() => void> {
  const lockPath = `${path}.lock`;
  let taking = heldLocks.get(lockPath);
  if (taking === undefined) {
    taking = acquire(path, lockPath, instanceId);
    heldLocks.set(lockPath, taking);
    taking.catch(() => heldLocks.delete(lockPath));
  }
  const held = await taking;
  held.users++;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--held.users > 0) return;
    heldLocks.delete(lockPath);
    held.file.close(); // closing the file releases its lock
  };
}
