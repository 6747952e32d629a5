import { strict as assert } from "node:assert";
import { Buffer } from "node:buffer";
import type { ConsumeMessage } from "amqplib";
import { copyIdFor, incomingCopyId, recordedHop } from "../lib/copy_identity.ts";
import { HEADER, retryHeaders } from "../lib/retry_headers.ts";

function message(headers: Record<string, unknown> = {}): ConsumeMessage {
  return {
    content: Buffer.from("{}"),
    fields: { redelivered: false, deliveryTag: 1, exchange: "x", routingKey: "create" },
    properties: { headers },
  } as unknown as ConsumeMessage;
}

Deno.test("incomingCopyId() is the x-copy-id a copy of ours carries, and nothing for any other message", () => {
  assert.equal(incomingCopyId(message({ [HEADER.copyId]: "c:abc/0:0" })), "c:abc/0:0");
  assert.equal(incomingCopyId(message()), undefined);
  assert.equal(incomingCopyId(message({ [HEADER.copyId]: "" })), undefined);
  assert.equal(incomingCopyId(message({ [HEADER.copyId]: 7 })), undefined);
});

Deno.test("copyIdFor() starts a new chain for anything but a copy, and continues a copy's, the same every time", () => {
  const first = copyIdFor(undefined, "0:0");
  assert.match(first, /^c:[0-9a-f]{32}\/0:0$/);
  assert.notEqual(copyIdFor(undefined, "0:0"), first, "another message starts another chain");
  const chain = first.slice(2, first.indexOf("/"));
  assert.equal(copyIdFor(first, "0:1"), `c:${chain}/0:1`);
  assert.equal(copyIdFor(first, "0:1"), copyIdFor(first, "0:1"));
  assert.equal(recordedHop("0:1", first), `0:1@${first}`);
  // The copy carries the new one; the next copy's headers do not carry the old one forward.
  const failure = { error: "e", now: new Date(0), exchange: "x", routingKey: "create" };
  const headers = retryHeaders({ [HEADER.copyId]: first }, { ...failure, copyId: "c:next" }, 1);
  assert.equal(headers[HEADER.copyId], "c:next");
  assert.equal(retryHeaders({ [HEADER.copyId]: first }, failure, 1)[HEADER.copyId], undefined);
});
