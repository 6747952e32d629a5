/**
 * `deno task console`: with its options read (console_config.ts), wires the console's parts (a broker connection
 * made again when lost, the ledger read without writing, Estoque's outbox read without writing when
 * a stock store is given, the dead-letter index, the overview, the actions) and serves them until
 * SIGINT/SIGTERM.
 *
 * @module
 */

import type { Broker } from "../broker.ts";
import type { LedgerReader } from "../ledger.ts";
import { logger, setupLogging } from "../log.ts";
import { EXIT } from "../main.ts";
import { ManagementClient } from "../management.ts";
import { OutboxReader } from "../outbox_check.ts";
import { openLedgerReader } from "../open_ledger.ts";
import { changeConnections } from "../control_store.ts";
import { connectFirst } from "../reconnect.ts";
import { DeadLetterActions } from "./actions.ts";
import { FleetControl } from "./control.ts";
import { FlowHistory } from "./history.ts";
import type { ConsoleConfig } from "./console_config.ts";
import { DeadLetterIndex, TakeTurns } from "./dead_letter_index.ts";
import { OverviewSampler } from "./overview.ts";
import { serveConsole } from "./server.ts";

const log = logger("console");

/** One broker connection, made when first needed and again after it is lost. */
function brokerLink(connect: () => Promise<Broker>): {
  get: () => Promise<Broker>;
  close: () => Promise<void>;
} {
  let current: Promise<Broker> | undefined;
  const get = async (): Promise<Broker> => {
    const pending = current;
    if (pending !== undefined) {
      const broker = await pending.catch(() => undefined);
      if (broker?.isOpen) return broker;
      if (current === pending) current = undefined;
    }
    current ??= connect();
    const mine = current;
    try {
      return await mine;
    } catch (error) {
      if (current === mine) current = undefined;
      throw error;
    }
  };
  const close = async () => {
    const broker = await current?.catch(() => undefined);
    await broker?.close().catch(() => {});
  };
  return { get, close };
}

/** The ledger reader, opened when first needed (the service may create the file later). */
function ledgerLink(url: string): {
  get: () => Promise<LedgerReader | undefined>;
  close: () => Promise<void>;
} {
  let reader: Promise<LedgerReader | undefined> | undefined;
  return {
    get: () => {
      reader ??= openLedgerReader(url).catch((error) => {
        reader = undefined;
        throw error;
      });
      return reader;
    },
    close: async () => {
      const open = await reader?.catch(() => undefined);
      await open?.close().catch(() => {});
    },
  };
}

/** A broker URL's host and port only: the page never sees a login. */
function brokerHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return "the broker";
  }
}

/** Runs the console until `signal` aborts. */
export async function runConsole(config: ConsoleConfig, signal: AbortSignal): Promise<number> {
  const { urls, tls, topology: topo, logLevel } = config.common;
  setupLogging({ level: logLevel });
  const { hostname, gate } = config;
  const management = config.management === undefined
    ? undefined
    : new ManagementClient(config.management.url, config.management.vhost);

  const broker = brokerLink(async () =>
    (await connectFirst(urls, { name: "console", tls })).broker
  );
  const ledger = ledgerLink(config.ledgerUrl);
  const turns = new TakeTurns();
  const index = new DeadLetterIndex({
    broker: broker.get,
    topology: topo,
    maxAgeMs: config.indexMaxAgeMs,
    turns,
  });
  const actions = new DeadLetterActions({
    broker: broker.get,
    topology: topo,
    index,
    turns,
    auditLog: config.auditLog,
    archiveDir: config.archiveDir,
  });
  const control = new FleetControl({
    broker: broker.get,
    topology: topo,
    auditLog: config.auditLog,
    connect: changeConnections(urls, { name: "console change", tls }),
  });
  // Read only, as the doctor reads it; a short timeout, so an unreachable store slows no overview.
  const stock = config.stockUrl === undefined
    ? undefined
    : new OutboxReader(config.stockUrl, { applicationName: "console", timeoutMs: 2_000 });
  const overview = new OverviewSampler({
    broker: broker.get,
    topology: topo,
    metricsUrls: config.metricsUrls,
    management,
    ledger: ledger.get,
    pause: () => control.state(),
    ...(stock === undefined ? {} : { outbox: (lagSince: Date) => stock.read(lagSince) }),
  });
  const history = new FlowHistory({
    sample: () => overview.sample(),
    intervalMs: config.historyIntervalMs,
  });
  history.start();
  const server = await serveConsole({
    hostname,
    port: config.port,
    gate,
    index,
    overview,
    actions,
    control,
    history,
    ledger: ledger.get,
    readOnly: config.readOnly,
    maxSelection: config.maxSelection,
    about: {
      broker: brokerHost(urls[0]!),
      workQueue: topo.queue,
      deadLetterQueue: topo.deadLetterQueue,
      exchange: topo.exchange,
    },
    signal,
  });
  const shown = hostname.includes(":") ? `[${hostname}]` : hostname;
  console.log(`console: http://${shown}:${server.port}/`);
  log.info("console listening", { hostname, port: server.port, auth: gate.auth.configured });
  await new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
  await server.shutdown().catch(() => {});
  history.stop();
  await control.close();
  await broker.close();
  await ledger.close();
  await stock?.close();
  return EXIT.ok;
}
