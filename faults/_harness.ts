/**
 * The fault-injection harness: OrdemDeProducao as real subprocesses that can be `kill -9`'d and
 * restarted, a paced mixed load (valid, over-limit and invalid orders) published with the
 * project's own reconnecting publisher, a watch that measures how long processing stalls after
 * a fault, and the accounting that every case ends with.
 */

import { strict as assert } from "node:assert";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import postgres from "postgres";
import { Broker, type TlsFiles } from "../lib/broker.ts";
import { OrderFeed, publishFeed } from "../lib/estoque.ts";
import { encodeOrder, newOrder, type Order } from "../lib/order.ts";
import { ConfirmedPublisher } from "../lib/publisher.ts";
import { ConnectionLost, keepConnected } from "../lib/reconnect.ts";
import { HEADER } from "../lib/retry_headers.ts";
// The test helpers' broker and database (and their quiet logging).
import { POSTGRES_URL, RABBITMQ_URL } from "../testing/broker.ts";
import { deleteTopology, type QueueType, type Topology, topology } from "../lib/topology.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** The system broker. */
export const LOCAL_URL = RABBITMQ_URL;

/** The retry settings every case runs with: two retries, 100 and 200 ms apart. */
export const RETRY_ENV = { RETRY_MAX: "2", RETRY_DELAY_MS: "100", RETRY_STRATEGY: "linear" };
const RETRY_DELAYS = [100, 200];

/**
 * Closes the system broker's connections named `connectionName` (as `rabbitmqctl
 * close_connection` does for an operator); resolves with how many it closed.
 */
export async function closeConnections(connectionName: string): Promise<number> {
  const run = async (args: string[]) => {
    const { code, stdout, stderr } = await new Deno.Command("rabbitmqctl", {
      args,
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (code !== 0) {
      throw new Error(`rabbitmqctl ${args[0]} failed: ${new TextDecoder().decode(stderr)}`);
    }
    return new TextDecoder().decode(stdout);
  };
  // Lines of `<pid>\t[{"connection_name","name"},...]`.
  const listing = await run([
    "list_connections",
    "pid",
    "client_properties",
    "-q",
    "--no-table-headers",
  ]);
  let closed = 0;
  for (const line of listing.split("\n")) {
    const [pid, properties] = line.split("\t");
    if (!pid || !properties?.includes(`{"connection_name","${connectionName}"}`)) continue;
    await run(["close_connection", pid, "fault injection"]);
    closed++;
  }
  return closed;
}

/** Where `scripts/cluster.sh` keeps the cluster (its TLS files are in `tls/`). */
export const CLUSTER_DIR = Deno.env.get("CLUSTER_DIR") ?? "/tmp/productionorder-cluster";

/** Runs `scripts/cluster.sh` with `args`; resolves with what it printed, throws if it failed. */
export async function cluster(...args: string[]): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command("bash", {
    args: [join(ROOT, "scripts/cluster.sh"), ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(stdout).trim();
  if (code !== 0) {
    throw new Error(`cluster.sh ${args.join(" ")} failed: ${new TextDecoder().decode(stderr)}`);
  }
  return text;
}

/** A case's deployment: names, queue type and where the broker is. */
export interface Deployment {
  readonly name: string;
  readonly urls: readonly string[];
  /** TLS files for amqps:// URLs. */
  readonly tls?: TlsFiles;
  /** A PostgreSQL ledger shared by the deployment's consumers; SQLite in `dir` when undefined. */
  readonly ledgerUrl?: string;
  readonly topo: Topology;
  readonly dir: string;
}

/** A fresh deployment with its own prefix and temporary directory. */
export async function deployment(
  name: string,
  urls: readonly string[],
  queueType: QueueType = "classic",
  ledger: "sqlite" | "postgres" = "sqlite",
): Promise<Deployment> {
  const topo = topology({
    prefix: `fault.${name}.${crypto.randomUUID().slice(0, 8)}.`,
    retryDelays: RETRY_DELAYS,
    queueType,
  });
  const dir = await Deno.makeTempDir({ prefix: `productionorder-fault-${name}-` });
  if (ledger === "sqlite") return { name, urls, topo, dir };
  const schema = `fault_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  return { name, urls, topo, dir, ledgerUrl: `${POSTGRES_URL}?search_path=${schema}` };
}

/** The environment of this deployment's services. */
export function serviceEnv(dep: Deployment, extra: Record<string, string> = {}) {
  return {
    RABBITMQ_URL: dep.urls.join(","),
    TOPOLOGY_PREFIX: dep.topo.prefix,
    QUEUE_TYPE: dep.topo.queueType,
    LEDGER_URL: dep.ledgerUrl ?? `sqlite:${join(dep.dir, "ledger.sqlite")}`,
    HTTP_ENABLED: "false",
    LOG_LEVEL: "info",
    ...RETRY_ENV,
    ...extra,
  };
}

/** Deletes the deployment's topology (through any broker that answers) and its directory. */
export async function removeDeployment(dep: Deployment): Promise<void> {
  await keepConnected(
    { urls: dep.urls, giveUpAfterMs: 30_000, connect: { tls: dep.tls ?? {} } },
    (broker) => deleteTopology(broker, dep.topo),
  ).catch((error) => console.error(`cannot delete the topology of ${dep.name}: ${error}`));
  await Deno.remove(dep.dir, { recursive: true }).catch(() => {});
  const client = clients.get(dep);
  if (client) {
    clients.delete(dep);
    const schema = new URL(dep.ledgerUrl!).searchParams.get("search_path")!;
    await client.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
    await client.end();
  }
}

const clients = new Map<Deployment, postgres.Sql>();

function client(dep: Deployment): postgres.Sql {
  let sql = clients.get(dep);
  if (!sql) {
    sql = postgres(dep.ledgerUrl!, { max: 1, onnotice: () => {} });
    clients.set(dep, sql);
  }
  return sql;
}

/** One of the entry scripts as a subprocess that can be killed and started again. */
export class Service {
  readonly #script: string;
  readonly #args: readonly string[];
  readonly #env: Record<string, string>;
  readonly #log: string;
  #child: Deno.ChildProcess | undefined;
  #exited: Promise<Deno.CommandStatus> | undefined;
  /** How many times it was started. */
  starts = 0;

  /** A service running `script` with `env`; its stderr goes to `log`. */
  constructor(script: string, args: readonly string[], env: Record<string, string>, log: string) {
    this.#script = script;
    this.#args = args;
    this.#env = env;
    this.#log = log;
  }

  /** Starts it (again). */
  start(): Promise<void> {
    // The service writes its output straight to the log file (a shell redirection, then exec),
    // never through a pipe this process must keep draining: a full pipe would freeze it.
    const command = [
      Deno.execPath(),
      "run",
      "-A",
      "--v8-flags=--max-semi-space-size=8",
      join(ROOT, this.#script),
      ...this.#args,
    ].map((arg) => `'${arg.replaceAll("'", "'\\''")}'`).join(" ");
    const child = new Deno.Command("bash", {
      args: ["-c", `exec ${command} >>'${this.#log}' 2>&1`],
      cwd: ROOT,
      env: this.#env,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    this.starts++;
    this.#child = child;
    this.#exited = child.status;
    return Promise.resolve();
  }

  /** Whether it runs. */
  get running(): boolean {
    return this.#child !== undefined;
  }

  /** Sends `signal` and waits until the process is gone. */
  async kill(signal: Deno.Signal = "SIGKILL"): Promise<Deno.CommandStatus | undefined> {
    const child = this.#child;
    if (!child) return undefined;
    try {
      child.kill(signal);
    } catch {
      // Already exited.
    }
    const status = await this.#exited;
    this.#child = undefined;
    return status;
  }

  /** Waits for it to exit by itself. */
  async exited(): Promise<Deno.CommandStatus | undefined> {
    const status = await this.#exited;
    this.#child = undefined;
    return status;
  }

  /** What it wrote so far. */
  output(): string {
    try {
      return Deno.readTextFileSync(this.#log);
    } catch {
      return "";
    }
  }
}

/** Starts OrdemDeProducao for a deployment. */
export async function startOrdem(
  dep: Deployment,
  instance = "ordem-1",
  extra: Record<string, string> = {},
): Promise<Service> {
  const service = new Service(
    "ordem_de_producao.ts",
    [],
    serviceEnv(dep, { INSTANCE_ID: instance, ...extra }),
    join(dep.dir, `${instance}.log`),
  );
  await service.start();
  return service;
}

/** What each RefCode of a load should end as. */
export type Expected = "ledger" | "dlq";

/** A mixed load: orders, the invalid bodies some of them are sent as, and where each should end. */
export interface Load {
  readonly orders: Order[];
  readonly invalidBodies: Map<string, Uint8Array>;
  readonly expected: Map<string, Expected>;
  /** How many should end in the ledger. */
  readonly valid: number;
}

const INVALID_BODIES: ((order: Order) => string)[] = [
  (o) => `{"RefCode":"${o.refCode}",`,
  () => "[]",
  () => "42",
  (o) =>
    JSON.stringify({
      RefCode: o.refCode,
      ColorCode: o.colorCode,
      Quantity: "many",
      EventType: "CREATE",
    }),
  (o) => JSON.stringify({ RefCode: o.refCode, Quantity: 3, EventType: "CREATE" }),
  (o) =>
    JSON.stringify({
      RefCode: o.refCode,
      ColorCode: o.colorCode,
      Quantity: 3,
      EventType: "DELETE",
    }),
  (o) =>
    JSON.stringify({
      RefCode: "not-a-uuid",
      ColorCode: o.colorCode,
      Quantity: 3,
      EventType: "CREATE",
    }),
];

/**
 * `total` orders: `overLimit` share above the quantity limit (retried, then dead-lettered),
 * `invalid` share with a malformed body (dead-lettered at once), the rest valid.
 */
export function makeLoad(total: number, overLimit: number, invalid: number): Load {
  const orders: Order[] = [];
  const invalidBodies = new Map<string, Uint8Array>();
  const expected = new Map<string, Expected>();
  const encoder = new TextEncoder();
  for (let i = 0; i < total; i++) {
    const roll = (i * 7919) % 100 / 100; // an even spread of kinds along the run
    const over = roll < overLimit;
    const bad = !over && roll < overLimit + invalid;
    const order = newOrder({ quantity: over ? 501 + (i % 500) : 1 + (i % 500) });
    orders.push(order);
    if (bad) {
      invalidBodies.set(
        order.refCode,
        encoder.encode(INVALID_BODIES[i % INVALID_BODIES.length]!(order)),
      );
    }
    expected.set(order.refCode, over || bad ? "dlq" : "ledger");
  }
  const valid = [...expected.values()].filter((e) => e === "ledger").length;
  return { orders, invalidBodies, expected, valid };
}

/** Publishes a load at `rate` per second with Estoque's reconnecting publisher. */
export async function publishLoad(
  dep: Deployment,
  load: Load,
  rate: number,
  onConfirmed?: () => void,
): Promise<{ confirmed: number; resent: number }> {
  const feed = new OrderFeed({ count: load.orders.length, makeOrder: (i) => load.orders[i]! });
  await keepConnected(
    { urls: dep.urls, connect: { name: `fault ${dep.name} estoque` } },
    async (broker) => {
      const publisher = new ConfirmedPublisher(await broker.confirmChannel(), {
        timeoutMs: 5_000,
        connection: broker,
      });
      const done = await publishFeed({
        publisher,
        topology: dep.topo,
        feed,
        rate,
        window: 2_000,
        encode: (order) => load.invalidBodies.get(order.refCode) ?? encodeOrder(order),
        onConfirmed,
      });
      if (!done) throw new ConnectionLost("publishes to send again");
    },
  );
  const summary = feed.summary();
  assert.equal(summary.confirmed, load.orders.length, "every order of the load was confirmed");
  return { confirmed: summary.confirmed, resent: summary.resent };
}

/** Reads the production orders while the services may still write them. */
export async function ledgerRows(
  dep: Deployment,
): Promise<Map<string, { instance: string; attempt: number }>> {
  if (dep.ledgerUrl) {
    const rows = await client(dep)`
      SELECT ref_code, instance_id, attempt FROM production_orders`.catch(() => []);
    return new Map(rows.map((r) => [
      String(r.ref_code),
      { instance: String(r.instance_id), attempt: Number(r.attempt) },
    ]));
  }
  return sqliteRows(dep);
}

function sqliteRows(dep: Deployment): Map<string, { instance: string; attempt: number }> {
  const path = join(dep.dir, "ledger.sqlite");
  const rows = new Map<string, { instance: string; attempt: number }>();
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(path, { readOnly: true });
  } catch {
    return rows;
  }
  try {
    db.exec("PRAGMA busy_timeout = 5000");
    const all = db.prepare("SELECT ref_code, instance_id, attempt FROM production_orders").all();
    for (const row of all) {
      rows.set(String(row.ref_code), {
        instance: String(row.instance_id),
        attempt: Number(row.attempt),
      });
    }
  } catch {
    // The service has not created the tables yet.
  } finally {
    db.close();
  }
  return rows;
}

/** Counts production orders as they are made, to measure how long a fault stalls processing. */
export class ProgressWatch {
  readonly #dep: Deployment;
  readonly #timer: ReturnType<typeof setInterval>;
  /** [time, ledger rows] samples, `performance.now()` based. */
  readonly samples: [number, number][] = [];

  #busy = false;

  /** Samples the ledger of `dep` every 50 ms. */
  constructor(dep: Deployment) {
    this.#dep = dep;
    this.#timer = setInterval(() => {
      if (this.#busy) return;
      this.#busy = true;
      this.sample().finally(() => (this.#busy = false));
    }, 50);
  }

  /** Takes one sample now. */
  async sample(): Promise<number> {
    const count = await countRows(this.#dep);
    this.samples.push([performance.now(), count]);
    return count;
  }

  /** The rows counted last. */
  get count(): number {
    return this.samples.at(-1)?.[1] ?? 0;
  }

  /** Resolves once at least `rows` production orders exist; rejects after `timeoutMs`. */
  async until(rows: number, timeoutMs = 60_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (await this.sample() < rows) {
      if (performance.now() > deadline) {
        throw new Error(`timed out after ${timeoutMs} ms: ${this.count}/${rows} production orders`);
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /**
   * How long processing stalled after a fault at `at`: the longest time, from `at` until the
   * ledger held `total` rows (or until `before`, the next fault), in which it did not grow, in
   * milliseconds (undefined when it was already complete at `at`).
   */
  stallAfter(at: number, total: number, before = Infinity): number | undefined {
    let since = at;
    let last = this.samples.filter(([t]) => t <= at).at(-1)?.[1] ?? 0;
    if (last >= total) return undefined;
    let longest = 0;
    for (const [t, n] of this.samples) {
      if (t <= at || n <= last) continue;
      if (t > before) break;
      longest = Math.max(longest, t - since);
      since = t;
      last = n;
      if (n >= total) break;
    }
    return longest;
  }

  /** Stops sampling. */
  stop(): void {
    clearInterval(this.#timer);
  }
}

async function countRows(dep: Deployment): Promise<number> {
  if (dep.ledgerUrl) {
    const [row] = await client(dep)`SELECT count(*)::bigint AS n FROM production_orders`
      .catch(() => []);
    return Number(row?.n ?? 0);
  }
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(join(dep.dir, "ledger.sqlite"), { readOnly: true });
  } catch {
    return 0;
  }
  try {
    db.exec("PRAGMA busy_timeout = 5000");
    return Number(db.prepare("SELECT COUNT(*) AS n FROM production_orders").get()?.n ?? 0);
  } catch {
    return 0;
  } finally {
    db.close();
  }
}

/** A dead letter as the accounting sees it. */
interface DeadLetter {
  readonly refCode: string;
  readonly reason: string;
  readonly retries: unknown;
}

/** Takes every message out of the DLQ. */
async function drainDeadLetters(broker: Broker, queue: string): Promise<DeadLetter[]> {
  const channel = await broker.channel();
  const letters: DeadLetter[] = [];
  try {
    while (true) {
      const message = await channel.get(queue, { noAck: true });
      if (!message) break;
      const reason = message.properties.headers?.[HEADER.reason];
      letters.push({
        refCode: String(message.properties.messageId),
        reason: typeof reason === "string" ? reason : String(reason),
        retries: message.properties.headers?.[HEADER.retryCount],
      });
    }
  } finally {
    await channel.close().catch(() => {});
  }
  return letters;
}

/** Waits until every order of `load` has ended somewhere and nothing is left in flight. */
export async function waitSettled(
  dep: Deployment,
  load: Load,
  watch: ProgressWatch,
  options: { timeoutMs?: number; onStall?: () => Promise<void> } = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  let lastChange = performance.now();
  let lastState = "";
  let stallHandled = false;
  const { valid } = load;
  const dead = load.expected.size - valid;
  await watch.until(valid, timeoutMs);
  const deadline = performance.now() + timeoutMs;
  await keepConnected({ urls: dep.urls, giveUpAfterMs: timeoutMs }, async (broker) => {
    while (true) {
      const work = await broker.messageCount(dep.topo.queue);
      let tiers = 0;
      for (const tier of dep.topo.retryTiers) tiers += await broker.messageCount(tier.queue);
      const letters = await broker.messageCount(dep.topo.deadLetterQueue);
      if (work === 0 && tiers === 0 && letters >= dead) return;
      const state = `${work}/${tiers}/${letters}`;
      if (state !== lastState) {
        lastState = state;
        lastChange = performance.now();
      } else if (options.onStall && !stallHandled && performance.now() - lastChange > 15_000) {
        stallHandled = true;
        await options.onStall();
      }
      if (performance.now() > deadline) {
        throw new Error(
          `timed out: ${work} in the work queue, ${tiers} in retry tiers, ${letters}/${dead} dead letters`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  });
}

/** What a case's accounting found. */
export interface Accounting {
  readonly orders: number;
  readonly inLedger: number;
  readonly inDlq: number;
  readonly duplicateDeadLetters: number;
  readonly byInstance: Record<string, number>;
}

/**
 * The accounting every case ends with: every RefCode in exactly one of the ledger and the DLQ,
 * the one where it belongs, none lost, no duplicate production order (the ledger's primary key),
 * each dead letter with the reason it deserves; extra copies of one dead letter are counted.
 * Consumes the DLQ.
 */
export async function account(dep: Deployment, load: Load): Promise<Accounting> {
  const rows = await ledgerRows(dep);
  const letters = await keepConnected(
    { urls: dep.urls, giveUpAfterMs: 30_000 },
    (broker) => drainDeadLetters(broker, dep.topo.deadLetterQueue),
  );
  const lettersByRef = new Map<string, DeadLetter[]>();
  for (const letter of letters) {
    const list = lettersByRef.get(letter.refCode) ?? [];
    list.push(letter);
    lettersByRef.set(letter.refCode, list);
  }
  const lost: string[] = [];
  const both: string[] = [];
  const misplaced: string[] = [];
  const wrongReason: string[] = [];
  for (const [refCode, expected] of load.expected) {
    const inLedger = rows.has(refCode);
    const dead = lettersByRef.get(refCode);
    if (!inLedger && !dead) lost.push(refCode);
    if (inLedger && dead) both.push(refCode);
    if ((expected === "ledger") !== inLedger) misplaced.push(refCode);
    const reason = load.invalidBodies.has(refCode) ? "invalid" : "exhausted";
    if (dead && dead.some((l) => l.reason !== reason)) {
      wrongReason.push(`${refCode}: ${dead.map((l) => l.reason).join(",")} (want ${reason})`);
    }
  }
  const strangers = [...rows.keys(), ...lettersByRef.keys()].filter((r) => !load.expected.has(r));
  const duplicates = [...lettersByRef.values()].filter((list) => list.length > 1);
  const byInstance: Record<string, number> = {};
  for (const { instance } of rows.values()) byInstance[instance] = (byInstance[instance] ?? 0) + 1;
  const sample = (list: string[]) => list.slice(0, 5).join("; ");
  assert.deepEqual(lost.length, 0, `lost: ${lost.length} (${sample(lost)})`);
  assert.deepEqual(both.length, 0, `in the ledger and the DLQ: ${sample(both)}`);
  assert.deepEqual(misplaced.length, 0, `in the wrong place: ${sample(misplaced)}`);
  assert.deepEqual(wrongReason.length, 0, `wrong dead-letter reason: ${sample(wrongReason)}`);
  assert.deepEqual(strangers.length, 0, `unknown RefCodes: ${sample(strangers)}`);
  // Dead letters are delivered at least once: a consumer killed after the broker took a dead
  // letter but before it recorded that fact sends it again when the original comes back. Such
  // copies must be the same dead letter (same reason, same retry count), and are reported.
  const unlike = duplicates.filter((list) =>
    list.some((l) => l.reason !== list[0]!.reason || l.retries !== list[0]!.retries)
  );
  assert.equal(unlike.length, 0, `different dead letters for one RefCode: ${unlike.length}`);
  return {
    orders: load.expected.size,
    inLedger: rows.size,
    inDlq: lettersByRef.size,
    duplicateDeadLetters: letters.length - lettersByRef.size,
    byInstance,
  };
}

/** One line of the report the suite prints at the end. */
export interface CaseReport {
  readonly name: string;
  readonly accounting: Accounting;
  /** Each fault and how long processing stalled after it, in milliseconds. */
  readonly outages: { fault: string; ms: number | undefined }[];
  readonly resent: number;
}

/** The table the suite prints, and docs/guarantees.md quotes. */
export function formatReport(reports: readonly CaseReport[]): string {
  const lines = [
    "| case | orders | production orders | dead letters | lost | duplicate orders | extra DLQ copies | fault: processing stalled for |",
    "| ---- | -----: | ----------------: | -----------: | ---: | ---------------: | ---------------: | ----------------------------- |",
  ];
  for (const r of reports) {
    const outages = r.outages.map((o) =>
      o.ms === undefined ? o.fault : `${o.fault}: ${(o.ms / 1000).toFixed(2)} s`
    ).join("; ");
    lines.push(
      `| ${r.name} | ${r.accounting.orders} | ${r.accounting.inLedger} | ${r.accounting.inDlq} | 0 | 0 | ${r.accounting.duplicateDeadLetters} | ${outages} |`,
    );
  }
  return lines.join("\n");
}

/** Copies a failed case's service log where it survives the clean-up, and says where. */
export function keepLog(service: Service): void {
  const path = Deno.makeTempFileSync({ prefix: "productionorder-fault-", suffix: ".log" });
  Deno.writeTextFileSync(path, service.output());
  console.error(`the service's log is kept in ${path}`);
}

/**
 * Runs a case's body with a {@linkcode ProgressWatch} on its ledger; then, whatever happened,
 * kills its services (keeping their logs if it failed), runs `cleanup` and removes the deployment.
 */
export async function runCase(
  dep: Deployment,
  services: readonly Service[],
  body: (watch: ProgressWatch) => Promise<void>,
  cleanup?: () => Promise<void>,
): Promise<void> {
  const watch = new ProgressWatch(dep);
  try {
    await body(watch);
  } catch (error) {
    for (const service of services) keepLog(service);
    throw error;
  } finally {
    watch.stop();
    for (const service of services) await service.kill();
    await cleanup?.();
    await removeDeployment(dep);
  }
}
