/**
 * One side of a benchmark path run small, in a bench topology of its own, for the tests that
 * compare what raw and ours leave on the broker.
 *
 * @module
 */

import type { ConsumeMessage } from "amqplib";
import type { Settings } from "../bench/_settings.ts";
import { type RunContext, type RunResult, withBenchTopology } from "../bench/_shared.ts";
import type { Topology } from "../lib/topology.ts";
import { RABBITMQ_URL, takeMessages } from "./broker.ts";

/** The 5 messages `side` left in `queueOf(topo)` after running on 5, with `settings`. */
export async function leftBy(
  side: (ctx: RunContext) => Promise<RunResult>,
  queueOf: (topo: Topology) => string,
  dir: string,
  settings: Settings,
): Promise<ConsumeMessage[]> {
  return await withBenchTopology(RABBITMQ_URL, async (broker, topo) => {
    await side({ url: RABBITMQ_URL, broker, topo, messages: 5, dir, settings });
    return await takeMessages(broker, queueOf(topo), 5);
  });
}
