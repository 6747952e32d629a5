/**
 * What the partition cases (faults/partition.ts) run on and measure with: the cluster of
 * `scripts/partition_cluster.sh` (three RabbitMQ nodes in network namespaces of their own, the
 * services in another), the services started there, and the measures of a fault: how long the
 * ledger stopped growing, and what a degraded link did (round trips, drops).
 *
 * @module
 */

import { join } from "node:path";
import { integerOption } from "../lib/cli.ts";
import { POSTGRES_URL } from "../testing/broker.ts";
import { BROKER_LINE } from "./_brokers.ts";
import { type Deployment, Service, serviceEnv } from "./_deployment.ts";
import { step } from "./_harness.ts";
import { type Load, loadToJson } from "./_load.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** The nodes of the cluster. */
export const NODES = ["r1", "r2", "r3"] as const;

/** A node of the cluster. */
export type Node = typeof NODES[number];

/**
 * Runs `scripts/partition_cluster.sh` for the line's cluster (`FAULT_BROKER`) with `args`; resolves
 * with what it printed, throws with its error output if it failed. PostgreSQL's forwarder points at
 * `POSTGRES_URL`'s host and port.
 */
export async function partitionCluster(...args: string[]): Promise<string> {
  const postgres = new URL(POSTGRES_URL);
  const { code, stdout, stderr } = await new Deno.Command("bash", {
    args: [join(ROOT, "scripts/partition_cluster.sh"), "--broker", BROKER_LINE, ...args],
    env: { PARTITION_POSTGRES: `${postgres.hostname}:${postgres.port || "5432"}` },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(stdout).trim();
  if (code !== 0) {
    const error = new TextDecoder().decode(stderr).trim();
    throw new Error(`partition_cluster.sh ${args.join(" ")} failed: ${error}`);
  }
  return text;
}

/** Where the services of the partition cases find the cluster and the ledger. */
export interface PartitionCluster {
  /** The nodes' AMQP URLs, r1 first. */
  readonly urls: readonly string[];
  /** The services' network namespace. */
  readonly netns: string;
  /** `POSTGRES_URL` as the services reach it: through the forwarder on the bridge. */
  readonly postgresUrl: string;
  /** The cluster's `net_ticktime` in seconds, as r1 reports it; undefined when it could not say. */
  readonly netTicktimeSeconds: number | undefined;
  /** Where the cluster keeps queues and their leaders (`khepri`, `mnesia`), as r1 says; or undefined. */
  readonly metadataStore: "khepri" | "mnesia" | undefined;
  /** The heartbeat the services ask for, in seconds (`FAULT_HEARTBEAT`); undefined: their default. */
  readonly heartbeatSeconds: number | undefined;
}

/**
 * The heartbeat the services, the replays and the harness's own connections ask for
 * (`FAULT_HEARTBEAT`, whole seconds, as `?heartbeat=N` on every URL); unset, the services' default.
 */
const HEARTBEAT = heartbeatSetting(Deno.env.get("FAULT_HEARTBEAT"));

function heartbeatSetting(value: string | undefined): number | undefined {
  return value === undefined
    ? undefined
    : integerOption({ label: "FAULT_HEARTBEAT", value }, 1, 3_600);
}

/** Starts the cluster (about 30 s) and says where it is. */
export async function partitionClusterUp(): Promise<PartitionCluster> {
  await partitionCluster("up");
  const urls = (await partitionCluster("urls")).split(",").map((url) => {
    if (HEARTBEAT === undefined) return url;
    const withHeartbeat = new URL(url);
    withHeartbeat.searchParams.set("heartbeat", String(HEARTBEAT));
    return withHeartbeat.href;
  });
  const netns = await partitionCluster("netns");
  const target = new URL(POSTGRES_URL);
  target.host = await partitionCluster("postgres");
  // For the report only: a node that cannot say leaves it unknown.
  const ticktime = Number(await partitionCluster("ticktime").catch(() => ""));
  const store = await partitionCluster("metadata-store").catch(() => "");
  return {
    urls,
    netns,
    postgresUrl: target.href,
    netTicktimeSeconds: ticktime > 0 ? ticktime : undefined,
    metadataStore: store === "khepri" || store === "mnesia" ? store : undefined,
    heartbeatSeconds: HEARTBEAT,
  };
}

/** The node leading a quorum queue, once the queue exists (OrdemDeProducao declares it). */
export async function waitForLeader(queue: string): Promise<Node> {
  const deadline = performance.now() + 60_000;
  while (true) {
    try {
      return await partitionCluster("leader", queue) as Node;
    } catch (error) {
      if (performance.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

/** `urls` starting at `node`'s, then the others in turn: a service that connects to it first. */
export function startingAt(urls: readonly string[], node: Node): string[] {
  const i = NODES.indexOf(node);
  return [...urls.slice(i), ...urls.slice(0, i)];
}

/**
 * Estoque (faults/_estoque.ts) in the deployment's namespace, publishing `load` with Estoque's
 * settings (its defaults, unless `extra` sets them) at `rate` orders a second.
 */
export async function startEstoque(
  dep: Deployment,
  load: Load,
  rate: number,
  extra: Record<string, string> = {},
): Promise<{ service: Service; result: () => Promise<{ confirmed: number; resent: number }> }> {
  const loadFile = join(dep.dir, "load.json");
  const resultFile = join(dep.dir, "estoque-result.json");
  await Deno.writeTextFile(loadFile, loadToJson(load));
  const service = new Service(
    "faults/_estoque.ts",
    [],
    serviceEnv(dep, {
      FAULT_LOAD_FILE: loadFile,
      FAULT_RESULT_FILE: resultFile,
      ESTOQUE_RATE: String(Math.round(rate)),
      ...extra,
    }),
    join(dep.dir, "estoque.log"),
    dep.netns,
  );
  await service.start();
  return {
    service,
    result: async () => {
      const status = await service.exited();
      if (status?.code !== 0) {
        throw new Error(`Estoque exited with ${status?.code}: ${service.output().slice(-2_000)}`);
      }
      return JSON.parse(await Deno.readTextFile(resultFile));
    },
  };
}

/** Waits `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Heals every fault of `node` and waits until it runs RabbitMQ again; resolves with a note when
 * its boot hung and had to be unblocked (partition_cluster.sh recover), else undefined.
 */
export async function healAndRecover(node: Node): Promise<string | undefined> {
  await partitionCluster("heal", node);
  const said = await partitionCluster("recover", node);
  step(said);
  return said.includes("hung") ? `${node}'s boot hung in global:sync after the heal` : undefined;
}

/**
 * The longest time in `[from, until)` in which the ledger did not grow, from `samples` of
 * [time, rows]; a stall still open at `until` counts up to `until`, and the ledger reaching
 * `total` rows ends the window (nothing more is to come).
 */
export function longestStall(
  samples: readonly (readonly [number, number])[],
  from: number,
  until: number,
  total: number,
): number {
  let last = samples.filter(([t]) => t <= from).at(-1)?.[1] ?? 0;
  if (last >= total) return 0;
  let since = from;
  let longest = 0;
  for (const [t, n] of samples) {
    if (t <= from || n <= last) continue;
    if (t >= until) break;
    longest = Math.max(longest, t - since);
    since = t;
    last = n;
    if (n >= total) return longest;
  }
  return Math.max(longest, until - since);
}

/**
 * Round trips to `host:port` measured as TCP handshakes (SYN out, SYN-ACK back: both directions
 * of the link), one every `everyMs`, until stopped; a handshake that does not complete within
 * 3 s counts as lost.
 */
export class HandshakeProbe {
  readonly times: number[] = [];
  lost = 0;
  #running = true;
  readonly #done: Promise<void>;

  /** Starts probing. */
  constructor(host: string, port: number, everyMs = 250) {
    this.#done = this.#loop(host, port, everyMs);
  }

  async #loop(host: string, port: number, everyMs: number): Promise<void> {
    while (this.#running) {
      const started = performance.now();
      const connecting = Deno.connect({ hostname: host, port });
      const outcome = await Promise.race([connecting, sleep(3_000).then(() => undefined)]);
      if (outcome === undefined) {
        this.lost++;
        connecting.then((conn) => conn.close(), () => {});
      } else {
        this.times.push(performance.now() - started);
        outcome.close();
      }
      await sleep(Math.max(0, everyMs - (performance.now() - started)));
    }
  }

  /** Stops probing; resolves with the round trips' median and 90th percentile, in ms. */
  async stop(): Promise<{ median: number; p90: number; count: number; lost: number }> {
    this.#running = false;
    await this.#done;
    const sorted = [...this.times].sort((a, b) => a - b);
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
    return { median: at(0.5) ?? NaN, p90: at(0.9) ?? NaN, count: sorted.length, lost: this.lost };
  }
}

/** Packets the tbf of a node's link sent and dropped, towards the node and from it. */
export interface LinkStats {
  readonly to: { sent: number; dropped: number };
  readonly from: { sent: number; dropped: number };
}

/** The tbf counters of `node`'s link (zeros when it has none). */
export async function linkStats(node: Node): Promise<LinkStats> {
  const text = await partitionCluster("link-stats", node);
  const read = (direction: string) => {
    const match = new RegExp(`^${direction} (\\d+) (\\d+)$`, "m").exec(text);
    return { sent: Number(match?.[1] ?? 0), dropped: Number(match?.[2] ?? 0) };
  };
  return { to: read("to"), from: read("from") };
}

/**
 * Whether a TCP connection from the services' namespace to `address` (HOST:PORT) opens within
 * `timeoutMs`.
 */
export async function reachableFrom(
  netns: string,
  address: string,
  timeoutMs = 3_000,
): Promise<boolean> {
  const [host, port] = address.split(":");
  const { code } = await new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      netns,
      "timeout",
      String(timeoutMs / 1000),
      "bash",
      "-c",
      `exec 3<>/dev/tcp/${host}/${port}`,
    ],
    stdout: "null",
    stderr: "null",
  }).output();
  return code === 0;
}

/**
 * Cuts each node off in turn, for a moment (far less than `net_ticktime`: no node is taken for
 * down), and lists what the services' namespace could not reach meanwhile that it should:
 * PostgreSQL through the bridge, and the nodes not cut. A cut that takes more than its node (the
 * bridge's address moving with a link, as it did before the bridge had an address of its own)
 * would stall every case for a reason that is not the partition.
 */
export async function cutsStayNarrow(cluster: PartitionCluster): Promise<string[]> {
  const wrong: string[] = [];
  const nodeAddress = (url: string) => new URL(url).host;
  for (const [i, node] of NODES.entries()) {
    await partitionCluster("cut", node);
    try {
      if (!(await reachableFrom(cluster.netns, new URL(cluster.postgresUrl).host))) {
        wrong.push(`PostgreSQL unreachable while ${node} was cut off`);
      }
      for (const [j, url] of cluster.urls.entries()) {
        if (j === i) continue;
        if (!(await reachableFrom(cluster.netns, nodeAddress(url)))) {
          wrong.push(`${NODES[j]} unreachable while ${node} was cut off`);
        }
      }
    } finally {
      await partitionCluster("heal", node);
    }
  }
  return wrong;
}
