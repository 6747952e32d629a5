/**
 * The door of an HTTP API guarded as the console is, shared by the console and by Estoque's stock
 * API: what a request must pass before it is read, in order (the host first: a page whose name was
 * rebound to this address gets nothing, not even a 401), what an action must pass besides, and
 * the options that set the door up (host names, tokens, users file). The parts are the console's:
 * lib/console/allowed_hosts.ts, lib/console/login_limit.ts and lib/console/auth.ts.
 *
 * @module
 */

import { currentOperator } from "../audit.ts";
import { type OptionValue, stringOption, UsageError } from "../cli.ts";
import { logger } from "../log.ts";
import { AllowedHostsError, HostGuard, parseAllowedHosts } from "./allowed_hosts.ts";
import {
  Authenticator,
  fromAnotherSite,
  parseUsers,
  type Principal,
  UsersFileError,
} from "./auth.ts";
import { LoginLimit } from "./login_limit.ts";

/** What guards an API: its host names, who may use it, and the count of failed logins. */
export interface Gate {
  /** The host names requests must be addressed to. */
  readonly hosts: HostGuard;
  /** Who a request comes from, and the CSRF tokens. */
  readonly auth: Authenticator;
  /** How many wrong credentials a client address may try. */
  readonly loginLimit: LoginLimit;
  /** The basic-auth realm a browser is asked to log in to, e.g. `productionorder console`. */
  readonly realm: string;
}

/** A request turned away: the status, the message to show, and headers to send. */
export interface Refusal {
  /** The HTTP status: 400, 401, 403, 421 or 429. */
  readonly status: number;
  /** What to show. */
  readonly message: string;
  /** Headers to send with it (`www-authenticate`, `retry-after`). */
  readonly headers: Readonly<Record<string, string>>;
}

/** Who a request comes from, or why it is turned away. */
export type Admission =
  | { readonly principal: Principal; readonly refusal?: undefined }
  | { readonly principal?: undefined; readonly refusal: Refusal };

const log = logger("admission");

/**
 * Lets a request in, or says why not, in the console's order: a host name the API answers to
 * (400/421), an address not waiting out its failed logins (429), not a page on another site once
 * credentials are configured (401, its credentials not looked at: neither a right one, which would
 * let that page in through the browser, nor a wrong one, which would count against the browser's
 * address), and a valid credential (401; a wrong one counts). `port` is the one the API listens on
 * and `client` the request's address.
 */
export function admit(gate: Gate, request: Request, client: string, port: number): Admission {
  const misdirected = gate.hosts.refuse(request, port);
  if (misdirected !== undefined) {
    return { refusal: { status: misdirected.status, message: misdirected.message, headers: {} } };
  }
  const waitMs = gate.loginLimit.waitMs(client);
  if (waitMs > 0) {
    const seconds = Math.ceil(waitMs / 1000);
    return {
      refusal: {
        status: 429,
        message: `too many failed logins from this address: try again in ${seconds} s`,
        headers: { "retry-after": String(seconds) },
      },
    };
  }
  const foreign = gate.auth.configured ? fromAnotherSite(request) : undefined;
  if (foreign !== undefined) {
    // Its credentials are not looked at: a right one would let that page in through the browser,
    // a wrong one would count against the browser's address (five lock the operator out). No
    // challenge: with one, the browser would answer with the credentials in the link's URL (or
    // ask for a password) in the same cross-site request again, and, were that answered with
    // anything but 401, keep them and send them with its next request here, where they count.
    return {
      refusal: {
        status: 401,
        message: `${foreign}: credentials sent from another site's page are not looked at; open ` +
          `${new URL(request.url).origin}/ yourself (type it, or use a bookmark)`,
        headers: {},
      },
    };
  }
  const principal = gate.auth.authenticate(request);
  if (principal !== undefined) return { principal };
  // A wrong credential counts; none at all (a browser's first request) does not.
  if (gate.auth.configured && request.headers.has("authorization")) {
    const wait = gate.loginLimit.failed(client);
    if (wait > 0) {
      log.warning("logins refused for a while: too many wrong credentials", {
        realm: gate.realm,
        client,
        waitMs: wait,
      });
    }
  }
  return {
    refusal: {
      status: 401,
      message: "log in: this needs a token (Authorization: Bearer) or a user",
      headers: gate.auth.configured ? { "www-authenticate": `Basic realm="${gate.realm}"` } : {},
    },
  };
}

/**
 * Whether an admitted request may act (change something), or why not (403): the CSRF token of its
 * principal, a request from this API's own origin, and the operator role.
 */
export function refuseAction(
  gate: Gate,
  request: Request,
  principal: Principal,
  action: string,
): Refusal | undefined {
  const refused = gate.auth.refuseAction(request, principal);
  if (refused !== undefined) return { status: 403, message: refused, headers: {} };
  if (principal.role !== "operator") {
    return { status: 403, message: `${action} needs the operator role`, headers: {} };
  }
  return undefined;
}

/** Whether an address is a loopback one, where an API may run without credentials. */
export function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "::1" || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

/** Whether an address is a wildcard one (every interface), which no browser sends as a host. */
function isWildcard(hostname: string): boolean {
  return hostname === "0.0.0.0" || hostname === "::" || hostname === "[::]";
}

/** The options {@linkcode gateOf} reads, each with its label for messages. */
export interface GateOptions {
  /** The address it listens on. */
  readonly hostname: OptionValue;
  /** The host names it answers to. */
  readonly allowedHosts: OptionValue;
  /** The bearer token that may read. */
  readonly token: OptionValue;
  /** The bearer token that may also act. */
  readonly operatorToken: OptionValue;
  /** The basic-auth users file. */
  readonly usersFile: OptionValue;
}

/**
 * Sets a door up from its options: the host names it answers to (`allowedHosts`, and the address
 * it listens on when that is a particular one), the tokens and the users file; on a loopback
 * address with no credential, the local user may act.
 *
 * @throws {UsageError} naming the option that is wrong: a host name, a users file that cannot be
 * read, or an address beyond loopback without any credential.
 */
export async function gateOf(o: GateOptions, realm: string): Promise<Gate> {
  const hosts = (option: OptionValue, text: string) => {
    try {
      return parseAllowedHosts(text);
    } catch (error) {
      if (error instanceof AllowedHostsError) {
        throw new UsageError(`${option.label} ${error.message}`, { cause: error });
      }
      throw error;
    }
  };
  const allowed = hosts(o.allowedHosts, stringOption(o.allowedHosts));
  const hostname = stringOption(o.hostname);
  if (!isWildcard(hostname)) {
    allowed.push(...hosts(o.hostname, /^[^[].*:/.test(hostname) ? `[${hostname}]` : hostname));
  }
  let users: ReturnType<typeof parseUsers> = [];
  if (o.usersFile.value !== undefined && o.usersFile.value !== "") {
    const path = stringOption(o.usersFile);
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (error) {
      throw new UsageError(
        `${o.usersFile.label} names ${JSON.stringify(path)}, which cannot be read: ${
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
  const optional = (option: OptionValue) =>
    option.value === undefined || option.value === "" ? undefined : stringOption(option);
  const auth = new Authenticator({
    token: optional(o.token),
    operatorToken: optional(o.operatorToken),
    users,
    localOperator: isLoopback(hostname) ? currentOperator() : undefined,
  });
  if (!isLoopback(hostname) && !auth.configured) {
    const flag = (option: OptionValue) => option.label.replace(" (default)", "");
    throw new UsageError(
      `${o.hostname.label} ${hostname} lets other machines in: give ${flag(o.token)}, ` +
        `${flag(o.operatorToken)} or ${flag(o.usersFile)} so that reading needs a credential`,
    );
  }
  return { hosts: new HostGuard(allowed), auth, loginLimit: new LoginLimit(), realm };
}
