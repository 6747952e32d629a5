/**
 * A delivery read once (lib/delivery.ts): its key (message id, else the RefCode in its body), its
 * hop and retries, ill-typed retry headers as invalid; and what the consumer makes of each message
 * version,
 * against the real broker: no version and any 1.x are orders (their unknown fields kept, not
 * refused), another major version is dead-lettered at once as `unsupported-version` with its body
 * byte for byte, and a version header that is not one is `invalid`.
 */

import { strict as assert } from "node:assert";
import type { ConsumeMessage } from "amqplib";
import { Buffer } from "node:buffer";
import { readDelivery } from "../lib/delivery.ts";
import { encodeOrder, newOrder } from "../lib/order.ts";
import { orderProperties } from "../lib/order_properties.ts";
import { ConfirmedPublisher } from "../lib/publisher.ts";
import { HEADER } from "../lib/retry_headers.ts";
import { retryDelays } from "../lib/retry_policy.ts";
import { fastPolicy, startConsumer, takeMessages, withTopology } from "../testing/broker.ts";

const policy = fastPolicy(2, 100);

function message(
  body: string,
  headers: Record<string, unknown> = {},
  messageId?: string,
): ConsumeMessage {
  return {
    content: Buffer.from(body),
    fields: {} as ConsumeMessage["fields"],
    properties: {
      headers,
      contentType: "application/json",
      ...(messageId === undefined ? {} : { messageId }),
    } as ConsumeMessage["properties"],
  };
}

const order = newOrder({ quantity: 5 });
const body = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({ ...JSON.parse(new TextDecoder().decode(encodeOrder(order))), ...extra });

Deno.test("readDelivery() knows a delivery by its message id, else by the RefCode in its body (the Go services set no id), else by the RefCode of a body that is no order", () => {
  assert.equal(readDelivery(message(body(), {}, "our-id")).delivery.key, "our-id");
  assert.equal(readDelivery(message(body())).delivery.key, order.refCode);
  const invalid = readDelivery(message(JSON.stringify({ RefCode: "not-a-uuid", Quantity: 1 })));
  assert.equal(invalid.parsed.ok, false);
  assert.equal(invalid.delivery.key, "not-a-uuid");
  assert.equal(readDelivery(message("[]")).delivery.key, undefined);
});

Deno.test("readDelivery() reads the hop as <replays>:<retries> from x-replay-count and x-retry-count (any integer type)", () => {
  const first = readDelivery(message(body()));
  assert.deepEqual([first.delivery.hop, first.delivery.retries, first.invalid], [
    "0:0",
    0,
    undefined,
  ]);
  const later = readDelivery(message(body(), {
    [HEADER.retryCount]: { "!": "int", value: 2 },
    [HEADER.replayCount]: 1,
    [HEADER.delay]: -10_000,
  }));
  assert.deepEqual([later.delivery.hop, later.delivery.retries], ["1:2", 2]);
});

Deno.test("readDelivery() never throws: ill-typed retry headers make the delivery invalid, whatever its body", () => {
  for (
    const headers of [
      { [HEADER.retryCount]: "two" },
      { [HEADER.retryCount]: -1 },
      { [HEADER.replayCount]: 1.5 },
      { [HEADER.delay]: "soon" },
    ]
  ) {
    const read = readDelivery(message(body(), headers));
    assert.ok(read.invalid !== undefined, JSON.stringify(headers));
    assert.equal(read.delivery.hop, "0:0");
    assert.ok(read.parsed.ok, "the body is still read");
  }
});

Deno.test("readDelivery() reads a body as its x-message-version says: none and 1.x as orders, their unknown fields kept", () => {
  for (const headers of [{}, { "x-message-version": "1.0" }, { "x-message-version": "1.1" }]) {
    const read = readDelivery(message(body({ Priority: 2 }), headers));
    assert.ok(read.parsed.ok, JSON.stringify(headers));
    assert.equal(read.parsed.order.refCode, order.refCode);
    assert.deepEqual(read.parsed.extra, { Priority: 2 });
    assert.equal(read.delivery.key, order.refCode);
  }
});

Deno.test("readDelivery() refuses another major version without reading the body, and a version that is not one", () => {
  const v2 = readDelivery(message("<order v2/>", { "x-message-version": "2.0" }));
  assert.equal(v2.parsed.ok, false);
  assert.equal(!v2.parsed.ok && v2.parsed.rejection.code, "unsupported_version");
  const bad = readDelivery(message(body(), { "x-message-version": "two" }));
  assert.equal(!bad.parsed.ok && bad.parsed.rejection.code, "bad_version");
  assert.equal(bad.delivery.key, order.refCode, "still known by its RefCode, for the logs");
});

Deno.test("the consumer creates orders of no version and of 1.x (an extra field too), and dead-letters a 2.0 at once as unsupported-version, body kept", async () => {
  await withTopology("versions", { retryDelays: retryDelays(policy) }, async (ctx) => {
    const { consumer, outcomes, ledger, publisher } = await startConsumer(ctx, policy);
    try {
      const send = (text: string, headers: Record<string, unknown>, id: string) =>
        (publisher as ConfirmedPublisher).publish(
          ctx.topo.exchange,
          ctx.topo.routingKey,
          new TextEncoder().encode(text),
          { contentType: "application/json", persistent: true, messageId: id, headers },
        );
      const orders = [
        newOrder({ quantity: 1 }),
        newOrder({ quantity: 2 }),
        newOrder({ quantity: 3 }),
      ];
      const text = (o: typeof order, extra: Record<string, unknown> = {}) =>
        JSON.stringify({ ...JSON.parse(new TextDecoder().decode(encodeOrder(o))), ...extra });
      await send(text(orders[0]!), {}, orders[0]!.refCode);
      await send(
        text(orders[1]!, { Priority: 9 }),
        { "x-message-version": "1.1" },
        orders[1]!.refCode,
      );
      await publisher.publish(
        ctx.topo.exchange,
        ctx.topo.routingKey,
        encodeOrder(orders[2]!),
        orderProperties(orders[2]!, Date.now()),
      );
      const v2 = '{"order":{"ref":"x"},"schema":2}';
      await send(v2, { "x-message-version": "2.0" }, "v2-order");
      await outcomes.until("3 created", (o) => o.kind === "created", 3);
      await outcomes.until("1 dead-lettered", (o) => o.kind === "dead-lettered", 1);
      assert.deepEqual(outcomes.outcomes.filter((o) => o.kind === "retried"), [], "never retried");
      const [dead] = await takeMessages(ctx.broker, ctx.topo.deadLetterQueue, 1);
      assert.equal(new TextDecoder().decode(dead!.content), v2, "byte for byte");
      const headers = dead!.properties.headers!;
      assert.equal(headers[HEADER.reason], "unsupported-version");
      assert.equal(headers["x-message-version"], "2.0", "its version kept");
      assert.match(String(headers[HEADER.lastError]), /message version 2\.0 is not one/);
      for (const o of orders) assert.ok(await ledger.findOrder(o.refCode));
    } finally {
      await consumer.stop();
      await ledger.close();
    }
  });
});
