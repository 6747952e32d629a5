/**
 * What becomes of the Go services on each RabbitMQ release, and the assertions of each outcome:
 * the interoperability cases decide by the version of the broker they run on.
 *
 * | release   | the delayed-message plugin                   | the Go services                           |
 * | --------- | -------------------------------------------- | ----------------------------------------- |
 * | 3.x       | keeps `x-delay`'s type (`I`)                 | run                                       |
 * | 4.0 – 4.2 | hands `x-delay` back as a signed 64-bit `l`  | the Go consumer panics on its first retry |
 * | 4.3 –     | none works                                   | the Go Estoque cannot start               |
 *
 * @module
 */

import { strict as assert } from "node:assert";
import { Broker } from "../lib/broker.ts";
import { parseOrder } from "../lib/order.ts";
import { HEADER } from "../lib/retry_headers.ts";
import { SqliteLedgerReader } from "../lib/sqlite_ledger_reader.ts";
import { serverVersionAtLeast } from "../lib/server_version.ts";
import { pluginBackendRuns } from "../lib/topology.ts";
import { RABBITMQ_URL, runScript, takeMessages, waitFor } from "../testing/broker.ts";
import type { Peer } from "../testing/process.ts";
import { CANONICAL, goRuns, runGoEstoque } from "./_peers.ts";

/** Longest a case waits for its orders to settle: 3 runs, 5 s then 10 s apart, plus slack. */
export const SETTLE_MS = 60_000;

/** What the Go services do on a broker of some release (the module doc's table). */
export type GoFleet = "runs" | "panics" | "cannot start";

/** What the Go services do on RabbitMQ `version`. */
export function goFleetOn(version: string): GoFleet {
  if (!pluginBackendRuns(version)) return "cannot start";
  return serverVersionAtLeast(version, "4.0") ? "panics" : "runs";
}

/** What the Go OrdemDeProducao prints when `x-delay` comes back as an int64. */
export const INT64_PANIC = /panic: interface conversion: interface \{\} is int64, not int32/;

/** Counts of each value. */
export function tally(refs: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const ref of refs) counts.set(ref, (counts.get(ref) ?? 0) + 1);
  return counts;
}

/** Seconds between a Go log line's time stamps (`2006/01/02 15:04:05`). */
export function goSecond(line: string): number {
  return Date.parse(line.slice(0, 19).replaceAll("/", "-").replace(" ", "T") + "Z") / 1000;
}

/** The Go consumer is running and has printed no panic or failure. */
export function assertNoPanic(go: Peer): void {
  const failed = go.grep(/panic|Failed to/);
  assert.equal(failed.length, 0, `the Go consumer failed: ${failed[0]}\n${go}`);
  assert.ok(go.running, `the Go consumer exited:\n${go}`);
}

/** Waits until the DLQ holds at least `count` messages. */
export async function waitForDeadLetters(broker: Broker, count: number): Promise<void> {
  await waitFor(
    `${count} dead letters in ${CANONICAL.deadLetterQueue}`,
    async () => (await broker.messageCount(CANONICAL.deadLetterQueue)) >= count ? true : undefined,
    SETTLE_MS,
  );
}

/**
 * The Go OrdemDeProducao on RabbitMQ 4.0-4.2 with the plugin: the first retried message it gets
 * back is one whose `x-delay` the plugin set as an int64, and its `.(int32)` panics in
 * `getDelay`; the process exits 2. Resolves once it has.
 */
export async function assertGoPanicsOnInt64Delay(go: Peer): Promise<void> {
  await go.until("the Go consumer's panic on an int64 x-delay", INT64_PANIC, 1, SETTLE_MS);
  const status = await go.status;
  assert.equal(status.code, 2, `the Go consumer's exit status:\n${go}`);
  assert.match(go.lines.join("\n"), /main\.getDelay/);
}

/**
 * The Go Estoque on RabbitMQ 4.3 and later: its first declare, the `x-delayed-message` exchange,
 * is refused (no plugin works there), and it exits 1 having declared nothing.
 */
export async function assertGoEstoqueCannotStart(broker: Broker, url: string): Promise<void> {
  const { code, output } = await runGoEstoque(url);
  assert.equal(code, 1, output);
  assert.match(
    output,
    /Failed to declare exchange productionorder: Exception \(406\) Reason: "PRECONDITION_FAILED - unknown exchange type 'x-delayed-message'"/,
  );
  for (const [kind, name] of [["exchange", CANONICAL.exchange], ["queue", CANONICAL.queue]]) {
    const channel = await broker.channel();
    const exists =
      await (kind === "exchange" ? channel.checkExchange(name!) : channel.checkQueue(name!))
        .then(() => true, () => false);
    await channel.close().catch(() => {});
    assert.equal(exists, false, `the Go Estoque declared ${kind} ${name}`);
  }
}

let underTest: Promise<{ fleet: GoFleet; version: string }> | undefined;

/** What the Go services do on the broker under test, and its version (asked once). */
export function fleetUnderTest(): Promise<{ fleet: GoFleet; version: string }> {
  underTest ??= (async () => {
    const broker = await Broker.connect(RABBITMQ_URL, { name: "interop version" });
    try {
      return { fleet: goFleetOn(broker.serverVersion), version: broker.serverVersion };
    } finally {
      await broker.close();
    }
  })();
  return underTest;
}

/** Our command with `--retry-backend plugin` on RabbitMQ 4.3+: exit 1, refused before declaring. */
export async function assertPluginRefused(script: string, args: readonly string[]): Promise<void> {
  const run = await runScript(script, ["--retry-backend", "plugin", ...args]);
  assert.equal(run.code, 1, run.stderr);
  assert.match(run.stderr, /--retry-backend plugin cannot run on RabbitMQ .*--retry-backend ttl/s);
}

/**
 * A mixed fleet once the Go consumer died (4.0, the plugin): ours takes over what the Go one had
 * not acked. Every valid order is created once, by one side; every over-limit order is
 * dead-lettered once.
 */
export async function mixedFleetAfterThePanic(
  broker: Broker,
  ordem: Peer,
  go: Peer,
  ledgerPath: string,
  valid: readonly string[],
  over: readonly string[],
): Promise<void> {
  await waitForDeadLetters(broker, over.length);
  await ordem.stop(); // settles its last deliveries
  const dead = await takeMessages(broker, CANONICAL.deadLetterQueue, over.length);
  assert.equal(await broker.messageCount(CANONICAL.deadLetterQueue), 0, "no second dead letter");
  assert.deepEqual(
    dead.map((m) => (parseOrder(m.content) as { order: { refCode: string } }).order.refCode)
      .sort(),
    [...over].sort(),
  );
  // Ours dead-letters with its reason; the Go side (a copy at x-retry-count 2 reads no x-delay,
  // so it can dead-letter one before it panics) with no headers.
  for (const message of dead) {
    const reason = message.properties.headers?.[HEADER.reason];
    assert.ok(reason === undefined || reason === "exhausted", `reason ${reason}`);
  }
  const byGo = tally(goRuns(go));
  await using ledger = SqliteLedgerReader.open(ledgerPath);
  for (const ref of valid) {
    const byUs = (await ledger.findOrder(ref)) !== undefined ? 1 : 0;
    assert.equal(byUs + (byGo.get(ref) ?? 0), 1, `${ref}: created once, by one side`);
  }
  assert.equal(await broker.messageCount(CANONICAL.queue), 0, "nothing left in the work queue");
}
