/**
 * What the outbox cases (faults/outbox.ts) run on: a deployment whose OrdemDeProducao keeps its
 * ledger in PostgreSQL (the machine's, a schema of its own), Estoque's stock store (PostgreSQL, the
 * machine's or a scratch one, or a SQLite file) with the case's colours set up, and Estoque's real
 * entry points as processes that can be kill -9'd: `estoque serve` (the stock API and the relay),
 * `estoque serve --no-relay` and `estoque relay`. It reads back what the stores committed: the
 * movements' history, the outbox and the ledger's RefCodes.
 *
 * @module
 */

import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { openStockStore } from "../lib/open_stock_store.ts";
import type { StockItemSettings, StockStore } from "../lib/stock_store.ts";
import { POSTGRES_URL, waitFor } from "../testing/broker.ts";
import { dropSchema, freePort, postgresClient } from "../testing/postgres.ts";
import {
  connectionsNamed,
  DEFAULT_BROKER,
  managementRequest,
  otherBroker,
} from "../testing/other_brokers.ts";
import { metric } from "../testing/scrape.ts";
import { BROKER_LINE, LOCAL_URL } from "./_brokers.ts";
import {
  type Deployment,
  deployment,
  removeDeployment,
  Service,
  serviceEnv,
  startOrdem,
} from "./_deployment.ts";

/** Where a case keeps Estoque's stock. */
export type StockKind = "postgres" | "sqlite";

/** A colour's reorder point: low, so that movements cross it often. */
export const REORDER_POINT = 5;

/** What a crossing asks production for (within OrdemDeProducao's quantity limit). */
export const REORDER_QUANTITY = 10;

/** A case's world: its deployment, its stock store, and OrdemDeProducao. */
export interface OutboxRig {
  readonly dep: Deployment;
  /** `STOCK_URL` of its Estoque processes. */
  readonly stockUrl: string;
  /** The stock store's kind. */
  readonly kind: StockKind;
  /** The store as the suite opened it, to set the items up and read the outbox back. */
  readonly store: StockStore;
  /** The colours, as they were set up. */
  readonly items: readonly StockItemSettings[];
  /** OrdemDeProducao, consuming into the ledger; its metrics on `ordemPort`. */
  readonly ordem: Service;
  readonly ordemPort: number;
}

/** Options for {@linkcode outboxRig}. */
export interface RigOptions {
  /** The stock store's kind. */
  readonly kind: StockKind;
  /** The PostgreSQL of the stock store (a scratch one, for a case that stops it). */
  readonly postgresUrl?: string;
  /** How many colours. @default {12} */
  readonly colors?: number;
}

/**
 * Makes a case's world: a deployment with a PostgreSQL ledger, the stock store with `colors`
 * colours just above their reorder point, and OrdemDeProducao started (its metrics served).
 */
export async function outboxRig(name: string, options: RigOptions): Promise<OutboxRig> {
  const dep = await deployment(name, [LOCAL_URL], "classic", "postgres");
  const schema = `outbox_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  const stockUrl = options.kind === "sqlite"
    ? `sqlite:${join(dep.dir, "stock.sqlite")}`
    : `${options.postgresUrl ?? POSTGRES_URL}?search_path=${schema}`;
  let store: StockStore | undefined;
  try {
    store = await openStockStore(stockUrl);
    const items: StockItemSettings[] = [];
    for (let i = 0; i < (options.colors ?? 12); i++) {
      const item = {
        color: crypto.randomUUID(),
        quantity: REORDER_POINT + 3,
        reorderPoint: REORDER_POINT,
        reorderQuantity: REORDER_QUANTITY,
      };
      await store.setItem(item);
      items.push(item);
    }
    const ordemPort = freePort();
    const ordem = await startOrdem(dep, "ordem-1", {
      HTTP_ENABLED: "true",
      HTTP_PORT: String(ordemPort),
      HTTP_HOST: "127.0.0.1",
    });
    try {
      await waitFor("OrdemDeProducao ready", async () => {
        if (!ordem.running) throw new Error("it exited");
        return await isReady(ordemPort) || undefined;
      }, 60_000);
    } catch (error) {
      await ordem.kill();
      throw new Error(
        `OrdemDeProducao did not get ready (${(error as Error).message}): ${
          ordem.output().slice(-1_500)
        }`,
      );
    }
    return { dep, stockUrl, kind: options.kind, store, items, ordem, ordemPort };
  } catch (error) {
    await store?.close().catch(() => {});
    if (options.kind === "postgres") await dropSchema(stockUrl, schema).catch(() => {});
    await removeDeployment(dep);
    throw error;
  }
}

/** Closes the suite's store and drops the stock schema (the deployment is removed by runCase). */
export async function removeRig(rig: OutboxRig): Promise<void> {
  await rig.store.close().catch(() => {});
  if (rig.kind === "postgres") {
    const schema = new URL(rig.stockUrl).searchParams.get("search_path")!;
    await dropSchema(rig.stockUrl, schema).catch(() => {});
  }
}

/** Which of Estoque's stock entry points a process runs. */
export type EstoqueRole = "serve" | "api" | "relay";

/** An Estoque process of the rig: its service, and the port of its HTTP endpoint. */
export interface EstoqueProcess {
  readonly service: Service;
  readonly port: number;
  /** Its relay's broker connection, as the broker names it (undefined for `api`). */
  readonly connectionName: string | undefined;
}

/**
 * An Estoque process of the rig, not started: `serve` (the stock API and the relay), `api`
 * (`serve --no-relay`) or `relay` (`estoque relay`), with `env` over the deployment's; its HTTP
 * endpoint on a port of its own, so that it comes back on the same one when started again.
 */
export function estoqueProcess(
  rig: OutboxRig,
  role: EstoqueRole,
  instance: string,
  env: Record<string, string> = {},
): EstoqueProcess {
  const port = freePort();
  const args = role === "relay" ? ["relay"] : role === "api" ? ["serve", "--no-relay"] : ["serve"];
  const service = new Service(
    "estoque.ts",
    [...args, "--http-port", String(port), "--http-host", "127.0.0.1"],
    serviceEnv(rig.dep, { STOCK_URL: rig.stockUrl, INSTANCE_ID: instance, ...env }),
    join(rig.dep.dir, `${instance}.log`),
  );
  const connectionName = role === "api" ? undefined : `estoque relay ${instance}`;
  return { service, port, connectionName };
}

/** Whether the HTTP endpoint on `port` answers its `/readyz` with ready. */
async function isReady(port: number): Promise<boolean> {
  const answer = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
  await answer?.body?.cancel();
  return answer?.ok ?? false;
}

/** Resolves once `process`'s `/readyz` says ready (the store answering; the relay publishing). */
export function ready(process: EstoqueProcess, timeoutMs = 30_000): Promise<true> {
  return waitFor(`${process.service.starts > 1 ? "restarted " : ""}estoque ready`, async () => {
    if (!process.service.running) {
      throw new Error(`estoque exited: ${process.service.output().slice(-1_500)}`);
    }
    return await isReady(process.port) || undefined;
  }, timeoutMs);
}

/** Starts `process` and waits until it is ready. */
export async function startReady(process: EstoqueProcess): Promise<void> {
  await process.service.start();
  await ready(process);
}

/** How often `service` logged a line whose `msg` is `msg` (logfmt, lib/log.ts). */
export function logged(service: Service, msg: string): number {
  const quoted = msg.includes(" ") ? `msg="${msg}"` : `msg=${msg}`;
  return service.output().split("\n").filter((line) => line.includes(quoted)).length;
}

/** The line's single node (as faults/_brokers.ts picks it), for its management API. */
const NODE = BROKER_LINE === "3.10"
  ? DEFAULT_BROKER
  : otherBroker(BROKER_LINE === "4.0" ? "4_0" : "4_3");

/**
 * The management API's names of the open connections the client named `connectionName`, other
 * than those in `closed`, once it lists one (it lists a new connection up to its statistics
 * interval late, so a case looks it up before the moment it closes it).
 */
export async function connectionsOf(
  connectionName: string,
  closed: ReadonlySet<string>,
  timeoutMs = 30_000,
): Promise<string[]> {
  return await waitFor(`a connection named ${connectionName}`, async () => {
    const names = await connectionsNamed(NODE, connectionName, timeoutMs);
    const open = names.filter((name) => !closed.has(name));
    return open.length > 0 ? open : undefined;
  }, timeoutMs);
}

/** Closes a connection from the broker's side, as an operator would; false if it was gone. */
export async function closeConnection(name: string): Promise<boolean> {
  return await managementRequest(
    NODE,
    "DELETE",
    `connections/${encodeURIComponent(name)}`,
    undefined,
    { "x-reason": "closed by the fault suite" },
  ).then(() => true, (error: { status?: number }) => {
    if (error.status === 404) return false;
    throw error;
  });
}

/** A movement of the history, as the store committed it. */
export interface HistoryRow {
  readonly id: number;
  readonly color: string;
  readonly delta: number;
  readonly quantityAfter: number;
  readonly refCode: string | null;
  readonly key: string | null;
}

const HISTORY_SQL = "SELECT id, color, delta, quantity_after, ref_code, idempotency_key " +
  "FROM stock_movements ORDER BY id";

/** The movements' history the stock store committed, in id order. */
export async function historyOf(rig: OutboxRig): Promise<HistoryRow[]> {
  let rows: Record<string, unknown>[];
  if (rig.kind === "sqlite") {
    const db = new DatabaseSync(rig.stockUrl.slice("sqlite:".length), { readOnly: true });
    try {
      rows = db.prepare(HISTORY_SQL).all() as Record<string, unknown>[];
    } finally {
      db.close();
    }
  } else {
    const schema = new URL(rig.stockUrl).searchParams.get("search_path")!;
    await using client = await postgresClient(rig.stockUrl);
    rows = (await client.query(HISTORY_SQL.replace("stock_movements", `${schema}.stock_movements`)))
      .rows;
  }
  return rows.map((row) => ({
    id: Number(row.id),
    color: String(row.color),
    delta: Number(row.delta),
    quantityAfter: Number(row.quantity_after),
    refCode: (row.ref_code as string | null) ?? null,
    key: (row.idempotency_key as string | null) ?? null,
  }));
}

/** The RefCodes of every production order in the deployment's ledger, one entry per row. */
export async function ledgerRefCodes(rig: OutboxRig): Promise<string[]> {
  const url = rig.dep.ledgerUrl!;
  const schema = new URL(url).searchParams.get("search_path")!;
  await using client = await postgresClient(url);
  const { rows } = await client.query(`SELECT ref_code FROM ${schema}.production_orders`);
  return rows.map((row: { ref_code: string }) => row.ref_code);
}

/** A counter of OrdemDeProducao's metrics (summed over its labels), e.g. its duplicates. */
export function ordemCounter(rig: OutboxRig, name: string): Promise<number> {
  return metric(rig.ordemPort, name);
}
