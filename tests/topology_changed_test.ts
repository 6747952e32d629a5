/**
 * A topology changed while a service was away stops it after its reconnect (lib/declare_topology.ts
 * `sessionTopology`): OrdemDeProducao, Estoque publishing and Estoque's outbox relay, each a real
 * process whose connection goes through a proxy the test cuts. While the process cannot reach the
 * broker, a retry queue is deleted and declared again without its TTL and dead-letter arguments
 * (as another tool or an operator might); the process's next session finds its names there
 * (passive checks pass), starts its work, and its declare beside the work is refused: the
 * process stops with exit 1 and says which object has other settings, as a first session would.
 * Before sessionTopology's `failed` was raced with the work, a session went on with the retry
 * queue as it found it (retries held there for good).
 */

import { strict as assert } from "node:assert";
import { settlesWithin } from "../lib/settles_within.ts";
import { publishOrders } from "../lib/order_feed.ts";
import { ConfirmedPublisher } from "../lib/publisher.ts";
import { DEFAULT_RETRY_POLICY, retryDelays } from "../lib/retry_policy.ts";
import { RABBITMQ_URL, tempDir, withTopology } from "../testing/broker.ts";
import { freePort } from "../testing/postgres.ts";
import { ourService } from "../testing/process.ts";
import { HoldingProxy } from "../testing/proxy.ts";
import type { Broker } from "../lib/broker.ts";
import type { Topology } from "../lib/topology.ts";

/**
 * The service away: its connection cut and new ones held in their handshake, while the first
 * retry queue is deleted and declared again with no TTL and no dead-letter exchange. Returns that
 * queue's name; `proxy.release()` lets the service back.
 */
async function awayWhileRetryQueueChanges(
  proxy: HoldingProxy,
  broker: Broker,
  topo: Topology,
): Promise<string> {
  proxy.cut();
  proxy.hold();
  const tier = topo.retryTiers[0]!.queue;
  const channel = await broker.channel();
  try {
    await channel.deleteQueue(tier);
    await channel.assertQueue(tier, { durable: true }); // no TTL, no dead-letter exchange
  } finally {
    await channel.close();
  }
  return tier;
}

const cases = [
  {
    name: "OrdemDeProducao",
    script: "ordem_de_producao.ts",
    args: () => [],
    ready: /msg=ready/,
    // Orders that fail, waiting when it comes back: their retry copies must not go into the
    // retry queue found with other settings (no TTL: they would sit there for good).
    failing: 2_000,
  },
  {
    name: "Estoque publishing",
    script: "estoque.ts",
    // Long enough to be publishing across the cut.
    args: () => ["-n", "100000", "--rate", "20"],
    ready: /publishing/,
  },
  {
    name: "Estoque's outbox relay",
    script: "estoque.ts",
    args: (dir: string) => ["relay", "--stock-url", `sqlite:${dir}/stock.sqlite`],
    ready: /relaying the outbox/,
  },
] as const;

for (const c of cases) {
  Deno.test(`${c.name} stops with exit 1 when a reconnect finds a retry queue declared again with other settings`, async () => {
    await using dir = await tempDir();
    await using proxy = HoldingProxy.start(RABBITMQ_URL);
    await withTopology("topology-changed", {
      retryDelays: retryDelays(DEFAULT_RETRY_POLICY),
    }, async ({ broker, topo }) => {
      await using service = ourService(c.name, c.script, c.args(dir.path), {
        RABBITMQ_URL: proxy.url,
        TOPOLOGY_PREFIX: topo.prefix,
        LEDGER_URL: `sqlite:${dir.path}/ledger.sqlite`,
        HTTP_PORT: String(freePort()),
      });
      try {
        await service.until("the first session at work", c.ready);
        const tier = await awayWhileRetryQueueChanges(proxy, broker, topo);
        const failing = "failing" in c ? c.failing : 0;
        if (failing > 0) {
          const publisher = new ConfirmedPublisher(await broker.confirmChannel());
          const sent = await publishOrders({
            publisher,
            topology: topo,
            count: failing,
            quantity: 900,
          });
          assert.equal(sent.confirmed, failing);
        }
        proxy.release();
        assert.ok(
          await settlesWithin(service.status, 30_000),
          "still running 30 s after the reconnect",
        );
        const status = await service.status;
        assert.equal(status.code, 1);
        assert.ok(
          service.grep(/other settings/).length > 0,
          "the reason names the object with other settings",
        );
        assert.equal(
          await broker.messageCount(tier),
          0,
          "no retry copy went into the retry queue found with other settings",
        );
      } catch (error) {
        throw new Error(`${(error as Error).message}\n${service}`, { cause: error });
      }
    });
  });
}

Deno.test("Estoque publishing without a rate, stopped by a changed topology, says what it confirmed and what it left unconfirmed", async () => {
  await using proxy = HoldingProxy.start(RABBITMQ_URL);
  await withTopology("topology-changed-unpaced", {
    retryDelays: retryDelays(DEFAULT_RETRY_POLICY),
  }, async ({ broker, topo }) => {
    await using service = ourService("Estoque", "estoque.ts", ["-n", "5000000"], {
      RABBITMQ_URL: proxy.url,
      TOPOLOGY_PREFIX: topo.prefix,
    });
    try {
      await service.until("the first session at work", /publishing/);
      await awayWhileRetryQueueChanges(proxy, broker, topo);
      proxy.release();
      assert.ok(
        await settlesWithin(service.status, 30_000),
        "still running 30 s after the reconnect",
      );
      assert.equal((await service.status).code, 1);
      // The summary line, as a finished run prints it: every order it sent is either confirmed
      // or counted as failed, so what sits in the queue is no more than what it accounts for.
      const [line] = service.grep(/estoque: \d+\/5000000 orders confirmed/);
      assert.ok(line, "the summary line is printed");
      const confirmed = Number(/estoque: (\d+)\//.exec(line)![1]);
      const failed = Number(/, (\d+) failed/.exec(line)?.[1] ?? 0);
      const queued = await broker.messageCount(topo.queue);
      assert.ok(confirmed <= queued, `${confirmed} confirmed but ${queued} in the queue`);
      assert.ok(
        queued <= confirmed + failed,
        `${queued} in the queue, ${confirmed} confirmed and ${failed} failed`,
      );
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${service}`, { cause: error });
    }
  });
});
