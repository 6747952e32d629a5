// On a real connection (1,000 publishes, past the high-water mark, in order) it is in
// broker_test.ts; here the corking itself, on a socket that records what it is asked.
import { strict as assert } from "node:assert";
import process from "node:process";
import { coalesceWrites, type CorkableSocket } from "../lib/_coalesced_writes.ts";

/** A socket that records each call, and answers writes with `accepting`. */
class RecordingSocket implements CorkableSocket {
  readonly calls: string[] = [];
  readonly writers: unknown[] = [];
  accepting = true;

  write(chunk: unknown, encoding?: unknown, callback?: unknown): boolean {
    this.writers.push(this);
    this.calls.push(`write ${String(chunk)} ${String(encoding)} ${typeof callback}`);
    return this.accepting;
  }

  cork(): void {
    this.calls.push("cork");
  }

  uncork(): void {
    this.calls.push("uncork");
  }
}

/** Resolves after the ticks queued so far (the uncork among them) have run. */
function nextTick(): Promise<void> {
  return new Promise((resolve) => process.nextTick(resolve));
}

Deno.test("coalesceWrites() corks at a turn's first write and uncorks on the next tick, the writes in order between", async () => {
  const socket = new RecordingSocket();
  coalesceWrites(socket);
  assert.deepEqual(socket.calls, [], "nothing happens before a write");
  const done = () => {};
  socket.write("method");
  socket.write("header", "binary");
  socket.write("body", undefined, done);
  assert.deepEqual(socket.calls, [
    "cork",
    "write method undefined undefined",
    "write header binary undefined",
    "write body undefined function",
  ]);
  await nextTick();
  assert.deepEqual(socket.calls.slice(4), ["uncork"]);
  assert.ok(socket.writers.every((writer) => writer === socket), "written as the socket itself");
});

Deno.test("coalesceWrites() corks each turn that writes anew, and leaves a turn without writes alone", async () => {
  const socket = new RecordingSocket();
  coalesceWrites(socket);
  socket.write("a");
  await nextTick();
  await nextTick();
  socket.write("b");
  socket.write("c");
  await nextTick();
  assert.deepEqual(socket.calls, [
    "cork",
    "write a undefined undefined",
    "uncork",
    "cork",
    "write b undefined undefined",
    "write c undefined undefined",
    "uncork",
  ]);
});

Deno.test("coalesceWrites() passes the socket's backpressure on: a write answers what the socket answered", async () => {
  const socket = new RecordingSocket();
  coalesceWrites(socket);
  assert.equal(socket.write("fits"), true);
  socket.accepting = false;
  assert.equal(socket.write("past the high-water mark"), false);
  await nextTick();
  assert.equal(socket.calls.at(-1), "uncork");
});

Deno.test("coalesceWrites() still writes when the socket's own write throws, and uncorks all the same", async () => {
  const socket = new RecordingSocket();
  const write = socket.write;
  socket.write = function (this: RecordingSocket, chunk, encoding, callback) {
    if (chunk === "bad") throw new TypeError("invalid chunk");
    return write.call(this, chunk, encoding, callback);
  };
  coalesceWrites(socket);
  assert.throws(() => socket.write("bad"), TypeError);
  socket.write("good");
  await nextTick();
  assert.deepEqual(socket.calls, ["cork", "write good undefined undefined", "uncork"]);
});
