/**
 * The control plane's names and declarations (lib/control_topology.ts): its queues are classic
 * whatever QUEUE_TYPE and whatever the vhost's default queue type (a 4.x vhost whose default is
 * quorum would otherwise make the state queue a quorum queue with a delivery limit of 20, which
 * reading wears out); a fleet of either queue type declares the same control plane; an instance's
 * queue name is at most 255 bytes whatever its id.
 */

import { strict as assert } from "node:assert";
import { Broker } from "../lib/broker.ts";
import { ControlClient } from "../lib/control_store.ts";
import { controlQueueFor, declareControl } from "../lib/control_topology.ts";
import { topology } from "../lib/topology.ts";
import { deleteTopology } from "../lib/declare_topology.ts";
import { RABBITMQ_URL, uniquePrefix } from "../testing/broker.ts";
import { managementRequest, otherBroker } from "../testing/other_brokers.ts";

const utf8 = (text: string) => new TextEncoder().encode(text).byteLength;

Deno.test("controlQueueFor() keeps a queue name within 255 bytes, cutting a many-byte id on a character", () => {
  const topo = topology({ prefix: "p".repeat(100) });
  for (const id of ["工厂".repeat(40), "🏭".repeat(100), "a".repeat(300), "ordem-1"]) {
    const name = controlQueueFor(topo, id, "abcdef12");
    assert.ok(utf8(name) <= 255, `${utf8(name)} bytes for ${id.slice(0, 4)}…`);
    assert.ok(!name.includes("\uFFFD"), "no character cut in half");
    assert.ok(name.endsWith(".abcdef12"));
  }
  assert.equal(controlQueueFor(topology(), "ordem-1", "u"), "productionorder.control.ordem-1.u");
});

Deno.test("a quorum fleet and a classic one (ctl run without QUEUE_TYPE) declare the same control plane", async () => {
  const prefix = uniquePrefix("ctl-types");
  await using broker = await Broker.connect(RABBITMQ_URL, { name: "test ctl-types" });
  try {
    await declareControl(broker, topology({ prefix }));
    await declareControl(broker, topology({ prefix, queueType: "quorum" }));
    await declareControl(broker, topology({ prefix }));
  } finally {
    await deleteTopology(broker, topology({ prefix }));
  }
});

Deno.test("in a RabbitMQ 4.0 vhost whose default queue type is quorum, 40 reads keep the pause", async () => {
  const target = otherBroker("4_0");
  const vhost = `test-dqt-${crypto.randomUUID().slice(0, 8)}`;
  const user = decodeURIComponent(new URL(target.url).username);
  await managementRequest(target, "PUT", `vhosts/${vhost}`, { default_queue_type: "quorum" });
  try {
    await managementRequest(target, "PUT", `permissions/${vhost}/${encodeURIComponent(user)}`, {
      configure: ".*",
      write: ".*",
      read: ".*",
    });
    const url = new URL(target.url);
    url.pathname = `/${vhost}`;
    await using broker = await Broker.connect(url.href, { name: "test ctl-dqt" });
    const topo = topology({ prefix: uniquePrefix("ctl-dqt") });
    await declareControl(broker, topo);
    await using client = await ControlClient.open(broker, topo);
    const { after } = await client.change({ paused: true, by: "test", reason: "dqt" });
    for (let i = 0; i < 40; i++) {
      const read = await client.read();
      assert.equal(read.paused, true, `read ${i}: ${JSON.stringify(read)}`);
      assert.equal(read.seq, after.seq);
    }
  } finally {
    await managementRequest(target, "DELETE", `vhosts/${vhost}`);
  }
});
