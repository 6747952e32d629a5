/**
 * The Go services, unchanged, on RabbitMQ 4.x, whatever broker the rest of the suite runs on: on
 * 4.0 with the delayed-message plugin (`RABBITMQ_URL_4_0`) and on 4.3 (`RABBITMQ_URL_4_3`), the
 * nodes scripts/services.sh runs beside the machine's broker. Each Go process reaches the node
 * through the bridge of interop/_peers.ts. docs/migration.md quotes what each case prints.
 */

import { strict as assert } from "node:assert";
import { join } from "node:path";
import { parseOrder } from "../lib/order.ts";
import { serverVersionAtLeast } from "../lib/server_version.ts";
import { pluginBackendRuns } from "../lib/topology.ts";
import { takeMessages, tapHeaderTypes, tempDir } from "../testing/broker.ts";
import { connectTo, otherBroker } from "../testing/other_brokers.ts";
import { assertGoEstoqueCannotStart, assertGoPanicsOnInt64Delay } from "./_go_fleet.ts";
import { CANONICAL, goOrdem, goRuns, ourEstoque, withCanonicalNames } from "./_peers.ts";

Deno.test({
  name:
    "on RabbitMQ 4.0 with the plugin, the Go OrdemDeProducao panics on its first retried message (x-delay handed back as int64); the message waits in the work queue, not lost (RABBITMQ_URL_4_0)",
  fn: async () => {
    const target = otherBroker("4_0");
    const probe = await connectTo(target, "interop 4.0");
    const version = probe.serverVersion;
    await probe.close();
    assert.ok(
      serverVersionAtLeast(version, "4.0") && pluginBackendRuns(version),
      `RABBITMQ_URL_4_0 is RabbitMQ ${version}`,
    );
    await withCanonicalNames(async (broker) => {
      await using dir = await tempDir();
      // Our Estoque declares the plugin topology and sends one order over the Go limit of 500.
      const [ref] = await ourEstoque(
        ["--retry-backend", "plugin", "--count", "1", "--quantity", "1000"],
        join(dir.path, "confirmed"),
        target.url,
      );
      await using go = await goOrdem(target.url);
      // The first run fails and the Go side publishes its retry, x-delay 5000 as an int32; the
      // plugin hands it back 5 s later as an int64, and the second run panics.
      await assertGoPanicsOnInt64Delay(go);
      assert.deepEqual(goRuns(go), [ref, ref], "its first run and the retry it panicked on");
      // Not acked by the process that died: back in the work queue, for the next consumer (a Go
      // one panics on it again; ours reads any integer type).
      const wireTypes = tapHeaderTypes(broker);
      const [back] = await takeMessages(broker, CANONICAL.queue, 1);
      assert.equal(back!.fields.redelivered, true);
      const parsed = parseOrder(back!.content);
      assert.ok(parsed.ok && parsed.order.refCode === ref, "the order, whole");
      assert.deepEqual(wireTypes("x-delay"), ["l"], "x-delay as the plugin handed it back");
      assert.equal(back!.properties.headers?.["x-delay"], -5000);
      assert.equal(back!.properties.headers?.["x-retry-count"], 1);
      console.log(
        `interop: RabbitMQ ${version} with the plugin: the Go OrdemDeProducao panicked on its ` +
          `first retry (x-delay -5000 as int64), exit 2; the order back in the work queue`,
      );
    }, target.url);
  },
});

Deno.test({
  name:
    "on RabbitMQ 4.3 the Go Estoque cannot start: its x-delayed-message exchange is refused, and it declares nothing (RABBITMQ_URL_4_3)",
  fn: async () => {
    const target = otherBroker("4_3");
    const probe = await connectTo(target, "interop 4.3");
    const version = probe.serverVersion;
    await probe.close();
    assert.ok(!pluginBackendRuns(version), `RABBITMQ_URL_4_3 is RabbitMQ ${version}`);
    await withCanonicalNames(async (broker) => {
      await assertGoEstoqueCannotStart(broker, target.url);
      console.log(
        `interop: RabbitMQ ${version}: the Go Estoque exits 1 at its first declare ` +
          `(unknown exchange type 'x-delayed-message'), nothing declared`,
      );
    }, target.url);
  },
});
