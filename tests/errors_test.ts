import { strict as assert } from "node:assert";
import {
  BrokerError,
  describeError,
  errorCode,
  FatalError,
  isFatalError,
  isLedgerUnavailable,
  LedgerUnavailableError,
  PermanentError,
  REPLY_CODE,
  replyCode,
  TransientError,
} from "../lib/errors.ts";

/** An error whose cause is itself: a chain with no end, as a careless wrapper can make. */
function selfCaused(message: string): Error {
  const error = new Error(message);
  (error as { cause?: unknown }).cause = error;
  return error;
}

/** `error` wrapped `depth` times in plain errors. */
function wrapped(error: unknown, depth: number): unknown {
  let outer = error;
  for (let i = depth; i > 0; i--) outer = new Error(`wrapper ${i}`, { cause: outer });
  return outer;
}

Deno.test("each error class sets its name, keeps its cause and carries its code", () => {
  const cause = new Error("root");
  const transient = new TransientError("try later", { code: "busy", cause });
  const permanent = new PermanentError("never", { code: "invalid" });
  const fatal = new FatalError("bad vhost", { code: "vhost_missing", cause });
  const auth = new FatalError("refused", { kind: "fatal-auth" });
  const ledger = new LedgerUnavailableError("down", { code: "ECONNREFUSED", cause });
  const broker = new BrokerError("COMMAND_INVALID", { replyCode: 503, cause });
  assert.deepEqual(
    [transient, permanent, fatal, auth, ledger, broker].map((e) => [e.name, e.cause]),
    [
      ["TransientError", cause],
      ["PermanentError", undefined],
      ["FatalError", cause],
      ["FatalError", undefined],
      ["LedgerUnavailableError", cause],
      ["BrokerError", cause],
    ],
  );
  assert.deepEqual([transient.code, permanent.code, fatal.code, auth.code, ledger.code], [
    "busy",
    "invalid",
    "vhost_missing",
    undefined,
    "ECONNREFUSED",
  ]);
  assert.deepEqual([fatal.kind, auth.kind], ["fatal-config", "fatal-auth"]);
  assert.deepEqual([broker.replyCode, new BrokerError("gone").replyCode], [503, undefined]);
  assert.equal(new TransientError("no options").code, undefined);
  assert.ok([transient, permanent, fatal, ledger, broker].every((e) => e instanceof Error));
});

Deno.test("describeError() renders the cause chain on one line, outermost first", () => {
  const root = new Error("connect ECONNREFUSED 127.0.0.1:5432");
  const middle = new LedgerUnavailableError("the ledger is unreachable", { cause: root });
  const outer = new TransientError("cannot commit", { cause: middle });
  assert.equal(
    describeError(outer),
    "cannot commit: the ledger is unreachable: connect ECONNREFUSED 127.0.0.1:5432",
  );
  assert.equal(describeError(root), "connect ECONNREFUSED 127.0.0.1:5432");
});

Deno.test("describeError() names an error without a message by its class, and ends at a cause that is not an error", () => {
  assert.equal(describeError(new TypeError()), "TypeError");
  assert.equal(describeError(new PermanentError("")), "PermanentError");
  assert.equal(
    describeError(new Error("outer", { cause: "a string cause" })),
    "outer: a string cause",
  );
  assert.equal(describeError(new Error("outer", { cause: 42 })), "outer: 42");
  assert.equal(describeError(new Error("outer", { cause: null })), "outer");
  assert.equal(describeError("plain text"), "plain text");
  assert.equal(describeError({ message: "an object" }), "[object Object]");
  assert.equal(describeError(undefined), "");
  assert.equal(describeError(null), "");
});

Deno.test("describeError() stops after eight links of a chain that never ends", () => {
  assert.equal(describeError(selfCaused("again")), Array(8).fill("again").join(": "));
  const deep = wrapped(new Error("root"), 9);
  assert.equal(
    describeError(deep),
    Array.from({ length: 8 }, (_, i) => `wrapper ${i + 1}`).join(": "),
  );
});

Deno.test("errorCode() is the first string code in the cause chain", () => {
  const refused = Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
  assert.equal(errorCode(refused), "ECONNREFUSED");
  assert.equal(errorCode(new Error("cannot open the ledger", { cause: refused })), "ECONNREFUSED");
  // A coded wrapper speaks first.
  assert.equal(
    errorCode(new LedgerUnavailableError("down", { code: "57P01", cause: refused })),
    "57P01",
  );
  // A class without a code passes the question on to its cause.
  assert.equal(errorCode(new TransientError("retry", { cause: refused })), "ECONNREFUSED");
  // amqplib's numeric reply code is no string code: the chain is read on.
  const closed = Object.assign(new Error("Operation failed"), { code: 404, cause: refused });
  assert.equal(errorCode(closed), "ECONNREFUSED");
  // Plain objects in the chain are read too (pg's errors, postgres.js's).
  assert.equal(errorCode({ code: "CONNECT_TIMEOUT" }), "CONNECT_TIMEOUT");
  assert.equal(errorCode({ cause: { code: "57P03" } }), "57P03");
});

Deno.test("errorCode() is undefined without a string code, in a chain that never ends too", () => {
  assert.equal(errorCode(new Error("plain")), undefined);
  assert.equal(errorCode(new TransientError("no code")), undefined);
  assert.equal(errorCode(Object.assign(new Error("numeric"), { code: 503 })), undefined);
  assert.equal(errorCode("ECONNREFUSED"), undefined);
  assert.equal(errorCode(null), undefined);
  assert.equal(errorCode(undefined), undefined);
  assert.equal(errorCode(selfCaused("again")), undefined);
  // Eight links are read, no more.
  const coded = Object.assign(new Error("root"), { code: "EPIPE" });
  assert.equal(errorCode(wrapped(coded, 7)), "EPIPE");
  assert.equal(errorCode(wrapped(coded, 8)), undefined);
});

Deno.test("replyCode() reads a BrokerError's reply code or amqplib's numeric code, the first in the chain", () => {
  const closed = new BrokerError("COMMAND_INVALID - unknown exchange type", { replyCode: 503 });
  assert.equal(replyCode(closed), REPLY_CODE.commandInvalid);
  const notFound = Object.assign(new Error("Operation failed: QueueDeclare; 404 (NOT-FOUND)"), {
    code: 404,
  });
  assert.equal(replyCode(notFound), REPLY_CODE.notFound);
  assert.equal(replyCode(new Error("declare failed", { cause: notFound })), 404);
  assert.equal(replyCode(new FatalError("topology", { cause: closed })), 503);
  // A BrokerError without a code, wrapping amqplib's error, passes the question on.
  assert.equal(replyCode(new BrokerError("Channel ended", { cause: notFound })), 404);
  // The outermost code wins.
  const precondition = Object.assign(new Error("PRECONDITION_FAILED"), {
    code: 406,
    cause: notFound,
  });
  assert.equal(replyCode(precondition), REPLY_CODE.preconditionFailed);
});

Deno.test("replyCode() is undefined for an error that is no broker's refusal", () => {
  assert.equal(replyCode(new Error("socket hang up")), undefined);
  // A string code is a system error's, not a reply code.
  assert.equal(replyCode(Object.assign(new Error("reset"), { code: "ECONNRESET" })), undefined);
  // A BrokerError's replyCode is its reply code: a `code` it might carry besides is not read.
  assert.equal(replyCode(Object.assign(new BrokerError("x"), { code: 320 })), undefined);
  assert.equal(replyCode(404), undefined);
  assert.equal(replyCode(null), undefined);
  assert.equal(replyCode(selfCaused("again")), undefined);
  const coded = Object.assign(new Error("root"), { code: 406 });
  assert.equal(replyCode(wrapped(coded, 7)), 406);
  assert.equal(replyCode(wrapped(coded, 8)), undefined);
});

Deno.test("REPLY_CODE names 404, 406 and 503 and cannot be changed", () => {
  assert.deepEqual({ ...REPLY_CODE }, {
    notFound: 404,
    preconditionFailed: 406,
    commandInvalid: 503,
  });
  assert.ok(Object.isFrozen(REPLY_CODE));
});

Deno.test("isLedgerUnavailable() finds a LedgerUnavailableError anywhere in the first eight links", () => {
  const down = new LedgerUnavailableError("the ledger is down", { code: "57P01" });
  assert.equal(isLedgerUnavailable(down), true);
  assert.equal(isLedgerUnavailable(new TransientError("commit failed", { cause: down })), true);
  assert.equal(isLedgerUnavailable(wrapped(down, 7)), true);
  assert.equal(isLedgerUnavailable(wrapped(down, 8)), false);
});

Deno.test("isLedgerUnavailable() is false for any other failure, and reads only errors", () => {
  // Decided by class, not by code or message.
  const coded = Object.assign(new Error("LedgerUnavailableError: ECONNREFUSED"), {
    code: "ECONNREFUSED",
  });
  assert.equal(isLedgerUnavailable(coded), false);
  assert.equal(isLedgerUnavailable(new PermanentError("invalid")), false);
  assert.equal(isLedgerUnavailable(new FatalError("fatal")), false);
  assert.equal(isLedgerUnavailable(selfCaused("again")), false);
  assert.equal(isLedgerUnavailable(undefined), false);
  // A plain object ends the chain: what is under it is not read.
  const under = { cause: new LedgerUnavailableError("down") };
  assert.equal(isLedgerUnavailable(new Error("outer", { cause: under })), false);
});

Deno.test("isFatalError() finds a FatalError of either kind in the first eight links, and nothing else", () => {
  const config = new FatalError("topology missing", { code: "topology_missing" });
  const auth = new FatalError("login refused", { kind: "fatal-auth" });
  assert.equal(isFatalError(config), true);
  assert.equal(isFatalError(auth), true);
  assert.equal(isFatalError(new Error("cannot connect", { cause: auth })), true);
  assert.equal(isFatalError(wrapped(config, 7)), true);
  assert.equal(isFatalError(wrapped(config, 8)), false);
  assert.equal(isFatalError(new PermanentError("invalid")), false);
  assert.equal(isFatalError(new LedgerUnavailableError("down")), false);
  assert.equal(isFatalError(Object.assign(new Error("x"), { name: "FatalError" })), false);
  assert.equal(isFatalError(selfCaused("again")), false);
  assert.equal(isFatalError("FatalError"), false);
});
