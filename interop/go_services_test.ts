/**
 * The interoperability suite (`deno task test:interop`): this project's services against the Go
 * original's, built from ../shared/seed/go (GO_SEED_DIR) by scripts/go_peer.sh and run unchanged
 * against the broker under test (`RABBITMQ_URL`, through the bridge of interop/_peers.ts). The Go
 * services use fixed names on the default vhost, so the cases run one after the other and remove
 * those names afterwards.
 *
 * What the Go side can do depends on the broker's release (interop/_go_fleet.ts): on 3.x the whole
 * flow runs; on 4.0-4.2 the Go consumer panics on its first retry through the plugin; on 4.3 the
 * Go Estoque cannot start and our plugin backend is refused. Each case asserts what its broker's
 * release does; the ttl cases run alike on all three.
 *
 * Each case ends with a line `interop: …` of its counts, which docs/migration.md quotes.
 */

import { strict as assert } from "node:assert";
import { join } from "node:path";
import { SqliteLedgerReader } from "../lib/sqlite_ledger_reader.ts";
import { encodeOrder, parseOrder } from "../lib/order.ts";
import { HEADER, readRetryCount } from "../lib/retry_headers.ts";
import type { RetryBackend } from "../lib/topology.ts";
import { RABBITMQ_URL, runScript, takeMessages, tempDir, waitFor } from "../testing/broker.ts";
import {
  CANONICAL,
  goEstoque,
  goMarshalled,
  goOrdem,
  goRuns,
  ourEstoque,
  ourRuns,
  withCanonicalNames,
} from "./_peers.ts";
import {
  assertGoEstoqueCannotStart,
  assertGoPanicsOnInt64Delay,
  assertNoPanic,
  assertPluginRefused,
  fleetUnderTest,
  goSecond,
  mixedFleetAfterThePanic,
  SETTLE_MS,
  tally,
  waitForDeadLetters,
} from "./_go_fleet.ts";
import { ourService } from "../testing/process.ts";

Deno.test("Go-marshalled bodies of both versions are valid orders; ours is the first version byte for byte", async () => {
  const ref = "0b5a8d4e-2c1f-4a63-9d7e-3f2b1c0a9e8d";
  const color = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
  const { withEventType: first, withoutEventType: current } = await goMarshalled(ref, color, 420);
  const order = { refCode: ref, colorCode: color, quantity: 420, eventType: "CREATE" } as const;
  assert.equal(new TextDecoder().decode(encodeOrder(order)), first);
  for (const body of [first, current]) {
    assert.deepEqual(
      parseOrder(new TextEncoder().encode(body), { contentType: "application/json" }),
      { ok: true, order },
      body,
    );
  }
});

Deno.test("baseline: the seed's own flow, Go Estoque to Go OrdemDeProducao: 3 runs 5 s and 10 s apart on 3.x; on 4.0 the Go consumer panics at its first retry; on 4.3 the Go Estoque cannot start", async () => {
  const { fleet, version } = await fleetUnderTest();
  await withCanonicalNames(async (broker) => {
    if (fleet === "cannot start") {
      await assertGoEstoqueCannotStart(broker, RABBITMQ_URL);
      console.log(`interop: baseline on ${version}: the Go Estoque cannot start`);
      return;
    }
    await goEstoque(); // declares the Go topology, publishes one order
    await using go = await goOrdem();
    if (fleet === "panics") {
      // Its order is over the limit of 500 (but with odds of 1 in 20,000): retried, then panic.
      await assertGoPanicsOnInt64Delay(go);
      assert.equal(await broker.messageCount(CANONICAL.queue), 1, "the order, back in the queue");
      console.log(`interop: baseline on ${version}: the Go consumer panicked at its first retry`);
      return;
    }
    for (let i = 0; i < 3; i++) await goEstoque();
    // The Go Estoque draws quantities up to 9,999,998 and the Go consumer fails every one above
    // 500: all four orders (but with odds of 1 in 5,000) are dead-lettered after 3 runs.
    await waitForDeadLetters(broker, 4);
    assertNoPanic(go);
    // The dlq tooling reads the Go side's headerless dead letters: RefCode from the body.
    const listed = await runScript("dlq.ts", ["list", "--json"]);
    assert.equal(listed.code, 0, listed.stderr);
    const letters = JSON.parse(listed.stdout) as { refCode: string; reason: string }[];
    assert.equal(letters.length, 4);
    assert.ok(letters.every((l) => l.reason === "unknown" && /^[0-9a-f-]{36}$/.test(l.refCode)));
    const dead = await takeMessages(broker, CANONICAL.deadLetterQueue, 4);
    const runs = tally(goRuns(go));
    for (const message of dead) {
      const parsed = parseOrder(message.content, { contentType: message.properties.contentType });
      assert.ok(parsed.ok, "the Go body is a valid order for us");
      const ref = parsed.order.refCode;
      assert.equal(runs.get(ref), 3, `${ref} ran 3 times`);
      assert.deepEqual(message.properties.headers ?? {}, {}, "the Go side dead-letters no headers");
      const times = go.grep(new RegExp(ref)).map(goSecond);
      assert.ok(times[1]! - times[0]! >= 4, `first retry after ~5 s: ${times}`);
      assert.ok(times[2]! - times[1]! >= 9, `second retry after ~10 s: ${times}`);
    }
    console.log(`interop: baseline: 4 Go orders, 4 dead letters after 3 Go runs each`);
  });
});

Deno.test("Go Estoque to our OrdemDeProducao on the Go services' own topology (--no-declare); on 4.3 neither can run on it", async () => {
  const { fleet, version } = await fleetUnderTest();
  await withCanonicalNames(async (broker) => {
    await using dir = await tempDir();
    const ledgerPath = join(dir.path, "ledger.sqlite");
    const base = ["--no-declare", "--no-http", "--ledger", ledgerPath];
    if (fleet === "cannot start") {
      await assertGoEstoqueCannotStart(broker, RABBITMQ_URL);
      await assertPluginRefused("ordem_de_producao.ts", base);
      console.log(`interop: Go Estoque -> ours on ${version}: neither runs the plugin topology`);
      return;
    }

    // Before anyone declared the topology, --no-declare stops at once and names what is missing.
    const early = await runScript("ordem_de_producao.ts", [...base, "--retry-backend", "plugin"]);
    assert.equal(early.code, 1, early.stderr);
    assert.match(early.stderr, /exchange productionorder, exchange productionorder\.dlx, queue/);
    assert.match(early.stderr, /do not exist/);

    await goEstoque(); // the Go topology: x-delayed-message, x-max-length 3, no DL routing key

    // Our own declare refuses that topology (other arguments), and says how to run on it.
    const declaring = await runScript("ordem_de_producao.ts", [
      "--no-http",
      "--ledger",
      ledgerPath,
      "--retry-backend",
      "plugin",
    ]);
    assert.equal(declaring.code, 1);
    assert.match(declaring.stderr, /other settings.*--no-declare/s);
    // The ttl backend's retry queues are ours alone: --no-declare names them and the way out.
    const ttl = await runScript("ordem_de_producao.ts", [...base, "--retry-backend", "ttl"]);
    assert.equal(ttl.code, 1);
    assert.match(
      ttl.stderr,
      /queue create\.productionorder\.retry\.5000ms.*--retry-backend plugin/s,
    );

    // The doctor explains what is unsafe in that topology, and the way to move.
    const doctor = await runScript("doctor.ts", ["--retry-backend", "plugin"]);
    assert.equal(doctor.code, 1, doctor.stdout + doctor.stderr);
    assert.match(doctor.stdout, /drop-head overflow/);
    assert.match(doctor.stdout, /overflow mixed into the DLQ/);
    assert.match(doctor.stdout, /Go services' topology.*--no-declare --retry-backend plugin/);

    const limit = 5_000_000;
    await using ordem = ourService("our OrdemDeProducao", "ordem_de_producao.ts", [
      ...base,
      "--retry-backend",
      "plugin",
      "--max-quantity",
      String(limit),
      "--log-level",
      "debug",
    ]);
    await ordem.until("ready", /msg=ready/);
    for (let i = 0; i < 5; i++) await goEstoque();
    const total = 6;
    await waitFor("every Go order settled", () => {
      const runs = ourRuns(ordem);
      const settled = runs.filter((r) => r.msg !== "retry scheduled").length;
      return settled >= total ? runs : undefined;
    }, SETTLE_MS);
    await ordem.stop();
    const runs = ourRuns(ordem);
    const created = runs.filter((r) => r.msg === "production order").map((r) => r.refCode);
    const deadRefs = runs.filter((r) => r.msg === "dead-lettered").map((r) => r.refCode);
    assert.equal(new Set([...created, ...deadRefs]).size, total, "6 distinct orders, each once");

    await using ledger = SqliteLedgerReader.open(ledgerPath); // no lock: a service may run on it
    assert.equal(await ledger.countOrders(), created.length);
    for (const ref of created) {
      const row = await ledger.findOrder(ref);
      assert.ok(row && row.quantity <= limit, `${ref} is a production order within the limit`);
      assert.equal(tally(runs.map((r) => r.refCode)).get(ref), 1);
    }
    // The Go Estoque's quantities are random: none of the 6 may be over the limit (1 run in 64).
    const dead = await takeMessages(broker, CANONICAL.deadLetterQueue, deadRefs.length);
    assert.equal(await broker.messageCount(CANONICAL.deadLetterQueue), 0, "no other dead letter");
    for (const message of dead) {
      const parsed = parseOrder(message.content);
      assert.ok(parsed.ok);
      assert.ok(parsed.order.quantity > limit);
      const headers = message.properties.headers!;
      assert.equal(headers[HEADER.reason], "exhausted");
      assert.equal(readRetryCount(headers), 2, "dead-lettered on its third run, as the Go side");
      assert.match(String(headers[HEADER.lastError]), /^maximum quantity exceeded: \d+ > 5000000$/);
      assert.equal(tally(runs.map((r) => r.refCode)).get(parsed.order.refCode), 3);
    }
    // Step 5 of docs/migration.md: replace the emptied Go work queue with ours, and the doctor
    // finds nothing left to explain.
    const drained = await runScript("ordem_de_producao.ts", [
      ...base,
      "--retry-backend",
      "plugin",
      "--drain",
    ]);
    assert.equal(drained.code, 0, drained.stderr);
    // What `rabbitmqctl delete_queue --if-empty` does, on the broker under test.
    const channel = await broker.channel();
    await channel.deleteQueue(CANONICAL.queue, { ifEmpty: true });
    await channel.close();
    const redeclared = await runScript("ordem_de_producao.ts", [
      "--no-http",
      "--ledger",
      ledgerPath,
      "--retry-backend",
      "plugin",
      "--drain",
    ]);
    assert.equal(redeclared.code, 0, redeclared.stderr);
    const after = await runScript("doctor.ts", ["--retry-backend", "plugin"]);
    assert.equal(after.code, 0, after.stdout);
    assert.doesNotMatch(after.stdout, /drop-head|migration/);
    console.log(
      `interop: Go Estoque -> ours: ${total} orders, ${created.length} production orders, ` +
        `${dead.length} dead letters after 3 runs; work queue then replaced with ours`,
    );
  });
});

for (const backend of ["plugin", "ttl"] as const satisfies readonly RetryBackend[]) {
  const versions = backend === "ttl"
    ? "on 3.x, 4.0 and 4.3 alike"
    : "on 3.x; on 4.0 it panics at its first retry, the orders kept; on 4.3 our plugin backend is refused";
  Deno.test(`our Estoque to the Go OrdemDeProducao (${backend} backend): every order consumed, the Go process never panics ${versions}`, async () => {
    const { version, ...found } = await fleetUnderTest();
    // The ttl backend's exchange is direct: the Go side's x-delay passes through no plugin.
    const fleet = backend === "ttl" ? "runs" : found.fleet;
    await withCanonicalNames(async (broker) => {
      await using dir = await tempDir();
      const flags = ["--retry-backend", backend, "--count"];
      if (fleet === "cannot start") {
        await assertPluginRefused("estoque.ts", ["--count", "1"]);
        console.log(`interop: ours -> Go (${backend}) on ${version}: our plugin backend refused`);
        return;
      }
      const valid = await ourEstoque([...flags, "4", "--quantity", "100"], join(dir.path, "a"));
      await using go = await goOrdem();
      const over = await ourEstoque([...flags, "3", "--quantity", "1000"], join(dir.path, "b"));
      if (fleet === "panics") {
        await assertGoPanicsOnInt64Delay(go);
        const runs = tally(goRuns(go));
        for (const ref of valid) assert.equal(runs.get(ref), 1, `${ref} created once`);
        // Each over-limit order ran once; its retry, unacked when the process died, is back.
        await waitFor(
          "the over-limit orders back in the work queue",
          async () => (await broker.messageCount(CANONICAL.queue)) === over.length || undefined,
          SETTLE_MS,
        );
        const back = await takeMessages(broker, CANONICAL.queue, over.length);
        assert.deepEqual(
          back.map((m) => (parseOrder(m.content) as { order: { refCode: string } }).order.refCode)
            .sort(),
          [...over].sort(),
        );
        console.log(
          `interop: ours -> Go (${backend}) on ${version}: ${valid.length} created by Go once ` +
            `each; it panicked at the first retry, the ${over.length} over the limit kept`,
        );
        return;
      }
      await waitForDeadLetters(broker, over.length);
      assertNoPanic(go);
      const dead = await takeMessages(broker, CANONICAL.deadLetterQueue, over.length);
      assert.deepEqual(
        dead.map((m) => (parseOrder(m.content) as { order: { refCode: string } }).order.refCode)
          .sort(),
        [...over].sort(),
      );
      const runs = tally(goRuns(go));
      for (const ref of valid) assert.equal(runs.get(ref), 1, `${ref} created once`);
      for (const ref of over) assert.equal(runs.get(ref), 3, `${ref} ran 3 times`);
      if (backend === "plugin") {
        for (const ref of over) {
          const times = go.grep(new RegExp(ref)).map(goSecond);
          assert.ok(times[2]! - times[0]! >= 14, `the Go retries waited 5 s and 10 s: ${times}`);
        }
      }
      console.log(
        `interop: ours -> Go (${backend}): ${valid.length} created by Go once each, ` +
          `${over.length} dead-lettered by Go after 3 runs`,
      );
    });
  });
}

for (const backend of ["plugin", "ttl"] as const satisfies readonly RetryBackend[]) {
  const versions = backend === "ttl"
    ? "on 3.x, 4.0 and 4.3 alike"
    : "on 3.x; on 4.0 the Go consumer panics and ours finishes every order; on 4.3 our plugin backend is refused";
  Deno.test(`a mixed fleet (${backend} backend): the Go OrdemDeProducao and ours on one queue; every order ends exactly once ${versions}`, async () => {
    const { version, ...found } = await fleetUnderTest();
    const fleet = backend === "ttl" ? "runs" : found.fleet;
    await withCanonicalNames(async (broker) => {
      await using dir = await tempDir();
      const ledgerPath = join(dir.path, "ledger.sqlite");
      if (fleet === "cannot start") {
        await assertPluginRefused("ordem_de_producao.ts", ["--no-http", "--ledger", ledgerPath]);
        console.log(`interop: mixed fleet (${backend}) on ${version}: our plugin backend refused`);
        return;
      }
      await using ordem = ourService("our OrdemDeProducao", "ordem_de_producao.ts", [
        "--retry-backend",
        backend,
        "--no-http",
        "--ledger",
        ledgerPath,
        "--log-level",
        "debug",
      ]);
      await ordem.until("ready", /msg=ready/); // declares the topology with the default budget
      await using go = await goOrdem();
      const flags = ["--retry-backend", backend, "--count"];
      const valid = await ourEstoque([...flags, "10", "--quantity", "100"], join(dir.path, "a"));
      const over = await ourEstoque([...flags, "10", "--quantity", "1000"], join(dir.path, "b"));
      if (fleet === "panics") {
        await assertGoPanicsOnInt64Delay(go);
        await mixedFleetAfterThePanic(broker, ordem, go, ledgerPath, valid, over);
        console.log(
          `interop: mixed fleet (${backend}) on ${version}: the Go consumer panicked at its ` +
            `first retry; ours finished the ${valid.length} valid and ${over.length} over the ` +
            `limit, lost 0, duplicated 0`,
        );
        return;
      }
      await waitForDeadLetters(broker, over.length);
      assertNoPanic(go);
      // Our consumer settles its last deliveries before it stops.
      await ordem.stop();
      const dead = await takeMessages(broker, CANONICAL.deadLetterQueue, over.length);
      const ours = ourRuns(ordem);
      const theirs = goRuns(go);
      const runs = tally([...ours.map((r) => r.refCode), ...theirs]);
      const oursByRef = tally(ours.map((r) => r.refCode));
      const goByRef = tally(theirs);

      await using ledger = SqliteLedgerReader.open(ledgerPath); // no lock: a service may run on it
      let createdByUs = 0;
      for (const ref of valid) {
        assert.equal(runs.get(ref), 1, `${ref} ran once`);
        const inLedger = (await ledger.findOrder(ref)) !== undefined;
        assert.equal(inLedger, oursByRef.get(ref) === 1, `${ref}: created by exactly one side`);
        if (inLedger) createdByUs++;
      }
      assert.equal(await ledger.countOrders(), createdByUs);

      const deadRefs = dead.map((m) =>
        (parseOrder(m.content) as { order: { refCode: string } })
          .order.refCode
      );
      assert.deepEqual([...deadRefs].sort(), [...over].sort(), "each over-limit order once in DLQ");
      let bounced = 0;
      let deadByUs = 0;
      for (const ref of over) {
        assert.equal(runs.get(ref), 3, `${ref}: 3 runs in all, whichever side ran them`);
        if ((oursByRef.get(ref) ?? 0) > 0 && (goByRef.get(ref) ?? 0) > 0) bounced++;
      }
      for (const message of dead) {
        const headers = message.properties.headers ?? {};
        if (headers[HEADER.reason] !== undefined) {
          deadByUs++;
          assert.equal(headers[HEADER.reason], "exhausted");
          assert.equal(readRetryCount(headers), 2);
        }
      }
      assert.ok(bounced > 0, "some orders moved between the two consumers through retries");
      console.log(
        `interop: mixed fleet (${backend}): ${valid.length} valid (${createdByUs} created by ours, ` +
          `${
            valid.length - createdByUs
          } by Go), ${over.length} over the limit (${bounced} ran on ` +
          `both sides; ${deadByUs} dead-lettered by ours, ${over.length - deadByUs} by Go), ` +
          `lost 0, duplicated 0`,
      );
    });
  });
}
