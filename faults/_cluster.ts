/**
 * The brokers of the fault suite: the system broker's connections closed as an operator would,
 * and the throwaway 3-node cluster of scripts/cluster.sh.
 *
 * @module
 */

import { join } from "node:path";
import { RABBITMQ_URL } from "../testing/broker.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** The system broker. */
export const LOCAL_URL = RABBITMQ_URL;

/**
 * Closes the system broker's connections named `connectionName` (as `rabbitmqctl
 * close_connection` does for an operator); resolves with how many it closed.
 */
export async function closeConnections(connectionName: string): Promise<number> {
  const run = async (args: string[]) => {
    const { code, stdout, stderr } = await new Deno.Command("rabbitmqctl", {
      args,
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (code !== 0) {
      throw new Error(`rabbitmqctl ${args[0]} failed: ${new TextDecoder().decode(stderr)}`);
    }
    return new TextDecoder().decode(stdout);
  };
  // Lines of `<pid>\t[{"connection_name","name"},...]`.
  const listing = await run([
    "list_connections",
    "pid",
    "client_properties",
    "-q",
    "--no-table-headers",
  ]);
  let closed = 0;
  for (const line of listing.split("\n")) {
    const [pid, properties] = line.split("\t");
    if (!pid || !properties?.includes(`{"connection_name","${connectionName}"}`)) continue;
    await run(["close_connection", pid, "fault injection"]);
    closed++;
  }
  return closed;
}

/** Where `scripts/cluster.sh` keeps the cluster (its TLS files are in `tls/`). */
export const CLUSTER_DIR = Deno.env.get("CLUSTER_DIR") ?? "/tmp/productionorder-cluster";

/** Runs `scripts/cluster.sh` with `args`; resolves with what it printed, throws if it failed. */
export async function cluster(...args: string[]): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command("bash", {
    args: [join(ROOT, "scripts/cluster.sh"), ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(stdout).trim();
  if (code !== 0) {
    throw new Error(`cluster.sh ${args.join(" ")} failed: ${new TextDecoder().decode(stderr)}`);
  }
  return text;
}
