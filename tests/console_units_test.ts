/**
 * The console's pure parts: how errors are normalised into failure groups, how groups and pages
 * are counted, how /metrics text is summed, how users and filters are read, which host names it
 * answers to, and how long an address that keeps failing to log in must wait.
 */

import { strict as assert } from "node:assert";
import { normaliseError, toDeadLetter } from "../lib/dead_letters.ts";
import { groupFailures, pageOf } from "../lib/console/dead_letter_index.ts";
import { OverviewSampler, sumMetrics } from "../lib/console/overview.ts";
import { bucketsBetween, histogramQuantile, readBuckets } from "../lib/console/_histogram.ts";
import { topology } from "../lib/topology.ts";
import { fromAnotherSite, parseUsers, UsersFileError } from "../lib/console/auth.ts";
import {
  AllowedHostsError,
  HostGuard,
  LOOPBACK_HOSTS,
  parseAllowedHosts,
} from "../lib/console/allowed_hosts.ts";
import { LoginLimit } from "../lib/console/login_limit.ts";
import { BadRequest, readControl, readFilter } from "../lib/console/requests.ts";
import { buildJourney, showDeadLetter } from "../lib/console/journey.ts";

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

Deno.test("parseAllowedHosts reads names and addresses as browsers spell them, and names a bad one", () => {
  assert.deepEqual(parseAllowedHosts(" LocalHost, 127.1 ,[0:0:0:0:0:0:0:1]:8443,console.test:80"), [
    { name: "localhost", port: undefined },
    { name: "127.0.0.1", port: undefined },
    { name: "[::1]", port: 8443 },
    { name: "console.test", port: 80 },
  ]);
  const refused = (text: string, message: RegExp) =>
    assert.throws(() => parseAllowedHosts(text), (error: unknown) => {
      assert.ok(error instanceof AllowedHostsError);
      assert.match((error as Error).message, message);
      return true;
    });
  refused("", /^must name at least one host, got ""$/);
  refused(" , ", /^must name at least one host/);
  refused("localhost,http://console.test", /^must be host names.*got "http:\/\/console\.test"$/);
  refused("console.test/path", /got "console\.test\/path"$/);
  refused("user@console.test", /got "user@console\.test"$/);
  refused("::1", /got "::1"$/); // an IPv6 address goes in brackets, as in a URL
  refused("console.test:0", /port out of range \(1 to 65535\) in "console\.test:0"/);
  refused("console.test:65536", /port out of range/);
});

Deno.test("HostGuard answers to its names on the console's port (or none), to a name:port only there", () => {
  const guard = new HostGuard(parseAllowedHosts(`${LOOPBACK_HOSTS},ops.example:9443`));
  const port = 8090;
  for (
    const host of [
      "localhost:8090",
      "127.0.0.1:8090",
      "[::1]:8090",
      "LOCALHOST",
      "ops.example:9443",
    ]
  ) {
    assert.ok(guard.allows(host, port), host);
  }
  for (
    const host of [
      "evil.test:8090",
      "localhost:8091",
      "127.0.0.2:8090",
      "ops.example:8090",
      "ops.example",
      "localhost.evil.test:8090",
      "evil.test@localhost:8090",
      "localhost:8090/",
      "",
    ]
  ) {
    assert.ok(!guard.allows(host, port), host);
  }
});

Deno.test("HostGuard.refuse: 421 naming the host for another name, in the header or the target; 400 without a Host", () => {
  const guard = new HostGuard(parseAllowedHosts(LOOPBACK_HOSTS));
  const request = (url: string, host?: string) =>
    new Request(url, host === undefined ? {} : { headers: { host } });
  assert.equal(guard.refuse(request("http://127.0.0.1:8090/", "127.0.0.1:8090"), 8090), undefined);
  const forged = guard.refuse(request("http://evil.test:8090/", "evil.test:8090"), 8090);
  assert.equal(forged?.status, 421);
  assert.match(
    forged!.message,
    /does not answer to the host name "evil\.test:8090".*--allowed-hosts/,
  );
  const target = guard.refuse(request("http://evil.test:8090/", "localhost:8090"), 8090);
  assert.equal(target?.status, 421);
  assert.equal(guard.refuse(request("http://localhost:8090/"), 8090)?.status, 400);
  const long = guard.refuse(request("http://localhost:8090/", `${"a".repeat(300)}.test`), 8090);
  assert.ok(long!.message.length < 500);
});

Deno.test("LoginLimit: four failures free, then a wait that doubles up to 15 min, per address", () => {
  let now = 0;
  const limit = new LoginLimit({ now: () => now });
  const waits = [];
  for (let i = 0; i < 16; i++) waits.push(limit.failed("10.0.0.1"));
  assert.deepEqual(waits.map((ms) => ms / 1000), [
    0,
    0,
    0,
    0,
    1,
    2,
    4,
    8,
    16,
    32,
    64,
    128,
    256,
    512,
    900,
    900,
  ]);
  assert.equal(limit.waitMs("10.0.0.2"), 0); // another address is not held back
  now += 899_000;
  assert.equal(limit.waitMs("10.0.0.1"), 1_000); // waiting counts down; asking adds nothing
  now += 1_000;
  assert.equal(limit.waitMs("10.0.0.1"), 0);
  assert.equal(limit.failed("10.0.0.1"), 900_000);
  now += 3_600_000; // an hour without a failure: forgotten
  assert.equal(limit.failed("10.0.0.1"), 0);
});

Deno.test("LoginLimit, full, forgets an address with the fewest failures, the one that failed longest ago", () => {
  let now = 0;
  const limit = new LoginLimit({ now: () => now, freeFailures: 0, maxClients: 2 });
  assert.equal(limit.failed("a"), 1_000);
  now += 1;
  limit.failed("b");
  now += 1;
  limit.failed("a"); // "a" has two failures, "b" one
  limit.failed("c");
  assert.equal(limit.size, 2);
  assert.equal(limit.waitMs("b"), 0);
  assert.ok(limit.waitMs("a") > 0 && limit.waitMs("c") > 0);
  now += 1;
  limit.failed("d"); // "c" and "d" one each: "c" failed longer ago
  assert.deepEqual(["a", "c", "d"].map((client) => limit.waitMs(client) > 0), [true, false, true]);
});

Deno.test("LoginLimit: failing once from many addresses does not push out a guesser that is held back", () => {
  let now = 0;
  const limit = new LoginLimit({ now: () => now, maxClients: 100 });
  for (let i = 0; i < 6; i++) limit.failed("guesser");
  for (let i = 0; i < 100_000; i++) limit.failed(`2001:db8::${i.toString(16)}`);
  assert.equal(limit.size, 100);
  assert.deepEqual([limit.failures("guesser"), limit.waitMs("guesser")], [6, 2_000]);
  // To push it out, every other slot must have failed as often: 99 addresses, six times each,
  // each waiting out its own waits.
  for (let round = 0; round < 6; round++) {
    now += limit.waitMs("2001:db8:1::0");
    for (let i = 0; i < 99; i++) assert.equal(limit.waitMs(`2001:db8:1::${i}`), 0);
    for (let i = 0; i < 99; i++) limit.failed(`2001:db8:1::${i}`);
  }
  assert.equal(limit.failures("guesser"), 6);
  limit.failed("2001:db8:2::1");
  assert.equal(limit.failures("guesser"), 0);
  assert.equal(limit.size, 100);
});

Deno.test("LoginLimit, full, first forgets an address whose failures are an hour old, however many", () => {
  let now = 0;
  const limit = new LoginLimit({ now: () => now, maxClients: 2 });
  for (let i = 0; i < 10; i++) limit.failed("old");
  now += 3_000_000;
  limit.failed("recent");
  now += 600_000; // "old" is forgotten; "recent" has one failure, but is recent
  limit.failed("new");
  assert.equal(limit.size, 2);
  for (let i = 0; i < 4; i++) limit.failed("recent");
  assert.equal(limit.waitMs("recent"), 1_000);
  assert.throws(() => new LoginLimit({ maxClients: 0 }), RangeError);
});

Deno.test("fromAnotherSite: Sec-Fetch-Site cross-site or same-site, or another Origin; a client without them is taken at its word", () => {
  const from = (headers: Record<string, string>) =>
    fromAnotherSite(new Request("http://127.0.0.1:8090/api/session", { headers }));
  assert.equal(from({ "sec-fetch-site": "cross-site" }), "a request from another site");
  assert.equal(from({ "sec-fetch-site": "same-site" }), "a request from another site");
  assert.equal(from({ origin: "http://127.0.0.1:3000" }), "a request from http://127.0.0.1:3000");
  assert.equal(from({ origin: "null" }), "a request from null");
  assert.equal(
    from({ "sec-fetch-site": "same-origin", origin: "http://127.0.0.1:8090" }),
    undefined,
  );
  assert.equal(from({ "sec-fetch-site": "none" }), undefined); // typed, or a bookmark
  assert.equal(from({}), undefined); // curl, a script
});

Deno.test("the journey shows a dead letter's message version and the fields its reader does not know, kept", () => {
  const ref = "0b5a8d4e-2c1f-4a63-9d7e-3f2b1c0a9e8d";
  const body = JSON.stringify({
    RefCode: ref,
    ColorCode: "7c9e6679-7425-40de-944b-e07fc1f90ae7",
    Quantity: 900,
    Priority: "high",
  });
  const letter = toDeadLetter({
    content: new TextEncoder().encode(body) as never,
    properties: {
      messageId: ref,
      contentType: "application/json",
      headers: {
        "x-message-version": "1.1",
        "x-dead-letter-reason": "exhausted",
        "x-last-error": "maximum quantity exceeded: 900 > 500",
      },
    } as never,
  });
  const shown = showDeadLetter(letter);
  assert.equal(shown.messageVersion, "1.1");
  assert.deepEqual(shown.extraFields, { Priority: "high" });
  const journey = buildJourney(ref, { order: undefined, forwards: [] }, [letter])!;
  assert.match(journey.steps.at(-1)!.detail, /fields this reader does not know, kept: Priority/);
  // A body that is no order, or of a major version this reader does not know: no fields shown.
  const v2 = toDeadLetter({
    content: new TextEncoder().encode(body) as never,
    properties: { headers: { "x-message-version": "2.0" } } as never,
  });
  assert.deepEqual([showDeadLetter(v2).messageVersion, showDeadLetter(v2).extraFields], [
    "2.0",
    null,
  ]);
});

Deno.test("readControl takes pause with a reason and resume, and names what is wrong", () => {
  assert.deepEqual(readControl({ action: "pause", reason: " ERP " }), {
    action: "pause",
    reason: "ERP",
  });
  assert.deepEqual(readControl({ action: "resume" }), { action: "resume", reason: "" });
  for (
    const [body, message] of [
      [null, /JSON object/],
      [{ action: "pause" }, /say why/],
      [{ action: "pause", reason: "   " }, /say why/],
      [{ action: "halt", reason: "x" }, /pause or resume/],
      [{ action: "pause", reason: 7 }, /reason must be text/],
    ] as const
  ) {
    assert.throws(() => readControl(body), (error: unknown) => {
      assert.ok(error instanceof BadRequest);
      assert.match((error as Error).message, message);
      return true;
    });
  }
});

Deno.test("readBuckets sums a histogram's buckets over instances; histogramQuantile interpolates as Prometheus does", () => {
  const text = [
    "# TYPE h histogram",
    'h_bucket{instance_id="a",outcome="created",le="0.01"} 10',
    'h_bucket{instance_id="a",outcome="created",le="0.02"} 30',
    'h_bucket{instance_id="a",outcome="created",le="+Inf"} 40',
    'h_bucket{instance_id="b",outcome="created",le="0.01"} 10',
    'h_bucket{instance_id="b",outcome="created",le="0.02"} 10',
    'h_bucket{instance_id="b",outcome="created",le="+Inf"} 10',
    'h_bucket{instance_id="b",outcome="dead-lettered",le="+Inf"} 99',
    'h_sum{instance_id="a",outcome="created"} 1',
  ].join("\n");
  const buckets = readBuckets(text, "h", { outcome: "created" });
  assert.deepEqual(buckets, [[0.01, 20], [0.02, 40], [Infinity, 50]]);
  assert.equal(histogramQuantile(0.2, buckets), 0.005);
  assert.equal(histogramQuantile(0.6, buckets), 0.015);
  assert.equal(histogramQuantile(0.99, buckets), 0.02, "in +Inf: the highest finite bound");
  assert.equal(histogramQuantile(0.5, []), null);
  assert.deepEqual(bucketsBetween([[0.01, 5], [Infinity, 8]], [[0.01, 7], [Infinity, 12]]), [
    [0.01, 2],
    [Infinity, 4],
  ]);
  // An instance restarted: its counts start again from zero.
  assert.deepEqual(bucketsBetween([[0.01, 50], [Infinity, 80]], [[0.01, 3], [Infinity, 90]]), [
    [0.01, 3],
    [Infinity, 10],
  ]);
});

Deno.test("the overview's critical time is that of the orders settled in the last minute, over every instance", async () => {
  const histogram = (counts: [string, number][]) =>
    counts.map(([le, n]) =>
      `productionorder_critical_time_seconds_bucket{outcome="created",le="${le}"} ${n}`
    ).join("\n");
  let texts = [
    histogram([["0.005", 100], ["0.01", 100], ["5", 100], ["5.5", 100], ["+Inf", 100]]),
    histogram([["0.005", 0], ["0.01", 100], ["5", 100], ["5.5", 100], ["+Inf", 100]]),
  ];
  const servers = texts.map((_, i) =>
    Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => new Response(texts[i]))
  );
  let clock = 0;
  const sampler = new OverviewSampler({
    broker: () => Promise.reject(new Error("no broker in this test")),
    topology: topology({ prefix: "units." }),
    metricsUrls: servers.map((s) => `http://127.0.0.1:${s.addr.port}/metrics`),
    management: undefined,
    ledger: () => Promise.resolve(undefined),
    clock: () => clock,
  });
  try {
    const first = await sampler.sample();
    assert.equal(first.criticalTime?.created.count, 200, "since the instances started, at first");
    assert.equal(first.criticalTime?.created.p50, 0.005);
    // 30 s later, 100 more orders, each created after one retry (~5 s).
    texts = [
      histogram([["0.005", 100], ["0.01", 100], ["5", 100], ["5.5", 200], ["+Inf", 200]]),
      texts[1]!,
    ];
    clock = 30_000;
    const later = await sampler.sample();
    assert.equal(later.criticalTime?.created.count, 100);
    assert.equal(later.criticalTime!.created.p50, 5.25);
    assert.equal(later.criticalTime?.windowSeconds, 30);
    assert.equal(later.criticalTime?.deadLettered.p99, null, "nothing dead-lettered");
    // A minute on, nothing new: nothing settled in the window.
    clock = 95_000;
    await sampler.sample();
    clock = 160_000;
    const quiet = await sampler.sample();
    assert.equal(quiet.criticalTime?.created.count, 0);
    assert.equal(quiet.criticalTime?.created.p99, null);
  } finally {
    await Promise.all(servers.map((s) => s.shutdown()));
  }
});
