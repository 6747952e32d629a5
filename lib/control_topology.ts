/**
 * The control plane's broker objects (their names are data in the {@linkcode Topology}'s
 * `control`): how its queues are declared, the one function that declares its exchange and state
 * queue, and the passive check of both.
 *
 * Every queue of the control plane is a classic queue, whatever QUEUE_TYPE and whatever the
 * vhost's default queue type: the state queue holds one small message that every read takes and
 * gives back, and a quorum queue counts each such return against its delivery limit (20 by
 * default on RabbitMQ 4.x, also in a vhost whose `default_queue_type` is quorum), after which the
 * pause is gone. One type for all also means a classic and a quorum fleet, and `ctl` run with
 * either, declare the same control plane.
 *
 * @module
 */

import type { Broker } from "./broker.ts";
import { FatalError, REPLY_CODE, replyCode } from "./errors.ts";
import type { QueueDeclaration, Topology } from "./topology.ts";

/** The queue type of every control-plane queue, stated explicitly. */
export const CONTROL_QUEUE_ARGUMENTS: Readonly<Record<string, unknown>> = Object.freeze({
  "x-queue-type": "classic",
});

/** The longest queue name the broker takes, in bytes of UTF-8. */
const MAX_QUEUE_NAME_BYTES = 255;

const encoder = new TextEncoder();

/** `text` cut to at most `bytes` bytes of UTF-8, on a character boundary. */
function cutToBytes(text: string, bytes: number): string {
  if (bytes <= 0) return "";
  let used = 0;
  let end = 0;
  for (const char of text) {
    const size = encoder.encode(char).byteLength;
    if (used + size > bytes) break;
    used += size;
    end += char.length;
  }
  return text.slice(0, end);
}

/**
 * The exclusive, auto-deleted queue of one running instance on the control plane: its instance
 * id (as the management UI lists it) and `unique`, so that two processes sharing an id never
 * lock each other out. A queue name is at most 255 bytes: a long id is cut, by bytes of UTF-8 and
 * on a character.
 *
 * @example
 * ```ts
 * controlQueueFor(topology(), "ordem-1", "5f0c2a1e"); // "productionorder.control.ordem-1.5f0c2a1e"
 * ```
 */
export function controlQueueFor(topo: Topology, instanceId: string, unique: string): string {
  const head = topo.control.queuePrefix;
  const tail = `.${unique}`;
  const room = MAX_QUEUE_NAME_BYTES - encoder.encode(head + tail).byteLength;
  return `${head}${cutToBytes(instanceId, room)}${tail}`;
}

/**
 * The control plane's state queue as declared: classic, at most one message, the last
 * (`drop-head`).
 */
export function controlStateDeclaration(topo: Topology): QueueDeclaration {
  return {
    name: topo.control.stateQueue,
    arguments: { ...CONTROL_QUEUE_ARGUMENTS, "x-max-length": 1, "x-overflow": "drop-head" },
  };
}

/**
 * Declares the control plane's exchange and state queue (durable; a no-op when they exist with
 * the same settings). The services' work topology does not need them: OrdemDeProducao declares
 * them beside it, and `ctl pause|resume` and the console before a change (never to read).
 *
 * @throws {FatalError} with code `topology_mismatch` when one exists with other settings (a
 * quorum state queue an earlier version declared under QUEUE_TYPE=quorum).
 */
export async function declareControl(broker: Broker, topo: Topology): Promise<void> {
  const channel = await broker.channel();
  const state = controlStateDeclaration(topo);
  try {
    await channel.assertExchange(topo.control.exchange, "direct", { durable: true });
    await channel.assertQueue(state.name, { durable: true, arguments: { ...state.arguments } });
    await channel.bindQueue(state.name, topo.control.exchange, topo.control.stateKey);
    await channel.close();
  } catch (error) {
    const explained = broker.explain(error);
    if (replyCode(explained) === REPLY_CODE.preconditionFailed) {
      throw new FatalError(
        `the control plane's ${topo.control.exchange} or ${state.name} exists with other ` +
          `settings (${explained.message}); delete the state queue (it holds only the last ` +
          `pause or resume: note it with "deno task ctl status" first) and pause or resume ` +
          `again to declare it`,
        { cause: explained, code: "topology_mismatch" },
      );
    }
    throw new Error(
      `cannot declare the control plane ${topo.control.exchange}: ${explained.message}`,
      { cause: explained },
    );
  }
}

/**
 * Whether the control plane's exchange and state queue exist, by passive declares: declares
 * nothing (`--no-declare`, `ctl status`, the console's ear).
 */
export async function controlExists(broker: Broker, topo: Topology): Promise<boolean> {
  for (const check of ["exchange", "queue"] as const) {
    const channel = await broker.channel();
    try {
      if (check === "exchange") await channel.checkExchange(topo.control.exchange);
      else await channel.checkQueue(topo.control.stateQueue);
    } catch (error) {
      if (replyCode(error) === REPLY_CODE.notFound) return false;
      throw broker.explain(error);
    } finally {
      await channel.close().catch(() => {});
    }
  }
  return true;
}
