/**
 * The processes the console's suites run: OrdemDeProducao and the console on a test's topology,
 * with the fast retry policy of {@linkcode FAST_RETRY} (what `fastPolicy(2, 100)` declares), and
 * calls to the console's JSON API.
 *
 * @module
 */

import { join } from "node:path";
import type { BrokerContext } from "./broker.ts";
import { ourService, type Peer } from "./process.ts";

/** The environment of `fastPolicy(2, 100)`: two retries, 100 ms apart. */
export const FAST_RETRY: Readonly<Record<string, string>> = {
  RETRY_MAX: "2",
  RETRY_DELAY_MS: "100",
};

/** How {@linkcode ordem} runs OrdemDeProducao. */
export interface OrdemOptions {
  /** LEDGER_PATH. */
  readonly ledgerPath: string;
  /** HTTP_PORT: /metrics, /readyz. */
  readonly port: number;
  /** INSTANCE_ID, also in the process's name; unset, the service picks one. */
  readonly id?: string;
  readonly args?: readonly string[];
  /** Added to the environment, over the rest. */
  readonly env?: Readonly<Record<string, string>>;
}

/** OrdemDeProducao on the test's topology with {@linkcode FAST_RETRY}, started. */
export function ordem(ctx: BrokerContext, options: OrdemOptions): Peer {
  const { id } = options;
  return ourService(
    id === undefined ? "OrdemDeProducao" : `OrdemDeProducao ${id}`,
    "ordem_de_producao.ts",
    options.args ?? [],
    {
      ...FAST_RETRY,
      TOPOLOGY_PREFIX: ctx.topo.prefix,
      LEDGER_PATH: options.ledgerPath,
      HTTP_PORT: String(options.port),
      ...(id === undefined ? {} : { INSTANCE_ID: id }),
      ...options.env,
    },
  );
}

/** {@linkcode ordem}, once it says it is ready. */
export async function startOrdem(ctx: BrokerContext, options: OrdemOptions): Promise<Peer> {
  const peer = ordem(ctx, options);
  await peer.until("ready", /msg=ready/);
  return peer;
}

/** How {@linkcode startConsole} runs the console. */
export interface ConsoleOptions {
  /** The OrdemDeProducao whose /metrics it reads; unset, a port nothing answers on. */
  readonly metricsPort?: number;
  readonly args?: readonly string[];
  /** Added to the environment, over the rest. */
  readonly env?: Readonly<Record<string, string>>;
}

/** A running console and the URL it serves. */
export interface RunningConsole {
  readonly peer: Peer;
  readonly url: string;
}

/**
 * The console on a free port and the test's topology, reading the ledger `dir/ledger.sqlite`,
 * archiving to `dir/archive` and auditing to `dir/audit.jsonl`; its URL once it listens.
 */
export async function startConsole(
  ctx: BrokerContext,
  dir: string,
  options: ConsoleOptions = {},
): Promise<RunningConsole> {
  const peer = ourService("console", "console.ts", options.args ?? [], {
    TOPOLOGY_PREFIX: ctx.topo.prefix,
    CONSOLE_PORT: "0",
    LEDGER_URL: `sqlite:${join(dir, "ledger.sqlite")}`,
    CONSOLE_METRICS_URLS: `http://127.0.0.1:${options.metricsPort ?? 9}/metrics`,
    DLQ_ARCHIVE_DIR: join(dir, "archive"),
    DLQ_AUDIT_LOG: join(dir, "audit.jsonl"),
    ...options.env,
  });
  const [line] = await peer.until("listening", /^console: http:\/\/\S+\//);
  return { peer, url: line!.slice("console: ".length).trim() };
}

/** The `authorization` header of HTTP Basic for `user`. */
export const basic = (user: string, password: string): Record<string, string> => ({
  authorization: `Basic ${btoa(`${user}:${password}`)}`,
});

/**
 * Calls the console's API at `path` with `headers`: a GET, or with a `body` (a string as it is,
 * anything else as JSON) a POST; `extra` headers go last. Resolves with the status and the JSON.
 */
export async function call(
  url: string,
  path: string,
  headers: Record<string, string>,
  body?: unknown,
  extra: Record<string, string> = {},
): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${url}${path.replace(/^\//, "")}`, {
    method: body === undefined ? "GET" : "POST",
    headers: {
      ...headers,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
      ...extra,
    },
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
  });
  return { status: response.status, json: await response.json() };
}
