import { strict as assert } from "node:assert";
import type { Broker } from "../lib/broker.ts";
import { backoffDelay, MIN_RECONNECT_DELAY_MS } from "../lib/backoff.ts";
import { Broker as BrokerClass } from "../lib/broker.ts";
import { FatalError, isFatalError } from "../lib/errors.ts";
import { keepConnected, parseBrokerUrls } from "../lib/reconnect.ts";
import { RABBITMQ_URL } from "../testing/broker.ts";

Deno.test("backoffDelay() doubles per round with equal jitter, from 250-500 ms up to 15 s", () => {
  const low = () => 0;
  const high = () => 0.999_999;
  assert.deepEqual([1, 2, 3, 4].map((r) => backoffDelay(r, {}, low)), [250, 500, 1000, 2000]);
  assert.deepEqual([1, 2, 3].map((r) => backoffDelay(r, {}, high)), [500, 1000, 2000]);
  assert.equal(backoffDelay(40, {}, high), 15_000);
  assert.equal(backoffDelay(40, {}, low), 7_500);
  // However small the configured start, no reconnect comes sooner than 250 ms.
  assert.equal(backoffDelay(1, { initialMs: 10 }, low), MIN_RECONNECT_DELAY_MS);
});

Deno.test("parseBrokerUrls() splits a comma-separated list and names a bad URL without its password", () => {
  assert.deepEqual(parseBrokerUrls(" amqp://a:1 ,amqps://u:p@b:2/v, "), [
    "amqp://a:1",
    "amqps://u:p@b:2/v",
  ]);
  assert.throws(() => parseBrokerUrls(""), /no broker URL/);
  assert.throws(
    () => parseBrokerUrls("amqp://a:1,http://u:hunter2@b"),
    (e: Error) => /got "http:\/\/u:\*\*\*@b"/.test(e.message) && !e.message.includes("hunter2"),
  );
});

Deno.test("connecting tells a refused login and a refused vhost (fatal) from a refused connection", async () => {
  // The broker under test (RABBITMQ_URL), with a wrong password, then a vhost it does not have.
  const wrongLogin = new URL(RABBITMQ_URL);
  wrongLogin.password = "wrong";
  const login = await BrokerClass.connect(wrongLogin.href).catch((e) => e);
  assert.ok(login instanceof FatalError && login.kind === "fatal-auth", String(login));
  const noVhost = new URL(RABBITMQ_URL);
  noVhost.pathname = "/no-such-vhost";
  const vhost = await BrokerClass.connect(noVhost.href).catch((e) => e);
  assert.ok(vhost instanceof FatalError && vhost.code === "vhost_refused", String(vhost));
  assert.match(vhost.message, /refused to open vhost "no-such-vhost": it does not exist/);
  const closed = await BrokerClass.connect("amqp://guest:guest@127.0.0.1:1").catch((e) => e);
  assert.ok(!isFatalError(closed), "a refused connection is worth another try");
  assert.ok(isFatalError(new Error("wrapped", { cause: new FatalError("x") })));
});

Deno.test("keepConnected() skips an unreachable URL, and reconnects after a dropped connection", async () => {
  const sessions: Broker[] = [];
  let lost = 0;
  let reconnected = 0;
  const started = performance.now();
  let droppedAt = 0;
  const result = await keepConnected({
    urls: ["amqp://guest:guest@127.0.0.1:1", RABBITMQ_URL],
    connect: { name: "test keepConnected" },
    onLost: () => lost++,
    onReconnect: () => reconnected++,
  }, async (broker) => {
    sessions.push(broker);
    if (sessions.length === 1) {
      // Break the socket under the session, as a network failure would.
      (broker.model.connection as unknown as { stream: { destroy(e: Error): void } }).stream
        .destroy(new Error("simulated network failure"));
      await broker.closed;
      droppedAt = performance.now();
      throw new Error("the session saw its connection drop");
    }
    return "second session";
  });
  assert.equal(result, "second session");
  assert.equal(sessions.length, 2);
  assert.equal(lost, 1);
  assert.equal(reconnected, 1);
  assert.ok(sessions.every((b) => !b.isOpen), "every connection is closed afterwards");
  assert.ok(
    performance.now() - droppedAt >= MIN_RECONNECT_DELAY_MS,
    "the reconnect waited at least the minimum delay",
  );
  assert.ok(droppedAt > started);
});

Deno.test("keepConnected() gives up after giveUpAfterMs without a broker, with the connect error", async () => {
  await assert.rejects(
    keepConnected({ urls: ["amqp://guest:secret@127.0.0.1:1"], giveUpAfterMs: 0 }, () => {
      throw new Error("never runs");
    }),
    (e: Error) =>
      /cannot connect to RabbitMQ at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:1/.test(e.message),
  );
});

Deno.test("keepConnected() does not retry a refused login", async () => {
  const url = new URL(RABBITMQ_URL);
  url.password = "wrong-password";
  const started = performance.now();
  await assert.rejects(
    keepConnected({ urls: [url.href] }, () => Promise.resolve()),
    /ACCESS.REFUSED/,
  );
  assert.ok(performance.now() - started < 5_000);
});

Deno.test("keepConnected() stops waiting when its signal aborts", async () => {
  const controller = new AbortController();
  const running = keepConnected(
    { urls: ["amqp://guest:guest@127.0.0.1:1"], signal: controller.signal },
    () => Promise.resolve(),
  );
  controller.abort(new Error("stop"));
  await assert.rejects(running, /stop/);
});
