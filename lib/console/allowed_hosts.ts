/**
 * Which host names the console answers to: its guard against DNS rebinding. A page on a name its
 * owner controls (`evil.test`) can have that name resolve to the console's address; the browser
 * then treats the console as that page's own origin and lets it read every answer. What gives it
 * away is the name the browser sends, in the `Host` header (and in an absolute request target):
 * the console answers only to the names it was told (`--allowed-hosts`; the loopback names by
 * default) and refuses any other with 421 Misdirected Request before reading a credential.
 *
 * @module
 */

/** One name the console answers to. */
export interface AllowedHost {
  /** The host as a URL writes it: lower case, an IPv6 address in brackets (`[::1]`). */
  readonly name: string;
  /**
   * The port it must come with; undefined for the console's own port (or none, as a proxy in
   * front of it on a default port sends).
   */
  readonly port: number | undefined;
}

/** A value of `--allowed-hosts` that is not a list of host names. */
export class AllowedHostsError extends Error {
  override name = "AllowedHostsError";
}

/** The names a console answers to unless told otherwise: its loopback names. */
export const LOOPBACK_HOSTS = "localhost,127.0.0.1,[::1]";

/** A host, with an optional port: `name`, `1.2.3.4`, `[::1]`, each maybe with `:PORT`. */
const HOST = /^(\[[0-9a-f:.]+\]|[a-z0-9_.-]+)(?::(\d+))?$/i;

/** A host and port as written, the host in a URL's spelling; undefined when it is not one. */
function readHost(text: string): { name: string; port: number | undefined } | undefined {
  const match = HOST.exec(text.trim());
  if (match === null) return undefined;
  let name: string;
  try {
    // The URL parser spells a host as browsers send it: lower case, IPv4 and IPv6 canonical.
    name = new URL(`http://${match[1]}/`).hostname;
  } catch {
    return undefined;
  }
  return { name, port: match[2] === undefined ? undefined : Number(match[2]) };
}

/**
 * Reads `--allowed-hosts`: host names or addresses, comma-separated, each with an optional
 * `:PORT` (without one it goes with the console's own port).
 *
 * @example
 * ```ts
 * parseAllowedHosts("localhost, console.example.com:8443");
 * // [{ name: "localhost", port: undefined }, { name: "console.example.com", port: 8443 }]
 * ```
 *
 * @throws {AllowedHostsError} naming the entry that is not a host, or when none is given.
 */
export function parseAllowedHosts(text: string): AllowedHost[] {
  const entries = text.split(",").map((entry) => entry.trim()).filter((entry) => entry !== "");
  if (entries.length === 0) {
    throw new AllowedHostsError(`must name at least one host, got ${JSON.stringify(text)}`);
  }
  return entries.map((entry) => {
    const host = readHost(entry);
    if (host === undefined) {
      throw new AllowedHostsError(
        "must be host names, each with an optional :port, comma-separated (e.g. " +
          `localhost,[::1],console.example.com:8443), got ${JSON.stringify(entry)}`,
      );
    }
    if (host.port !== undefined && (host.port < 1 || host.port > 65_535)) {
      throw new AllowedHostsError(
        `has a port out of range (1 to 65535) in ${JSON.stringify(entry)}`,
      );
    }
    return host;
  });
}

/** Why a request's host is refused: the status to answer with and what to say. */
export interface HostRefusal {
  /** 400 without a `Host` header; 421 for a host the console does not answer to. */
  readonly status: 400 | 421;
  readonly message: string;
}

/** The longest host shown back in a refusal. */
const SHOWN = 200;

/** Tells whether a request was addressed to one of the console's names. */
export class HostGuard {
  readonly #allowed: readonly AllowedHost[];

  /** A guard answering to `allowed`. */
  constructor(allowed: readonly AllowedHost[]) {
    this.#allowed = allowed;
  }

  /** Whether `host` (as a `Host` header gives it) is one the console answers to on `port`. */
  allows(host: string, port: number): boolean {
    const given = readHost(host);
    if (given === undefined) return false;
    return this.#allowed.some((allowed) =>
      allowed.name === given.name &&
      (allowed.port === undefined
        ? given.port === undefined || given.port === port
        : given.port === allowed.port)
    );
  }

  /**
   * Why a request may not be answered, or undefined when it may: it must name one of the
   * console's hosts in its `Host` header and, when its target is a whole URL, there too.
   * `port` is the one the console listens on.
   */
  refuse(request: Request, port: number): HostRefusal | undefined {
    const host = request.headers.get("host");
    if (host === null) {
      return { status: 400, message: "a request needs a Host header naming the console" };
    }
    const target = new URL(request.url).host;
    for (const named of [host, target]) {
      if (this.allows(named, port)) continue;
      const shown = JSON.stringify(named.length > SHOWN ? `${named.slice(0, SHOWN)}…` : named);
      return {
        status: 421,
        message: `this console does not answer to the host name ${shown} (a guard against ` +
          "DNS rebinding): open it by a name it answers to, or add that name to --allowed-hosts " +
          "(CONSOLE_ALLOWED_HOSTS)",
      };
    }
    return undefined;
  }
}
