import { strict as assert } from "node:assert";
import { Buffer } from "node:buffer";
import type { ConsumeMessage } from "amqplib";
import { Acker } from "../lib/acker.ts";
import { waitFor, withTopology } from "../testing/broker.ts";

Deno.test("Acker acks the settled front with one multiple ack, and what waits behind a pending one singly", async () => {
  await withTopology("acker", {}, async ({ broker, topo }) => {
    const publisher = await broker.confirmChannel();
    for (let i = 0; i < 5; i++) publisher.sendToQueue(topo.queue, Buffer.from(String(i)));
    await publisher.waitForConfirms();
    await publisher.close();

    const channel = await broker.channel();
    const calls: [number, boolean][] = [];
    const ack = channel.ack.bind(channel);
    channel.ack = (message, allUpTo) => {
      calls.push([message.fields.deliveryTag, allUpTo ?? false]);
      ack(message, allUpTo);
    };
    const acker = new Acker(channel);
    const got: ConsumeMessage[] = [];
    await channel.consume(topo.queue, (m) => {
      if (!m) return;
      acker.delivered(m);
      got.push(m);
    });
    await waitFor("5 deliveries", () => (got.length === 5 ? true : undefined));
    const [m1, m2, m3, m4, m5] = got as [
      ConsumeMessage,
      ConsumeMessage,
      ConsumeMessage,
      ConsumeMessage,
      ConsumeMessage,
    ];
    acker.ack(m2);
    acker.ack(m3);
    acker.flush();
    assert.deepEqual(
      calls,
      [[m2.fields.deliveryTag, false], [m3.fields.deliveryTag, false]],
      "m1 still pending",
    );
    calls.length = 0;
    acker.ack(m1);
    acker.ack(m4);
    acker.nack(m5, false);
    assert.deepEqual(calls, [[m4.fields.deliveryTag, true]], "one multiple ack covers 1..4");
    await channel.close();
    assert.equal(await broker.messageCount(topo.queue), 0, "nothing was left unacked or requeued");
  });
});
