/**
 * OrdemDeProducao's HTTP endpoint: `/metrics` (Prometheus text format), `/healthz` (the process
 * is alive) and `/readyz` (connected and consuming).
 *
 * @module
 */

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

/** Serves the endpoints until shut down; resolves once it listens. */
export function serveHttp(options: HttpServerOptions): Promise<HttpServer> {
  const { promise, resolve } = Promise.withResolvers<HttpServer>();
  const hostname = options.hostname ?? "127.0.0.1";
  try {
    listen(options, hostname, resolve);
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) {
      throw new FatalError(
        `the metrics and health endpoint cannot listen on ${hostname}:${options.port}: the port ` +
          `is taken; choose another with --http-port (HTTP_PORT), or turn it off with --no-http`,
        { cause: error, code: "port_taken" },
      );
    }
    throw error;
  }
  return promise;
}

function listen(
  options: HttpServerOptions,
  hostname: string,
  resolve: (server: HttpServer) => void,
): Deno.HttpServer {
  const server: Deno.HttpServer = Deno.serve({
    port: options.port,
    hostname,
    ...(options.signal ? { signal: options.signal } : {}),
    onListen: ({ port }) => {
      resolve({
        port,
        shutdown: () => server.shutdown(),
        [Symbol.asyncDispose]: () => server.shutdown(),
      });
    },
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
      case "/readyz":
        return options.ready()
          ? new Response("ready\n")
          : new Response("not ready\n", { status: 503 });
      default:
        return new Response("not found: try /metrics, /healthz or /readyz\n", { status: 404 });
    }
  });
  return server;
}
