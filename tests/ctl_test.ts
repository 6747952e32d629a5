/**
 * `deno task ctl` against running OrdemDeProducao processes and the real broker: a pause reaches
 * both instances (each answers), shows in /readyz and /metrics with who and why, outlives an
 * instance's restart, leaves orders waiting in the queue until the resume; every pause and resume
 * is one audit entry, written once the broker confirmed it. Bad flags exit 2 naming the flag; without a control plane, an instance run
 * with --no-declare says it cannot be paused and runs on.
 */

import { strict as assert } from "node:assert";
import { join } from "node:path";
import { publishOrder } from "../lib/estoque.ts";
import { newOrder } from "../lib/order.ts";
import { ConfirmedPublisher } from "../lib/publisher.ts";
import { retryDelays } from "../lib/retry_policy.ts";
import {
  type BrokerContext,
  exchangeExists,
  fastPolicy,
  runScript,
  tempDir,
  waitFor,
  withTopology,
} from "../testing/broker.ts";
import { freePort } from "../testing/postgres.ts";
import { ordem } from "../testing/console.ts";
import type { Peer } from "../testing/process.ts";

const policy = fastPolicy(2, 100);
const tiers = { retryDelays: retryDelays(policy) };

/** OrdemDeProducao `id`, its ledger `dir/<id>.sqlite`. */
function ordemIn(ctx: BrokerContext, dir: string, id: string, port: number, args: string[] = []) {
  return ordem(ctx, { ledgerPath: join(dir, `${id}.sqlite`), port, id, args });
}

function ctl(ctx: BrokerContext, dir: string, args: string[]) {
  return runScript("ctl.ts", args, {
    TOPOLOGY_PREFIX: ctx.topo.prefix,
    DLQ_AUDIT_LOG: join(dir, "audit.jsonl"),
  });
}

async function get(port: number, path: string): Promise<{ status: number; text: string }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: response.status, text: await response.text() };
}

interface Report {
  state: { paused: boolean; by?: string; reason?: string; since?: string; seq: number };
  instances: { instanceId: string; paused: boolean; consuming: boolean; afterMs: number }[];
}

Deno.test("ctl pause reaches every running instance, shows in /readyz and /metrics, outlives a restart; ctl resume lets the waiting orders through; one audit entry each", async () => {
  await withTopology("ctl", tiers, async (ctx) => {
    await using dir = await tempDir();
    const ports = [freePort(), freePort()];
    const peers: Peer[] = [
      ordemIn(ctx, dir.path, "ordem-a", ports[0]!),
      ordemIn(ctx, dir.path, "ordem-b", ports[1]!),
    ];
    try {
      await Promise.all(peers.map((p) => p.until("ready", /msg=ready/)));
      const status = await ctl(ctx, dir.path, ["status", "--wait", "1000", "--json"]);
      assert.equal(status.code, 0, status.stderr);
      const before = JSON.parse(status.stdout) as Report;
      assert.equal(before.state.paused, false);
      assert.deepEqual(before.instances.map((i) => [i.instanceId, i.paused]), [
        ["ordem-a", false],
        ["ordem-b", false],
      ]);

      const paused = await ctl(ctx, dir.path, [
        "pause",
        "--reason",
        "ERP maintenance",
        "--operator",
        "alice",
        "--wait",
        "1500",
        "--json",
      ]);
      assert.equal(paused.code, 0, paused.stderr);
      const report = JSON.parse(paused.stdout) as Report;
      assert.equal(report.state.paused, true);
      assert.deepEqual(report.instances.map((i) => [i.instanceId, i.paused, i.consuming]), [
        ["ordem-a", true, false],
        ["ordem-b", true, false],
      ]);
      const reach = Math.max(...report.instances.map((i) => i.afterMs));
      assert.ok(reach < 2_000, `both answered within ${reach} ms`);
      for (const port of ports) {
        const ready = await get(port, "/readyz");
        assert.equal(ready.status, 200, "paused is what it was told: ready");
        assert.match(
          ready.text,
          /^ready\npaused since \S+ by alice: ERP maintenance \(in flight: 0\)\n$/,
        );
        const metrics = (await get(port, "/metrics")).text;
        assert.match(metrics, /^productionorder_paused\{[^}]*\} 1$/m);
        assert.match(
          metrics,
          /^productionorder_paused_since_timestamp_seconds\{by="alice",reason="ERP maintenance",[^}]*\} \d{10}/m,
        );
      }
      assert.equal(await ctx.broker.messageCount(ctx.topo.queue), 0);
      const publisher = new ConfirmedPublisher(await ctx.broker.confirmChannel());
      const order = newOrder({ quantity: 10 });
      await publishOrder(publisher, ctx.topo, order);
      // Nobody consumes: the broker holds it.
      assert.equal(await ctx.broker.messageCount(ctx.topo.queue), 1);

      // A restarted instance reads the pause before it consumes.
      await peers[1]!.stop();
      peers[1] = ordemIn(ctx, dir.path, "ordem-b", ports[1]!);
      await peers[1].until("ready", /msg=ready/);
      assert.match((await get(ports[1]!, "/readyz")).text, /paused since .* by alice/);
      assert.match((await get(ports[1]!, "/metrics")).text, /^productionorder_paused\{[^}]*\} 1$/m);
      const channel = await ctx.broker.channel();
      assert.equal((await channel.checkQueue(ctx.topo.queue)).consumerCount, 0);
      await channel.close();
      assert.equal(await ctx.broker.messageCount(ctx.topo.queue), 1, "still waiting");
      const text = await ctl(ctx, dir.path, ["status", "--wait", "1000"]);
      assert.match(text.stdout, /^paused since \S+ by alice: ERP maintenance$/m);
      assert.match(text.stdout, /2 OrdemDeProducao instances answered/);

      const resumed = await ctl(ctx, dir.path, [
        "resume",
        "--operator",
        "bob",
        "--reason",
        "ERP back",
        "--wait",
        "1500",
      ]);
      assert.equal(resumed.code, 0, resumed.stderr);
      assert.match(resumed.stdout, /^not paused \(resumed \S+ by bob\)$/m);
      await waitFor(
        "the waiting order consumed",
        async () => (await ctx.broker.messageCount(ctx.topo.queue)) === 0 || undefined,
      );
      for (const port of ports) {
        assert.equal((await get(port, "/readyz")).text, "ready\n");
        assert.match((await get(port, "/metrics")).text, /^productionorder_paused\{[^}]*\} 0$/m);
      }
      const audit = (await Deno.readTextFile(join(dir.path, "audit.jsonl"))).trim().split("\n")
        .map((line) => JSON.parse(line));
      assert.deepEqual(audit.map((e) => [e.action, e.who, e.why, e.effect, e.counts.seq]), [
        ["pause", "alice", "ERP maintenance", "confirmed", 1],
        ["resume", "bob", "ERP back", "confirmed", 2],
      ]);
      assert.equal(audit[0].queue, ctx.topo.queue);
      console.log(`ctl: pause reached 2 OrdemDeProducao processes in ${reach.toFixed(1)} ms`);
    } finally {
      await Promise.all(peers.map((p) => p.stop()));
    }
  });
});

Deno.test("ctl refuses bad flags with exit 2, naming them", async () => {
  for (
    const [args, why] of [
      [[], /say what to do: pause, resume, status/],
      [["stop"], /say what to do.*got "stop"/],
      [["pause"], /pause needs --reason/],
      [["pause", "--reason", "  "], /pause needs --reason/],
      [["status", "--reason", "x"], /--reason is for pause and resume/],
      [["status", "--wait", "soon"], /--wait/],
      [["status", "--wait", "-1"], /--wait/],
      [["status", "extra", "words"], /unexpected argument "extra"/],
      [["status", "--queue-type", "stream"], /--queue-type/],
      [["status", "--frobnicate"], /frobnicate/],
    ] as const
  ) {
    const result = await runScript("ctl.ts", [...args]);
    assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
    assert.match(result.stderr, why);
  }
});

Deno.test("an instance run with --no-declare on a broker without the control plane says it cannot be paused, and consumes", async () => {
  await withTopology("ctl-nodeclare", tiers, async (ctx) => {
    await using dir = await tempDir();
    await using peer = ordemIn(ctx, dir.path, "plain", freePort(), ["--no-declare"]);
    await peer.until("ready", /msg=ready/);
    assert.equal(peer.grep(/no control plane on this broker/).length, 1);
    const publisher = new ConfirmedPublisher(await ctx.broker.confirmChannel());
    await publishOrder(publisher, ctx.topo, newOrder({ quantity: 1 }));
    await peer.until("the order created", /production order|msg=consuming/);
    await waitFor(
      "the order consumed",
      async () => (await ctx.broker.messageCount(ctx.topo.queue)) === 0 || undefined,
    );
  });
});

Deno.test("ctl status declares nothing: on a broker without the control plane it says so", async () => {
  await withTopology("ctl-status-nodeclare", tiers, async (ctx) => {
    await using dir = await tempDir();
    const status = await ctl(ctx, dir.path, ["status", "--wait", "0"]);
    assert.equal(
      await exchangeExists(ctx.broker, ctx.topo.control.exchange),
      false,
      "ctl status declared the control plane",
    );
    assert.match(status.stdout + status.stderr, /no control plane/);
  });
});

Deno.test("an instance whose control plane exists with other settings says it cannot be paused, and consumes", async () => {
  await withTopology("ctl-mismatch", tiers, async (ctx) => {
    await using dir = await tempDir();
    // A state queue as another version, or another QUEUE_TYPE, declared it.
    const channel = await ctx.broker.channel();
    await channel.assertExchange(ctx.topo.control.exchange, "direct", { durable: true });
    await channel.assertQueue(ctx.topo.control.stateQueue, {
      durable: true,
      arguments: { "x-queue-type": "quorum", "x-max-length": 1, "x-overflow": "drop-head" },
    });
    await channel.close();
    await using peer = ordemIn(ctx, dir.path, "mismatch", freePort());
    await peer.until("ready", /msg=ready/);
    assert.equal(peer.grep(/cannot be paused/).length, 1);
    const publisher = new ConfirmedPublisher(await ctx.broker.confirmChannel());
    await publishOrder(publisher, ctx.topo, newOrder({ quantity: 1 }));
    await waitFor(
      "the order consumed",
      async () => (await ctx.broker.messageCount(ctx.topo.queue)) === 0 || undefined,
    );
  });
});
