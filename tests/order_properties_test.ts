import { strict as assert } from "node:assert";
import { newOrder } from "../lib/order.ts";
import {
  ESTOQUE_APP_ID,
  orderProperties,
  publishedAtMs,
  traceOrder,
} from "../lib/order_properties.ts";
import { topology } from "../lib/topology.ts";
import { TRACING } from "../lib/tracing.ts";

Deno.test("orderProperties() sets what the Go Estoque sets: JSON, persistent, the RefCode as id, a time in seconds, mandatory; and the body's version", () => {
  const order = newOrder({ quantity: 1 });
  assert.deepEqual(orderProperties(order, 1_700_000_000_999), {
    contentType: "application/json",
    persistent: true,
    messageId: order.refCode,
    timestamp: 1_700_000_000,
    appId: ESTOQUE_APP_ID,
    mandatory: true,
    headers: { "x-message-version": "1.0", "x-published-at": "2023-11-14T22:13:20.999Z" },
  });
});

Deno.test({
  name: "traceOrder() with tracing off starts no span and adds no headers",
  ignore: TRACING,
}, () => {
  const order = newOrder({ quantity: 1 });
  const properties = orderProperties(order, 0);
  assert.equal(traceOrder(topology(), order, new Uint8Array(), properties), undefined);
  assert.deepEqual(Object.keys(properties.headers ?? {}), ["x-message-version", "x-published-at"]);
});

Deno.test({
  name: "traceOrder() with tracing on keeps the body's version beside the trace context",
  ignore: !TRACING,
}, () => {
  const order = newOrder({ quantity: 1 });
  const properties = orderProperties(order, 0);
  traceOrder(topology(), order, new Uint8Array(), properties)?.end();
  assert.equal(properties.headers?.["x-message-version"], "1.0");
  assert.ok(typeof properties.headers?.traceparent === "string");
});

Deno.test("publishedAtMs() reads x-published-at to the millisecond, else the AMQP timestamp's seconds; nothing for a replay or a message without either", () => {
  const order = newOrder({ quantity: 1 });
  assert.equal(publishedAtMs(orderProperties(order, 1_700_000_000_999)), 1_700_000_000_999);
  assert.equal(publishedAtMs({ timestamp: 1_700_000_000 }), 1_700_000_000_000);
  assert.equal(
    publishedAtMs({ headers: { "x-published-at": "not a time" }, timestamp: 1_700_000_000 }),
    1_700_000_000_000,
  );
  assert.equal(
    publishedAtMs({ headers: { "x-replay-count": 1, "x-published-at": "2026-12-01T09:00:00Z" } }),
    undefined,
  );
  assert.equal(publishedAtMs({ headers: {} }), undefined, "the Go Estoque's: neither");
  assert.equal(publishedAtMs({}), undefined);
});
