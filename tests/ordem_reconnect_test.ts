/**
 * OrdemDeProducao's sessions after a reconnect (a real process, its connection through a proxy
 * the test cuts): it consumes at once as it last knew, beside its listener on the control plane,
 * rather than after it. A listener binds a queue and reads the state under the control plane's
 * lock; on a cluster with a node cut off, the bind waits until the cluster takes that node for
 * down (faults/partition.ts), and here the lock held by the test stands for that wait. A pause
 * made while the instance was away reaches it once its listener reads the state.
 */

import { strict as assert } from "node:assert";
import { declareControl } from "../lib/control_topology.ts";
import { ControlClient } from "../lib/control_store.ts";
import { withControlLock } from "../lib/control_lock.ts";
import { publishOrder } from "../lib/estoque.ts";
import { newOrder } from "../lib/order.ts";
import { ConfirmedPublisher } from "../lib/publisher.ts";
import { DEFAULT_RETRY_POLICY, retryDelays } from "../lib/retry_policy.ts";
import { RABBITMQ_URL, tempDir, waitFor, withTopology } from "../testing/broker.ts";
import { freePort } from "../testing/postgres.ts";
import { ourService } from "../testing/process.ts";
import { metric } from "../testing/scrape.ts";
import { HoldingProxy } from "../testing/proxy.ts";

Deno.test("after a reconnect OrdemDeProducao consumes at once while the control plane cannot be read, and a pause made while it was away reaches it once it can", async () => {
  await using dir = await tempDir();
  await using proxy = HoldingProxy.start(RABBITMQ_URL);
  // The service's retry tiers (its default policy), so that the clean-up deletes them too.
  const options = { retryDelays: retryDelays(DEFAULT_RETRY_POLICY) };
  await withTopology("ordem-reconnect", options, async (ctx) => {
    await declareControl(ctx.broker, ctx.topo);
    const port = freePort();
    await using ordem = ourService("OrdemDeProducao", "ordem_de_producao.ts", [], {
      RABBITMQ_URL: proxy.url,
      TOPOLOGY_PREFIX: ctx.topo.prefix,
      LEDGER_URL: `sqlite:${dir.path}/ledger.sqlite`,
      HTTP_PORT: String(port),
    });
    const created = () => metric(port, "productionorder_orders_created_total");
    const paused = () => metric(port, "productionorder_paused");
    const publisher = new ConfirmedPublisher(await ctx.broker.confirmChannel());
    const publish = () => publishOrder(publisher, ctx.topo, newOrder({ quantity: 1 }));
    /** Takes the control plane's lock on the test's connection and holds it until released. */
    const holdLock = async () => {
      const release = Promise.withResolvers<void>();
      const held = Promise.withResolvers<void>();
      const holding = withControlLock(ctx.broker, ctx.topo, () => {
        held.resolve();
        return release.promise;
      });
      await Promise.race([held.promise, holding]);
      return { release: () => (release.resolve(), holding) };
    };
    try {
      await ordem.until("the first session ready", /msg=ready/);
      await publish();
      await waitFor("the first order created", async () => (await created()) === 1 || undefined);

      // 1. The control plane cannot be read (its lock held) when the connection drops: the new
      //    session consumes at once. Before, it waited for the control plane up to 10 s.
      let lock = await holdLock();
      try {
        const cutAt = performance.now();
        proxy.cut();
        await ordem.until("the second session ready", /msg=ready/, 2, 5_000);
        await publish();
        await waitFor("the second order created", async () => (await created()) === 2 || undefined);
        const resumedMs = performance.now() - cutAt;
        assert.ok(resumedMs < 5_000, `an order created ${Math.round(resumedMs)} ms after the cut`);
      } finally {
        await lock.release();
      }

      // 2. The fleet is paused while the instance cannot reach the broker (the proxy holds what
      //    the broker sends, so its reconnects hang in the handshake), and the lock is held
      //    again when it comes back: it consumes as it last knew (not paused) until its listener
      //    reads the state, then pauses.
      proxy.cut();
      proxy.hold();
      await using client = await ControlClient.open(ctx.broker, ctx.topo);
      await client.change({ paused: true, by: "test", reason: "paused while away" });
      lock = await holdLock();
      try {
        proxy.release();
        await ordem.until("the third session ready", /msg=ready/, 3, 15_000);
        assert.equal(await paused(), 0, "not paused before its listener read the state");
      } finally {
        await lock.release();
      }
      // Paused once the broker confirmed the cancel, which the log line follows.
      await ordem.until("paused once the listener read the state", /consumption paused/, 1, 15_000);
      assert.equal(await paused(), 1);
      const before = await created();
      await publish();
      const { messageCount } = await ctx.broker.channel().then(async (channel) => {
        try {
          return await channel.checkQueue(ctx.topo.queue);
        } finally {
          await channel.close();
        }
      });
      assert.equal(messageCount, 1, "the order published while paused waits in the queue");
      assert.equal(await created(), before, "nothing created while paused");
      await client.change({ paused: false, by: "test", reason: "back" });
      await waitFor(
        "the order created after the resume",
        async () => (await created()) === before + 1 || undefined,
        10_000,
      );
      assert.ok(ordem.running, `alive:\n${ordem}`);
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${ordem}`, { cause: error });
    }
  });
});
