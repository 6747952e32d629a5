/**
 * Estoque's HTTP endpoint: `/metrics` (Prometheus), `/healthz` and `/readyz`, open as
 * OrdemDeProducao's are; and, with `estoque serve`, the stock API, guarded as the console's actions
 * are (lib/console/admission.ts: its host names, tokens or users, failed logins counted; a
 * movement also needs the operator role, the CSRF token of `GET /api/session` and a same-origin
 * request):
 *
 * | method | path | answer |
 * | ------ | ---- | ------ |
 * | GET | `/api/session` | `{user, role, canMove, csrf}` |
 * | GET | `/api/stock` | `{items: [{color, quantity, reorderPoint, reorderQuantity, updatedAt}]}` |
 * | GET | `/api/outbox` | `{depth, oldestUnsentAt, oldestUnsentAgeSeconds, maxAttempts}` |
 * | POST | `/api/stock/movements` | `{color, delta, reason?}` → 201 `{movement, item, request}` |
 *
 * A movement may carry an `Idempotency-Key` header (1 to 200 visible ASCII characters): sent again
 * with the same key, it is not applied again, and the answer is the first one's (201, with
 * `idempotent-replayed: true`); the same key with another movement gets 422 `key_reused`.
 *
 * A refused movement changes nothing and says why as `{error, code}`: 400 for a body that is not
 * a movement (a colour that is not a code, a delta that is not a whole number other than 0, a bad
 * key), 404 for a colour without a stock item, 409 for stock that would fall below zero, 413 for
 * a body over 16 KiB; 503 (`store_unavailable`, with `retry-after`) while the store is
 * unavailable: nothing was written. When the store stops answering during the movement's commit,
 * nobody can tell whether it was applied: 500 `commit_unknown`, without `retry-after` (look at
 * `/api/stock`, or send it again with the same `Idempotency-Key`). Answers never carry the
 * driver's words (hosts, users): those go to the log.
 *
 * @module
 */

import type { Registry } from "prom-client";
import { admit, type Gate, type Refusal, refuseAction } from "./console/admission.ts";
import { jsonResponse, serveApi } from "./console/api_server.ts";
import { BodyTooLargeError, readBodyText } from "./console/request_body.ts";
import { describeError, errorCode } from "./errors.ts";
import type { HttpServer } from "./http_server.ts";
import { logger } from "./log.ts";
import type { OutboxMetrics } from "./outbox_metrics.ts";
import { redactUrl } from "./redact.ts";
import {
  isStoreUnavailable,
  type Movement,
  type MovementResult,
  StockCommitUnknownError,
  StockError,
  type StockErrorCode,
  type StockStore,
} from "./stock_store.ts";

/** Options for {@linkcode serveEstoqueHttp}. */
export interface EstoqueHttpOptions {
  /** The address to listen on. */
  readonly hostname: string;
  /** The port; 0 picks a free one. */
  readonly port: number;
  /** The metrics to serve. */
  readonly registry: Registry;
  /** Whether the service is ready, for `/readyz`. */
  readonly ready: () => boolean;
  /** The stock store the API reads and moves. */
  readonly store: StockStore;
  /** The stock API's guard; undefined serves only /metrics, /healthz and /readyz. */
  readonly api?: Gate | undefined;
  /** Counts movements. */
  readonly metrics?: OutboxMetrics | undefined;
  /** Called after each movement the API applied or the store refused (for readiness). */
  readonly onStore?: (available: boolean) => void;
  /** Closes the server when aborted. */
  readonly signal?: AbortSignal;
}

/** The most a movement's body may be. */
const MAX_BODY = 16_384;

/** The status of each refusal of a movement. */
const STATUS: Readonly<Record<StockErrorCode, number>> = {
  unknown_color: 404,
  below_zero: 409,
  too_large: 409,
  bad_color: 400,
  bad_delta: 400,
  bad_item: 400,
  bad_reason: 400,
  bad_key: 400,
  key_reused: 422,
  bad_movement: 400,
};

const log = logger("estoque", "http");

/** A refusal as `{error, code}`. */
function problem(message: string, status: number, code: string, headers = {}): Response {
  return jsonResponse({ error: message, code }, status, headers);
}

function refused(refusal: Refusal, code: string): Response {
  return problem(refusal.message, refusal.status, code, refusal.headers);
}

/** Serves Estoque's endpoint until aborted or shut down; resolves once it listens. */
export function serveEstoqueHttp(options: EstoqueHttpOptions): Promise<HttpServer> {
  return serveApi(
    {
      hostname: options.hostname,
      port: options.port,
      signal: options.signal,
      what: "Estoque's HTTP endpoint",
      remedy: "choose another with --http-port (ESTOQUE_HTTP_PORT), or turn it off with --no-http",
      onError: (error) => {
        log.error("request failed", { error: describeError(error) });
        return problem("Estoque failed to answer; see its log", 500, "internal");
      },
    },
    (request, client, port) => handle(request, client, port, options),
  );
}

async function handle(
  request: Request,
  client: string,
  port: number,
  o: EstoqueHttpOptions,
): Promise<Response> {
  const { pathname } = new URL(request.url);
  if (!pathname.startsWith("/api/")) return operations(request, pathname, o);
  if (o.api === undefined) {
    return problem("no stock API here: it is served by estoque serve", 404, "not_found");
  }
  const admission = admit(o.api, request, client, port);
  if (admission.refusal) return refused(admission.refusal, "refused");
  const principal = admission.principal;
  try {
    if (request.method === "POST") {
      if (pathname !== "/api/stock/movements") {
        return problem(`nothing to post at ${pathname}`, 404, "not_found");
      }
      const no = refuseAction(o.api, request, principal, "moving stock");
      if (no !== undefined) return refused(no, "forbidden");
      return await move(request, o);
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      return problem("method not allowed", 405, "method", { allow: "GET, HEAD, POST" });
    }
    switch (pathname) {
      case "/api/session":
        return jsonResponse({
          user: principal.name,
          role: principal.role,
          canMove: principal.role === "operator",
          csrf: o.api.auth.csrfToken(principal),
        });
      case "/api/stock":
        return jsonResponse({ items: await o.store.listItems() });
      case "/api/outbox": {
        const stats = await o.store.outboxStats();
        const oldest = stats.oldestUnsentAt;
        return jsonResponse({
          depth: stats.depth,
          oldestUnsentAt: oldest?.toISOString() ?? null,
          oldestUnsentAgeSeconds: oldest ? Math.max(0, Date.now() - oldest.getTime()) / 1000 : 0,
          maxAttempts: stats.maxAttempts,
        });
      }
      default:
        return problem(`no page ${pathname}`, 404, "not_found");
    }
  } catch (error) {
    // The driver's words (hosts, ports, users) go to the log, not to whoever asked.
    const detail = { path: pathname, error: redactUrl(describeError(error)) };
    if (error instanceof StockCommitUnknownError) {
      log.error("the store stopped answering during a movement's commit", detail);
      return problem(
        "the stock store stopped answering while the movement committed: it may or may not " +
          "have been applied. Look at GET /api/stock, or send it again with the same " +
          "Idempotency-Key (a movement applied already is not applied twice)",
        500,
        "commit_unknown",
      );
    }
    if (isStoreUnavailable(error)) {
      o.onStore?.(false);
      log.warning("the stock store is unavailable", { ...detail, code: errorCode(error) });
      return problem(
        "the stock store is unavailable: nothing was written, try again shortly",
        503,
        "store_unavailable",
        { "retry-after": "1" },
      );
    }
    log.error("stock API request failed", detail);
    return problem("Estoque failed to answer; see its log", 500, "internal");
  }
}

/** `/metrics`, `/healthz` and `/readyz`, as OrdemDeProducao serves them. */
async function operations(
  request: Request,
  pathname: string,
  o: EstoqueHttpOptions,
): Promise<Response> {
  if (request.method !== "GET" && request.method !== "HEAD") {
    return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
  }
  switch (pathname) {
    case "/metrics":
      return new Response(await o.registry.metrics(), {
        headers: { "content-type": o.registry.contentType },
      });
    case "/healthz":
      return new Response("ok\n");
    case "/readyz":
      return o.ready() ? new Response("ready\n") : new Response("not ready\n", { status: 503 });
    default:
      return new Response("not found: try /metrics, /healthz, /readyz or /api/stock\n", {
        status: 404,
      });
  }
}

/**
 * Reads a movement's body: a JSON object `{color, delta, reason?}`, at most 16 KiB; and its
 * `Idempotency-Key` header.
 * @throws {StockError} (400) naming what is wrong.
 * @throws {BodyTooLargeError} (413) for a body over 16 KiB, before it is read whole.
 */
async function readMovement(request: Request): Promise<Movement> {
  if (!(request.headers.get("content-type") ?? "").startsWith("application/json")) {
    throw new StockError("bad_movement", "send JSON (content-type: application/json)");
  }
  const key = request.headers.get("idempotency-key") ?? undefined;
  const text = await readBodyText(request, MAX_BODY);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new StockError("bad_movement", "the movement is not valid JSON");
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new StockError("bad_movement", "send a JSON object: {color, delta, reason?}");
  }
  const { color, delta, reason, ...rest } = body as Record<string, unknown>;
  const unknown = Object.keys(rest)[0];
  if (unknown !== undefined) {
    throw new StockError(
      "bad_movement",
      `unknown field ${JSON.stringify(unknown)}: send {color, delta, reason?}`,
    );
  }
  return { color, delta, reason, idempotencyKey: key } as Movement; // checked by the store
}

/** `POST /api/stock/movements`. */
async function move(request: Request, o: EstoqueHttpOptions): Promise<Response> {
  let result: MovementResult;
  try {
    result = await o.store.move(await readMovement(request));
  } catch (error) {
    if (error instanceof BodyTooLargeError) {
      o.metrics?.moved("refused");
      return problem(`the movement is larger than ${MAX_BODY} bytes`, 413, "too_large_body");
    }
    if (!(error instanceof StockError)) throw error;
    o.metrics?.moved("refused");
    return problem(error.message, STATUS[error.code], error.code);
  }
  o.onStore?.(true);
  // A repeat applied nothing now: it is not counted again.
  if (!result.replayed) o.metrics?.moved("applied", result.request !== undefined);
  const { item, request: made } = result;
  return jsonResponse(
    {
      movement: {
        id: result.movementId,
        color: item.color,
        before: result.before,
        after: item.quantity,
        delta: item.quantity - result.before,
      },
      item,
      request: made === undefined
        ? null
        : { refCode: made.refCode, colorCode: made.colorCode, quantity: made.quantity },
    },
    201,
    result.replayed ? { "idempotent-replayed": "true" } : {},
  );
}
