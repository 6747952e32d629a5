/**
 * Which physical message a delivery is, so that the record "this was passed on" drops only a
 * second copy of that very copy, never another message that shares its key and hop (a RefCode
 * sent again after its dead letter was purged, a producer reusing a message id, the Go consumer's
 * retry copy after a replay).
 *
 * A retry or dead-letter copy made by OrdemDeProducao carries `x-copy-id`: its chain (random where
 * a chain starts, at a message's first failure, and kept from copy to copy) and the hop it was
 * made from. The same copy published twice (its confirm was lost), or made twice from a copy (a
 * crash between its confirm and the ack), carries the same id, and the second is dropped; no two
 * messages share a chain. Any other message (an original, the Go consumer's copy, a replay) is
 * never taken for one passed on: nothing it carries tells it from another message alike byte for
 * byte, so one delivered again after it was passed on (a crash between the copy's confirm and the
 * ack) is passed on again, an extra copy rather than a loss.
 *
 * A pure module: no I/O.
 *
 * @module
 */

import type { ConsumeMessage } from "amqplib";
import { HEADER } from "./retry_headers.ts";

/** The `x-copy-id` a delivery carries, if it is a copy OrdemDeProducao made. */
export function incomingCopyId(message: ConsumeMessage): string | undefined {
  const copyId = message.properties.headers?.[HEADER.copyId];
  return typeof copyId === "string" && copyId.length > 0 ? copyId : undefined;
}

/** The hop a pass-on is recorded under: the delivery's hop and a copy id. */
export function recordedHop(hop: string, copyId: string): string {
  return `${hop}@${copyId}`;
}

/**
 * The `x-copy-id` of the copy made of a delivery of `hop` that carried `incoming` (undefined: not
 * a copy). A copy of a copy continues its chain (`c:<chain>/<hop>`), the same every time; a copy
 * of anything else starts a new chain with a random id.
 *
 * @example
 * ```ts
 * copyIdFor(undefined, "0:0"); // "c:7c9e6679…/0:0", a new chain
 * copyIdFor("c:7c9e6679…/0:0", "0:1"); // "c:7c9e6679…/0:1", every time
 * ```
 */
export function copyIdFor(incoming: string | undefined, hop: string): string {
  if (incoming === undefined || !incoming.startsWith("c:")) {
    return `c:${crypto.randomUUID().replaceAll("-", "")}/${hop}`;
  }
  const slash = incoming.indexOf("/");
  return `c:${incoming.slice(2, slash === -1 ? undefined : slash)}/${hop}`;
}
