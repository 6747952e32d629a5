/**
 * What the services do when the broker goes silent without closing anything (a node cut off by
 * the network, issue 31): the connection is dropped after 1.5 heartbeats without a byte
 * (lib/broker.ts), a connection attempt that gets no answer gives up (lib/broker.ts), the
 * publishes behind one that timed out fail with it (lib/publisher.ts), and a failed session's
 * connection is not waited on for long (lib/reconnect.ts). The silence is a proxy that holds what
 * the broker sends (testing/proxy.ts) in front of the real broker.
 *
 * @module
 */

import { strict as assert } from "node:assert";
import {
  Broker,
  ConnectionStalledError,
  type ReceivingSocket,
  STALL_HEARTBEATS,
  watchReceive,
} from "../lib/broker.ts";
import { ConfirmedPublisher, PublishError } from "../lib/publisher.ts";
import { keepConnected, LOST_CLOSE_TIMEOUT_MS } from "../lib/reconnect.ts";
import { RABBITMQ_URL, withTopology } from "../testing/broker.ts";
import { HoldingProxy } from "../testing/proxy.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A socket that records how it was dropped; `bytesRead` is set by the test. The watch's timer
 * does not keep a process alive (a real socket does): a timer stands in for the socket until the
 * drop.
 */
function fakeSocket() {
  const dropped = Promise.withResolvers<{ error: Error | undefined; at: number }>();
  const alive = setTimeout(() => {}, 10_000);
  const socket: ReceivingSocket & { bytesRead: number } = {
    bytesRead: 0,
    destroy: (error?: Error) => {
      clearTimeout(alive);
      dropped.resolve({ error, at: performance.now() });
    },
  };
  return { socket, dropped: dropped.promise, [Symbol.dispose]: () => clearTimeout(alive) };
}

Deno.test("watchReceive() drops a socket that read nothing for 1.5 heartbeats, with a ConnectionStalledError", async () => {
  using fake = fakeSocket();
  const { socket, dropped } = fake;
  const stop = watchReceive(socket, 0.2); // 300 ms without a byte
  try {
    // Bytes keep coming for 400 ms: no drop, although that is longer than 300 ms.
    for (let i = 0; i < 8; i++) {
      socket.bytesRead += 10;
      await sleep(50);
    }
    const lastByte = performance.now();
    const { error, at } = await dropped;
    assert.ok(error instanceof ConnectionStalledError, String(error));
    assert.equal(error.code, "connection_stalled");
    assert.match(error.message, /the broker sent nothing for 0\.\d s \(heartbeat 0\.2 s\)/);
    const silent = at - lastByte;
    assert.ok(silent >= 0.2 * 1000 * STALL_HEARTBEATS - 50, `dropped after ${silent} ms`);
    assert.ok(silent < 600, `dropped only after ${silent} ms`);
  } finally {
    stop();
  }
});

Deno.test("watchReceive() does not blame the broker for a pause of this process", async () => {
  using fake = fakeSocket();
  const { socket, dropped } = fake;
  let droppedAt: number | undefined;
  dropped.then(({ at }) => (droppedAt = at));
  const stop = watchReceive(socket, 0.2);
  try {
    await sleep(100);
    // This process does nothing for 500 ms (a long synchronous task): the broker's bytes would
    // have waited unread, so the silence is not the broker's.
    const busyUntil = performance.now() + 500;
    while (performance.now() < busyUntil) { /* busy */ }
    const resumed = performance.now();
    await sleep(150);
    assert.equal(droppedAt, undefined, "dropped for this process's own pause");
    await dropped;
    assert.ok(droppedAt! - resumed >= 250, `dropped ${droppedAt! - resumed} ms after the pause`);
  } finally {
    stop();
  }
});

Deno.test("Broker.connect() drops a connection on which the broker goes silent, after 1.5 heartbeats", async () => {
  await using proxy = HoldingProxy.start(RABBITMQ_URL);
  const broker = await Broker.connect(proxy.url, { heartbeatSeconds: 1 });
  try {
    await sleep(200);
    proxy.hold(); // the broker's frames stop reaching us; ours still reach it
    const held = performance.now();
    const reason = await broker.closed;
    const silent = performance.now() - held;
    assert.ok(reason instanceof ConnectionStalledError, String(reason));
    assert.equal(broker.isOpen, false);
    // Its last heartbeat may have come up to one interval before the hold.
    assert.ok(silent >= 500 && silent < 2_500, `dropped after ${silent} ms`);
  } finally {
    proxy.release();
    await broker.close();
  }
});

Deno.test("Broker.connect() gives up on a server that takes the connection and never answers", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) accepted.push(conn); // and never says a word
  })().catch(() => {});
  try {
    const started = performance.now();
    const error = await Broker.connect(`amqp://guest:guest@127.0.0.1:${listener.addr.port}`, {
      connectTimeoutMs: 300,
    }).then(async (broker) => (await broker.close(), undefined), (e: unknown) => e);
    const waited = performance.now() - started;
    assert.ok(error instanceof Error, "connected to a silent server");
    assert.match(error.message, /^cannot connect to RabbitMQ at .*: connect ETIMEDOUT/);
    assert.ok(waited >= 250 && waited < 2_000, `gave up after ${waited} ms`);
  } finally {
    listener.close();
    await accepting;
    for (const conn of accepted) conn.close();
  }
});

Deno.test("ConfirmedPublisher fails every publish behind one that timed out, at once, with timeout", async () => {
  await withTopology("publisher-stuck", {}, async ({ topo }) => {
    await using proxy = HoldingProxy.start(RABBITMQ_URL);
    // No heartbeat: the connection must stay up for the publisher's own timeout to show.
    const broker = await Broker.connect(proxy.url, { heartbeatSeconds: 0 });
    try {
      const publisher = new ConfirmedPublisher(await broker.confirmChannel(), { timeoutMs: 600 });
      proxy.hold(); // no confirm comes back
      const failures: { at: number; sent: number; error: unknown }[] = [];
      const publishes: Promise<void>[] = [];
      for (let i = 0; i < 5; i++) {
        const sent = performance.now();
        publishes.push(
          publisher.publish(topo.exchange, topo.routingKey, new TextEncoder().encode("{}"))
            .then(
              () => assert.fail("confirmed through a proxy that holds everything"),
              (error: unknown) => void failures.push({ at: performance.now(), sent, error }),
            ),
        );
        await sleep(100);
      }
      await Promise.all(publishes);
      assert.ok(
        failures.every((f) => f.error instanceof PublishError && f.error.code === "timeout"),
      );
      const first = Math.min(...failures.map((f) => f.at));
      const last = Math.max(...failures.map((f) => f.at));
      assert.ok(last - first < 100, `failed over ${last - first} ms, not at once`);
      // The last one was sent 400 ms after the first: it failed well before its own timeout.
      const youngest = failures.reduce((a, b) => (a.sent > b.sent ? a : b));
      assert.ok(youngest.at - youngest.sent < 500, `${youngest.at - youngest.sent} ms`);
      assert.match(String((failures[0]!.error as Error).message), /4 publishes behind it/);
      assert.equal(publisher.inFlight, 0);
    } finally {
      proxy.release();
      await broker.close();
    }
  });
});

Deno.test("keepConnected() gives a failed session's silent broker at most LOST_CLOSE_TIMEOUT_MS to close", async () => {
  await using proxy = HoldingProxy.start(RABBITMQ_URL);
  let failedAt = 0;
  let sessions = 0;
  const nextAfter = await keepConnected({
    // The first URL goes silent; after losing it the next attempt starts with the second.
    urls: [proxy.url, RABBITMQ_URL],
    connect: { heartbeatSeconds: 0 },
    random: () => 0,
  }, () => {
    sessions++;
    if (sessions > 1) return Promise.resolve(performance.now() - failedAt);
    proxy.hold(); // the close-ok will not come
    failedAt = performance.now();
    return Promise.reject(new Error("publishes to send again"));
  });
  proxy.release();
  assert.equal(sessions, 2);
  // The close is given up after 1 s, then the first reconnect's delay (250 ms), then a connect.
  assert.ok(nextAfter >= LOST_CLOSE_TIMEOUT_MS, `${nextAfter} ms`);
  assert.ok(
    nextAfter < LOST_CLOSE_TIMEOUT_MS + 1_500,
    `the next session began after ${nextAfter} ms`,
  );
});
