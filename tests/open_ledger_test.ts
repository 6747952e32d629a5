// A PostgreSQL refusing connections (ECONNREFUSED) tried for retryForMs, and openLedgerReader() on
// PostgreSQL, are in ledger_test.ts; the ledgers themselves there too.
import { strict as assert } from "node:assert";
import { join } from "node:path";
import { errorCode } from "../lib/errors.ts";
import { openLedger, openLedgerReader } from "../lib/open_ledger.ts";
import { newOrder } from "../lib/order.ts";
import { MIN_RECONNECT_DELAY_MS } from "../lib/backoff.ts";
import { POSTGRES_URL, tempDir, waitFor } from "../testing/broker.ts";
import { dropSchema } from "../testing/postgres.ts";

/** A schema no other test uses. */
function uniqueSchema(): string {
  return `test_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
}

/** POSTGRES_URL in schema `schema`. */
function inSchema(schema: string, url = POSTGRES_URL): string {
  const target = new URL(url);
  target.searchParams.set("search_path", schema);
  return target.href;
}

/** A PostgreSQL ErrorResponse message: FATAL with `sqlstate` and `text`. */
function fatal(sqlstate: string, text: string): Uint8Array {
  const fields = `SFATAL\0VFATAL\0C${sqlstate}\0M${text}\0\0`;
  const body = new TextEncoder().encode(fields);
  const message = new Uint8Array(1 + 4 + body.length);
  message[0] = "E".charCodeAt(0);
  new DataView(message.buffer).setInt32(1, 4 + body.length);
  message.set(body, 5);
  return message;
}

/**
 * A port in front of the PostgreSQL under test that counts the connections made to it. The first
 * `startingFor` are answered as a server still starting answers them (FATAL 57P03, "the database
 * system is starting up"); the rest go through to the database.
 */
class InFrontOfPostgres implements AsyncDisposable {
  /** Connections made so far. */
  attempts = 0;
  /** Connections answered "starting up", and closed. */
  turnedAway = 0;
  readonly #listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  readonly #startingFor: number;
  readonly #handlers = new Set<Promise<void>>();
  readonly #accepting: Promise<void>;

  constructor(startingFor: number) {
    this.#startingFor = startingFor;
    this.#accepting = this.#accept();
  }

  /** POSTGRES_URL with this port in place of the database's. */
  url(url = POSTGRES_URL): string {
    const target = new URL(url);
    target.hostname = "127.0.0.1";
    target.port = String(this.#listener.addr.port);
    return target.href;
  }

  async #accept(): Promise<void> {
    try {
      for await (const conn of this.#listener) {
        const attempt = ++this.attempts;
        const handler = this.#handle(conn, attempt).finally(() => this.#handlers.delete(handler));
        this.#handlers.add(handler);
      }
    } catch {
      // The listener was closed.
    }
  }

  async #handle(conn: Deno.TcpConn, attempt: number): Promise<void> {
    try {
      if (attempt <= this.#startingFor) {
        const buffer = new Uint8Array(4096);
        await conn.read(buffer); // the startup message
        const answer = fatal("57P03", "the database system is starting up");
        for (let written = 0; written < answer.length;) {
          written += await conn.write(answer.subarray(written));
        }
        // A FATAL error ends the backend: the server hangs up.
        conn.close();
        this.turnedAway++;
        return;
      }
      const database = new URL(POSTGRES_URL);
      const server = await Deno.connect({
        hostname: database.hostname,
        port: Number(database.port) || 5432,
      });
      await Promise.all([
        conn.readable.pipeTo(server.writable),
        server.readable.pipeTo(conn.writable),
      ]).catch(() => {});
    } catch {
      // The client or the server went away.
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#listener.close();
    await this.#accepting;
    await Promise.all(this.#handlers);
  }
}

Deno.test("openLedger() opens a sqlite: URL as a SQLite ledger at its path, folders made, writing as the instance given", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "new", "folder", "ledger.sqlite");
  const order = newOrder({ quantity: 4 });
  {
    await using ledger = await openLedger(`sqlite:${path}`, { instanceId: "ordem-7" });
    assert.deepEqual(await ledger.commit([{ kind: "order", order, attempt: 2 }]), ["created"]);
  }
  assert.ok((await Deno.stat(path)).isFile);
  await using reader = await openLedgerReader(`sqlite:${path}`);
  const found = await reader.findOrder(order.refCode);
  assert.deepEqual([found?.quantity, found?.attempt, found?.instanceId], [4, 2, "ordem-7"]);
  assert.equal(await reader.countOrders(), 1);
});

Deno.test("openLedgerReader() on a sqlite: path with no ledger yet fails, and makes no file", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "ledger.sqlite");
  await assert.rejects(openLedgerReader(`sqlite:${path}`));
  await assert.rejects(Deno.stat(path), Deno.errors.NotFound);
});

Deno.test("openLedger() opens a postgres:// URL as a PostgreSQL ledger in the URL's search_path, writing as the instance given", async () => {
  const schema = uniqueSchema();
  try {
    const order = newOrder({ quantity: 6 });
    {
      await using ledger = await openLedger(inSchema(schema), { instanceId: "ordem-pg" });
      assert.deepEqual(await ledger.commit([{ kind: "order", order, attempt: 0 }]), ["created"]);
    }
    await using reader = await openLedgerReader(inSchema(schema));
    const found = await reader.findOrder(order.refCode);
    assert.deepEqual([found?.quantity, found?.instanceId], [6, "ordem-pg"]);
  } finally {
    await dropSchema(POSTGRES_URL, schema);
  }
});

Deno.test("openLedger() tries a PostgreSQL that is still starting up (57P03) again with backoff, and opens it once it is up", async () => {
  const schema = uniqueSchema();
  await using front = new InFrontOfPostgres(2);
  try {
    const started = performance.now();
    await using ledger = await openLedger(inSchema(schema, front.url()), {
      instanceId: "ordem-late",
      retryForMs: 30_000,
    });
    assert.equal(await ledger.countOrders(), 0);
    assert.equal(front.turnedAway, 2);
    assert.ok(front.attempts >= 3, `${front.attempts} connections`);
    // Two waits: 250-500 ms, then 500-1000 ms.
    assert.ok(performance.now() - started >= 3 * MIN_RECONNECT_DELAY_MS);
  } finally {
    await dropSchema(POSTGRES_URL, schema);
  }
});

Deno.test("openLedger() without retryForMs gives up on a PostgreSQL still starting at the first answer", async () => {
  await using front = new InFrontOfPostgres(Infinity);
  const url = new URL(front.url());
  url.password = "s3cret-pw";
  await assert.rejects(
    openLedger(url.href),
    (e: Error) =>
      /^cannot open the ledger at postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/test: .*starting up/
        .test(e.message) && !e.message.includes("s3cret-pw"),
  );
  assert.equal(front.attempts, 1);
});

Deno.test("openLedger() fails at once on an error no wait can cure (a database that does not exist), whatever retryForMs", async () => {
  await using front = new InFrontOfPostgres(0);
  const url = new URL(front.url());
  url.pathname = `/no_such_database_${uniqueSchema()}`;
  const error = await openLedger(url.href, { retryForMs: 60_000 }).then(
    async (ledger) => (await ledger.close(), undefined),
    (e: unknown) => e,
  );
  assert.match(String(error), /cannot open the ledger at .*no_such_database_.*does not exist/);
  assert.equal(errorCode(error), "3D000", "invalid_catalog_name");
  assert.equal(front.attempts, 1, "tried once");
});

/**
 * Records the delay of each timer set from now on that `matches`; the timers run as usual. Only a
 * look at what the code under test waits for: pg's own timers (10 s) are left out by `matches`.
 */
function watchTimers(matches: (ms: number) => boolean): { readonly delays: number[] } & Disposable {
  const real = globalThis.setTimeout;
  const delays: number[] = [];
  globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => {
    const ms = args[1];
    if (ms !== undefined && matches(ms)) delays.push(ms);
    return real(...args);
  }) as typeof setTimeout;
  return {
    delays,
    [Symbol.dispose]: () => {
      globalThis.setTimeout = real;
    },
  };
}

Deno.test("openLedger() stops waiting for a PostgreSQL that is starting as soon as its signal aborts", async () => {
  await using front = new InFrontOfPostgres(Infinity);
  const controller = new AbortController();
  using backoffs = watchTimers((ms) => ms >= MIN_RECONNECT_DELAY_MS && ms <= 1_000);
  const opening = openLedger(front.url(), { retryForMs: 60_000, signal: controller.signal }).then(
    async (ledger) => (await ledger.close(), undefined),
    (e: unknown) => e,
  );
  // The second wait (500-1000 ms) is under way once its timer is set.
  await waitFor("the second backoff", () => backoffs.delays.length >= 2 || undefined, 10_000);
  const aborted = performance.now();
  controller.abort(new Error("interrupted"));
  const error = await opening;
  const waited = performance.now() - aborted;
  assert.ok(error instanceof Error, String(error));
  // SIGTERM while OrdemDeProducao starts must not wait out a backoff of up to 15 s.
  assert.ok(
    waited < 200,
    `still waited ${Math.round(waited)} ms of a ${backoffs.delays[1]} ms backoff after the abort`,
  );
  assert.equal(front.attempts, 2, "no attempt after the abort");
});
