/**
 * The brokers of the fault suite, on the RabbitMQ line `FAULT_BROKER` names (`3.10`, the default;
 * `4.0`; `4.3`): the single node most cases run on, its connections closed as an operator would,
 * and the throwaway 3-node clusters of the same line: `scripts/cluster.sh` (on loopback) and
 * `scripts/partition_cluster.sh` (in network namespaces, faults/_partitions.ts).
 *
 * - `3.10`: the broker of `RABBITMQ_URL` and `RABBITMQ_MANAGEMENT_URL` (default: the machine's);
 *   the cluster runs the machine's binaries.
 * - `4.0`, `4.3`: the broker of `RABBITMQ_URL_4_x` and `RABBITMQ_MANAGEMENT_URL_4_x` (default: the
 *   node `scripts/services.sh` runs in its 4.x chroot, testing/other_brokers.ts); the clusters run
 *   that chroot's binaries.
 *
 * The services run on the ttl retry backend on every line: no cluster has the delayed-message
 * plugin, and 4.3 has none at all.
 *
 * @module
 */

import { join } from "node:path";
import {
  type BrokerUnderTest,
  closeConnectionsNamed,
  DEFAULT_BROKER,
  otherBroker,
} from "../testing/other_brokers.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** The RabbitMQ release lines the suite runs on. */
export type BrokerLine = "3.10" | "4.0" | "4.3";

/** `FAULT_BROKER`, checked: the line every case runs on. */
export function brokerLine(value: string | undefined): BrokerLine {
  if (value === undefined || value === "") return "3.10";
  if (value === "3.10" || value === "4.0" || value === "4.3") return value;
  throw new RangeError(`FAULT_BROKER must be 3.10, 4.0 or 4.3, got "${value}"`);
}

/**
 * The line the suite runs on.
 * @default {"3.10"}
 */
export const BROKER_LINE: BrokerLine = brokerLine(Deno.env.get("FAULT_BROKER"));

function singleNode(line: BrokerLine): BrokerUnderTest {
  switch (line) {
    case "3.10":
      return DEFAULT_BROKER;
    case "4.0":
      return otherBroker("4_0");
    case "4.3":
      return otherBroker("4_3");
  }
}

const NODE = singleNode(BROKER_LINE);

/** The single node of the line, where the cases not on the cluster run. */
export const LOCAL_URL = NODE.url;

/**
 * Closes the single node's connections named `connectionName` from the broker's side (as
 * `rabbitmqctl close_connection` does for an operator), through its management API, so it works
 * on whichever broker the line names; resolves with how many it closed.
 */
export function closeConnections(connectionName: string): Promise<number> {
  return closeConnectionsNamed(NODE, connectionName);
}

/**
 * Runs `scripts/cluster.sh` for the line's cluster with `args`; resolves with what it printed,
 * throws if it failed.
 */
export async function cluster(...args: string[]): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command("bash", {
    args: [join(ROOT, "scripts/cluster.sh"), "--broker", BROKER_LINE, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(stdout).trim();
  if (code !== 0) {
    throw new Error(`cluster.sh ${args.join(" ")} failed: ${new TextDecoder().decode(stderr)}`);
  }
  return text;
}
