/**
 * Hiding credentials in text meant for logs and error messages.
 *
 * @module
 */

/** A URL's login, `//user:password@`: the password is hidden. */
// Up to the last `@` before the host, as the WHATWG URL parser that amqplib and pg use reads a
// password holding a raw `@`.
const USERINFO = /(\/\/[^:/?#@\s]*:)[^/?#\s]*@/g;

/**
 * A query parameter named for a password (`?password=`, `&sslpassword=`, any case), as libpq and
 * node-postgres read them from a `postgres://` URL: its value, up to the next `&`, `#` or space,
 * is hidden.
 */
const QUERY_PASSWORD = /([?&][a-z_]*password=)[^&#\s]*/gi;

/**
 * Hides the passwords of a URL, for logs and errors: the login's (`//user:password@`) and any in
 * the query string (`?password=`). Text that is not a URL is returned with those parts hidden all
 * the same.
 *
 * @example
 * ```ts
 * redactUrl("amqp://guest:secret@rabbit:5672/prod"); // "amqp://guest:***@rabbit:5672/prod"
 * redactUrl("postgres://db/orders?password=secret"); // "postgres://db/orders?password=***"
 * ```
 */
export function redactUrl(url: string): string {
  return url.replace(USERINFO, "$1***@").replace(QUERY_PASSWORD, "$1***");
}
