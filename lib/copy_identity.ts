/**
 * Which physical message a delivery is, so that the record "this was passed on" drops only a
 * second copy of that very message, never a later message that shares its key and hop (a RefCode
 * sent again after its dead letter was purged, a producer reusing a message id, the Go consumer's
 * retry copy after a replay).
 *
 * - A retry or dead-letter copy made by OrdemDeProducao carries `x-copy-id`: its chain (random
 *   where a chain starts, kept from copy to copy) and the hop it was made from, so the same copy
 *   published twice (its confirm was lost) or made twice from a copy (a crash between its confirm
 *   and the ack) carries the same id, and no two messages share a chain.
 * - Any other message (an original, the Go consumer's copy, a replay) is known by a digest of its
 *   body, message id and timestamp, and is looked up only when the broker says it was delivered
 *   before (`redelivered`): a message delivered for the first time cannot have been passed on.
 *
 * A pure module: no I/O.
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { ConsumeMessage } from "amqplib";
import { HEADER } from "./retry_headers.ts";

/** The identity of a delivery: its `x-copy-id`, or `d:` and a digest of what it carries. */
export function deliveryIdentity(message: ConsumeMessage): string {
  const copyId = message.properties.headers?.[HEADER.copyId];
  if (typeof copyId === "string" && copyId.length > 0) return copyId;
  const { messageId, timestamp } = message.properties;
  const hash = createHash("sha256");
  hash.update(`${typeof messageId === "string" ? messageId : ""}\u0000${timestamp ?? ""}\u0000`);
  hash.update(message.content);
  return `d:${hash.digest("hex").slice(0, 32)}`;
}

/**
 * Whether a delivery may be a copy of something already passed on, so the ledger is asked: it
 * carries an `x-copy-id` (copies are published again when a confirm is lost), or the broker
 * delivered it before.
 */
export function mayHaveBeenPassedOn(message: ConsumeMessage): boolean {
  const copyId = message.properties.headers?.[HEADER.copyId];
  return message.fields.redelivered || (typeof copyId === "string" && copyId.length > 0);
}

/** The hop a pass-on is recorded under: the delivery's hop and its identity. */
export function recordedHop(hop: string, identity: string): string {
  return `${hop}@${identity}`;
}

/**
 * The `x-copy-id` of the copy made of a delivery of `hop` known as `identity`. A copy of a copy
 * continues its chain (`c:<chain>/<hop>`): the same delivery passed on twice (a crash between the
 * confirm and the ack) makes the same copy id, and the next consumer drops the second copy. A
 * copy of anything else starts a new chain with a random id: two messages alike byte for byte (an
 * order sent again after its dead letter was purged) never share a chain, so neither is taken for
 * the other at any hop.
 *
 * @example
 * ```ts
 * copyIdFor("d:0f1e…", "0:0"); // "c:7c9e6679…/0:0", a new chain
 * copyIdFor("c:7c9e6679…/0:0", "0:1"); // "c:7c9e6679…/0:1", every time
 * ```
 */
export function copyIdFor(identity: string, hop: string): string {
  if (!identity.startsWith("c:")) return `c:${crypto.randomUUID().replaceAll("-", "")}/${hop}`;
  const slash = identity.indexOf("/");
  return `c:${identity.slice(2, slash === -1 ? undefined : slash)}/${hop}`;
}
