/**
 * Who may use the console, and what they may do. A request is read by a principal: a bearer token
 * (`--token` reads, `--operator-token` also acts; in a browser, given as the basic-auth password
 * with any user name, which the audit trail records), a basic-auth user of `--users-file`, or, on a
 * loopback address with none of those configured, the local user (who may act). Every action
 * (a POST) must also carry the CSRF token of its principal and come from the console's own origin,
 * so a page elsewhere cannot act with the browser's credentials; nor can it log in, right or wrong
 * ({@linkcode fromAnotherSite}: the server does not look at credentials such a request carries,
 * so a page elsewhere can neither guess through a browser nor spend the login limit of the
 * browser's address). Which host names count as the console's is lib/console/allowed_hosts.ts's
 * to say; how many wrong credentials an address may try, lib/console/login_limit.ts's.
 *
 * @module
 */

import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/** What a principal may do: `viewer` reads; `operator` also replays and purges. */
export type Role = "viewer" | "operator";

/** Who a request comes from. */
export interface Principal {
  /** The name audit entries give: the basic-auth user, `token`, or the local user. */
  readonly name: string;
  readonly role: Role;
}

/** One basic-auth user. */
export interface ConsoleUser {
  readonly name: string;
  readonly role: Role;
  /** The password, or `sha256:HEX` of it. */
  readonly password: string;
}

/** How the console tells who is asking. */
export interface AuthOptions {
  /** A bearer token that may read. */
  readonly token?: string | undefined;
  /** A bearer token that may also act. */
  readonly operatorToken?: string | undefined;
  /** Basic-auth users. */
  readonly users?: readonly ConsoleUser[];
  /** Who an unauthenticated request is when nothing is configured (loopback only). */
  readonly localOperator?: string | undefined;
}

/** A line of the users file that cannot be read. */
export class UsersFileError extends Error {
  override name = "UsersFileError";
}

/**
 * Reads a users file: `name:role:password` per line; blank lines and `#` comments are skipped.
 *
 * @throws {UsersFileError} naming the line that is not a user.
 */
export function parseUsers(text: string, source: string): ConsoleUser[] {
  const users: ConsoleUser[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/\r$/, "");
    if (line.trim() === "" || line.trimStart().startsWith("#")) return;
    const match = /^([^:\s]+):(viewer|operator):(.+)$/.exec(line);
    if (!match) {
      throw new UsersFileError(
        `${source}:${i + 1} is not a user: write name:viewer:password or name:operator:password`,
      );
    }
    users.push({ name: match[1]!, role: match[2] as Role, password: match[3]! });
  });
  return users;
}

function sameText(a: string, b: string): boolean {
  const x = createHash("sha256").update(a).digest();
  const y = createHash("sha256").update(b).digest();
  return timingSafeEqual(x, y);
}

function passwordMatches(user: ConsoleUser, given: string): boolean {
  if (user.password.startsWith("sha256:")) {
    const hex = createHash("sha256").update(given).digest("hex");
    return sameText(hex, user.password.slice("sha256:".length).toLowerCase());
  }
  return sameText(given, user.password);
}

/**
 * How a request shows it was made by a page on another site, or undefined when it does not: a
 * browser says so in `Sec-Fetch-Site` (`cross-site`; `same-site` for another origin of the same
 * site, such as another port of the same host), or sends an `Origin` other than the request's own.
 * A client that sends neither (curl, a script) is taken at its word. Browsers send
 * `Sec-Fetch-Site` only to https and loopback origins, and `Origin` not with a plain GET: over
 * plain http to another name, a link from elsewhere looks like a typed address.
 *
 * The request's own origin is built from its `Host` header, so the caller must first have checked
 * that header names the console (lib/console/allowed_hosts.ts): a page whose name was rebound to
 * the console's address would otherwise pass as same-origin.
 *
 * @example
 * ```ts
 * fromAnotherSite(new Request("http://127.0.0.1:8090/", {
 *   headers: { "sec-fetch-site": "same-site" }, // a page on 127.0.0.1:3000
 * })); // "a request from another site"
 * ```
 */
export function fromAnotherSite(request: Request): string | undefined {
  const site = request.headers.get("sec-fetch-site");
  if (site !== null && site !== "same-origin" && site !== "none") {
    return "a request from another site";
  }
  const origin = request.headers.get("origin");
  if (origin !== null && origin !== new URL(request.url).origin) {
    return `a request from ${origin}`;
  }
  return undefined;
}

/** Tells who a request comes from, and checks the CSRF token of its actions. */
export class Authenticator {
  readonly #options: AuthOptions;
  readonly #secret = randomBytes(32);

  constructor(options: AuthOptions) {
    this.#options = options;
  }

  /**
   * Whether any credential is configured (tokens or users); then a browser is asked for a
   * basic-auth login when a request has none (a token goes as the password, with any user name).
   */
  get configured(): boolean {
    const o = this.#options;
    return o.token !== undefined || o.operatorToken !== undefined || (o.users?.length ?? 0) > 0;
  }

  /** The principal of a request, or undefined when it has no valid credential. */
  authenticate(request: Request): Principal | undefined {
    const header = request.headers.get("authorization") ?? "";
    const o = this.#options;
    const bearer = /^Bearer\s+(\S+)$/i.exec(header)?.[1];
    if (bearer !== undefined) {
      const role = this.#tokenRole(bearer);
      if (role === undefined) return undefined;
      return { name: role === "operator" ? "operator-token" : "token", role };
    }
    const basic = /^Basic\s+(\S+)$/i.exec(header)?.[1];
    if (basic !== undefined) {
      let decoded: string;
      try {
        decoded = new TextDecoder().decode(Uint8Array.from(atob(basic), (c) => c.charCodeAt(0)));
      } catch {
        return undefined;
      }
      const colon = decoded.indexOf(":");
      if (colon < 1) return undefined;
      const name = decoded.slice(0, colon);
      const password = decoded.slice(colon + 1);
      const user = o.users?.find((u) => u.name === name);
      if (user !== undefined) {
        return passwordMatches(user, password) ? { name: user.name, role: user.role } : undefined;
      }
      // A browser logs in with a token as the password; the name it gives goes into the audit.
      const role = this.#tokenRole(password);
      return role === undefined ? undefined : { name, role };
    }
    if (!this.configured && o.localOperator !== undefined) {
      return { name: o.localOperator, role: "operator" };
    }
    return undefined;
  }

  #tokenRole(given: string): Role | undefined {
    const o = this.#options;
    if (o.operatorToken !== undefined && sameText(given, o.operatorToken)) return "operator";
    if (o.token !== undefined && sameText(given, o.token)) return "viewer";
    return undefined;
  }

  /** The CSRF token of a principal: the page sends it back in `x-csrf-token` with each action. */
  csrfToken(principal: Principal): string {
    return createHmac("sha256", this.#secret).update(`${principal.role}:${principal.name}`)
      .digest("hex");
  }

  /**
   * Why an action may not go on, or undefined when it may: it must carry the principal's CSRF
   * token, and must not come from another site ({@linkcode fromAnotherSite}, whose caller must
   * have checked the `Host` header first).
   */
  refuseAction(request: Request, principal: Principal): string | undefined {
    const foreign = fromAnotherSite(request);
    if (foreign !== undefined) return `${foreign} cannot act here`;
    const given = request.headers.get("x-csrf-token") ?? "";
    if (!sameText(given, this.csrfToken(principal))) {
      return "the CSRF token is missing or wrong: reload the page";
    }
    return undefined;
  }
}
