/**
 * The console is safe to expose: reading needs a token or a user once credentials are set;
 * acting needs the operator role, the CSRF token and a same-origin request, and is refused in
 * read-only mode; a page on another site cannot act with a logged-in browser's credentials (real
 * Chromium); a page whose name was rebound to the console's address reads and does nothing (real
 * Chromium, and forged Host headers); wrong credentials from one address are slowed down (429),
 * while those a page on another site sends are not looked at, so it cannot lock the operator out
 * (real Chromium); bad input gets a clear message and changes nothing; a console bound beyond
 * loopback without credentials, or with bad --allowed-hosts, does not start. Pages of the dead
 * letters are bounded.
 */

import { strict as assert } from "node:assert";
import { createHash } from "node:crypto";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { DEFAULT_RETRY_POLICY, retryDelays } from "../lib/retry_policy.ts";
import { launchChromium } from "../testing/browser.ts";
import {
  type BrokerContext,
  runScript,
  tempDir,
  waitFor,
  withTopology,
} from "../testing/broker.ts";
import { basic, call, type RunningConsole, startConsole } from "../testing/console.ts";

const LETTERS = 120;

/** Puts `count` dead letters straight into the DLQ: `REF-<i>`, reason exhausted. */
async function fillDeadLetters(ctx: BrokerContext, count: number): Promise<void> {
  const channel = await ctx.broker.confirmChannel();
  try {
    for (let i = 0; i < count; i++) {
      channel.sendToQueue(ctx.topo.deadLetterQueue, Buffer.from(`{"n":${i}}`), {
        messageId: `REF-${i}`,
        persistent: true,
        headers: {
          "x-dead-letter-reason": i % 2 === 0 ? "exhausted" : "invalid",
          "x-last-error": `boom ${i}`,
          "x-retry-count": 2,
          "x-dead-lettered-at": new Date().toISOString(),
        },
      });
    }
    await channel.waitForConfirms();
  } finally {
    await channel.close();
  }
}

/**
 * Waits until the DLQ holds `count` ready messages: a walk of the console's holds them unacked for
 * a moment, then puts every one back. Had anything been taken, the count would never come back.
 */
async function dlqHolds(ctx: BrokerContext, count: number): Promise<void> {
  await waitFor(
    `${count} messages in the DLQ`,
    async () =>
      await ctx.broker.messageCount(ctx.topo.deadLetterQueue) === count ? true : undefined,
  );
}

/** The console, its dead-letter index never stale, with `env`. */
function startConsoleWith(
  ctx: BrokerContext,
  dir: string,
  env: Record<string, string>,
  args: string[] = [],
): Promise<RunningConsole> {
  return startConsole(ctx, dir, { args, env: { CONSOLE_INDEX_MAX_AGE_MS: "0", ...env } });
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** An answer read off the wire by {@linkcode rawHttp}. */
interface RawAnswer {
  status: number;
  headers: Headers;
  body: string;
}

/**
 * One HTTP/1.1 request written on a socket by hand, so that its `Host` header (which `fetch`
 * sets itself) and its request target are exactly what a test says: what a browser sends to a
 * page whose name was rebound to this machine.
 */
async function rawHttp(
  port: number,
  request: {
    path: string;
    host?: string;
    method?: string;
    headers?: Record<string, string>;
    body?: string;
  },
): Promise<RawAnswer> {
  const lines = [`${request.method ?? "GET"} ${request.path} HTTP/1.1`];
  if (request.host !== undefined) lines.push(`Host: ${request.host}`);
  for (const [name, value] of Object.entries(request.headers ?? {})) {
    lines.push(`${name}: ${value}`);
  }
  const body = new TextEncoder().encode(request.body ?? "");
  if (request.body !== undefined) lines.push(`Content-Length: ${body.byteLength}`);
  lines.push("Connection: close", "", "");
  const socket = await Deno.connect({ hostname: "127.0.0.1", port });
  const head = new TextEncoder().encode(lines.join("\r\n"));
  const message = new Uint8Array(head.byteLength + body.byteLength);
  message.set(head);
  message.set(body, head.byteLength);
  const writer = socket.writable.getWriter();
  await writer.write(message);
  writer.releaseLock();
  const text = new TextDecoder().decode(await new Response(socket.readable).arrayBuffer());
  const end = text.indexOf("\r\n\r\n");
  assert.ok(end > 0, `not an HTTP answer: ${JSON.stringify(text)}`);
  const [statusLine, ...headerLines] = text.slice(0, end).split("\r\n");
  const headers = new Headers();
  for (const line of headerLines) {
    const colon = line.indexOf(":");
    headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  let rest = text.slice(end + 4);
  if (/chunked/i.test(headers.get("transfer-encoding") ?? "")) {
    let decoded = "";
    while (true) {
      const newline = rest.indexOf("\r\n");
      const size = parseInt(rest.slice(0, newline), 16);
      if (!(size > 0)) break;
      decoded += rest.slice(newline + 2, newline + 2 + size);
      rest = rest.slice(newline + 2 + size + 2);
    }
    rest = decoded;
  }
  return { status: Number(statusLine!.split(" ")[1]), headers, body: rest };
}

Deno.test("the console: credentials, roles, CSRF, cross-site pages, bad input, bounded pages", async () => {
  await withTopology("console-security", {}, async (ctx) => {
    await using dir = await tempDir();
    await fillDeadLetters(ctx, LETTERS);
    const users = join(dir.path, "users");
    const hash = createHash("sha256").update("otto-pw").digest("hex");
    await Deno.writeTextFile(
      users,
      `# console users\nvera:viewer:vera-pw\notto:operator:sha256:${hash}\n`,
    );
    const { peer, url } = await startConsoleWith(ctx, dir.path, {
      CONSOLE_USERS_FILE: users,
      CONSOLE_TOKEN: "view-token",
      CONSOLE_OPERATOR_TOKEN: "operator-token",
    });
    await using _peer = peer;
    const audit = join(dir.path, "audit.jsonl");

    // Reading needs a credential.
    const anonymous = await fetch(`${url}api/session`);
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.headers.get("www-authenticate") ?? "", /^Basic/);
    await anonymous.body?.cancel();
    assert.equal((await fetch(url)).status, 401);
    assert.equal((await call(url, "api/session", bearer("wrong"))).status, 401);
    assert.equal((await call(url, "api/session", basic("vera", "wrong"))).status, 401);
    const viewer = await call(url, "api/session", basic("vera", "vera-pw"));
    assert.equal(viewer.status, 200);
    assert.deepEqual([viewer.json.role, viewer.json.canAct], ["viewer", false]);
    assert.equal((await call(url, "api/session", bearer("view-token"))).json.role, "viewer");
    // In a browser a token is the password, with any name, which the audit trail records.
    const tokenLogin = await call(url, "api/session", basic("olga", "operator-token"));
    assert.deepEqual([tokenLogin.json.user, tokenLogin.json.role], ["olga", "operator"]);
    assert.equal((await call(url, "api/session", basic("vera", "operator-token"))).status, 401);

    // Pages are bounded: 50 by default, at most 500, from any offset.
    const page = await call(url, "api/dead-letters?offset=100", bearer("view-token"));
    assert.deepEqual([page.json.total, page.json.matched], [LETTERS, LETTERS]);
    assert.equal((page.json.letters as unknown[]).length, LETTERS - 100);
    const tooBig = await call(url, "api/dead-letters?limit=100000", bearer("view-token"));
    assert.equal(tooBig.status, 400);
    assert.match(String(tooBig.json.error), /limit must be a whole number from 1 to 500/);
    const groups = await call(url, "api/groups", bearer("view-token"));
    assert.equal((groups.json.groups as unknown[]).length, 2);

    // A viewer cannot act, even with its CSRF token.
    const preview = { action: "replay", filter: { ref: "REF-0" } };
    const byViewer = await call(url, "api/actions/preview", basic("vera", "vera-pw"), preview, {
      "x-csrf-token": String(viewer.json.csrf),
    });
    assert.deepEqual([byViewer.status, byViewer.json.error], [
      403,
      "replay and purge need the operator role",
    ]);

    // An operator must send its CSRF token, from the console's own origin, as JSON.
    const otto = basic("otto", "otto-pw");
    const session = await call(url, "api/session", otto);
    const csrf = { "x-csrf-token": String(session.json.csrf) };
    assert.equal((await call(url, "api/actions/preview", otto, preview)).status, 403);
    const foreign = await call(url, "api/actions/preview", otto, preview, {
      ...csrf,
      origin: "http://evil.example",
    });
    // From another site its credentials are not even looked at (nor counted as a failed login).
    assert.equal(foreign.status, 401);
    assert.match(
      String(foreign.json.error),
      /^a request from http:\/\/evil\.example: credentials sent from another site's page are not looked at/,
    );
    const crossSite = await call(url, "api/actions/preview", otto, preview, {
      ...csrf,
      "sec-fetch-site": "cross-site",
    });
    assert.equal(crossSite.status, 401);
    const asText = await fetch(`${url}api/actions/preview`, {
      method: "POST",
      headers: { ...otto, ...csrf, "content-type": "text/plain" },
      body: JSON.stringify(preview),
    });
    assert.equal(asText.status, 415);
    await asText.body?.cancel();

    // Bad input: a clear message each, nothing changed.
    const preview_ = "api/actions/preview";
    const bad: Array<[string, unknown, RegExp]> = [
      [preview_, { action: "delete" }, /action must be replay or purge/],
      [
        preview_,
        { action: "replay", filter: { since: "last tuesday" } },
        /since must be a duration/,
      ],
      [
        preview_,
        { action: "purge", filter: { refs: Array.from({ length: 1001 }, (_, i) => `R${i}`) } },
        /a selection may name at most 1000 dead letters, this one names 1001/,
      ],
      [preview_, { action: "purge", filter: { refs: [] } }, /the selection is empty/],
      [preview_, "{not json", /not valid JSON/],
      ["api/actions/run", { action: "replay", filter: {} }, /preview first/],
    ];
    for (const [path, body, message] of bad) {
      const answer = await call(url, path, otto, body, csrf);
      assert.equal(answer.status, 400, `${JSON.stringify(body)}: ${answer.json.error}`);
      assert.match(String(answer.json.error), message);
    }
    const unknown = await call(url, "api/journey?ref=NOPE", otto);
    assert.equal(unknown.status, 404);
    await dlqHolds(ctx, LETTERS);
    await assert.rejects(Deno.stat(audit), Deno.errors.NotFound);

    // A page on another site, in a browser logged in as the operator, cannot act.
    await using browser = await launchChromium();
    const context = await browser.newContext({
      httpCredentials: { username: "otto", password: "otto-pw" },
    });
    const tab = await context.newPage();
    await tab.goto(url);
    await tab.locator("#who").filter({ hasText: "otto · operator" }).waitFor();
    const run = JSON.stringify({ action: "purge", filter: {}, expected: LETTERS });
    await using evil = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      () =>
        new Response(
          `<!doctype html><body>
        <form id="f" method="POST" action="${url}api/actions/run" enctype="text/plain">
          <input name='${run.slice(0, -1)}, "x": "' value='"}'>
        </form>
        <script>
          fetch(${JSON.stringify(`${url}api/actions/run`)}, {
            method: "POST", credentials: "include", mode: "no-cors",
            headers: { "content-type": "text/plain" }, body: ${JSON.stringify(run)},
          }).finally(() => { document.title = "fetched"; document.getElementById("f").submit(); });
        </script></body>`,
          { headers: { "content-type": "text/html" } },
        ),
    );
    await tab.goto(`http://127.0.0.1:${evil.addr.port}/`);
    await tab.waitForURL(/api\/actions\/run/, { timeout: 10_000 });
    assert.match(await tab.content(), /another site/);
    await dlqHolds(ctx, LETTERS);
    await assert.rejects(Deno.stat(audit), Deno.errors.NotFound);

    // The operator token may act: one dead letter, selected by RefCode, is replayed.
    const operator = bearer("operator-token");
    const token = String((await call(url, "api/session", operator)).json.csrf);
    const one = { action: "replay", filter: { refs: ["REF-7"] } };
    const counted = await call(url, "api/actions/preview", operator, one, {
      "x-csrf-token": token,
    });
    assert.deepEqual([counted.json.matched, counted.json.done], [1, 0]);
    const job = await call(url, "api/actions/run", operator, { ...one, expected: 1 }, {
      "x-csrf-token": token,
    });
    assert.equal(job.status, 202);
    const finished = await waitFor("the replay", async () => {
      const state = await call(url, `api/jobs/${job.json.id}`, operator);
      return state.json.state === "running" ? undefined : state.json;
    });
    assert.equal(finished.state, "done");
    assert.equal((finished.counts as Record<string, number>).done, 1);
    await dlqHolds(ctx, LETTERS - 1);
    assert.equal(await ctx.broker.messageCount(ctx.topo.queue), 1);
    const entries = (await Deno.readTextFile(audit)).trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(entries.map((e) => [e.who, e.dryRun, e.filter.refs]), [
      ["operator-token (console)", true, "ref-7"],
      ["operator-token (console)", false, "ref-7"],
    ]);
  });
});

Deno.test("a read-only console refuses every action, whatever the role", async () => {
  await withTopology("console-read-only", {}, async (ctx) => {
    await using dir = await tempDir();
    await fillDeadLetters(ctx, 2);
    const { peer, url } = await startConsoleWith(ctx, dir.path, {
      CONSOLE_OPERATOR_TOKEN: "operator-token",
      CONSOLE_READ_ONLY: "true",
    });
    await using _peer = peer;
    const operator = bearer("operator-token");
    const session = await call(url, "api/session", operator);
    assert.deepEqual([session.json.role, session.json.readOnly, session.json.canAct], [
      "operator",
      true,
      false,
    ]);
    const refused = await call(url, "api/actions/preview", operator, { action: "purge" }, {
      "x-csrf-token": String(session.json.csrf),
    });
    assert.equal(refused.status, 403);
    assert.match(String(refused.json.error), /read-only/);
    await dlqHolds(ctx, 2);
  });
});

Deno.test("without the management API and the metrics, the overview shows what is left, and why", async () => {
  // The default retry tiers, as the console (given no retry options) expects them.
  const tiers = { retryDelays: retryDelays(DEFAULT_RETRY_POLICY) };
  await withTopology("console-sources", tiers, async (ctx) => {
    await using dir = await tempDir();
    await fillDeadLetters(ctx, 3);
    const { peer, url } = await startConsoleWith(ctx, dir.path, {}, ["--no-management"]);
    await using _peer = peer;
    const { json } = await call(url, "api/overview", {});
    const sources = json.sources as Record<"broker" | "metrics" | "management" | "ledger", string>;
    assert.equal(sources.broker, "ok");
    assert.equal(sources.management, "off (--no-management)");
    assert.match(
      sources.metrics,
      /no \/metrics endpoint answered \(http:\/\/127\.0\.0\.1:9\/metrics\)/,
    );
    assert.notEqual(sources.ledger, "ok"); // no ledger file yet: said, not hidden
    assert.equal((json.rates as Record<string, unknown>).published, null);
    assert.equal((json.depth as Record<string, number>).dlq, 3);
    assert.equal(json.consumers, 0);
  });
});

Deno.test("the console does not start beyond loopback without credentials, with a bad users file, or on a taken port", async () => {
  const open = await runScript("console.ts", ["--hostname", "0.0.0.0", "--port", "0"]);
  assert.equal(open.code, 2, open.stderr);
  assert.match(open.stderr, /--hostname 0\.0\.0\.0 lets other machines in: give --token/);
  await using dir = await tempDir();
  const users = join(dir.path, "users");
  await Deno.writeTextFile(users, "vera:admin:pw\n");
  const bad = await runScript("console.ts", ["--users-file", users, "--port", "0"]);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /users:1 is not a user: write name:viewer:password/);
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = String((taken.addr as Deno.NetAddr).port);
  const busy = await runScript("console.ts", ["--port", port, "--no-management"]);
  assert.equal(busy.code, 1, busy.stderr);
  assert.match(
    busy.stderr,
    new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: the port is taken`),
  );
});

Deno.test("a DNS-rebound page cannot read or act: the console answers only to its own host names (421)", async () => {
  await withTopology("console-rebinding", {}, async (ctx) => {
    await using dir = await tempDir();
    await fillDeadLetters(ctx, 3);
    // On loopback with no credential configured: every request it answers is the local operator.
    const { peer, url } = await startConsoleWith(ctx, dir.path, {});
    await using _peer = peer;
    const audit = join(dir.path, "audit.jsonl");
    const port = Number(new URL(url).port);
    const evil = `evil.test:${port}`;

    // Real Chromium, evil.test resolving to 127.0.0.1 (what a rebinding DNS server answers): the
    // attacker's page reads the session, CSRF token included, then purges. Every step is refused.
    await using browser = await launchChromium({
      args: ["--host-resolver-rules=MAP evil.test 127.0.0.1"],
    });
    const tab = await browser.newPage();
    const page = await tab.goto(`http://${evil}/`);
    assert.equal(page?.status(), 421);
    const attack = await tab.evaluate(async (expected) => {
      const session = await fetch("/api/session");
      const text = await session.text();
      let csrf = "";
      try {
        csrf = String(JSON.parse(text).csrf ?? "");
      } catch { /* not a session */ }
      const run = await fetch("/api/actions/run", {
        method: "POST",
        headers: { "content-type": "application/json", "x-csrf-token": csrf },
        body: JSON.stringify({ action: "purge", filter: {}, expected }),
      });
      return { session: session.status, csrf, run: run.status, error: JSON.parse(text).error };
    }, 3);
    assert.deepEqual([attack.session, attack.csrf, attack.run], [421, "", 421]);
    assert.match(
      String(attack.error),
      new RegExp(`does not answer to the host name "evil\\.test:${port}".*--allowed-hosts`),
    );
    await dlqHolds(ctx, 3);
    await assert.rejects(Deno.stat(audit), Deno.errors.NotFound);

    // The same by hand: a forged Host header, or a request target naming another host.
    const csrf = String((await call(url, "api/session", {})).json.csrf);
    const forged = [
      await rawHttp(port, { path: "/api/session", host: evil }),
      await rawHttp(port, { path: "/", host: evil }),
      await rawHttp(port, { path: "/api/dead-letters", host: evil }),
      await rawHttp(port, { path: `http://${evil}/api/session`, host: `127.0.0.1:${port}` }),
      await rawHttp(port, {
        method: "POST",
        path: "/api/actions/preview",
        host: evil,
        headers: {
          origin: `http://${evil}`,
          "content-type": "application/json",
          "x-csrf-token": csrf,
        },
        body: JSON.stringify({ action: "purge", filter: {} }),
      }),
      // Its own name on another port is another site (another origin).
      await rawHttp(port, { path: "/api/session", host: `127.0.0.1:${port === 1 ? 2 : port - 1}` }),
    ];
    for (const answer of forged) {
      assert.equal(answer.status, 421, answer.body);
      assert.doesNotMatch(answer.body, /csrf/);
      assert.match(answer.headers.get("content-type") ?? "", /^application\/json/);
    }
    const noHost = await rawHttp(port, { path: "/api/session" });
    assert.equal(noHost.status, 400, noHost.body);
    assert.match(noHost.body, /Host header/);
    await dlqHolds(ctx, 3);
    await assert.rejects(Deno.stat(audit), Deno.errors.NotFound);

    // Its own name, asked by a page elsewhere: the local operator cannot be made to act.
    const elsewhere = await call(url, "api/actions/preview", {}, { action: "purge", filter: {} }, {
      "x-csrf-token": csrf,
      origin: "http://evil.test",
    });
    assert.deepEqual([elsewhere.status, elsewhere.json.error], [
      403,
      "a request from http://evil.test cannot act here",
    ]);

    // Its own names, with its port, are answered.
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]) {
      const answer = await rawHttp(port, { path: "/api/session", host });
      assert.equal(answer.status, 200, `${host}: ${answer.body}`);
    }
  });
});

Deno.test("--allowed-hosts names the host names the console answers to; a bad one stops it (exit 2)", async () => {
  await withTopology("console-allowed-hosts", {}, async (ctx) => {
    await using dir = await tempDir();
    const { peer, url } = await startConsoleWith(ctx, dir.path, {
      CONSOLE_ALLOWED_HOSTS: "console.test, ops.example:9443",
    });
    await using _peer = peer;
    const port = Number(new URL(url).port);
    const answered = async (host: string) =>
      (await rawHttp(port, { path: "/api/session", host })).status;
    assert.equal(await answered(`console.test:${port}`), 200);
    assert.equal(await answered("CONSOLE.test"), 200); // a proxy's, on its default port
    assert.equal(await answered("ops.example:9443"), 200);
    // The address it listens on stays: an address cannot be rebound.
    assert.equal(await answered(`127.0.0.1:${port}`), 200);
    assert.equal(await answered(`ops.example:${port}`), 421);
    assert.equal(await answered(`localhost:${port}`), 421);
    assert.equal(await answered(`evil.test:${port}`), 421);
  });
  for (
    const [args, env, message] of [
      [["--allowed-hosts", "http://console.test"], {}, /--allowed-hosts must be host names/],
      [
        ["--allowed-hosts", "console.test:99999"],
        {},
        /--allowed-hosts .*port.*"console\.test:99999"/,
      ],
      [[], { CONSOLE_ALLOWED_HOSTS: " , " }, /CONSOLE_ALLOWED_HOSTS must name at least one host/],
    ] as const
  ) {
    const bad = await runScript("console.ts", ["--port", "0", ...args], env);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, message);
  }
});

Deno.test("failed logins from one address are limited: after five, 429 with Retry-After, the right token too", async () => {
  await withTopology("console-login-limit", {}, async (ctx) => {
    await using dir = await tempDir();
    const { peer, url } = await startConsoleWith(ctx, dir.path, {
      CONSOLE_OPERATOR_TOKEN: "operator-token",
    });
    await using _peer = peer;
    for (let i = 0; i < 5; i++) {
      assert.equal((await call(url, "api/session", bearer(`guess-${i}`))).status, 401);
    }
    // Asked at once, all within the first wait (1 s); Retry-After is what is left of it, rounded up.
    const held = await Promise.all(
      [bearer("guess-5"), bearer("operator-token"), basic("olga", "x")].map(async (headers) => {
        const response = await fetch(`${url}api/session`, { headers });
        return { response, body: await response.json() };
      }),
    );
    for (const { response, body } of held) {
      assert.equal(response.status, 429, JSON.stringify(body));
      const seconds = retryAfter(response, 1);
      assert.equal(
        body.error,
        `too many failed logins from this address: try again in ${seconds} s`,
      );
    }
    // Once the wait is over the right token is let in; a wrong one doubles the next wait (2 s).
    const lifted = await waitFor("the wait to be over", async () => {
      const answer = await call(url, "api/session", bearer("operator-token"));
      return answer.status === 429 ? undefined : answer;
    }, 5_000);
    assert.equal(lifted.status, 200);
    assert.equal((await call(url, "api/session", bearer("guess-6"))).status, 401);
    const again = await fetch(`${url}api/session`, { headers: bearer("operator-token") });
    await again.body?.cancel();
    assert.equal(again.status, 429);
    retryAfter(again, 2);
  });
});

/**
 * The whole seconds of an answer's `Retry-After`, checked to be from 1 to `atMost`: what is left
 * of a wait of `atMost` seconds, however long the machine took to ask.
 */
function retryAfter(response: Response, atMost: number): number {
  const text = response.headers.get("retry-after") ?? "";
  const seconds = Number(text);
  assert.ok(
    /^\d+$/.test(text) && seconds >= 1 && seconds <= atMost,
    `Retry-After should be 1 to ${atMost} s, is ${JSON.stringify(text)}`,
  );
  return seconds;
}

Deno.test("another site's page cannot lock the operator out: credentials it puts in a link are not looked at, right or wrong", async () => {
  await withTopology("console-cross-site-login", {}, async (ctx) => {
    await using dir = await tempDir();
    const { peer, url } = await startConsoleWith(ctx, dir.path, {
      CONSOLE_OPERATOR_TOKEN: "operator-token",
    });
    await using _peer = peer;
    const port = Number(new URL(url).port);
    const withLogin = (login: string) => `http://${login}@127.0.0.1:${port}/`;
    // Another port of the same address is another origin of the same site (`Sec-Fetch-Site:
    // same-site`); localhost is another site (`cross-site`). Each page sends the tab on to where
    // its query string says, credentials in the URL (which the browser sends as basic auth).
    await using evil = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (request) =>
        new Response(
          `<!doctype html><script>location.href = ${
            JSON.stringify(new URL(request.url).searchParams.get("to"))
          };</script>`,
          { headers: { "content-type": "text/html" } },
        ),
    );
    const pages = [`http://127.0.0.1:${evil.addr.port}/`, `http://localhost:${evil.addr.port}/`];
    await using browser = await launchChromium();
    const tab = await browser.newPage();
    /** Has another site's page send the tab to `target`; the console's last answer. */
    const sendFrom = async (page: string, target: string) => {
      const answer = tab.waitForResponse((r) =>
        new URL(r.url()).port === String(port) && r.request().isNavigationRequest()
      );
      await tab.goto(`${page}?to=${encodeURIComponent(target)}`);
      const response = await answer;
      return { status: response.status(), body: await response.text().catch(() => "") };
    };
    const guesses = [];
    for (let i = 0; i < 8; i++) {
      guesses.push(await sendFrom(pages[i % 2]!, withLogin(`x:bad-${i}`)));
    }

    // The operator, at the same address, is let in: over HTTP and in a browser.
    const session = await call(url, "api/session", bearer("operator-token"));
    assert.equal(session.status, 200, JSON.stringify({ session, guesses }));
    const context = await browser.newContext({
      httpCredentials: { username: "olga", password: "operator-token" },
    });
    const own = await context.newPage();
    await own.goto(url);
    await own.locator("#who").filter({ hasText: "olga · operator" }).waitFor();

    // Each guess was refused without being looked at, and so is the right token sent that way:
    // a page elsewhere learns nothing from either.
    for (const guess of [...guesses, await sendFrom(pages[1]!, withLogin("x:operator-token"))]) {
      assert.equal(guess.status, 401, guess.body);
      assert.match(guess.body, /another site.*not looked at/);
    }
    // A client that is not a browser (no Sec-Fetch-* headers) still counts: five wrong, then 429.
    for (let i = 0; i < 5; i++) {
      assert.equal((await call(url, "api/session", bearer(`guess-${i}`))).status, 401);
    }
    assert.equal((await call(url, "api/session", bearer("operator-token"))).status, 429);
  });
});
