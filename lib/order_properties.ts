/**
 * What Estoque publishes an order with: its AMQP properties, as the Go Estoque sets them, and, with
 * tracing on, the trace context in its headers.
 *
 * @module
 */

import type { Span } from "@opentelemetry/api";
import { type Order, ORDER_CONTENT_TYPE } from "./order.ts";
import type { PublishProperties } from "./publisher.ts";
import type { Topology } from "./topology.ts";
import { startPublishSpan, TRACING } from "./tracing.ts";

/** The `app-id` property of Estoque's messages. */
export const ESTOQUE_APP_ID = "estoque";

/** The properties Estoque publishes an order with; `nowMs` is the time, for the timestamp. */
export function orderProperties(order: Order, nowMs: number): PublishProperties {
  return {
    contentType: ORDER_CONTENT_TYPE,
    persistent: true,
    messageId: order.refCode,
    timestamp: Math.floor(nowMs / 1000),
    appId: ESTOQUE_APP_ID,
    mandatory: true,
  };
}

/**
 * With tracing on, starts the trace of an order (its publish span, to be ended on the confirm) and
 * puts its context in `properties.headers`; with tracing off, changes nothing and returns undefined.
 */
export function traceOrder(
  topo: Topology,
  order: Order,
  body: Uint8Array,
  properties: PublishProperties,
): Span | undefined {
  if (!TRACING) return undefined;
  const headers: Record<string, unknown> = {};
  const span = startPublishSpan({
    operation: "publish",
    destination: topo.exchange,
    routingKey: topo.routingKey,
    messageId: order.refCode,
    bodySize: body.byteLength,
    refCode: order.refCode,
  }, headers);
  properties.headers = headers;
  return span;
}
