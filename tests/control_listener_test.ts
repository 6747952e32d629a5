/**
 * A process's ear on the control plane (lib/control_listener.ts) against hostile or odd input, on
 * real brokers: a forged "who is there?" whose reply-to would make RabbitMQ close the whole
 * connection is not answered (3.10 and 4.0 close it with 541 for a malformed direct reply-to
 * name), and the instance keeps consuming; an old state that arrives while the state is read is
 * not applied after it; an instance id of many-byte characters still gives a queue name the
 * broker takes.
 */

import { strict as assert } from "node:assert";
import { Buffer } from "node:buffer";
import { Broker } from "../lib/broker.ts";
import {
  CONTROL_CONTENT_TYPE,
  CONTROL_TYPE,
  encodePauseState,
  type InstanceAnswer,
  type PauseState,
} from "../lib/control.ts";
import { ControlListener } from "../lib/control_listener.ts";
import { ControlClient } from "../lib/control_store.ts";
import { waitFor } from "../testing/broker.ts";
import { withControl } from "../testing/control_plane.ts";
import { type BrokerUnderTest, DEFAULT_BROKER, otherBroker } from "../testing/other_brokers.ts";

const answerOf = (instanceId: string) => (): InstanceAnswer => ({
  instanceId,
  paused: false,
  seq: 0,
  consuming: true,
  inFlight: 0,
  at: new Date().toISOString(),
});

const targets: [string, BrokerUnderTest][] = [
  ["the broker under test", DEFAULT_BROKER],
  ["RabbitMQ 4.0", otherBroker("4_0")],
];

for (const [label, target] of targets) {
  Deno.test(`a forged ping with a malformed direct reply-to (${label}) leaves the instance listening and consuming, and it answers a real one`, async () => {
    await withControl("ctl-forged", async (admin, topo) => {
      await using instance = await Broker.connect(target.url, { name: "test ctl-forged instance" });
      await using listener = await ControlListener.start({
        broker: instance,
        topology: topo,
        name: "forged-1",
        onState: () => {},
        answer: answerOf("forged-1"),
      });
      // The instance's consuming session: a queue it consumes on the same connection.
      const work = `${topo.prefix}work`;
      const channel = await instance.channel();
      await channel.assertQueue(work, { exclusive: true });
      let cancelled = false;
      await channel.consume(work, (m) => void (m === null && (cancelled = true)), { noAck: true });
      const attacker = await admin.channel();
      for (
        const replyTo of [
          "amq.rabbitmq.reply-to.AAAA.x",
          "amq.rabbitmq.reply-to.g1h2AA5yZXBseUAyNzA3MDU0NwAAAAAA.abc",
          "amq.rabbitmq.reply-to",
        ]
      ) {
        attacker.publish(topo.control.exchange, topo.control.pingKey, Buffer.from(""), {
          type: CONTROL_TYPE.ping,
          replyTo,
        });
      }
      const ended = await Promise.race([
        listener.done.then(() => "ended", (e: Error) => `failed: ${e.message}`),
        new Promise<string>((resolve) => setTimeout(() => resolve("listening"), 1_500)),
      ]);
      assert.equal(ended, "listening");
      assert.equal(instance.isOpen, true, "the instance's connection is open");
      assert.equal(cancelled, false);
      assert.equal((await channel.checkQueue(work)).consumerCount, 1, "still consuming");
      const answers: InstanceAnswer[] = [];
      await using client = await ControlClient.open(admin, topo, {
        onAnswer: (answer) => answers.push(answer),
      });
      await client.ping();
      await waitFor("the answer to a real ping", () => answers.length > 0 || undefined);
      assert.equal(answers[0]!.instanceId, "forged-1");
    }, { url: target.url });
  });
}

Deno.test("a state older than the one read, arriving while it is applied, is not applied after it", async () => {
  await withControl("ctl-early", async (broker, topo) => {
    await using client = await ControlClient.open(broker, topo);
    const { after: first } = await client.change({ paused: true, by: "test", reason: "one" });
    const { after: second } = await client.change({ paused: false, by: "test", reason: "" });
    const publisher = await broker.channel();
    const seen: PauseState[] = [];
    await using _listener = await ControlListener.start({
      broker,
      topology: topo,
      name: "early-1",
      onState: async (state) => {
        seen.push(state);
        if (seen.length > 1) return;
        // While the state read is applied, the first change comes again (a publish retried).
        publisher.publish(
          topo.control.exchange,
          topo.control.stateKey,
          Buffer.from(encodePauseState(first)),
          {
            type: CONTROL_TYPE.state,
            contentType: CONTROL_CONTENT_TYPE,
            messageId: crypto.randomUUID(),
          },
        );
        await new Promise((resolve) => setTimeout(resolve, 300));
      },
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.deepEqual(seen.map((s) => s.seq), [second.seq], "the one read, nothing older after it");
  }, { url: DEFAULT_BROKER.url });
});

Deno.test("an instance id of 80 three-byte characters under a 100-character prefix still gets a queue and listens", async () => {
  const prefix = `t.long.${crypto.randomUUID().slice(0, 8)}.${"p".repeat(83)}.`;
  assert.equal(prefix.length, 100);
  await withControl("ctl-long", async (broker, topo) => {
    const seen: PauseState[] = [];
    await using listener = await ControlListener.start({
      broker,
      topology: topo,
      name: "工厂".repeat(40),
      onState: (state) => void seen.push(state),
    });
    assert.equal(seen.length, 1);
    assert.ok(listener);
  }, { url: DEFAULT_BROKER.url, prefix });
});
