/**
 * The brokers of the fault suite: the system broker's connections closed as an operator would,
 * and the throwaway 3-node cluster of scripts/cluster.sh.
 *
 * @module
 */

import { join } from "node:path";
import { RABBITMQ_URL } from "../testing/broker.ts";
import { closeConnectionsNamed, DEFAULT_BROKER } from "../testing/other_brokers.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** The system broker. */
export const LOCAL_URL = RABBITMQ_URL;

/**
 * Closes the system broker's connections named `connectionName` from the broker's side (as
 * `rabbitmqctl close_connection` does for an operator), through its management API
 * (`RABBITMQ_MANAGEMENT_URL`), so it works on whichever broker `RABBITMQ_URL` names; resolves
 * with how many it closed.
 */
export function closeConnections(connectionName: string): Promise<number> {
  return closeConnectionsNamed(DEFAULT_BROKER, connectionName);
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
