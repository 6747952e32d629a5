// readiness(), /healthz, /readyz and /metrics as the consumer runs are in metrics_test.ts; the
// console's taken port, through its entry script, in console_security_test.ts.
import { strict as assert } from "node:assert";
import { Gauge, Registry } from "prom-client";
import { FatalError, isFatalError } from "../lib/errors.ts";
import { listen, serveHttp } from "../lib/http_server.ts";
import { waitFor } from "../testing/broker.ts";

/** A request's status, body and headers. */
async function request(
  port: number,
  path: string,
  init: RequestInit = {},
): Promise<{ status: number; text: string; headers: Headers }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, init);
  return { status: response.status, text: await response.text(), headers: response.headers };
}

Deno.test("serveHttp() answers GET and HEAD only, and names its paths for any other", async () => {
  await using http = await serveHttp({ port: 0, registry: new Registry(), ready: () => true });
  assert.ok(http.port > 0, "a free port was picked");
  const post = await request(http.port, "/metrics", { method: "POST" });
  assert.deepEqual([post.status, post.text, post.headers.get("allow")], [
    405,
    "method not allowed\n",
    "GET, HEAD",
  ]);
  const head = await request(http.port, "/healthz", { method: "HEAD" });
  assert.deepEqual([head.status, head.text], [200, ""]);
  const unknown = await request(http.port, "/");
  assert.deepEqual([unknown.status, unknown.text], [
    404,
    "not found: try /metrics, /healthz or /readyz\n",
  ]);
  assert.equal((await request(http.port, "/metrics/")).status, 404, "paths are exact");
  const query = await request(http.port, "/healthz?probe=kubelet");
  assert.deepEqual([query.status, query.text], [200, "ok\n"], "a query string is ignored");
});

Deno.test("serveHttp() asks ready() at each /readyz, and serves the registry's metrics in its format", async () => {
  const registry = new Registry();
  new Gauge({ name: "test_answer", help: "A gauge of the test's.", registers: [registry] }).set(42);
  let ready = false;
  let asked = 0;
  await using http = await serveHttp({
    port: 0,
    registry,
    ready: () => (asked++, ready),
  });
  assert.deepEqual(
    [(await request(http.port, "/readyz")).status, (await request(http.port, "/healthz")).status],
    [503, 200],
  );
  ready = true;
  const readyz = await request(http.port, "/readyz");
  assert.deepEqual([readyz.status, readyz.text], [200, "ready\n"]);
  assert.equal(asked, 2, "/healthz does not ask");
  const metrics = await request(http.port, "/metrics");
  assert.equal(metrics.headers.get("content-type"), registry.contentType);
  assert.equal(metrics.text, await registry.metrics());
  assert.match(metrics.text, /^test_answer 42$/m);
});

Deno.test("serveHttp() stops listening when its signal aborts", async () => {
  const controller = new AbortController();
  const http = await serveHttp({
    port: 0,
    registry: new Registry(),
    ready: () => true,
    signal: controller.signal,
  });
  assert.equal((await request(http.port, "/healthz")).status, 200);
  controller.abort();
  await waitFor("the port closed", async () => {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port: http.port })).close();
      return undefined;
    } catch (error) {
      return error instanceof Deno.errors.ConnectionRefused || undefined;
    }
  }, 5_000);
  await http.shutdown();
});

Deno.test("serveHttp() on a taken port fails as a FatalError naming the port and the remedy", async () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = taken.addr;
  const error = await (async () => {
    await using _http = await serveHttp({ port, registry: new Registry(), ready: () => true });
  })().then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof FatalError, String(error));
  assert.equal(error.code, "port_taken");
  assert.equal(
    error.message,
    `the metrics and health endpoint cannot listen on 127.0.0.1:${port}: the port is taken; ` +
      "choose another with --http-port (HTTP_PORT), or turn it off with --no-http",
  );
  assert.ok(error.cause instanceof Deno.errors.AddrInUse);
  assert.ok(isFatalError(error), "the command stops: no reconnect cures it");
});

Deno.test("listen() hands the handler each request with the client's address, and answers with onError when it throws", async () => {
  const seen: string[] = [];
  await using server = await listen({
    hostname: "127.0.0.1",
    port: 0,
    what: "a test server",
    remedy: "pick another",
    onError: (error) => new Response(`sorry: ${(error as Error).message}\n`, { status: 500 }),
  }, (request, info) => {
    seen.push(`${new URL(request.url).pathname} from ${info.remoteAddr.hostname}`);
    if (request.url.endsWith("/boom")) throw new Error("boom");
    return new Response("fine\n");
  });
  assert.deepEqual(await request(server.port, "/a").then((r) => [r.status, r.text]), [
    200,
    "fine\n",
  ]);
  assert.deepEqual(await request(server.port, "/boom").then((r) => [r.status, r.text]), [
    500,
    "sorry: boom\n",
  ]);
  assert.deepEqual(seen, ["/a from 127.0.0.1", "/boom from 127.0.0.1"]);
});

Deno.test("listen() resolves once it listens, and shutdown() closes the port", async () => {
  const server = await listen(
    { hostname: "127.0.0.1", port: 0, what: "a test server", remedy: "pick another" },
    () => new Response("up\n"),
  );
  (await Deno.connect({ hostname: "127.0.0.1", port: server.port })).close();
  await server.shutdown();
  await assert.rejects(
    Deno.connect({ hostname: "127.0.0.1", port: server.port }),
    Deno.errors.ConnectionRefused,
  );
});

Deno.test("listen() on a taken port names what listens and how to get past it", async () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = taken.addr;
  const error = await (async () =>
    await listen(
      { hostname: "127.0.0.1", port, what: "the console", remedy: "choose another with --port" },
      () => new Response(),
    ))().then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof FatalError, String(error));
  assert.equal(error.code, "port_taken");
  assert.equal(
    error.message,
    `the console cannot listen on 127.0.0.1:${port}: the port is taken; choose another with --port`,
  );
});
