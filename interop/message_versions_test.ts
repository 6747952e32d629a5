/**
 * The message-version matrix, with the real Go binaries: every body a producer sends today or may
 * send tomorrow, to our OrdemDeProducao and to the Go one.
 *
 * | body                                            | `x-message-version` | from                    |
 * | ----------------------------------------------- | ------------------- | ----------------------- |
 * | Go, 4 fields (its first commit)                 | none                | Go's json.Marshal       |
 * | Go, 3 fields (since e1fe516)                    | none                | the Go Estoque; Go's json.Marshal |
 * | ours, 4 fields                                  | `1.0`               | our Estoque             |
 * | the next version: one more field (`Priority`)   | `1.1`               | a newer producer        |
 * | a Go body with one more field                   | none                | a Go producer that adds one |
 * | a version this reader does not know             | `2.0`               | a producer of tomorrow  |
 *
 * Our OrdemDeProducao creates the first five (their unknown field kept, not refused: 0 valid
 * orders dead-lettered) and dead-letters the `2.0` at once as `unsupported-version`; the Go
 * OrdemDeProducao, which reads no header and ignores unknown fields, creates all six.
 */

import { strict as assert } from "node:assert";
import { join } from "node:path";
import type { Broker } from "../lib/broker.ts";
import { encodeOrder, newOrder } from "../lib/order.ts";
import { ConfirmedPublisher, type PublishProperties } from "../lib/publisher.ts";
import { HEADER } from "../lib/retry_headers.ts";
import { SqliteLedgerReader } from "../lib/sqlite_ledger_reader.ts";
import { topology } from "../lib/topology.ts";
import { declareTopology } from "../lib/declare_topology.ts";
import { takeMessages, tempDir, waitFor } from "../testing/broker.ts";
import { ourService } from "../testing/process.ts";
import { assertNoPanic, fleetUnderTest, SETTLE_MS, tally } from "./_go_fleet.ts";
import {
  CANONICAL,
  goEstoque,
  goMarshalled,
  goOrdem,
  goRuns,
  ourEstoque,
  withCanonicalNames,
} from "./_peers.ts";

/** One message of the matrix, as the test publishes it. */
interface Case {
  readonly what: string;
  readonly ref: string;
  readonly body: string;
  readonly properties: PublishProperties;
  /** Whether it is an order our OrdemDeProducao must create. */
  readonly valid: boolean;
}

/** The Go Estoque's properties: a content type, nothing else. */
const GO_PROPERTIES: PublishProperties = { contentType: "application/json" };

/** The matrix's messages the test publishes itself (ours comes from our Estoque). */
async function cases(): Promise<Case[]> {
  const [a, b, c, d, e] = Array.from({ length: 5 }, () => newOrder({ quantity: 100 }));
  const go4 = await goMarshalled(a!.refCode, a!.colorCode, a!.quantity);
  const go3 = await goMarshalled(b!.refCode, b!.colorCode, b!.quantity);
  const goExtra = await goMarshalled(d!.refCode, d!.colorCode, d!.quantity);
  const ours = (order: typeof a) => new TextDecoder().decode(encodeOrder(order!));
  const versioned = (version: string) => ({
    contentType: "application/json",
    persistent: true,
    headers: { "x-message-version": version },
  });
  return [
    {
      what: "Go, 4 fields",
      ref: a!.refCode,
      body: go4.withEventType,
      properties: GO_PROPERTIES,
      valid: true,
    },
    {
      what: "Go, 3 fields",
      ref: b!.refCode,
      body: go3.withoutEventType,
      properties: GO_PROPERTIES,
      valid: true,
    },
    {
      what: "1.1 with a field more",
      ref: c!.refCode,
      body: `${ours(c).slice(0, -1)},"Priority":3}`,
      properties: { ...versioned("1.1"), messageId: c!.refCode },
      valid: true,
    },
    {
      what: "Go, a field more, no version",
      ref: d!.refCode,
      body: `${goExtra.withoutEventType.slice(0, -1)},"Plant":"BR-SC"}`,
      properties: GO_PROPERTIES,
      valid: true,
    },
    {
      what: "2.0",
      ref: e!.refCode,
      body: ours(e),
      properties: { ...versioned("2.0"), messageId: e!.refCode },
      valid: false,
    },
  ];
}

async function publishAll(broker: Broker, all: readonly Case[]): Promise<void> {
  const publisher = new ConfirmedPublisher(await broker.confirmChannel());
  for (const c of all) {
    await publisher.publish(
      CANONICAL.exchange,
      CANONICAL.routingKey,
      new TextEncoder().encode(c.body),
      c.properties,
    );
  }
}

Deno.test("message versions to our OrdemDeProducao: the Go 4- and 3-field bodies (the real Go Estoque's too), ours, a 1.1 and a Go body with a field more are created, their fields kept; a 2.0 is dead-lettered as unsupported-version; 0 valid orders dead-lettered", async () => {
  const { fleet, version } = await fleetUnderTest();
  await withCanonicalNames(async (broker) => {
    await using dir = await tempDir();
    const ledgerPath = join(dir.path, "ledger.sqlite");
    // The Go Estoque declares its topology (plugin backend) and sends a 3-field body; on 4.3 it
    // cannot start, and ours runs on the ttl backend (Go's json.Marshal still makes its bodies).
    const goEstoqueRuns = fleet !== "cannot start";
    const backend = goEstoqueRuns ? "plugin" : "ttl";
    if (goEstoqueRuns) await goEstoque();
    else await declareTopology(broker, topology({ backend, retryDelays: [5_000, 10_000] }));
    await using ordem = ourService("our OrdemDeProducao", "ordem_de_producao.ts", [
      ...(goEstoqueRuns ? ["--no-declare"] : []),
      "--retry-backend",
      backend,
      "--no-http",
      "--ledger",
      ledgerPath,
      // The Go Estoque draws quantities up to 9,999,998: all within the limit.
      "--max-quantity",
      "9999999",
      "--log-level",
      "debug",
    ]);
    await ordem.until("ready", /msg=ready/);
    const all = await cases();
    await publishAll(broker, all);
    const confirmed = await ourEstoque(
      [
        ...(goEstoqueRuns ? ["--no-declare"] : []),
        "--retry-backend",
        backend,
        "--count",
        "1",
        "--quantity",
        "100",
      ],
      join(dir.path, "ours"),
    );
    const valid = all.filter((c) => c.valid).length + confirmed.length + (goEstoqueRuns ? 1 : 0);
    await using ledger = SqliteLedgerReader.open(ledgerPath); // no lock: the service runs on it
    await waitFor(
      "every valid order created, and the 2.0 dead-lettered",
      async () =>
        (await ledger.countOrders()) === valid &&
          (await broker.messageCount(CANONICAL.deadLetterQueue)) === 1 || undefined,
      SETTLE_MS,
    );
    for (const c of all.filter((c) => c.valid)) {
      assert.ok(await ledger.findOrder(c.ref), `${c.what}: created`);
    }
    for (const ref of confirmed) assert.ok(await ledger.findOrder(ref), "ours: created");
    const [dead] = await takeMessages(broker, CANONICAL.deadLetterQueue, 1);
    const v2 = all.find((c) => !c.valid)!;
    assert.equal(dead!.properties.messageId, v2.ref);
    assert.equal(dead!.properties.headers![HEADER.reason], "unsupported-version");
    assert.equal(new TextDecoder().decode(dead!.content), v2.body, "byte for byte");
    await ordem.stop();
    assert.equal(ordem.grep(/msg="?retry scheduled/).length, 0, "nothing retried");
    console.log(
      `interop: message versions -> ours on ${version}: ${valid} valid orders created (Go 4 ` +
        `and 3 fields${goEstoqueRuns ? ", the Go Estoque's" : ""}, ours 1.0, 1.1 with a field ` +
        `more, a Go body with a field more), 0 of them dead-lettered; the 2.0 dead-lettered as ` +
        `unsupported-version`,
    );
  });
});

Deno.test("message versions to the Go OrdemDeProducao: the same bodies and ours are all created once (it reads no version and ignores unknown fields)", async () => {
  const { version } = await fleetUnderTest();
  await withCanonicalNames(async (broker) => {
    await using dir = await tempDir();
    // The ttl backend's topology, on every release: nothing is retried, so no plugin is needed.
    await declareTopology(broker, topology({ backend: "ttl", retryDelays: [5_000, 10_000] }));
    await using go = await goOrdem();
    const all = await cases();
    await publishAll(broker, all);
    const confirmed = await ourEstoque(
      ["--retry-backend", "ttl", "--count", "1", "--quantity", "100"],
      join(dir.path, "ours"),
    );
    const refs = [...all.map((c) => c.ref), ...confirmed];
    await waitFor("the Go consumer created every order", () => {
      const runs = tally(goRuns(go));
      return refs.every((ref) => runs.get(ref) === 1) ? runs : undefined;
    }, SETTLE_MS);
    assertNoPanic(go);
    assert.equal(await broker.messageCount(CANONICAL.deadLetterQueue), 0);
    assert.equal(await broker.messageCount(CANONICAL.queue), 0);
    console.log(
      `interop: message versions -> Go on ${version}: ${refs.length} created once each (Go 4 ` +
        `and 3 fields, ours 1.0, 1.1 and a Go body with a field more, and the 2.0: the Go ` +
        `consumer reads no version), 0 dead-lettered`,
    );
  });
});
