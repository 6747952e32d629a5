/**
 * Brokers besides the one under test, for what one broker cannot show: the paths taken without the
 * delayed-message plugin, and what RabbitMQ 4.x does that 3.10 does not. By default they are the
 * nodes `scripts/services.sh` starts beside the machine's broker (`deno task test` runs it); the
 * environment points them elsewhere:
 *
 * | name        | AMQP URL (default)                                  | management API URL (default)                                |
 * | ----------- | --------------------------------------------------- | ----------------------------------------------------------- |
 * | `NO_PLUGIN` | `RABBITMQ_URL_NO_PLUGIN` (the 4.3 node's)           | `RABBITMQ_MANAGEMENT_URL_NO_PLUGIN` (the 4.3 node's)        |
 * | `4_0`       | `RABBITMQ_URL_4_0` (`amqp://…@127.0.0.1:5673`)      | `RABBITMQ_MANAGEMENT_URL_4_0` (`http://…@127.0.0.1:15673`)  |
 * | `4_3`       | `RABBITMQ_URL_4_3` (`amqp://…@127.0.0.1:5674`)      | `RABBITMQ_MANAGEMENT_URL_4_3` (`http://…@127.0.0.1:15674`)  |
 *
 * The 4.3 node has no delayed-message plugin. A test whose broker cannot be reached fails.
 *
 * @example
 * ```sh
 * bash scripts/services.sh --broker 4.3 --broker-only   # prints the 4.3 node's two URLs
 * deno test -P tests/topology_test.ts tests/doctor_test.ts
 * ```
 *
 * @module
 */

import { Broker } from "../lib/broker.ts";
import {
  ManagementClient,
  managementUrlFor,
  REQUEST_TIMEOUT_MS,
  vhostOf,
} from "../lib/management.ts";
import { RABBITMQ_URL } from "./broker.ts";

/** A broker the tests can run against. */
export interface BrokerUnderTest {
  /** What the environment calls it (`NO_PLUGIN`, `4_0`, `4_3`), or `default` for RABBITMQ_URL. */
  readonly name: string;
  /** Its AMQP URL. */
  readonly url: string;
  /** Its management API's URL, with credentials. */
  readonly managementUrl: string;
  /** Its management API. */
  readonly management: ManagementClient;
}

function brokerUnderTest(name: string, url: string, managementUrl: string): BrokerUnderTest {
  return {
    name,
    url,
    managementUrl,
    management: new ManagementClient(managementUrl, vhostOf(url)),
  };
}

/**
 * The broker under test (`RABBITMQ_URL`), with its management API (`RABBITMQ_MANAGEMENT_URL`,
 * default: same host, port 15672).
 */
export const DEFAULT_BROKER: BrokerUnderTest = brokerUnderTest(
  "default",
  RABBITMQ_URL,
  Deno.env.get("RABBITMQ_MANAGEMENT_URL") ?? managementUrlFor(RABBITMQ_URL),
);

/** Where `scripts/services.sh` runs each of the other brokers. */
const DEFAULT_PORTS = { "4_0": 5673, "4_3": 5674, NO_PLUGIN: 5674 } as const;

/** One of the other brokers of the module doc. */
export function otherBroker(name: "NO_PLUGIN" | "4_0" | "4_3"): BrokerUnderTest {
  const port = DEFAULT_PORTS[name];
  const url = Deno.env.get(`RABBITMQ_URL_${name}`) || `amqp://guest:guest@127.0.0.1:${port}`;
  const managementUrl = Deno.env.get(`RABBITMQ_MANAGEMENT_URL_${name}`) ||
    (Deno.env.get(`RABBITMQ_URL_${name}`)
      ? managementUrlFor(url)
      : `http://guest:guest@127.0.0.1:${port + 10_000}`);
  return brokerUnderTest(name, url, managementUrl);
}

/** The broker under test and both 4.x nodes, each with what a test name calls it. */
export const EVERY_BROKER: readonly (readonly [label: string, target: BrokerUnderTest])[] = [
  ["the broker under test", DEFAULT_BROKER],
  ["RabbitMQ 4.0", otherBroker("4_0")],
  ["RabbitMQ 4.3", otherBroker("4_3")],
];

/**
 * Connects to `target` and checks that its management API speaks for the same broker (the same
 * version), so that a management URL left to its default never answers for another one.
 */
export async function connectTo(target: BrokerUnderTest, name: string): Promise<Broker> {
  const broker = await Broker.connect(target.url, { name });
  try {
    const overview = await managementRequest(target, "GET", "overview") as {
      rabbitmq_version?: string;
    };
    if (overview.rabbitmq_version !== broker.serverVersion) {
      throw new Error(
        `${target.management.safeUrl} is RabbitMQ ${overview.rabbitmq_version}, but ` +
          `${broker.safeUrl} is ${broker.serverVersion}: set RABBITMQ_MANAGEMENT_URL_${target.name} ` +
          `to its management API`,
      );
    }
    return broker;
  } catch (error) {
    await broker.close();
    throw error;
  }
}

/** Whether the broker knows the delayed-message exchange type, by its management API. */
export async function hasDelayedMessagePlugin(target: BrokerUnderTest): Promise<boolean> {
  return (await target.management.exchangeTypes()).includes("x-delayed-message");
}

/**
 * What the management API says of a queue, as it says it (fields the client in lib/ does not
 * read, such as 4.x's `delivery_limit`).
 */
export async function queueInfo(
  target: BrokerUnderTest,
  queue: string,
): Promise<Record<string, unknown>> {
  const path = `queues/${vhostPath(target)}/${encodeURIComponent(queue)}`;
  return await managementRequest(target, "GET", path) as Record<string, unknown>;
}

/** The vhost of `target`'s URL, as the management API's paths spell it (`%2F`). */
export function vhostPath(target: BrokerUnderTest): string {
  return encodeURIComponent(vhostOf(target.url));
}

/**
 * The management API's names of `target`'s open connections whose client named them
 * `connectionName`, once it lists at least one (it lists a new connection a moment late); rejects
 * after `timeoutMs`.
 */
export async function connectionsNamed(
  target: BrokerUnderTest,
  connectionName: string,
  timeoutMs = 30_000,
): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const listed = await managementRequest(
      target,
      "GET",
      "connections?columns=name,client_properties",
    ) as { name: string; client_properties?: { connection_name?: string } }[];
    const names = listed.filter((c) => c.client_properties?.connection_name === connectionName)
      .map((c) => c.name);
    if (names.length > 0) return names;
    if (Date.now() > deadline) {
      throw new Error(
        `no connection named "${connectionName}" on ${target.management.safeUrl} after ${timeoutMs} ms`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Closes, from the broker's side and as an operator would (`rabbitmqctl close_connection`), the
 * connections of `target` whose client named them `connectionName`, through its management API;
 * resolves with how many it closed. Waits, up to `timeoutMs`, until it has closed at least one (a
 * connection closed already can linger in the listing a moment).
 */
export async function closeConnectionsNamed(
  target: BrokerUnderTest,
  connectionName: string,
  timeoutMs = 30_000,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    let closed = 0;
    for (const name of await connectionsNamed(target, connectionName, timeoutMs)) {
      const path = `connections/${encodeURIComponent(name)}`;
      const gone = await managementRequest(target, "DELETE", path, undefined, {
        "x-reason": "closed by a test",
      }).then(() => false, (error: { status?: number }) => {
        if (error.status === 404) return true;
        throw error;
      });
      if (!gone) closed++;
    }
    if (closed > 0) return closed;
    if (Date.now() > deadline) {
      throw new Error(`no open connection named "${connectionName}" after ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * A request to `target`'s management API (`path` after `/api/`); its answer, parsed. An answer
 * other than 2xx throws an error whose `status` is the HTTP status.
 */
export async function managementRequest(
  target: BrokerUnderTest,
  method: "GET" | "PUT" | "DELETE",
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<unknown> {
  const base = new URL(target.managementUrl);
  const authorization = `Basic ${
    btoa(`${decodeURIComponent(base.username)}:${decodeURIComponent(base.password)}`)
  }`;
  base.username = "";
  base.password = "";
  const url = `${base.href.replace(/\/$/, "")}/api/${path}`;
  const response = await fetch(url, {
    method,
    headers: {
      ...headers,
      authorization,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const text = await response.text();
  if (!response.ok) {
    throw Object.assign(
      new Error(`${method} ${target.management.safeUrl}/api/${path} answered ${response.status}`),
      { status: response.status },
    );
  }
  return text === "" ? undefined : JSON.parse(text);
}
