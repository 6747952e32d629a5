/**
 * A throwaway PostgreSQL for tests that stop the database for real (scripts/pg_scratch.sh): its
 * own data folder and a free port on 127.0.0.1, removed afterwards.
 *
 * @module
 */

import { join } from "node:path";
import pg from "pg";

const script = new URL("../scripts/pg_scratch.sh", import.meta.url).pathname;

async function run(...args: string[]): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command("bash", {
    args: [script, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  if (code !== 0) throw new Error(`pg_scratch.sh ${args[0]}: ${text.decode(stderr).trim()}`);
  return text.decode(stdout).trim();
}

/** A port nothing listens on now. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** A running throwaway PostgreSQL. */
export interface ScratchPostgres extends AsyncDisposable {
  /** Its URL (user postgres, database test, trust authentication). */
  readonly url: string;
  /** Stops it: `immediate` (a crash, as far as clients can tell), `fast` or `smart`. */
  stop(mode: "immediate" | "fast" | "smart"): Promise<void>;
  /** Starts it again after a stop; resolves once it accepts connections. */
  start(): Promise<void>;
}

/** Creates and starts a throwaway PostgreSQL; dispose of it to stop it and delete its data. */
export async function scratchPostgres(): Promise<ScratchPostgres> {
  const parent = await Deno.makeTempDir({ prefix: "productionorder-pg-" });
  await Deno.chmod(parent, 0o755); // the server runs as the postgres user
  const dir = join(parent, "data");
  const url = await run("up", dir, String(freePort()));
  return {
    url,
    stop: (mode) => run("stop", dir, mode).then(() => {}),
    start: () => run("start", dir).then(() => {}),
    [Symbol.asyncDispose]: async () => {
      await run("down", dir);
      await Deno.remove(join(dir, ".."), { recursive: true }).catch(() => {});
    },
  };
}

/** A client of the PostgreSQL at `url` (its `search_path` parameter dropped), for suites. */
export async function postgresClient(url: string): Promise<pg.Client & AsyncDisposable> {
  const target = new URL(url);
  target.searchParams.delete("search_path");
  const client = new pg.Client({ connectionString: target.href });
  client.on("error", () => {}); // a server going away fails the query under way instead
  await client.connect();
  return Object.assign(client, { [Symbol.asyncDispose]: () => client.end() });
}

/** Drops a schema a test or a suite made, with everything in it. */
export async function dropSchema(url: string, schema: string): Promise<void> {
  await using client = await postgresClient(url);
  await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
}
