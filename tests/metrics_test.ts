import { strict as assert } from "node:assert";
import { OrderConsumer } from "../lib/consumer.ts";
import { publishOrder } from "../lib/estoque.ts";
import { serveHttp } from "../lib/http_server.ts";
import { SqliteLedger } from "../lib/sqlite_ledger.ts";
import { ConsumerMetrics } from "../lib/metrics.ts";
import { newOrder } from "../lib/order.ts";
import { ConfirmedPublisher } from "../lib/publisher.ts";
import { retryDelays } from "../lib/retry_policy.ts";
import { fastPolicy, OutcomeLog, withTopology } from "../testing/broker.ts";

const policy = fastPolicy(2, 20);

/** The value of one series in a Prometheus text exposition, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

Deno.test("the metrics endpoint counts messages as they flow, and /readyz follows the consumer", async () => {
  await withTopology("metrics", { retryDelays: retryDelays(policy) }, async ({ broker, topo }) => {
    await using ledger = await SqliteLedger.open(":memory:");
    const running: { consumer?: OrderConsumer } = {};
    const metrics = new ConsumerMetrics({
      instanceId: "test-1",
      inFlight: () => running.consumer?.inFlight ?? 0,
      connected: () => broker.isOpen,
    });
    await using http = await serveHttp({
      port: 0,
      registry: metrics.registry,
      ready: () => broker.isOpen && (running.consumer?.ready ?? false),
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

    await consumer.stop();
    assert.equal((await get("/readyz")).status, 503, "not ready once stopped");
    assert.equal((await get("/nope")).status, 404);
  });
});
