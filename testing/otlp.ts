/**
 * An OTLP receiver for tests (OTLP/HTTP with JSON, `OTEL_EXPORTER_OTLP_PROTOCOL=http/json`):
 * collects the spans the services really export, with what a test asserts on.
 *
 * @module
 */

/** One exported span, flattened. */
export interface ReceivedSpan {
  readonly service: string;
  readonly scope: string;
  readonly name: string;
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string;
  /** OTLP's numbers: 4 producer, 5 consumer, 1 internal. */
  readonly kind: number;
  /** 0 unset, 1 ok, 2 error. */
  readonly status: number;
  readonly statusMessage: string;
  readonly attributes: Readonly<Record<string, unknown>>;
  readonly links: readonly { traceId: string; spanId: string }[];
}

/** A running receiver; dispose of it to stop it. */
export interface OtlpReceiver extends AsyncDisposable {
  /** `OTEL_EXPORTER_OTLP_ENDPOINT` for the services. */
  readonly endpoint: string;
  /** The spans received so far. */
  readonly spans: ReceivedSpan[];
  /** The environment that turns a service's tracing on, exporting here. */
  env(service: string): Record<string, string>;
}

function valueOf(value: Record<string, unknown>): unknown {
  const [kind, inner] = Object.entries(value)[0] ?? [];
  return kind === "intValue" ? Number(inner) : inner;
}

/** Starts a receiver on a free port of 127.0.0.1. */
export function otlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const { promise, resolve } = Promise.withResolvers<OtlpReceiver>();
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: ({ port }) => {
      const endpoint = `http://127.0.0.1:${port}`;
      resolve({
        endpoint,
        spans,
        env: (service) => ({
          OTEL_DENO: "true",
          OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
          OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
          OTEL_SERVICE_NAME: service,
        }),
        [Symbol.asyncDispose]: () => server.shutdown(),
      });
    },
  }, async (request) => {
    const body = await request.json().catch(() => ({}));
    if (new URL(request.url).pathname !== "/v1/traces") return Response.json({});
    for (const resourceSpans of body.resourceSpans ?? []) {
      const service = (resourceSpans.resource?.attributes ?? [])
        .find((a: { key: string }) => a.key === "service.name")?.value?.stringValue ?? "";
      for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
        for (const span of scopeSpans.spans ?? []) {
          spans.push({
            service,
            scope: scopeSpans.scope?.name ?? "",
            name: span.name,
            traceId: span.traceId,
            spanId: span.spanId,
            parentSpanId: span.parentSpanId ?? "",
            kind: span.kind,
            status: span.status?.code ?? 0,
            statusMessage: span.status?.message ?? "",
            attributes: Object.fromEntries(
              (span.attributes ?? []).map((a: { key: string; value: Record<string, unknown> }) => [
                a.key,
                valueOf(a.value),
              ]),
            ),
            links: (span.links ?? []).map((l: { traceId: string; spanId: string }) => ({
              traceId: l.traceId,
              spanId: l.spanId,
            })),
          });
        }
      }
    }
    return Response.json({});
  });
  return promise;
}
