/**
 * A control plane of a test's own (lib/control_topology.ts) on a real broker, deleted afterwards:
 * for the suites of the pause state and of the processes' ears on it.
 *
 * @module
 */

import { Broker } from "../lib/broker.ts";
import { declareControl } from "../lib/control_topology.ts";
import { deleteTopology } from "../lib/declare_topology.ts";
import { type Topology, topology } from "../lib/topology.ts";
import { RABBITMQ_URL, uniquePrefix } from "./broker.ts";

/** Where {@linkcode withControl} declares its control plane. */
export interface ControlPlaneOptions {
  /** The broker. @default {RABBITMQ_URL} */
  readonly url?: string;
  /** Its state queue a quorum queue, as with QUEUE_TYPE=quorum. */
  readonly quorum?: boolean;
  /** The topology's prefix. @default {uniquePrefix(name)} */
  readonly prefix?: string;
}

/** Runs `fn` with a control plane of its own on the broker of `options.url`, deleted afterwards. */
export async function withControl(
  name: string,
  fn: (broker: Broker, topo: Topology) => Promise<void>,
  options: ControlPlaneOptions = {},
): Promise<void> {
  const url = options.url ?? RABBITMQ_URL;
  const broker = await Broker.connect(url, { name: `test ${name}` });
  const topo = topology({
    prefix: options.prefix ?? uniquePrefix(name),
    ...(options.quorum ? { queueType: "quorum" as const } : {}),
  });
  try {
    await declareControl(broker, topo);
    await fn(broker, topo);
  } finally {
    const cleaner = await Broker.connect(url, { name: `test ${name} cleanup` });
    await deleteTopology(cleaner, topo).finally(() => cleaner.close());
    await broker.close();
  }
}
