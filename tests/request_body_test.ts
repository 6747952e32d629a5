/**
 * A request's body read with a cap (lib/console/request_body.ts): refused at its content-length,
 * or as soon as a chunked body passes the cap, never read whole; and the console's actions, which
 * read their bodies through it, answer 413 to a chunked body over 1 MiB before it is all sent.
 */

import { strict as assert } from "node:assert";
import { LOOPBACK_HOSTS } from "../lib/console/allowed_hosts.ts";
import { gateOf } from "../lib/console/admission.ts";
import { BodyTooLargeError, readBodyText } from "../lib/console/request_body.ts";
import { serveConsole } from "../lib/console/server.ts";
import { postChunked } from "../testing/chunked_post.ts";

/** A request whose body is `count` chunks of `size` bytes, counting the chunks pulled. */
function streamed(count: number, size: number, headers: Record<string, string> = {}) {
  let pulled = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (pulled++ < count) controller.enqueue(new Uint8Array(size).fill(32));
      else controller.close();
    },
  });
  const request = new Request("http://localhost/", { method: "POST", body, headers });
  return { request, pulled: () => pulled };
}

Deno.test("readBodyText() reads a body within the cap, and refuses one over it before reading it whole", async () => {
  assert.equal(
    await readBodyText(new Request("http://x/", { method: "POST", body: "{}" }), 2),
    "{}",
  );
  assert.equal(await readBodyText(new Request("http://x/"), 2), "");
  const within = streamed(4, 1024);
  assert.equal((await readBodyText(within.request, 4096)).length, 4096);
  // Declared over the cap: refused before a byte is read.
  const declared = streamed(1000, 1024, { "content-length": String(1024 * 1000) });
  await assert.rejects(readBodyText(declared.request, 4096), BodyTooLargeError);
  assert.ok(declared.pulled() <= 1, `pulled ${declared.pulled()} chunks`);
  // Chunked (no length): refused once past the cap, the rest never pulled.
  const chunked = streamed(100_000, 1024);
  await assert.rejects(readBodyText(chunked.request, 4096), BodyTooLargeError);
  assert.ok(chunked.pulled() < 10, `pulled ${chunked.pulled()} chunks`);
});

Deno.test("the console answers 413 to a chunked action body over 1 MiB before it is all sent", async () => {
  const option = (label: string, value: string | undefined) => ({ value, label });
  const gate = await gateOf({
    hostname: option("--host", "127.0.0.1"),
    allowedHosts: option("--allowed-hosts", LOOPBACK_HOSTS),
    token: option("--token", undefined),
    operatorToken: option("--operator-token", "op-secret"),
    usersFile: option("--users-file", undefined),
  }, "productionorder console");
  let changed = 0;
  await using server = await serveConsole({
    hostname: "127.0.0.1",
    port: 0,
    gate,
    // Not reached: the body is refused before any of them is asked.
    index: {} as never,
    overview: {} as never,
    actions: {} as never,
    control: { change: () => Promise.resolve(changed++) } as never,
    history: {} as never,
    ledger: () => Promise.resolve(undefined),
    readOnly: false,
    maxSelection: 10,
    about: {},
  });
  const base = `http://127.0.0.1:${server.port}`;
  const auth = { authorization: "Bearer op-secret" };
  const { csrf } = await (await fetch(`${base}/api/session`, { headers: auth })).json();
  const { status, sent } = await postChunked(server.port, "/api/control", {
    ...auth,
    "x-csrf-token": csrf,
    "content-type": "application/json",
  }, 256 * 1024 * 1024);
  assert.equal(status, 413);
  assert.ok(sent < 32 * 1024 * 1024, `sent ${sent} bytes before the answer`);
  assert.equal(changed, 0);
});
