/**
 * A fault case's deployment (its own prefix, ledger and directory) and its services as real
 * subprocesses that can be `kill -9`'d and started again.
 *
 * @module
 */

import { join } from "node:path";
import type { TlsFiles } from "../lib/broker.ts";
import { keepConnected } from "../lib/reconnect.ts";
import { type QueueType, type Topology, topology } from "../lib/topology.ts";
import { deleteTopology } from "../lib/declare_topology.ts";
import { POSTGRES_URL } from "../testing/broker.ts";
import { dropSchema } from "../testing/postgres.ts";
import { serviceV8Flags } from "../testing/service_flags.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** The retry settings every case runs with: two retries, 100 and 200 ms apart. */
export const RETRY_ENV = { RETRY_MAX: "2", RETRY_DELAY_MS: "100", RETRY_STRATEGY: "linear" };
const RETRY_DELAYS = [100, 200];

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
  /** The network namespace its services run in (the partition cases); this one's when undefined. */
  readonly netns?: string;
}

/** A fresh deployment with its own prefix and temporary directory. */
export async function deployment(
  name: string,
  urls: readonly string[],
  queueType: QueueType = "classic",
  ledger: "sqlite" | "postgres" = "sqlite",
  postgresUrl = POSTGRES_URL,
): Promise<Deployment> {
  const topo = topology({
    prefix: `fault.${name}.${crypto.randomUUID().slice(0, 8)}.`,
    retryDelays: RETRY_DELAYS,
    queueType,
    // On every broker line: RabbitMQ 4.3 has no delayed-message plugin.
    backend: "ttl",
  });
  const dir = await Deno.makeTempDir({ prefix: `productionorder-fault-${name}-` });
  if (ledger === "sqlite") return { name, urls, topo, dir };
  const schema = `fault_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  return { name, urls, topo, dir, ledgerUrl: `${postgresUrl}?search_path=${schema}` };
}

/** Where the deployment's production orders are: its PostgreSQL schema, or a SQLite file. */
export function ledgerUrlOf(dep: Deployment): string {
  return dep.ledgerUrl ?? `sqlite:${join(dep.dir, "ledger.sqlite")}`;
}

/** The environment of this deployment's services. */
export function serviceEnv(dep: Deployment, extra: Record<string, string> = {}) {
  return {
    RABBITMQ_URL: dep.urls.join(","),
    TOPOLOGY_PREFIX: dep.topo.prefix,
    QUEUE_TYPE: dep.topo.queueType,
    // The backend the deployment's topology is built for, whatever the suite's own env says.
    RETRY_BACKEND: dep.topo.backend,
    LEDGER_URL: ledgerUrlOf(dep),
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
  if (dep.ledgerUrl !== undefined) {
    const schema = new URL(dep.ledgerUrl).searchParams.get("search_path")!;
    await dropSchema(dep.ledgerUrl, schema).catch(() => {});
  }
}

/** One of the entry scripts as a subprocess that can be killed and started again. */
export class Service {
  readonly #script: string;
  readonly #args: readonly string[];
  readonly #env: Record<string, string>;
  readonly #log: string;
  readonly #netns: string | undefined;
  #child: Deno.ChildProcess | undefined;
  #exited: Promise<Deno.CommandStatus> | undefined;
  /** Whether the process started last has exited by itself (killed or crashed). */
  #ended = false;
  /** How many times it was started. */
  starts = 0;

  /**
   * A service running `script` with `env`; its stderr goes to `log`. With `netns` it runs in that
   * network namespace (`ip netns exec`, which execs: the process is still the service's).
   */
  constructor(
    script: string,
    args: readonly string[],
    env: Record<string, string>,
    log: string,
    netns?: string,
  ) {
    this.#script = script;
    this.#args = args;
    this.#env = env;
    this.#log = log;
    this.#netns = netns;
  }

  /** Starts it (again). */
  start(): Promise<void> {
    // The service writes its output straight to the log file (a shell redirection, then exec),
    // never through a pipe this process must keep draining: a full pipe would freeze it.
    const command = [
      Deno.execPath(),
      "run",
      "-A",
      `--v8-flags=${serviceV8Flags().join(",")}`,
      join(ROOT, this.#script),
      ...this.#args,
    ].map((arg) => `'${arg.replaceAll("'", "'\\''")}'`).join(" ");
    const shell = ["bash", "-c", `exec ${command} >>'${this.#log}' 2>&1`];
    const [program, ...args] = this.#netns === undefined
      ? shell
      : ["ip", "netns", "exec", this.#netns, ...shell];
    const child = new Deno.Command(program!, {
      args,
      cwd: ROOT,
      env: this.#env,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    this.starts++;
    this.#child = child;
    this.#exited = child.status;
    this.#ended = false;
    child.status.then(() => {
      if (this.#child === child) this.#ended = true;
    });
    return Promise.resolve();
  }

  /** Whether it runs: started, and neither killed nor exited since. */
  get running(): boolean {
    return this.#child !== undefined && !this.#ended;
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
    dep.netns,
  );
  await service.start();
  return service;
}

/** Copies a failed case's service log where it survives the clean-up, and says where. */
export function keepLog(service: Service): void {
  const path = Deno.makeTempFileSync({ prefix: "productionorder-fault-", suffix: ".log" });
  Deno.writeTextFileSync(path, service.output());
  console.error(`the service's log is kept in ${path}`);
}
