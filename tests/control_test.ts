/**
 * The control plane's messages: a pause keeps its `since` when paused again, the wire format reads
 * back what it wrote and refuses what is not one, and the lines an operator reads.
 */

import { strict as assert } from "node:assert";
import {
  ControlMessageError,
  describePause,
  encodeAnswer,
  encodePauseState,
  NEVER_PAUSED,
  nextPauseState,
  parseAnswer,
  parsePauseState,
} from "../lib/control.ts";
import { formatReport } from "../lib/ctl.ts";

const t0 = new Date("2026-12-01T09:00:00.000Z");
const t1 = new Date("2026-12-01T09:30:00.000Z");
const encode = (text: string) => new TextEncoder().encode(text);

Deno.test("nextPauseState() counts changes, and pausing a paused fleet again keeps when it began", () => {
  const paused = nextPauseState(
    NEVER_PAUSED,
    { paused: true, by: "alice", reason: "ERP" },
    t0,
    "a",
  );
  assert.deepEqual(paused, {
    paused: true,
    since: t0.toISOString(),
    by: "alice",
    reason: "ERP",
    at: t0.toISOString(),
    seq: 1,
    id: "a",
  });
  const again = nextPauseState(paused, { paused: true, by: "bob", reason: "ERP, longer" }, t1, "b");
  assert.equal(again.since, t0.toISOString(), "since the first pause");
  assert.equal(again.at, t1.toISOString());
  assert.equal(again.seq, 2);
  const resumed = nextPauseState(again, { paused: false, by: "carol", reason: "" }, t1, "c");
  assert.equal(resumed.paused, false);
  assert.equal(resumed.since, undefined);
  assert.equal(resumed.seq, 3);
});

Deno.test("nextPauseState() cuts who and why at 500 characters", () => {
  const state = nextPauseState(NEVER_PAUSED, {
    paused: true,
    by: "x".repeat(900),
    reason: "y".repeat(900),
  }, t0);
  assert.equal(state.by.length, 500);
  assert.equal(state.reason.length, 500);
});

Deno.test("a pause state and an answer read back as they were written", () => {
  const state = nextPauseState(NEVER_PAUSED, { paused: true, by: "a", reason: "b" }, t0, "id");
  assert.deepEqual(parsePauseState(encodePauseState(state)), state);
  assert.deepEqual(parsePauseState(encodePauseState(NEVER_PAUSED)), {
    ...NEVER_PAUSED,
    since: undefined,
    by: undefined,
    reason: undefined,
    at: undefined,
    id: undefined,
  });
  const answer = {
    instanceId: "host:1",
    paused: true,
    seq: 4,
    consuming: false,
    inFlight: 3,
    at: t0.toISOString(),
  };
  assert.deepEqual(parseAnswer(encodeAnswer(answer)), answer);
});

Deno.test("parsePauseState() refuses what is not a pause state, naming why", () => {
  for (
    const [body, why] of [
      ["", /not JSON/],
      ["[]", /not a JSON object/],
      ['{"seq":1}', /paused must be true or false/],
      ['{"paused":"yes","seq":1}', /paused must be true or false/],
      ['{"paused":true,"seq":-1}', /seq must be a whole number/],
      ['{"paused":true,"seq":1,"by":7}', /by must be text/],
    ] as const
  ) {
    assert.throws(() => parsePauseState(encode(body)), (error: Error) => {
      assert.ok(error instanceof ControlMessageError, String(error));
      assert.match(error.message, why);
      return true;
    });
  }
  assert.throws(() => parseAnswer(encode('{"paused":true}')), /instanceId is missing/);
});

Deno.test("describePause() says since when, by whom and why", () => {
  assert.equal(describePause(NEVER_PAUSED), "not paused");
  const paused = nextPauseState(NEVER_PAUSED, { paused: true, by: "alice", reason: "ERP" }, t0);
  assert.equal(describePause(paused), "paused since 2026-12-01T09:00:00.000Z by alice: ERP");
  const resumed = nextPauseState(paused, { paused: false, by: "bob", reason: "" }, t1);
  assert.equal(describePause(resumed), "not paused (resumed 2026-12-01T09:30:00.000Z by bob)");
  const silent = nextPauseState(NEVER_PAUSED, { paused: true, by: "c", reason: "" }, t0);
  assert.match(describePause(silent), /no reason given$/);
});

Deno.test("formatReport() lists the instances that answered, and those that have not applied the change", () => {
  const state = nextPauseState(NEVER_PAUSED, { paused: true, by: "alice", reason: "ERP" }, t0);
  const answer = (instanceId: string, paused: boolean) => ({
    instanceId,
    paused,
    seq: 1,
    consuming: !paused,
    inFlight: 0,
    at: t0.toISOString(),
    afterMs: 12.4,
  });
  const lines = formatReport(
    { state, before: NEVER_PAUSED, instances: [answer("a", true), answer("bb", false)] },
    2000,
  );
  assert.equal(lines[0], "paused since 2026-12-01T09:00:00.000Z by alice: ERP");
  assert.equal(lines[1], "2 OrdemDeProducao instances answered:");
  assert.match(lines[2]!, /^ {2}a\s+paused\s+not consuming\s+in flight\s+0\s+after 12 ms$/);
  assert.match(lines[4]!, /^warning: bb has not applied the last change yet$/);
  assert.match(
    formatReport({ state, instances: [] }, 500).at(-1)!,
    /no OrdemDeProducao answered within 500 ms/,
  );
  assert.deepEqual(formatReport({ state, instances: [] }, 0), [lines[0]]);
});
