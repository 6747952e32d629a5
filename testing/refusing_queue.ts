/**
 * A queue of a test's own topology that the broker refuses to take messages into: a length limit
 * of 0 with `reject-publish` overflow, so the broker nacks every publish routed to it (as it does
 * to a full queue), until the test lifts the limit. Set by a policy that names that queue alone,
 * in place before the queue is declared (a policy set later shows in the management API only with
 * its next statistics, seconds later), so nothing else on the broker is touched.
 *
 * @module
 */

import { Broker } from "../lib/broker.ts";
import { type Topology } from "../lib/topology.ts";
import { declareTopology, deleteTopology } from "../lib/declare_topology.ts";
import { type BrokerContext, RABBITMQ_URL } from "./broker.ts";
import { DEFAULT_BROKER, managementRequest, vhostPath } from "./other_brokers.ts";

/** The length limit that makes the broker refuse (nack) every publish into a queue. */
export const REFUSE_EVERY_PUBLISH = Object.freeze({ "max-length": 0, overflow: "reject-publish" });

/** What a test on a refusing queue gets. */
export interface RefusingContext extends BrokerContext {
  /** Lifts the limit: the broker takes publishes into the queue again (within milliseconds). */
  accept(): Promise<void>;
}

/**
 * Declares `topo` on the broker under test (`RABBITMQ_URL`) with `queue`, one of its queues,
 * refusing every publish; runs `fn`, then deletes the topology and the policy whatever happened.
 */
export async function withRefusingQueue(
  topo: Topology,
  queue: string,
  fn: (ctx: RefusingContext) => Promise<void>,
): Promise<void> {
  const name = `test-refuse-${crypto.randomUUID().slice(0, 8)}`;
  const policy = `policies/${vhostPath(DEFAULT_BROKER)}/${name}`;
  let lifted = false;
  const accept = async () => {
    if (lifted) return;
    lifted = true;
    await managementRequest(DEFAULT_BROKER, "DELETE", policy);
  };
  await managementRequest(DEFAULT_BROKER, "PUT", policy, {
    pattern: `^${queue.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`,
    definition: REFUSE_EVERY_PUBLISH,
    "apply-to": "queues",
    priority: 100,
  });
  try {
    const broker = await Broker.connect(RABBITMQ_URL, { name: `test refusing ${queue}` });
    try {
      await declareTopology(broker, topo);
      await fn({ broker, topo, accept });
    } finally {
      const cleaner = await Broker.connect(RABBITMQ_URL, { name: "test refusing cleanup" });
      await deleteTopology(cleaner, topo).finally(() => cleaner.close());
      await broker.close();
    }
  } finally {
    await accept();
  }
}
