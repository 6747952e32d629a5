/**
 * The consumer's span around one attempt at a delivery (tracing.ts): what the attempt was, and how
 * it ended. Used by consumer.ts only.
 *
 * @module
 */

import type { ConsumeMessage } from "amqplib";
import type { Span } from "@opentelemetry/api";
import type { ReadDelivery } from "./delivery.ts";
import type { Outcome } from "./outcome.ts";
import { failSpan, processSpan } from "./tracing.ts";

/**
 * Runs `attempt` on `read` inside the span of one attempt at `message`, taken from `queue`, and
 * says on the span how it ended. Called only with tracing on: without it the consumer runs the
 * attempt bare, with no span attributes made.
 */
export function tracedAttempt(
  message: ConsumeMessage,
  read: ReadDelivery,
  queue: string,
  attempt: (read: ReadDelivery) => Promise<Outcome>,
): Promise<Outcome> {
  return processSpan(
    {
      operation: "process",
      destination: queue,
      routingKey: message.fields.routingKey,
      messageId: message.properties.messageId,
      bodySize: message.content.byteLength,
      refCode: read.delivery.key,
      attempt: read.delivery.retries,
    },
    message.properties.headers,
    async (span) => {
      const outcome = await attempt(read);
      describeOutcome(span, outcome);
      return outcome;
    },
  );
}

/** Says on an attempt's span how it ended; a failed attempt is marked as an error. */
function describeOutcome(span: Span | undefined, outcome: Outcome): void {
  if (span === undefined) return;
  span.setAttribute("productionorder.outcome", outcome.kind);
  if (outcome.kind === "retried") {
    span.setAttribute("productionorder.retry", outcome.retry);
    span.setAttribute("productionorder.delay_ms", outcome.delayMs);
  }
  if (outcome.kind === "dead-lettered") {
    span.setAttribute("productionorder.dead_letter.reason", outcome.reason);
  }
  if (outcome.kind === "retried" || outcome.kind === "dead-lettered") {
    failSpan(span, new Error(outcome.error));
  }
}
