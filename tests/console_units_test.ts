/**
 * The console's pure parts: how errors are normalised into failure groups, how groups and pages
 * are counted, how /metrics text is summed, how users and filters are read.
 */

import { strict as assert } from "node:assert";
import { normaliseError, toDeadLetter } from "../lib/dead_letters.ts";
import { groupFailures, pageOf } from "../lib/console/dead_letter_index.ts";
import { sumMetrics } from "../lib/console/overview.ts";
import { parseUsers, UsersFileError } from "../lib/console/auth.ts";
import { BadRequest, readFilter } from "../lib/console/requests.ts";
import { showDeadLetter } from "../lib/console/journey.ts";

function letter(ref: string, reason: string, error: string, at: string) {
  return toDeadLetter({
    content: new TextEncoder().encode("{}") as never,
    properties: {
      messageId: ref,
      headers: {
        "x-dead-letter-reason": reason,
        "x-last-error": error,
        "x-dead-lettered-at": at,
      },
    } as never,
  });
}

Deno.test("normaliseError takes out what varies between messages of one cause", () => {
  assert.equal(
    normaliseError("maximum quantity exceeded: 7000 > 500"),
    "maximum quantity exceeded: <n> > <n>",
  );
  assert.equal(
    normaliseError(`order 0b6f1c2e-9d4a-4c1b-8f00-3e2d1c0b9a87 at 2026-11-28T10:00:00.123Z failed`),
    "order <uuid> at <time> failed",
  );
  assert.equal(
    normaliseError(`Unexpected token 'o', "not json" is not valid JSON`),
    `Unexpected token '…', "…" is not valid JSON`,
  );
  assert.equal(normaliseError("field ColorCode is missing"), "field ColorCode is missing");
});

Deno.test("groupFailures counts each reason and normalised error, with first and last seen", () => {
  const letters = [
    letter("A", "exhausted", "maximum quantity exceeded: 700 > 500", "2026-11-28T10:00:02Z"),
    letter("B", "exhausted", "maximum quantity exceeded: 900 > 500", "2026-11-28T10:00:01Z"),
    letter("C", "invalid", "maximum quantity exceeded: 900 > 500", "2026-11-28T10:00:03Z"),
    letter("D", "exhausted", "maximum quantity exceeded: 800 > 500", "2026-11-28T10:00:05Z"),
  ];
  const groups = groupFailures(letters);
  assert.deepEqual(groups.map((g) => [g.reason, g.count, g.firstSeen, g.lastSeen]), [
    ["exhausted", 3, "2026-11-28T10:00:01.000Z", "2026-11-28T10:00:05.000Z"],
    ["invalid", 1, "2026-11-28T10:00:03.000Z", "2026-11-28T10:00:03.000Z"],
  ]);
  const group = groups[0]!;
  const page = pageOf(letters, { reason: group.reason, errorGroup: group.error }, 1, 1);
  assert.equal(page.matched, 3);
  assert.deepEqual(page.letters.map((l) => l.refCode), ["B"]);
  assert.equal(pageOf(letters, { text: "900" }, 0, 10).matched, 2);
  assert.equal(pageOf(letters, { refs: new Set(["a", "d"]) }, 0, 10).matched, 2);
  assert.equal(
    pageOf(
      letters,
      { since: new Date("2026-11-28T10:00:02Z"), until: new Date("2026-11-28T10:00:04Z") },
      0,
      10,
    )
      .matched,
    2,
  );
});

Deno.test("a body that is not UTF-8 is shown as hex only", () => {
  const shown = showDeadLetter(
    toDeadLetter({ content: new Uint8Array([0xff, 0x00, 0x41]) as never, properties: {} as never }),
  );
  assert.deepEqual([shown.bodyText, shown.bodyHex, shown.bodyBytes], [null, "ff0041", 3]);
});

Deno.test("sumMetrics sums a counter over its label sets and skips comments", () => {
  const text = [
    "# HELP productionorder_orders_created_total Production orders created.",
    "# TYPE productionorder_orders_created_total counter",
    'productionorder_orders_created_total{instance_id="a"} 5',
    'productionorder_messages_retried_total{attempt="1",instance_id="a"} 2',
    'productionorder_messages_retried_total{attempt="2",instance_id="a"} 1',
    "productionorder_orders_created_total_other 100",
  ].join("\n");
  const sums = sumMetrics(text, [
    "productionorder_orders_created_total",
    "productionorder_messages_retried_total",
  ]);
  assert.deepEqual(Object.fromEntries(sums), {
    productionorder_orders_created_total: 5,
    productionorder_messages_retried_total: 3,
  });
});

Deno.test("parseUsers reads name:role:password lines and names a bad one", () => {
  const users = parseUsers("# who\n\nvera:viewer:a:b\r\notto:operator:sha256:00ff\n", "users");
  assert.deepEqual(users.map((u) => [u.name, u.role, u.password]), [
    ["vera", "viewer", "a:b"],
    ["otto", "operator", "sha256:00ff"],
  ]);
  assert.throws(() => parseUsers("ok:viewer:x\nbad line\n", "users"), (error: unknown) => {
    assert.ok(error instanceof UsersFileError);
    assert.match((error as Error).message, /^users:2 is not a user/);
    return true;
  });
});

Deno.test("readFilter checks every field and names the one that is wrong", () => {
  const now = new Date("2026-11-28T12:00:00Z");
  const options = { now, maxSelection: 3 };
  const filter = readFilter({ since: "2h", refs: ["A", "b"], text: "" }, options);
  assert.equal(filter.since?.toISOString(), "2026-11-28T10:00:00.000Z");
  assert.deepEqual([...filter.refs!], ["a", "b"]);
  assert.equal(filter.text, undefined);
  const refused = (fields: Record<string, unknown>, message: RegExp) =>
    assert.throws(() => readFilter(fields, options), (error: unknown) => {
      assert.ok(error instanceof BadRequest);
      assert.match((error as Error).message, message);
      return true;
    });
  refused({ until: "soon" }, /^until must be a duration/);
  refused({ since: "1h", until: "2h" }, /since must be before until/);
  refused({ refs: ["a", "b", "c", "d"] }, /at most 3 dead letters, this one names 4/);
  refused({ refs: "a" }, /refs must be a list/);
  refused({ reason: 5 }, /reason must be text/);
  refused({ text: "x".repeat(601) }, /text is longer than 600/);
});
