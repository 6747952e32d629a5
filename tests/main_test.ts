// runMain() and runCommand() run through the entry scripts in entry_test.ts (exit codes 1 and 2,
// --help, passwords kept out of stderr); here the pure part: how a failure is printed.
import { strict as assert } from "node:assert";
import { UsageError } from "../lib/cli.ts";
import { LedgerUnavailableError } from "../lib/errors.ts";
import { EXIT, formatFailure } from "../lib/main.ts";

Deno.test("EXIT names the three exit codes, and cannot be changed", () => {
  assert.deepEqual({ ...EXIT }, { ok: 0, failure: 1, usage: 2 });
  assert.ok(Object.isFrozen(EXIT));
});

Deno.test("formatFailure() prints an error and each of its causes on a line of its own", () => {
  const root = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5672"), {
    code: "ECONNREFUSED",
  });
  const middle = new Error("the socket closed", { cause: root });
  const outer = new Error("cannot reach the broker", { cause: middle });
  assert.equal(
    formatFailure(outer),
    [
      "error: cannot reach the broker",
      "  caused by: the socket closed",
      "  caused by: connect ECONNREFUSED 127.0.0.1:5672",
    ].join("\n"),
  );
  assert.equal(
    formatFailure(new UsageError("--count must be an integer")),
    "error: --count must be an integer",
  );
});

Deno.test("formatFailure() leaves out a cause its error's message already ends with", () => {
  const refused = new Error("connect ECONNREFUSED 127.0.0.1:5432");
  const unavailable = new LedgerUnavailableError(
    `the ledger is unavailable (ECONNREFUSED): ${refused.message}`,
    { cause: refused, code: "ECONNREFUSED" },
  );
  assert.equal(
    formatFailure(unavailable),
    "error: the ledger is unavailable (ECONNREFUSED): connect ECONNREFUSED 127.0.0.1:5432",
  );
  // Said in the middle only, it is said again.
  const middle = new Error(`while ${refused.message}, retrying`, { cause: refused });
  assert.equal(
    formatFailure(middle),
    [
      "error: while connect ECONNREFUSED 127.0.0.1:5432, retrying",
      "  caused by: connect ECONNREFUSED 127.0.0.1:5432",
    ].join("\n"),
  );
});

Deno.test("formatFailure() leaves out a whole chain the outer message already spells out, link by link", () => {
  const root = new Error("connect ECONNREFUSED 127.0.0.1:5432");
  const middle = new Error(`the ledger is unavailable: ${root.message}`, { cause: root });
  const outer = new Error(`cannot open the ledger: ${middle.message}`, { cause: middle });
  assert.equal(
    formatFailure(outer),
    "error: cannot open the ledger: the ledger is unavailable: connect ECONNREFUSED 127.0.0.1:5432",
  );
});

Deno.test("formatFailure() hides every password, in the error and in its causes", () => {
  const cause = new Error("refused by amqp://admin:hunter2@rabbit:5672");
  const outer = new Error("cannot open postgres://db/o?password=s3cret", { cause });
  const text = formatFailure(outer);
  assert.equal(
    text,
    [
      "error: cannot open postgres://db/o?password=***",
      "  caused by: refused by amqp://admin:***@rabbit:5672",
    ].join("\n"),
  );
  // A cause the message repeats is recognised with the password hidden in both.
  const said = new Error("amqp://u:pw@h refused", { cause: new Error("amqp://u:pw@h refused") });
  assert.equal(
    formatFailure(new Error(`connect: ${said.message}`, { cause: said })),
    "error: connect: amqp://u:***@h refused",
  );
});

Deno.test("formatFailure() prints a thrown value that is not an error, and a cause that is not one, as text", () => {
  assert.equal(formatFailure("plain text"), "error: plain text");
  assert.equal(formatFailure(42), "error: 42");
  assert.equal(formatFailure(null), "error: null");
  assert.equal(
    formatFailure(new Error("outer", { cause: { code: "E" } })),
    "error: outer\n  caused by: [object Object]",
  );
});

Deno.test("formatFailure() prints at most eight lines of a chain that never ends", () => {
  const first = new Error("first");
  const second = new Error("second", { cause: first });
  (first as { cause?: unknown }).cause = second;
  const lines = formatFailure(first).split("\n");
  assert.equal(lines.length, 8);
  assert.deepEqual(lines.slice(0, 3), [
    "error: first",
    "  caused by: second",
    "  caused by: first",
  ]);
});
