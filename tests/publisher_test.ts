import { strict as assert } from "node:assert";
import { ConfirmedPublisher, copyProperties, PublishError } from "../lib/publisher.ts";
import { withTopology } from "../testing/broker.ts";

const body = new TextEncoder().encode("{}");

Deno.test("ConfirmedPublisher reports a message the broker refuses as nacked", async () => {
  await withTopology("publisher-nack", {}, async ({ broker, topo }) => {
    const channel = await broker.channel();
    const full = `${topo.prefix}full`;
    await channel.assertQueue(full, {
      durable: false,
      exclusive: true, // a transient queue that is not is a deprecated feature on RabbitMQ 4.x
      arguments: { "x-max-length": 1, "x-overflow": "reject-publish" },
    });
    try {
      const publisher = new ConfirmedPublisher(await broker.confirmChannel());
      await publisher.publish("", full, body, { mandatory: true });
      await assert.rejects(
        () => publisher.publish("", full, body, { mandatory: true }),
        (e: unknown) => e instanceof PublishError && e.code === "nacked",
      );
      assert.equal(publisher.inFlight, 0);
    } finally {
      await channel.deleteQueue(full);
      await channel.close();
    }
  });
});

Deno.test("ConfirmedPublisher reports a publish whose channel the broker closes before confirming it as closed, not nacked", async () => {
  await withTopology("publisher-closed", {}, async ({ broker, topo }) => {
    const publisher = new ConfirmedPublisher(await broker.confirmChannel());
    // No such exchange: the broker closes the channel (404 NOT_FOUND) instead of confirming.
    const error = await publisher.publish(`${topo.prefix}no-such-exchange`, "x", body)
      .then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof PublishError, String(error));
    assert.equal(error.code, "closed", error.message);
    assert.match(error.message, /the channel closed before the broker confirmed/);
    assert.equal(publisher.inFlight, 0);
    // A publish on the closed channel is `closed` too.
    const after = await publisher.publish(topo.exchange, topo.routingKey, body)
      .then(() => undefined, (e: unknown) => e);
    assert.ok(after instanceof PublishError && after.code === "closed", String(after));
  });
});

Deno.test("ConfirmedPublisher.send() calls back once per message, in bulk", async () => {
  await withTopology("publisher-send", {}, async ({ broker, topo }) => {
    const publisher = new ConfirmedPublisher(await broker.confirmChannel());
    let confirmed = 0;
    const all = Promise.withResolvers<void>();
    for (let i = 0; i < 500; i++) {
      const flowing = publisher.send(topo.exchange, topo.routingKey, body, {
        messageId: String(i),
        mandatory: true,
      }, (error) => {
        assert.equal(error, undefined);
        if (++confirmed === 500) all.resolve();
      });
      if (!flowing) await publisher.writable();
    }
    await all.promise;
    assert.equal(await broker.messageCount(topo.queue), 500);
  });
});

Deno.test("copyProperties() keeps what identifies a message, drops expiration, and is mandatory when asked", () => {
  const copy = copyProperties({
    contentType: "application/json",
    messageId: "ref",
    timestamp: 1,
    appId: "estoque",
    expiration: "1000",
    priority: 5,
    headers: { a: 1 },
  } as never, { b: 2 });
  assert.deepEqual(copy, {
    persistent: true,
    headers: { b: 2 },
    contentType: "application/json",
    messageId: "ref",
    timestamp: 1,
    appId: "estoque",
  });
  assert.equal(copyProperties({} as never, {}, { mandatory: true }).mandatory, true);
  assert.equal(copyProperties({} as never, {}, { mandatory: false }).mandatory, undefined);
});

Deno.test("ConfirmedPublisher waits while the connection is blocked, and times nothing out meanwhile", async () => {
  await withTopology("publisher-blocked", {}, async ({ broker, topo }) => {
    let unblock!: () => void;
    const gate = {
      blocked: true,
      whenUnblocked: () => new Promise<void>((resolve) => (unblock = resolve)),
    };
    const publisher = new ConfirmedPublisher(await broker.confirmChannel(), {
      timeoutMs: 20,
      connection: gate,
    });
    assert.equal(publisher.blocked, true);
    let published = false;
    const publishing = publisher.publish(topo.exchange, topo.routingKey, body, { mandatory: true })
      .then(() => (published = true));
    // Nothing may go out while blocked: the publish waits for the gate, well past its timeout.
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.equal(published, false);
    assert.equal(await broker.messageCount(topo.queue), 0);
    gate.blocked = false;
    unblock();
    await publishing;
    assert.equal(await broker.messageCount(topo.queue), 1);
  });
});
