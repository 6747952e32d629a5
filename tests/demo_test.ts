import { strict as assert } from "node:assert";
import { join } from "node:path";
import { Broker } from "../lib/broker.ts";
import { DEMO_STOCK, formatDemoReport, MALFORMED_SAMPLES, runDemo } from "../lib/demo.ts";
import { retryDelays } from "../lib/retry_policy.ts";
import { topology } from "../lib/topology.ts";
import { dropSchema } from "../testing/postgres.ts";
import {
  fastPolicy,
  POSTGRES_URL,
  RABBITMQ_URL,
  tempDir,
  uniquePrefix,
} from "../testing/broker.ts";

Deno.test("runDemo() accounts for every message it publishes and cleans up after itself", async () => {
  await using dir = await tempDir();
  const policy = fastPolicy(2, 20);
  const topo = topology({ prefix: uniquePrefix("demo"), retryDelays: retryDelays(policy) });
  const report = await runDemo({
    url: RABBITMQ_URL,
    topology: topo,
    policy,
    orders: 9,
    ledgerPath: join(dir.path, "demo.sqlite"),
    keep: false,
  });
  // 9 orders (3 over the limit), one of them twice, the malformed samples, and the stock
  // scenario's requests: one a colour, each relayed and made a production order.
  const colors = DEMO_STOCK.colors.length;
  assert.equal(report.published, 9 + 1 + MALFORMED_SAMPLES.length + colors);
  assert.equal(report.accountedFor, report.published);
  assert.deepEqual([report.movements, report.requests, report.relayed], [18, colors, colors]);
  assert.equal(report.created, 6 + colors);
  assert.equal(report.duplicates, 1);
  assert.deepEqual([...report.retriedByAttempt], [[1, 3], [2, 3]]);
  assert.deepEqual(
    [...report.deadLetteredByReason].sort(),
    [["exhausted", 3], ["invalid", MALFORMED_SAMPLES.length]],
  );
  assert.match(formatDemoReport(report, topo, policy), /accounted for +21\/21 ok/);

  const broker = await Broker.connect(RABBITMQ_URL);
  try {
    const channel = await broker.channel();
    await assert.rejects(() => channel.checkQueue(topo.queue), /NOT_FOUND/);
  } finally {
    await broker.close();
  }
});

Deno.test("runDemo() with three consumers sharing a PostgreSQL ledger accounts for everything", async () => {
  await using dir = await tempDir();
  const policy = fastPolicy(2, 20);
  const topo = topology({ prefix: uniquePrefix("demo-pg"), retryDelays: retryDelays(policy) });
  const schema = `test_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  try {
    const report = await runDemo({
      url: RABBITMQ_URL,
      topology: topo,
      policy,
      orders: 30,
      ledgerPath: join(dir.path, "unused.sqlite"), // the stock scenario's store goes beside it
      ledgerUrl: `${POSTGRES_URL}?search_path=${schema}`,
      consumers: 3,
      keep: false,
    });
    assert.equal(report.accountedFor, report.published);
    assert.equal(report.created, 20 + DEMO_STOCK.colors.length);
    const byInstance = [...report.createdBy.values()].reduce((a, b) => a + b, 0);
    assert.equal(byInstance, report.created, "every production order is credited to one consumer");
    assert.ok([...report.createdBy.keys()].every((id) => /^demo-[123]$/.test(id)));
  } finally {
    await dropSchema(POSTGRES_URL, schema);
  }
});
