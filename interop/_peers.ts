/**
 * The processes of the interoperability suite: the Go original's two services, built from their
 * source by scripts/go_peer.sh, and this project's two services run from their entry scripts,
 * each with its output collected line by line so a test can wait on what it prints.
 *
 * The Go services talk to `amqp://guest:guest@localhost:5672/` under fixed names, so every case
 * works on the default vhost's canonical objects and removes them afterwards
 * ({@linkcode withCanonicalNames}); it refuses to start where they hold messages or consumers
 * that are not its own.
 */

import { join } from "node:path";
import { Broker } from "../lib/broker.ts";
import { topology } from "../lib/topology.ts";
import { RABBITMQ_URL } from "../testing/broker.ts";
import { ourService, Peer } from "../testing/process.ts";

const root = new URL("..", import.meta.url).pathname;

/** The canonical names the Go services use (this project's topology with no prefix). */
export const CANONICAL = topology({ backend: "plugin" });

let built: Promise<string> | undefined;

/** Builds the Go services once per run (scripts/go_peer.sh); resolves with their folder. */
export function goPeer(): Promise<string> {
  built ??= (async () => {
    const { code, stdout, stderr } = await new Deno.Command("bash", {
      args: [join(root, "scripts/go_peer.sh")],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder();
    if (code !== 0) {
      throw new Error(`cannot build the Go services: ${text.decode(stderr).trim()}`);
    }
    return text.decode(stdout).trim().split("\n").at(-1)!;
  })();
  return built;
}

/** The Go OrdemDeProducao, consuming `create.productionorder` until stopped. */
export async function goOrdem(): Promise<Peer> {
  const peer = new Peer("Go OrdemDeProducao", join(await goPeer(), "ordem-de-producao"), []);
  await peer.until("the Go consumer to start", /Waiting messages to be delivered/);
  return peer;
}

/** Runs the Go Estoque once (it declares its topology and publishes one random order). */
export async function goEstoque(): Promise<void> {
  await using peer = new Peer("Go Estoque", join(await goPeer(), "estoque"), []);
  const status = await peer.status;
  if (status.code !== 0) throw new Error(`the Go Estoque failed (${status.code}):\n${peer}`);
}

/** The RefCodes the Go OrdemDeProducao logged "Created production order" for, in order. */
export function goRuns(peer: Peer): string[] {
  return peer.grep(/Created production order for ref\. code: /).map((line) =>
    line.slice(line.lastIndexOf(" ") + 1)
  );
}

/** Runs our Estoque to its end; resolves with the RefCodes the broker confirmed. */
export async function ourEstoque(args: readonly string[], confirmedLog: string): Promise<string[]> {
  await using peer = ourService("our Estoque", "estoque.ts", [
    ...args,
    "--confirmed-log",
    confirmedLog,
  ]);
  const status = await peer.status;
  if (status.code !== 0) throw new Error(`our Estoque failed (${status.code}):\n${peer}`);
  return (await Deno.readTextFile(confirmedLog)).split("\n").filter((line) => line !== "");
}

/** What our OrdemDeProducao logged about a RefCode: one entry per run of it. */
export function ourRuns(peer: Peer): { refCode: string; msg: string }[] {
  const pattern = /msg="?(production order|retry scheduled|dead-lettered)"?/;
  return peer.grep(pattern).flatMap((line) => {
    const ref = /refCode=([0-9a-f-]{36})/.exec(line)?.[1];
    const msg = pattern.exec(line)![1]!;
    return ref === undefined ? [] : [{ refCode: ref, msg }];
  });
}

async function removeCanonical(broker: Broker): Promise<void> {
  const channel = await broker.channel();
  try {
    for (const queue of [CANONICAL.queue, CANONICAL.deadLetterQueue]) {
      await channel.deleteQueue(queue);
    }
    for (const tier of [5_000, 10_000]) {
      await channel.deleteQueue(`${CANONICAL.queue}.retry.${tier}ms`);
    }
    await channel.deleteExchange(CANONICAL.exchange);
    await channel.deleteExchange(CANONICAL.deadLetterExchange);
  } finally {
    await channel.close().catch(() => {});
  }
}

/**
 * Runs `fn` with the canonical names free on the default vhost and removes them afterwards,
 * whatever happened. Fails, touching nothing, where the work queue or the DLQ already holds
 * messages or has consumers: those are someone else's.
 */
export async function withCanonicalNames(fn: (broker: Broker) => Promise<void>): Promise<void> {
  const broker = await Broker.connect(RABBITMQ_URL, { name: "interop" });
  try {
    for (const queue of [CANONICAL.queue, CANONICAL.deadLetterQueue]) {
      const channel = await broker.channel();
      const found = await channel.checkQueue(queue).catch(() => undefined);
      await channel.close().catch(() => {});
      if (found && (found.messageCount > 0 || found.consumerCount > 0)) {
        throw new Error(
          `queue ${queue} on the default vhost holds ${found.messageCount} messages and has ` +
            `${found.consumerCount} consumers: the interop suite needs the Go services' fixed ` +
            `names; remove it ("rabbitmqctl delete_queue ${queue}") if it is a leftover`,
        );
      }
    }
    await removeCanonical(broker);
    try {
      await fn(broker);
    } finally {
      await removeCanonical(broker);
    }
  } finally {
    await broker.close();
  }
}
