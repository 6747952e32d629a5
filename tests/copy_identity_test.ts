import { strict as assert } from "node:assert";
import { Buffer } from "node:buffer";
import type { ConsumeMessage } from "amqplib";
import {
  copyIdFor,
  deliveryIdentity,
  mayHaveBeenPassedOn,
  recordedHop,
} from "../lib/copy_identity.ts";
import { HEADER, retryHeaders } from "../lib/retry_headers.ts";

function message(
  body: string,
  properties: Partial<ConsumeMessage["properties"]> = {},
  redelivered = false,
): ConsumeMessage {
  return {
    content: Buffer.from(body),
    fields: { redelivered, deliveryTag: 1, exchange: "x", routingKey: "create", consumerTag: "t" },
    properties: { headers: {}, ...properties },
  } as ConsumeMessage;
}

Deno.test("deliveryIdentity() is the copy id when there is one, else a digest of body, message id and timestamp", () => {
  const original = message('{"RefCode":"r"}', { messageId: "r", timestamp: 1 });
  assert.match(deliveryIdentity(original), /^d:[0-9a-f]{32}$/);
  assert.equal(
    deliveryIdentity(original),
    deliveryIdentity(message('{"RefCode":"r"}', {
      messageId: "r",
      timestamp: 1,
      headers: { "x-delivery-count": 3 }, // what a quorum queue adds on a redelivery
    })),
  );
  for (
    const other of [
      message('{"RefCode":"s"}', { messageId: "r", timestamp: 1 }),
      message('{"RefCode":"r"}', { messageId: "q", timestamp: 1 }),
      message('{"RefCode":"r"}', { messageId: "r", timestamp: 2 }),
    ]
  ) assert.notEqual(deliveryIdentity(other), deliveryIdentity(original));
  const copy = message("{}", { headers: { [HEADER.copyId]: "c:abc/0:0" } });
  assert.equal(deliveryIdentity(copy), "c:abc/0:0");
});

Deno.test("copyIdFor() starts a new chain from an original and continues a copy's, the same every time", () => {
  const original = message('{"RefCode":"r"}', { messageId: "r" });
  const identity = deliveryIdentity(original);
  const first = copyIdFor(identity, "0:0");
  assert.match(first, /^c:[0-9a-f]{32}\/0:0$/);
  assert.notEqual(copyIdFor(identity, "0:0"), first, "the same bytes again start another chain");
  const chain = first.slice(2, first.indexOf("/"));
  assert.equal(copyIdFor(first, "0:1"), `c:${chain}/0:1`);
  assert.equal(copyIdFor(first, "0:1"), copyIdFor(first, "0:1"));
  assert.equal(recordedHop("0:1", first), `0:1@${first}`);
  assert.equal(mayHaveBeenPassedOn(original), false);
  assert.equal(mayHaveBeenPassedOn(message("{}", {}, true)), true);
  assert.equal(mayHaveBeenPassedOn(message("{}", { headers: { [HEADER.copyId]: first } })), true);
  // The copy carries it; the next copy's headers do not carry the old one forward.
  const failure = { error: "e", now: new Date(0), exchange: "x", routingKey: "create" };
  const headers = retryHeaders({ [HEADER.copyId]: first }, { ...failure, copyId: "c:next" }, 1);
  assert.equal(headers[HEADER.copyId], "c:next");
  assert.equal(retryHeaders({ [HEADER.copyId]: first }, failure, 1)[HEADER.copyId], undefined);
});
