/**
 * What the console and Estoque's stock API share in answering: a server whose handler knows the
 * port it listens on (the one picked, for 0: the Host header must name it, admission.ts), and JSON
 * answers no browser sniffs as another type or keeps.
 *
 * @module
 */

import { type HttpServer, listen, type ListenOptions } from "../http_server.ts";

/** Headers on every JSON answer: its type, no sniffing, nothing cached. */
const JSON_HEADERS: Readonly<Record<string, string>> = {
  "content-type": "application/json; charset=utf-8",
  "x-content-type-options": "nosniff",
  "cache-control": "no-store",
};

/** `value` as a JSON answer; `headers` (a server's own, then the answer's) add to the JSON ones. */
export function jsonResponse(
  value: unknown,
  status = 200,
  headers: Readonly<Record<string, string>> = {},
): Response {
  return new Response(JSON.stringify(value), {
    status,
    headers: { ...JSON_HEADERS, ...headers },
  });
}

/** A handler given the request, the client's address and the port the server listens on. */
export type ApiHandler = (request: Request, client: string, port: number) => Promise<Response>;

/**
 * Serves `handler` as {@linkcode listen} does, each request with the client's address and the
 * port listened on; resolves once it listens.
 */
export async function serveApi(options: ListenOptions, handler: ApiHandler): Promise<HttpServer> {
  const port = Promise.withResolvers<number>();
  const server = await listen(
    options,
    async (request, info) => handler(request, info.remoteAddr.hostname, await port.promise),
  );
  port.resolve(server.port);
  return server;
}
