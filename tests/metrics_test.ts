import { strict as assert } from "node:assert";
import { OrderConsumer } from "../lib/consumer.ts";
import { publishOrder } from "../lib/estoque.ts";
import { readiness, serveHttp } from "../lib/http_server.ts";
import type { Broker } from "../lib/broker.ts";
import { SqliteLedger } from "../lib/sqlite_ledger.ts";
import { ConsumerMetrics } from "../lib/metrics.ts";
import { newOrder } from "../lib/order.ts";
import { ConfirmedPublisher } from "../lib/publisher.ts";
import { retryDelays } from "../lib/retry_policy.ts";
import { fastPolicy, OutcomeLog, waitFor, withTopology } from "../testing/broker.ts";
import { ControlledLedger } from "../testing/ledger.ts";

const policy = fastPolicy(2, 20);

/** The value of one series in a Prometheus text exposition, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

Deno.test("readiness() is ready only with an open connection and a consumer that is consuming", () => {
  const broker = { isOpen: true };
  const consumer = { ready: true };
  const state: { broker?: typeof broker | undefined; consumer?: typeof consumer | undefined } = {};
  const ready = readiness(state);
  assert.equal(ready(), false, "before the first session");
  state.broker = broker;
  assert.equal(ready(), false, "connected, no consumer yet");
  state.consumer = consumer;
  assert.equal(ready(), true, "connected and consuming");
  consumer.ready = false;
  assert.equal(ready(), false, "the consumer paused or stopping");
  consumer.ready = true;
  broker.isOpen = false;
  assert.equal(ready(), false, "the connection lost");
  state.broker = { isOpen: true };
  state.consumer = undefined;
  assert.equal(ready(), false, "a new session before its consumer starts");
});

Deno.test("the metrics endpoint counts messages as they flow, and /readyz follows the consumer", async () => {
  await withTopology("metrics", { retryDelays: retryDelays(policy) }, async ({ broker, topo }) => {
    await using ledger = new ControlledLedger(await SqliteLedger.open(":memory:"));
    // The record runOrdem keeps of its session, and the readiness it serves.
    const running: { consumer?: OrderConsumer; broker?: Broker } = {};
    const metrics = new ConsumerMetrics({
      instanceId: "test-1",
      inFlight: () => running.consumer?.inFlight ?? 0,
      connected: () => broker.isOpen,
    });
    await using http = await serveHttp({
      port: 0,
      registry: metrics.registry,
      ready: readiness(running),
    });
    const base = `http://127.0.0.1:${http.port}`;
    const get = async (path: string) => {
      const response = await fetch(base + path);
      return {
        status: response.status,
        text: await response.text(),
        type: response.headers.get("content-type"),
      };
    };
    assert.equal((await get("/healthz")).status, 200);
    assert.equal((await get("/readyz")).status, 503, "not ready before a session");
    running.broker = broker;
    assert.equal((await get("/readyz")).status, 503, "not ready before consuming");

    const outcomes = new OutcomeLog();
    const consumer = running.consumer = await OrderConsumer.start({
      broker,
      topology: topo,
      ledger,
      policy,
      maxQuantity: 500,
      onOutcome: (outcome, ms) => {
        metrics.observe(outcome, ms);
        outcomes.record(outcome);
      },
    });
    assert.equal((await get("/readyz")).status, 200);

    const before = await get("/metrics");
    assert.match(before.type ?? "", /^text\/plain/);
    assert.equal(
      sample(before.text, 'productionorder_orders_created_total{instance_id="test-1"}'),
      0,
    );

    const publisher = new ConfirmedPublisher(await broker.confirmChannel());
    for (let i = 0; i < 3; i++) await publishOrder(publisher, topo, newOrder({ quantity: 10 }));
    await publishOrder(publisher, topo, newOrder({ quantity: 900 }));
    await publisher.publish(topo.exchange, topo.routingKey, new TextEncoder().encode("{"), {
      messageId: "broken",
      mandatory: true,
    });
    await outcomes.until("two dead letters", (o) => o.kind === "dead-lettered", 2);

    const after = (await get("/metrics")).text;
    const label = 'instance_id="test-1"';
    assert.equal(sample(after, `productionorder_orders_created_total{${label}}`), 3);
    assert.equal(sample(after, `productionorder_messages_retried_total{attempt="1",${label}}`), 1);
    assert.equal(sample(after, `productionorder_messages_retried_total{attempt="2",${label}}`), 1);
    assert.equal(
      sample(after, `productionorder_messages_dead_lettered_total{reason="exhausted",${label}}`),
      1,
    );
    assert.equal(
      sample(after, `productionorder_messages_dead_lettered_total{reason="invalid",${label}}`),
      1,
    );
    assert.equal(sample(after, `productionorder_messages_consumed_total{${label}}`), 7);
    assert.equal(
      sample(
        after,
        `productionorder_processing_duration_seconds_count{${label},outcome="created"}`,
      ),
      3,
    );
    assert.equal(sample(after, `productionorder_broker_connected{${label}}`), 1);
    assert.equal(sample(after, `productionorder_messages_in_flight{${label}}`), 0);

    // The ledger goes away: consumption pauses, and the service says it is not ready.
    ledger.away = true;
    const waiting = newOrder({ quantity: 10 });
    await publishOrder(publisher, topo, waiting);
    await outcomes.until("the order put back", (o) => o.kind === "requeued");
    assert.equal(consumer.paused, true);
    assert.equal(broker.isOpen, true);
    assert.equal((await get("/readyz")).status, 503, "not ready while the ledger is away");
    ledger.away = false;
    await waitFor("ready again", async () => (await get("/readyz")).status === 200 || undefined);
    await outcomes.until(
      "the order created",
      (o) => o.kind === "created" && o.refCode === waiting.refCode,
    );

    await consumer.stop();
    assert.equal((await get("/readyz")).status, 503, "not ready once stopped");
    assert.equal((await get("/nope")).status, 404);
  });
});
