/**
 * `deno task console`: checks the options, then wires the console's parts (a broker connection
 * made again when lost, the ledger read without writing, the dead-letter index, the overview, the
 * actions) and serves them until SIGINT/SIGTERM.
 *
 * @module
 */

import { currentOperator } from "../audit.ts";
import type { Broker } from "../broker.ts";
import {
  booleanOption,
  httpUrlOption,
  integerOption,
  type ParsedCommandLine,
  stringOption,
  UsageError,
} from "../cli.ts";
import { commonConfig, ledgerUrlOption } from "../config.ts";
import type { LedgerReader } from "../ledger.ts";
import { logger, setupLogging } from "../log.ts";
import { EXIT } from "../main.ts";
import { ManagementClient, managementUrlFor, vhostOf } from "../management.ts";
import { openLedgerReader } from "../open_ledger.ts";
import type { CONSOLE_OPTIONS } from "../options.ts";
import { connectFirst } from "../reconnect.ts";
import { DeadLetterActions } from "./actions.ts";
import { AllowedHostsError, HostGuard, parseAllowedHosts } from "./allowed_hosts.ts";
import { FleetControl } from "./control.ts";
import { FlowHistory } from "./history.ts";
import { Authenticator, parseUsers, UsersFileError } from "./auth.ts";
import { DeadLetterIndex, TakeTurns } from "./dead_letter_index.ts";
import { LoginLimit } from "./login_limit.ts";
import { OverviewSampler } from "./overview.ts";
import { serveConsole } from "./server.ts";

type Options = Record<keyof typeof CONSOLE_OPTIONS, ParsedCommandLine["options"][string]>;

const log = logger("console");

/** Whether an address is a loopback one, where the console may run without credentials. */
export function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "::1" || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

/** Whether an address is a wildcard one (every interface), which no browser sends as a host. */
function isWildcard(hostname: string): boolean {
  return hostname === "0.0.0.0" || hostname === "::" || hostname === "[::]";
}

/**
 * The host names the console answers to: `--allowed-hosts`, and the address it listens on when
 * that is a particular one (the operator's choice, not a name the owner of a page controls).
 * @throws {UsageError} naming the option whose value is not a host name.
 */
function allowedHostsOption(o: Options): HostGuard {
  const read = (option: Options[keyof Options], text: string) => {
    try {
      return parseAllowedHosts(text);
    } catch (error) {
      if (error instanceof AllowedHostsError) {
        throw new UsageError(`${option.label} ${error.message}`, { cause: error });
      }
      throw error;
    }
  };
  const allowed = read(o["allowed-hosts"], stringOption(o["allowed-hosts"]));
  const hostname = stringOption(o.hostname);
  if (!isWildcard(hostname)) {
    allowed.push(...read(o.hostname, /^[^[].*:/.test(hostname) ? `[${hostname}]` : hostname));
  }
  return new HostGuard(allowed);
}

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
export async function runConsole(cl: ParsedCommandLine, signal: AbortSignal): Promise<number> {
  const o = cl.options as Options;
  const { urls, tls, topology: topo, logLevel } = commonConfig(cl);
  setupLogging({ level: logLevel });
  const hostname = stringOption(o.hostname);
  const port = integerOption(o.port, 0, 65_535);
  const hosts = allowedHostsOption(o);
  const ledgerUrl = ledgerUrlOption(o["ledger-url"])!.url;
  const metricsUrls = stringOption(o["metrics-url"]).split(",").map((u) => u.trim())
    .filter((u) => u !== "").map((u) => httpUrlOption({ value: u, label: o["metrics-url"].label }));
  let users: ReturnType<typeof parseUsers> = [];
  if (o["users-file"].value !== undefined) {
    const path = stringOption(o["users-file"]);
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (error) {
      throw new UsageError(
        `${o["users-file"].label} names ${JSON.stringify(path)}, which cannot be read: ${
          (error as Error).message
        }`,
      );
    }
    try {
      users = parseUsers(text, path);
    } catch (error) {
      if (error instanceof UsersFileError) throw new UsageError(error.message);
      throw error;
    }
  }
  const optional = (option: Options[keyof Options]) =>
    option.value === undefined || option.value === "" ? undefined : stringOption(option);
  const auth = new Authenticator({
    token: optional(o.token),
    operatorToken: optional(o["operator-token"]),
    users,
    localOperator: isLoopback(hostname) ? currentOperator() : undefined,
  });
  if (!isLoopback(hostname) && !auth.configured) {
    throw new UsageError(
      `${o.hostname.label} ${hostname} lets other machines in: give --token, --operator-token ` +
        "or --users-file so that reading needs a credential",
    );
  }
  let management: ManagementClient | undefined;
  if (booleanOption(o.management)) {
    const managementUrl = o["management-url"].value === undefined
      ? managementUrlFor(urls[0]!)
      : httpUrlOption(o["management-url"]);
    management = new ManagementClient(managementUrl, vhostOf(urls[0]!));
  }

  const broker = brokerLink(async () =>
    (await connectFirst(urls, { name: "console", tls })).broker
  );
  const ledger = ledgerLink(ledgerUrl);
  const turns = new TakeTurns();
  const index = new DeadLetterIndex({
    broker: broker.get,
    topology: topo,
    maxAgeMs: integerOption(o["index-max-age"], 0, 86_400_000),
    turns,
  });
  const actions = new DeadLetterActions({
    broker: broker.get,
    topology: topo,
    index,
    turns,
    auditLog: stringOption(o["audit-log"]),
    archiveDir: stringOption(o["archive-dir"]),
  });
  const control = new FleetControl({
    broker: broker.get,
    topology: topo,
    auditLog: stringOption(o["audit-log"]),
  });
  const overview = new OverviewSampler({
    broker: broker.get,
    topology: topo,
    metricsUrls,
    management,
    ledger: ledger.get,
    pause: () => control.state(),
  });
  const history = new FlowHistory({
    sample: () => overview.sample(),
    intervalMs: integerOption(o["history-interval"], 200, 60_000),
  });
  history.start();
  const server = await serveConsole({
    hostname,
    port,
    auth,
    hosts,
    loginLimit: new LoginLimit(),
    index,
    overview,
    actions,
    control,
    history,
    ledger: ledger.get,
    readOnly: booleanOption(o["read-only"]),
    maxSelection: integerOption(o["max-selection"], 1, 1_000_000),
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
  log.info("console listening", { hostname, port: server.port, auth: auth.configured });
  await new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
  await server.shutdown().catch(() => {});
  history.stop();
  await control.close();
  await broker.close();
  await ledger.close();
  return EXIT.ok;
}
