/**
 * A small client for the RabbitMQ management HTTP API, for what AMQP cannot tell: a queue's
 * arguments and type, its bindings, and the exchange types the broker knows.
 *
 * @module
 */

import { redactUrl } from "./broker.ts";

/** A queue as the management API describes it. */
export interface ManagementQueue {
  /** `classic`, `quorum` or `stream`. */
  readonly type: string;
  /** The `x-` arguments it was declared with. */
  readonly arguments: Readonly<Record<string, unknown>>;
  /** Whether it survives a broker restart. */
  readonly durable: boolean;
}

/** A binding of a queue. */
export interface ManagementBinding {
  /** The exchange; empty for the default exchange. */
  readonly source: string;
  /** The routing key. */
  readonly routingKey: string;
}

/**
 * The management API URL that goes with an AMQP URL: same host and credentials, port 15672,
 * `http` (or `https` for `amqps`).
 *
 * @example
 * ```ts
 * managementUrlFor("amqp://guest:guest@127.0.0.1:5672/"); // "http://guest:guest@127.0.0.1:15672"
 * ```
 */
export function managementUrlFor(amqpUrl: string): string {
  const url = new URL(amqpUrl);
  const scheme = url.protocol === "amqps:" ? "https" : "http";
  const auth = url.username ? `${url.username}:${url.password}@` : "guest:guest@";
  return `${scheme}://${auth}${url.hostname}:15672`;
}

/**
 * A management API URL with a login: its own, or where it has none, the AMQP URL's (as
 * {@linkcode managementUrlFor} takes it), so that a login given apart from the URLs
 * (`RABBITMQ_USER`, `RABBITMQ_PASSWORD_FILE`) serves both.
 *
 * @example
 * ```ts
 * managementUrlWithLogin("http://rabbit:15673", "amqp://u:p@rabbit:5673/"); // "http://u:p@rabbit:15673/"
 * ```
 */
export function managementUrlWithLogin(managementUrl: string, amqpUrl: string): string {
  const url = new URL(managementUrl);
  if (url.username !== "") return url.href;
  const login = new URL(managementUrlFor(amqpUrl));
  url.username = login.username;
  url.password = login.password;
  return url.href;
}

/** The vhost of an AMQP URL: its path, decoded; `/` when there is none. */
export function vhostOf(amqpUrl: string): string {
  const path = new URL(amqpUrl).pathname.replace(/^\//, "");
  return path === "" ? "/" : decodeURIComponent(path);
}

/** How long a request to the management API may take. */
export const REQUEST_TIMEOUT_MS = 15_000;

/** Talks to one broker's management API. */
export class ManagementClient {
  readonly #base: string;
  readonly #authorization: string;
  readonly #vhost: string;
  /** The API's URL without credentials. */
  readonly safeUrl: string;

  /** Creates a client for the API at `url` (credentials in the URL), working in `vhost`. */
  constructor(url: string, vhost: string) {
    const parsed = new URL(url);
    this.#authorization = `Basic ${
      btoa(`${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`)
    }`;
    parsed.username = "";
    parsed.password = "";
    this.#base = parsed.href.replace(/\/$/, "");
    this.safeUrl = redactUrl(this.#base);
    this.#vhost = encodeURIComponent(vhost);
  }

  async #get(path: string): Promise<unknown> {
    const response = await fetch(`${this.#base}/api/${path}`, {
      headers: { authorization: this.#authorization },
      // RabbitMQ 4.x answers some calls (/api/overview) after 5 s now and then.
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    if (response.status === 404) {
      await response.body?.cancel();
      return undefined;
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new Error(`${this.safeUrl}/api/${path} answered ${response.status}`);
    }
    return await response.json();
  }

  /** The exchange types the broker knows, e.g. `["direct", "x-delayed-message", …]`. */
  async exchangeTypes(): Promise<string[]> {
    const overview = await this.#get("overview") as { exchange_types?: { name: string }[] };
    return (overview?.exchange_types ?? []).map((t) => t.name);
  }

  /** A queue, or undefined when it does not exist. */
  async queue(name: string): Promise<ManagementQueue | undefined> {
    const queue = await this.#get(`queues/${this.#vhost}/${encodeURIComponent(name)}`) as
      | { type?: string; arguments?: Record<string, unknown>; durable?: boolean }
      | undefined;
    if (!queue) return undefined;
    return {
      type: queue.type ?? "classic",
      arguments: queue.arguments ?? {},
      durable: queue.durable ?? false,
    };
  }

  /** The names of the vhost's queues. */
  async queueNames(): Promise<string[]> {
    const queues = await this.#get(`queues/${this.#vhost}?columns=name`) as
      | { name: string }[]
      | undefined;
    return (queues ?? []).map((q) => q.name);
  }

  /**
   * The arguments of each consumer of a queue, as the management API last saw them (its
   * statistics lag the broker by up to 5 s).
   */
  async consumerArguments(queue: string): Promise<Record<string, unknown>[]> {
    const consumers = await this.#get(`consumers/${this.#vhost}`) as
      | { queue?: { name?: string }; arguments?: Record<string, unknown> }[]
      | undefined;
    return (consumers ?? []).filter((c) => c.queue?.name === queue).map((c) => c.arguments ?? {});
  }

  /** The bindings of a queue, the default exchange's left out. */
  async bindings(queue: string): Promise<ManagementBinding[]> {
    const bindings = await this.#get(
      `queues/${this.#vhost}/${encodeURIComponent(queue)}/bindings`,
    ) as { source: string; routing_key: string }[] | undefined;
    return (bindings ?? []).filter((b) => b.source !== "").map((b) => ({
      source: b.source,
      routingKey: b.routing_key,
    }));
  }

  /**
   * Messages a second published into an exchange, as the broker's statistics last sampled it (every
   * 5 s); undefined when the exchange does not exist, 0 before anything was published.
   */
  async publishRate(exchange: string): Promise<number | undefined> {
    const found = await this.#get(
      `exchanges/${this.#vhost}/${encodeURIComponent(exchange)}?msg_rates_age=60&msg_rates_incr=5`,
    ) as { message_stats?: { publish_in_details?: { rate?: number } } } | undefined;
    if (!found) return undefined;
    return found.message_stats?.publish_in_details?.rate ?? 0;
  }
}
