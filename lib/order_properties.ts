/**
 * What Estoque publishes an order with: its AMQP properties, as the Go Estoque sets them, the
 * version of its body (`x-message-version`, lib/order.ts), when it was published to the
 * millisecond (`x-published-at`: AMQP's `timestamp` has whole seconds), and, with tracing on, the
 * trace context in its headers; and reading that time back, for the critical time.
 *
 * @module
 */

import type { Span } from "@opentelemetry/api";
import {
  MESSAGE_VERSION,
  MESSAGE_VERSION_HEADER,
  type Order,
  ORDER_CONTENT_TYPE,
} from "./order.ts";
import type { PublishProperties } from "./publisher.ts";
import type { Topology } from "./topology.ts";
import { startPublishSpan, TRACING } from "./tracing.ts";

/** The `app-id` property of Estoque's messages. */
export const ESTOQUE_APP_ID = "estoque";

/**
 * The header with the time an order was published, ISO 8601 to the millisecond: the start of its
 * critical time. Retry and dead-letter copies keep it.
 */
export const PUBLISHED_AT_HEADER = "x-published-at";

/** The header a replay from the dead-letter queue sets (lib/retry_headers.ts). */
const REPLAY_COUNT_HEADER = "x-replay-count";

/**
 * The properties Estoque publishes an order with; `nowMs` is the time, for the timestamp (whole
 * seconds, as AMQP has it), and its body's version in the `x-message-version` header.
 */
export function orderProperties(order: Order, nowMs: number): PublishProperties {
  return {
    contentType: ORDER_CONTENT_TYPE,
    persistent: true,
    messageId: order.refCode,
    timestamp: Math.floor(nowMs / 1000),
    appId: ESTOQUE_APP_ID,
    mandatory: true,
    headers: {
      [MESSAGE_VERSION_HEADER]: MESSAGE_VERSION,
      [PUBLISHED_AT_HEADER]: new Date(nowMs).toISOString(),
    },
  };
}

/**
 * When a message was first published, in epoch milliseconds, for its critical time: the
 * `x-published-at` header, else the AMQP `timestamp` (whole seconds, so up to 1 s early); undefined
 * without either (the Go Estoque sets neither), or for a message replayed from the dead-letter
 * queue (its time there is an operator's, not the flow's).
 *
 * @example
 * ```ts
 * publishedAtMs({ headers: { "x-published-at": "2026-12-01T09:00:00.250Z" } }); // 1796115600250
 * publishedAtMs({ timestamp: 1796115600 }); // 1796115600000
 * publishedAtMs({ headers: { "x-replay-count": 1 }, timestamp: 1796115600 }); // undefined
 * ```
 */
export function publishedAtMs(
  properties: {
    readonly headers?: Record<string, unknown> | undefined;
    readonly timestamp?: unknown;
  },
): number | undefined {
  const headers = properties.headers;
  if (headers !== undefined) {
    const replays = headers[REPLAY_COUNT_HEADER];
    if (replays !== undefined && replays !== null && replays !== 0) return undefined;
    const at = headers[PUBLISHED_AT_HEADER];
    if (typeof at === "string") {
      const ms = Date.parse(at);
      if (Number.isFinite(ms)) return ms;
    }
  }
  const timestamp = properties.timestamp;
  return typeof timestamp === "number" && Number.isFinite(timestamp) && timestamp > 0
    ? timestamp * 1000
    : undefined;
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
  properties.headers = { ...properties.headers, ...headers };
  return span;
}
