/**
 * Tracing every order across Estoque, each attempt in OrdemDeProducao, the retry tiers and the
 * DLQ, with OpenTelemetry. Deno's built-in OpenTelemetry exports the spans (OTLP over HTTP to
 * `OTEL_EXPORTER_OTLP_ENDPOINT`, set up by the standard `OTEL_*` variables); this module makes the
 * spans with `@opentelemetry/api` and carries the W3C trace context (`traceparent`,
 * `tracestate`) in the message headers, as OpenTelemetry's messaging conventions do for RabbitMQ.
 *
 * Off unless `OTEL_DENO=true`: then no span is made at all, so tracing costs nothing.
 *
 * ```text
 * publish productionorder (Estoque)
 * └─ process create.productionorder (attempt 0, failed)
 *    ├─ ledger commit / publish create.productionorder.retry.5000ms
 *    └─ process create.productionorder (attempt 1) … └─ publish productionorder.dlx
 * replay productionorder (dlq replay; a new trace, linked to the dead letter's)
 * ```
 *
 * @module
 */

import {
  type Attributes,
  type Context,
  context,
  type Link,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
} from "@opentelemetry/api";

/** Whether tracing is on: Deno's OpenTelemetry integration is enabled (`OTEL_DENO=true`). */
export const TRACING = (() => {
  try {
    return Deno.env.get("OTEL_DENO") === "true";
  } catch {
    return false; // no permission to read the environment: off
  }
})();

/**
 * Whether the sampler follows the parent's decision (`parentbased_*`, and the default): then a
 * span under a parent that was not sampled is never recorded, and is not made at all here.
 */
const PARENT_BASED = (() => {
  try {
    const sampler = Deno.env.get("OTEL_TRACES_SAMPLER");
    return sampler === undefined || sampler === "" || sampler.startsWith("parentbased_");
  } catch {
    return true;
  }
})();

const tracer = trace.getTracer("productionorder");

/**
 * Whether a span made under `parent` would not be recorded: the parent was not sampled and the
 * sampler follows it. Such an order still carries its context on (unsampled), so every later
 * attempt makes the same decision, but makes no span, attribute or child on the way.
 */
function sampledOut(parent: Context): boolean {
  if (!PARENT_BASED) return false;
  const parentSpan = trace.getSpanContext(parent);
  return parentSpan !== undefined && (parentSpan.traceFlags & TraceFlags.SAMPLED) === 0;
}

type Headers = Record<string, unknown>;

const getter = {
  keys: (carrier: Headers) => Object.keys(carrier),
  get: (carrier: Headers, key: string) => {
    const value = carrier[key];
    if (typeof value === "string") return value;
    if (value instanceof Uint8Array) return new TextDecoder().decode(value);
    return undefined;
  },
};

/** The trace context a message carries, or none (the Go services, old dead letters). */
function contextOf(headers: Headers | undefined): Context {
  return propagation.extract(ROOT_CONTEXT, headers ?? {}, getter);
}

const setter = {
  set: (carrier: Headers, key: string, value: string) => (carrier[key] = value),
};

/** Writes the context `spanContext` holds into `headers` (replacing one the message carried). */
function inject(spanContext: Context, headers: Headers): void {
  propagation.inject(spanContext, headers, setter);
}

/** What a span says about the message, by OpenTelemetry's messaging conventions. */
export interface MessageAttributes {
  /** `publish`, `send` or `process`. */
  readonly operation: "publish" | "send" | "process";
  /** The exchange published to, or the queue consumed from. */
  readonly destination: string;
  readonly routingKey: string;
  readonly messageId: string | undefined;
  readonly bodySize: number;
  readonly refCode?: string | undefined;
  /** Retries the message had before this attempt. */
  readonly attempt?: number;
}

function attributesOf(message: MessageAttributes): Attributes {
  const attributes: Attributes = {
    "messaging.system": "rabbitmq",
    "messaging.operation.type": message.operation,
    "messaging.operation.name": message.operation,
    "messaging.destination.name": message.destination,
    "messaging.rabbitmq.destination.routing_key": message.routingKey,
    "messaging.message.body.size": message.bodySize,
  };
  if (message.messageId !== undefined) attributes["messaging.message.id"] = message.messageId;
  if (message.refCode !== undefined) attributes["productionorder.ref_code"] = message.refCode;
  if (message.attempt !== undefined) attributes["productionorder.attempt"] = message.attempt;
  return attributes;
}

/** Marks a span failed with the error's text. */
export function failSpan(span: Span | undefined, error: unknown): void {
  if (span === undefined) return;
  const text = error instanceof Error ? error.message : String(error);
  span.setStatus({ code: SpanStatusCode.ERROR, message: text });
  if (error instanceof Error) span.recordException(error);
}

/**
 * Starts the span of a publish (Estoque's order, a retry or dead-letter copy, a replay) and writes
 * its context into `headers`. A replay starts a new trace linked to the one the dead letter
 * carried (`linkTo`). Returns undefined when tracing is off.
 */
export function startPublishSpan(
  message: MessageAttributes,
  headers: Headers,
  options: { readonly linkTo?: Headers | undefined; readonly name?: string } = {},
): Span | undefined {
  if (!TRACING) return undefined;
  const links: Link[] = [];
  if (options.linkTo !== undefined) {
    const linked = trace.getSpanContext(contextOf(options.linkTo));
    if (linked !== undefined) links.push({ context: linked });
  }
  const parent = options.linkTo !== undefined ? ROOT_CONTEXT : context.active();
  if (sampledOut(parent)) {
    inject(parent, headers);
    return undefined;
  }
  const span = tracer.startSpan(
    options.name ?? `${message.operation} ${message.destination}`,
    { kind: SpanKind.PRODUCER, attributes: attributesOf(message), links },
    parent,
  );
  inject(trace.setSpan(parent, span), headers);
  return span;
}

/** Ends a publish span once the broker confirmed, or failed, the publish. */
export function endPublishSpan(span: Span | undefined, error?: unknown): void {
  if (span === undefined) return;
  if (error) failSpan(span, error);
  span.end();
}

/**
 * Ends a publish span once `published` settles (failed with its error), and settles as it does;
 * `published` itself when there is no span (tracing off, or sampled out).
 */
export function endPublishSpanOn(
  span: Span | undefined,
  published: Promise<void>,
): Promise<void> {
  if (span === undefined) return published;
  return published.then(() => endPublishSpan(span), (error: unknown) => {
    endPublishSpan(span, error);
    throw error;
  });
}

/**
 * Runs `work` inside the consumer span of one attempt: a child of the context the message carries
 * (its publish), or the root of a new trace when it carries none. `work` gets the span to say how
 * it ended; log lines written meanwhile carry its ids. Without tracing it just runs `work`.
 */
export function processSpan<T>(
  message: MessageAttributes,
  headers: Headers | undefined,
  work: (span: Span | undefined) => Promise<T>,
): Promise<T> {
  if (!TRACING) return work(undefined);
  const parent = contextOf(headers);
  if (sampledOut(parent)) return context.with(parent, work, undefined, undefined);
  return tracer.startActiveSpan(
    `process ${message.destination}`,
    { kind: SpanKind.CONSUMER, attributes: attributesOf(message) },
    parent,
    async (span) => {
      try {
        return await work(span);
      } catch (error) {
        failSpan(span, error);
        throw error;
      } finally {
        span.end();
      }
    },
  );
}

/**
 * Runs `work` in a child span of the current one (a ledger commit); plain `work` when off, or when
 * the current span is sampled out (read from its sampled flag: Deno's spans say they are recording
 * whether sampled or not).
 */
export function childSpan<T>(name: string, work: () => Promise<T>): Promise<T> {
  if (!TRACING || sampledOut(context.active())) return work();
  return tracer.startActiveSpan(name, async (span) => {
    try {
      return await work();
    } catch (error) {
      failSpan(span, error);
      throw error;
    } finally {
      span.end();
    }
  });
}

/** The trace and span ids of the current span, for log lines; undefined without one. */
export function currentTraceIds(): { traceId: string; spanId: string } | undefined {
  if (!TRACING) return undefined;
  const span = trace.getActiveSpan();
  if (span === undefined || !span.isRecording()) return undefined;
  const { traceId, spanId } = span.spanContext();
  return { traceId, spanId };
}
