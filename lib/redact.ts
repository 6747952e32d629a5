/**
 * Hiding credentials in text meant for logs and error messages.
 *
 * @module
 */

/**
 * Hides the password of an AMQP URL, for logs and errors. Text that is not a URL is returned with
 * anything between `//user:` and `@` hidden all the same.
 *
 * @example
 * ```ts
 * redactUrl("amqp://guest:secret@rabbit:5672/prod"); // "amqp://guest:***@rabbit:5672/prod"
 * ```
 */
export function redactUrl(url: string): string {
  return url.replace(/(\/\/[^:/@\s]*:)[^@\s]*@/g, "$1***@");
}
