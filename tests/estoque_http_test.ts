/**
 * Estoque's HTTP endpoint: the stock API guarded as the console's actions are (host names, tokens,
 * roles, the CSRF token, same-origin posts), movements checked with a JSON reason and nothing
 * written when refused, and /metrics, /healthz, /readyz open as OrdemDeProducao's are.
 */

import { strict as assert } from "node:assert";
import { LOOPBACK_HOSTS } from "../lib/console/allowed_hosts.ts";
import { type Gate, gateOf } from "../lib/console/admission.ts";
import { serveEstoqueHttp } from "../lib/estoque_http.ts";
import { setupLogging } from "../lib/log.ts";
import type { HttpServer } from "../lib/http_server.ts";
import { OutboxMetrics } from "../lib/outbox_metrics.ts";
import { PostgresStockStore } from "../lib/postgres_stock_store.ts";
import { SqliteStockStore } from "../lib/sqlite_stock_store.ts";
import { type StockStore, StockStoreUnavailableError } from "../lib/stock_store.ts";
import { POSTGRES_URL } from "../testing/broker.ts";
import { postChunked } from "../testing/chunked_post.ts";
import { CommitDroppingProxy } from "../testing/commit_proxy.ts";
import { dropSchema } from "../testing/postgres.ts";

const RED = "6f1c2a4e-8d3b-4f5a-9c7e-1b2d3e4f5a6b";
const BLUE = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const VIEWER = "viewer-secret-1234";
const OPERATOR = "operator-secret-5678";

/** A gate with a viewer and an operator token, answering to the loopback names. */
function gate(): Promise<Gate> {
  const option = (label: string, value: string | undefined) => ({ value, label });
  return gateOf({
    hostname: option("--http-host", "127.0.0.1"),
    allowedHosts: option("--allowed-hosts", LOOPBACK_HOSTS),
    token: option("--token", VIEWER),
    operatorToken: option("--operator-token", OPERATOR),
    usersFile: option("--users-file", undefined),
  }, "estoque stock");
}

interface Served {
  readonly store: StockStore;
  readonly server: HttpServer;
  readonly base: string;
  /** Sends a request with a bearer token (none for undefined). */
  call(path: string, init?: RequestInit & { token?: string | undefined }): Promise<Response>;
  /** Posts a movement as the operator, with its CSRF token (and other headers). */
  post(body: unknown, headers?: Record<string, string>): Promise<Response>;
  /** The operator's headers for a post: its token and CSRF token, JSON. */
  operator(): Promise<Record<string, string>>;
}

async function served(
  fn: (s: Served) => Promise<void>,
  api: "gate" | "none" = "gate",
  open: () => Promise<StockStore> = () => SqliteStockStore.open(":memory:"),
): Promise<void> {
  await using store = await open();
  await store.setItem({ color: RED, quantity: 12, reorderPoint: 10, reorderQuantity: 40 });
  const metrics = new OutboxMetrics({ instanceId: "test", stats: () => store.outboxStats() });
  await using server = await serveEstoqueHttp({
    hostname: "127.0.0.1",
    port: 0,
    registry: metrics.registry,
    ready: () => true,
    store,
    api: api === "gate" ? await gate() : undefined,
    metrics,
  });
  const base = `http://127.0.0.1:${server.port}`;
  const call = (path: string, init: RequestInit & { token?: string | undefined } = {}) => {
    const { token, ...rest } = init;
    const headers = new Headers(rest.headers);
    if (token !== undefined) headers.set("authorization", `Bearer ${token}`);
    return fetch(`${base}${path}`, { ...rest, headers });
  };
  let csrf: string | undefined;
  const operator = async () => {
    csrf ??= (await (await call("/api/session", { token: OPERATOR })).json()).csrf;
    return {
      authorization: `Bearer ${OPERATOR}`,
      "content-type": "application/json",
      "x-csrf-token": csrf!,
    };
  };
  const post = async (body: unknown, headers: Record<string, string> = {}) =>
    call("/api/stock/movements", {
      method: "POST",
      headers: { ...await operator(), ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
  await fn({ store, server, base, call, post, operator });
}

/** The status of a GET sent with the Host header `host` (fetch sends the URL's own). */
async function statusFor(port: number, host: string, path: string, token: string) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const request = `GET ${path} HTTP/1.1\r\nhost: ${host}\r\nauthorization: Bearer ${token}\r\n` +
      "connection: close\r\n\r\n";
    await conn.write(new TextEncoder().encode(request));
    const buffer = new Uint8Array(4096);
    const read = await conn.read(buffer);
    const head = new TextDecoder().decode(buffer.subarray(0, read ?? 0));
    return Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
  } finally {
    conn.close();
  }
}

/** The JSON of a response, its status checked. */
async function answer(response: Response, status: number): Promise<Record<string, unknown>> {
  const body = await response.json();
  assert.equal(response.status, status, JSON.stringify(body));
  return body;
}

Deno.test("a movement posted by the operator with its CSRF token is applied, and one that crosses the reorder point returns its request", async () => {
  await served(async ({ store, post }) => {
    const first = await answer(await post({ color: RED, delta: -2, reason: "order 9" }), 201);
    assert.deepEqual(first.movement, { id: 1, color: RED, before: 12, after: 10, delta: -2 });
    assert.equal(first.request, null);
    const second = await answer(await post({ color: RED.toUpperCase(), delta: -1 }), 201);
    const request = second.request as Record<string, unknown>;
    assert.equal(request.colorCode, RED);
    assert.equal(request.quantity, 40);
    const rows = await store.outboxRows();
    assert.deepEqual(rows.map((r) => r.refCode), [request.refCode]);
  });
});

Deno.test("a refused movement gets 400, 404 or 409 with a JSON reason, and writes nothing", async () => {
  await served(async ({ store, post }) => {
    const refusals: Array<[unknown, number, string]> = [
      [{ color: BLUE, delta: -1 }, 404, "unknown_color"],
      [{ color: RED, delta: -13 }, 409, "below_zero"],
      [{ color: RED, delta: 1.5 }, 400, "bad_delta"],
      [{ color: RED, delta: "-1" }, 400, "bad_delta"],
      [{ color: RED, delta: 0 }, 400, "bad_delta"],
      [{ color: RED }, 400, "bad_delta"],
      [{ color: "red", delta: -1 }, 400, "bad_color"],
      [{ color: RED, delta: -1, extra: 1 }, 400, "bad_movement"],
      [[1, 2], 400, "bad_movement"],
      ["{not json", 400, "bad_movement"],
    ];
    for (const [body, status, code] of refusals) {
      const refused = await answer(await post(body), status);
      assert.equal(refused.code, code, JSON.stringify(body));
      assert.equal(typeof refused.error, "string");
    }
    assert.equal((await store.getItem(RED))?.quantity, 12);
    assert.equal(await store.countMovements(), 0);
    assert.deepEqual(await store.outboxRows(), []);
  });
});

Deno.test("the stock API is guarded as the console's actions: credentials, role, CSRF token, origin, host name", async () => {
  await served(async ({ store, server, call }) => {
    // A movement posted with `token` and the JSON content type, `headers` beside.
    const move = (token: string, headers: Record<string, string> = {}) =>
      call("/api/stock/movements", {
        method: "POST",
        token,
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify({ color: RED, delta: -1 }),
      });
    // No credential, a wrong one: 401.
    assert.equal((await answer(await call("/api/stock"), 401)).code, "refused");
    await answer(await call("/api/stock", { token: "wrong" }), 401);
    // A viewer reads, but may not move stock, even with its CSRF token.
    const items = await answer(await call("/api/stock", { token: VIEWER }), 200);
    assert.equal((items.items as unknown[]).length, 1);
    const session = await answer(await call("/api/session", { token: VIEWER }), 200);
    assert.equal(session.canMove, false);
    const viewer = await answer(
      await move(VIEWER, { "x-csrf-token": session.csrf as string }),
      403,
    );
    assert.match(viewer.error as string, /operator role/);
    // The operator, without its CSRF token, or with another's: 403.
    await answer(await move(OPERATOR), 403);
    await answer(await move(OPERATOR, { "x-csrf-token": session.csrf as string }), 403);
    // A page on another site: its credentials are not looked at.
    const csrf = (await answer(await call("/api/session", { token: OPERATOR }), 200)).csrf;
    await answer(
      await move(OPERATOR, { "x-csrf-token": csrf as string, origin: "https://evil.test" }),
      401,
    );
    // A name the API does not answer to (DNS rebinding): 421, before anything is read.
    assert.equal(await statusFor(server.port, "evil.test", "/api/stock", OPERATOR), 421);
    assert.equal(await statusFor(server.port, "localhost", "/api/stock", OPERATOR), 200);
    assert.equal((await store.getItem(RED))?.quantity, 12);
    assert.equal(await store.countMovements(), 0);
  });
});

Deno.test("/metrics, /healthz and /readyz are open; without the API, /api/ is not found", async () => {
  await served(async ({ call, post }) => {
    await answer(await post({ color: RED, delta: -3 }), 201);
    await answer(await post({ color: BLUE, delta: -3 }), 404);
    const metrics = await (await call("/metrics")).text();
    assert.match(metrics, /^estoque_outbox_depth\{instance_id="test"\} 1$/m);
    assert.match(
      metrics,
      /^estoque_stock_movements_total\{outcome="applied",instance_id="test"\} 1$/m,
    );
    assert.match(
      metrics,
      /^estoque_stock_movements_total\{outcome="refused",instance_id="test"\} 1$/m,
    );
    assert.match(metrics, /^estoque_outbox_requests_total\{instance_id="test"\} 1$/m);
    assert.equal(await (await call("/healthz")).text(), "ok\n");
    assert.equal(await (await call("/readyz")).text(), "ready\n");
  });
  await served(async ({ call }) => {
    assert.equal((await call("/metrics")).status, 200);
    await answer(await call("/api/stock", { token: OPERATOR }), 404);
  }, "none");
});

Deno.test("a movement body over the limit gets 413 before it is read whole: declared, or chunked", async () => {
  await served(async ({ server, post, operator, store }) => {
    const large = JSON.stringify({ color: RED, delta: -1, reason: " ".repeat(20_000) });
    assert.equal((await answer(await post(large), 413)).code, "too_large_body");
    const total = 256 * 1024 * 1024;
    const rss = Deno.memoryUsage().rss;
    const { status, sent } = await postChunked(
      server.port,
      "/api/stock/movements",
      await operator(),
      total,
    );
    assert.equal(status, 413);
    assert.ok(sent < 32 * 1024 * 1024, `sent ${sent} bytes before the answer`);
    const grown = Deno.memoryUsage().rss - rss;
    assert.ok(grown < 64 * 1024 * 1024, `RSS grew by ${grown} bytes`);
    assert.equal(await store.countMovements(), 0);
  });
});

Deno.test("an outage or a failure answers a generic message with its code; the driver's detail goes to the log only", async () => {
  const failing = (error: Error) => (store: StockStore): StockStore =>
    new Proxy(store, {
      get(target, property) {
        if (property === "listItems" || property === "move") return () => Promise.reject(error);
        const value = Reflect.get(target, property, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  const secret = "db.internal.example:5432 user estoque_admin";
  const outage = new StockStoreUnavailableError(`the stock store at ${secret} is unavailable`, {
    code: "ECONNREFUSED",
  });
  const lines: string[] = [];
  setupLogging({ level: "info", write: (line) => lines.push(line) });
  try {
    await served(
      async ({ call, post }) => {
        const listed = await call("/api/stock", { token: VIEWER });
        assert.equal(listed.headers.get("retry-after"), "1");
        const body = await answer(listed, 503);
        assert.equal(body.code, "store_unavailable");
        assert.doesNotMatch(JSON.stringify(body), /db\.internal|5432|estoque_admin/);
        const moved = await answer(await post({ color: RED, delta: -1 }), 503);
        assert.doesNotMatch(JSON.stringify(moved), /db\.internal|5432|estoque_admin/);
      },
      "gate",
      async () => failing(outage)(await SqliteStockStore.open(":memory:")),
    );
    await served(
      async ({ call }) => {
        const body = await answer(await call("/api/stock", { token: VIEWER }), 500);
        assert.equal(body.code, "internal");
        assert.doesNotMatch(JSON.stringify(body), /db\.internal|5432|estoque_admin/);
      },
      "gate",
      async () =>
        failing(new Error(`query on ${secret} failed`))(await SqliteStockStore.open(":memory:")),
    );
  } finally {
    setupLogging({ level: "fatal" });
  }
  // The detail is in the log, for whoever runs Estoque.
  assert.equal(lines.filter((l) => l.includes("estoque_admin")).length, 3, lines.join(""));
});

Deno.test("a movement whose COMMIT answer is lost gets 500 commit_unknown, no retry-after; its retry with the same Idempotency-Key applies it once", async () => {
  const schema = `test_http_${crypto.randomUUID().slice(0, 8)}`;
  await using proxy = CommitDroppingProxy.start(POSTGRES_URL);
  try {
    await served(
      async ({ store, post }) => {
        await store.setItem({ color: RED, quantity: 100, reorderPoint: 10, reorderQuantity: 5 });
        const key = { "idempotency-key": "order-81" };
        const dropped = proxy.dropNextCommit();
        const lost = await post({ color: RED, delta: -30, reason: "order 81" }, key);
        await dropped;
        assert.equal(lost.headers.get("retry-after"), null);
        const body = await answer(lost, 500);
        assert.equal(body.code, "commit_unknown");
        assert.doesNotMatch(body.error as string, /127\.0\.0\.1|postgres/);
        const retried = await post({ color: RED, delta: -30, reason: "order 81" }, key);
        assert.equal(retried.headers.get("idempotent-replayed"), "true");
        const first = await answer(retried, 201);
        assert.deepEqual(first.movement, { id: 1, color: RED, before: 100, after: 70, delta: -30 });
        const again = await answer(
          await post({ color: RED, delta: -30, reason: "order 81" }, key),
          201,
        );
        assert.deepEqual(again, first);
        assert.equal((await store.getItem(RED))?.quantity, 70);
        assert.equal(await store.countMovements(), 1);
        // The key is checked, and not given to another movement.
        assert.equal(
          (await answer(await post({ color: RED, delta: -1 }, key), 422)).code,
          "key_reused",
        );
        assert.equal(
          (await answer(
            await post({ color: RED, delta: -1 }, { "idempotency-key": "x".repeat(201) }),
            400,
          )).code,
          "bad_key",
        );
      },
      "gate",
      () => PostgresStockStore.open(proxy.url, { schema }),
    );
  } finally {
    await dropSchema(POSTGRES_URL, schema);
  }
});
