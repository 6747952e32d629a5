/**
 * P4's dead letters (faults/partition.ts): waiting until the DLQ holds them, `dlq replay` run in
 * the services' namespace and what it said it did, and the letters RabbitMQ 3.10.8 keeps checked
 * out to a replay whose node was cut off, released by moving the DLQ's leader.
 *
 * @module
 */

import { strict as assert } from "node:assert";
import { join } from "node:path";
import type { Broker } from "../lib/broker.ts";
import { keepConnected } from "../lib/reconnect.ts";
import { type Deployment, Service, serviceEnv } from "./_deployment.ts";
import { step } from "./_harness.ts";
import { partitionCluster, sleep } from "./_partitions.ts";

/**
 * What a `dlq replay` said it did, short, for the report's notes (read from its output, which is
 * meant for people: the report only quotes it).
 */
export function replayOutcome(output: string): string {
  const done = /replayed (\d+) of (\d+) matching/.exec(output);
  if (done) return `${done[1]} of ${done[2]} replayed`;
  const ended = /(\d+) replayed before it ended/.exec(output);
  const silent = /the broker sent nothing for [\d.]+ s/.exec(output);
  if (ended) return `${ended[1]} replayed, then its channel closed (${silent?.[0] ?? "?"})`;
  const lines = output.trim().split("\n");
  return (lines.find((line) => line.startsWith("error:")) ?? lines.at(-1) ?? "").slice(0, 160);
}

/** `dlq replay` of the deployment's exhausted dead letters, in the services' namespace. */
export async function startReplay(dep: Deployment, n: number, args: string[]): Promise<Service> {
  const service = new Service(
    "dlq.ts",
    ["replay", "--reason", "exhausted", ...args],
    serviceEnv(dep, { DLQ_AUDIT_LOG: join(dep.dir, "dlq-audit.jsonl"), LOG_LEVEL: "warning" }),
    join(dep.dir, `replay-${n}.log`),
    dep.netns,
  );
  await service.start();
  return service;
}

/**
 * The letters a replay on a node that was cut off had taken are held for good by RabbitMQ 3.10.8
 * when its pass had cancelled the batch consumer that took them (a consumer waiting for its
 * letters to be settled): the queue's new leader never learns that the consumer's channel died
 * with the node's pause, and keeps the letters checked out to it. A new leader looks at its
 * consumers afresh: this moves the DLQ's leader when it lists consumers though no pass runs, and
 * waits until they are gone. Resolves with a note of it, or undefined when there were none.
 */
export async function releaseHeldLetters(dep: Deployment): Promise<string | undefined> {
  const count = () =>
    keepConnected({ urls: dep.urls, giveUpAfterMs: 30_000 }, async (broker: Broker) => {
      const channel = await broker.channel();
      try {
        const { consumerCount, messageCount } = await channel.checkQueue(dep.topo.deadLetterQueue);
        return { consumerCount, messageCount };
      } finally {
        await channel.close().catch(() => {});
      }
    });
  const before = await count();
  if (before.consumerCount === 0) return undefined;
  step(`the DLQ lists ${before.consumerCount} consumers of a dead pass: moving its leader`);
  await partitionCluster("transfer-leader", dep.topo.deadLetterQueue);
  const deadline = performance.now() + 30_000;
  while ((await count()).consumerCount > 0) {
    assert.ok(performance.now() < deadline, "the dead pass's consumers stayed on the DLQ");
    await sleep(500);
  }
  const after = await count();
  return `${
    after.messageCount - before.messageCount
  } letters held by the dead replay's ${before.consumerCount} consumers until the DLQ's leader moved`;
}

/**
 * Waits until the DLQ holds `count` letters and nothing else is in flight; fails after
 * `timeoutMs`.
 */
export async function waitForDeadLetters(
  dep: Deployment,
  count: number,
  timeoutMs: number,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  await keepConnected({ urls: dep.urls, giveUpAfterMs: timeoutMs }, async (broker: Broker) => {
    while (true) {
      let busy = await broker.messageCount(dep.topo.queue);
      for (const tier of dep.topo.retryTiers) busy += await broker.messageCount(tier.queue);
      const letters = await broker.messageCount(dep.topo.deadLetterQueue);
      if (busy === 0 && letters >= count) return;
      assert.ok(performance.now() < deadline, `${letters}/${count} dead letters, ${busy} busy`);
      await sleep(200);
    }
  });
}
