/**
 * OrdemDeProducao's HTTP endpoint: `/metrics` (Prometheus text format), `/healthz` (the process
 * is alive) and `/readyz` (connected and consuming, or paused by an operator; a second line says
 * since when, by whom and why).
 *
 * @module
 */

import { describePause, type PauseState } from "./control.ts";
import { FatalError } from "./errors.ts";
import type { Registry } from "prom-client";

/** Options for {@linkcode serveHttp}. */
export interface HttpServerOptions {
  /** The port; 0 picks a free one. */
  readonly port: number;
  /**
   * The address to listen on.
   * @default {"127.0.0.1"}
   */
  readonly hostname?: string;
  /** The metrics to serve. */
  readonly registry: Registry;
  /** Whether the service is ready (connected and consuming). */
  readonly ready: () => boolean;
  /** A line `/readyz` adds after its first, when there is something to say (a pause). */
  readonly detail?: () => string | undefined;
  /** Closes the server when aborted. */
  readonly signal?: AbortSignal;
}

/** A running endpoint. */
export interface HttpServer extends AsyncDisposable {
  /** The port it listens on. */
  readonly port: number;
  /** Stops it. */
  shutdown(): Promise<void>;
}

/** Where {@linkcode listen} serves, and what to say when it cannot. */
export interface ListenOptions {
  readonly hostname: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** Closes the server when aborted. */
  readonly signal?: AbortSignal | undefined;
  /** What is listening, for the error when the port is taken: "the console". */
  readonly what: string;
  /** How to get past a taken port: "choose another with --port (CONSOLE_PORT)". */
  readonly remedy: string;
  /** The answer when `handler` throws. */
  readonly onError?: (error: unknown) => Response | Promise<Response>;
}

/**
 * Serves `handler` on `hostname:port`; resolves once it listens. The handler gets each request
 * and, as `Deno.serve` gives it, the client's address.
 *
 * @throws {FatalError} with code `port_taken`, naming what listens and the remedy, when the port
 * is taken.
 */
export function listen(
  options: ListenOptions,
  handler: Deno.ServeHandler<Deno.NetAddr>,
): Promise<HttpServer> {
  const { promise, resolve } = Promise.withResolvers<HttpServer>();
  try {
    const server: Deno.HttpServer = Deno.serve({
      hostname: options.hostname,
      port: options.port,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onError ? { onError: options.onError } : {}),
      onListen: ({ port }) =>
        resolve({
          port,
          shutdown: () => server.shutdown(),
          [Symbol.asyncDispose]: () => server.shutdown(),
        }),
    }, handler);
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) {
      throw new FatalError(
        `${options.what} cannot listen on ${options.hostname}:${options.port}: the port is ` +
          `taken; ${options.remedy}`,
        { cause: error, code: "port_taken" },
      );
    }
    throw error;
  }
  return promise;
}

/** What a service's readiness looks at: its connection and its consumer, while it has them. */
export interface ServiceState {
  /** The broker connection of the current session, if any. */
  readonly broker?: { readonly isOpen: boolean } | undefined;
  /** The consumer of the current session, if any. */
  readonly consumer?: { readonly ready: boolean } | undefined;
}

/**
 * What `/readyz` says of an operator's pause, for {@linkcode HttpServerOptions.detail}: the pause
 * and the deliveries still being finished; undefined when not paused.
 */
export function pauseDetail(
  pause: () => PauseState,
  inFlight: () => number,
): () => string | undefined {
  return () => {
    const state = pause();
    return state.paused ? `${describePause(state)} (in flight: ${inFlight()})` : undefined;
  };
}

/**
 * OrdemDeProducao's readiness, for {@linkcode HttpServerOptions.ready}: ready (`/readyz` answers
 * 200) while its connection is open and its consumer consuming, or holding off for an operator's
 * pause (it does what it was told; the pause has its own metric and alert); not before the first
 * session, while reconnecting, while consumption is paused for the ledger, or once stopping. Reads
 * `state` at each call, so the caller keeps updating the same record.
 */
export function readiness(state: ServiceState): () => boolean {
  return () => (state.broker?.isOpen ?? false) && (state.consumer?.ready ?? false);
}

/** Serves the endpoints until shut down; resolves once it listens. */
export function serveHttp(options: HttpServerOptions): Promise<HttpServer> {
  return listen({
    hostname: options.hostname ?? "127.0.0.1",
    port: options.port,
    signal: options.signal,
    what: "the metrics and health endpoint",
    remedy: "choose another with --http-port (HTTP_PORT), or turn it off with --no-http",
  }, async (request) => {
    const { pathname } = new URL(request.url);
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
    }
    switch (pathname) {
      case "/metrics":
        return new Response(await options.registry.metrics(), {
          headers: { "content-type": options.registry.contentType },
        });
      case "/healthz":
        return new Response("ok\n");
      case "/readyz": {
        const ready = options.ready();
        const detail = options.detail?.();
        const body = `${ready ? "ready" : "not ready"}\n${
          detail === undefined ? "" : `${detail}\n`
        }`;
        return new Response(body, { status: ready ? 200 : 503 });
      }
      default:
        return new Response("not found: try /metrics, /healthz or /readyz\n", { status: 404 });
    }
  });
}
