import { strict as assert } from "node:assert";
import {
  encodeOrder,
  MAX_ORDER_BYTES,
  type MessageVersion,
  newOrder,
  type Order,
  parseOrder,
  type ParseOrderResult,
  peekRefCode,
  readMessageVersion,
} from "../lib/order.ts";

const REF = "0b5a8d4e-2c1f-4a63-9d7e-3f2b1c0a9e8d";
const COLOR = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
const bytes = (text: string) => new TextEncoder().encode(text);
const valid = { RefCode: REF, ColorCode: COLOR, Quantity: 42, EventType: "CREATE" };

function rejection(result: ParseOrderResult) {
  assert.equal(result.ok, false, "expected a rejection");
  return (result as Extract<ParseOrderResult, { ok: false }>).rejection;
}

Deno.test("encodeOrder() writes the Go struct's JSON, fields in order", () => {
  const order: Order = { refCode: REF, colorCode: COLOR, quantity: 42, eventType: "CREATE" };
  assert.equal(
    new TextDecoder().decode(encodeOrder(order)),
    `{"RefCode":"${REF}","ColorCode":"${COLOR}","Quantity":42,"EventType":"CREATE"}`,
  );
});

Deno.test("parseOrder() accepts a Go body and lower-cases the codes", () => {
  const result = parseOrder(bytes(JSON.stringify({ ...valid, RefCode: REF.toUpperCase() })), {
    contentType: "application/json; charset=utf-8",
  });
  assert.deepEqual(result, {
    ok: true,
    order: { refCode: REF, colorCode: COLOR, quantity: 42, eventType: "CREATE" },
  });
});

Deno.test("parseOrder() round-trips newOrder() through encodeOrder()", () => {
  const order = newOrder({ random: () => 0.999_999_99 });
  assert.equal(order.quantity, 9_999_998);
  assert.deepEqual(parseOrder(encodeOrder(order)), { ok: true, order });
});

Deno.test("parseOrder() takes the Go Estoque's three-field body as a CREATE order", () => {
  // What the Go Estoque marshals since commit e1fe516 (checked against the real binary in
  // interop/go_services_test.ts).
  const body = bytes(`{"RefCode":"${REF}","ColorCode":"${COLOR}","Quantity":9999998}`);
  assert.deepEqual(parseOrder(body, { contentType: "application/json" }), {
    ok: true,
    order: { refCode: REF, colorCode: COLOR, quantity: 9_999_998, eventType: "CREATE" },
  });
});

Deno.test("parseOrder() keeps the fields it does not know beside the order, as they were, instead of refusing them", () => {
  const body = bytes(JSON.stringify({ ...valid, Priority: 3, Plant: { site: "BR-SC", line: 2 } }));
  const result = parseOrder(body, { contentType: "application/json" });
  assert.ok(result.ok);
  assert.deepEqual(result.order, {
    refCode: REF,
    colorCode: COLOR,
    quantity: 42,
    eventType: "CREATE",
  });
  assert.deepEqual(Object.keys(result.extra ?? {}), ["Priority", "Plant"]);
  assert.equal(result.extra?.Priority, 3);
  assert.deepEqual(result.extra?.Plant, { site: "BR-SC", line: 2 });
  // A field named __proto__ stays a field, not the prototype of what holds it.
  const proto = parseOrder(
    bytes(`{"RefCode":"${REF}","ColorCode":"${COLOR}","Quantity":1,"__proto__":{"polluted":1}}`),
  );
  assert.ok(proto.ok);
  assert.deepEqual(Object.getOwnPropertyDescriptor(proto.extra!, "__proto__")?.value, {
    polluted: 1,
  });
  assert.equal(Object.getPrototypeOf(proto.extra), Object.prototype);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

Deno.test("readMessageVersion() reads major.minor, a bare major or an integer, and names anything else", () => {
  assert.equal(readMessageVersion(undefined), undefined);
  assert.deepEqual(readMessageVersion("1.0"), { major: 1, minor: 0, text: "1.0" });
  assert.deepEqual(readMessageVersion(" 1.12 "), { major: 1, minor: 12, text: "1.12" });
  assert.deepEqual(readMessageVersion("2"), { major: 2, minor: 0, text: "2" });
  assert.deepEqual(readMessageVersion(3), { major: 3, minor: 0, text: "3" });
  for (const bad of ["", "v2", "1.0.1", "1.", "-1", -1, true, {}, "9".repeat(7)]) {
    const found = readMessageVersion(bad);
    assert.ok(found !== undefined && "code" in found, `${JSON.stringify(bad)}`);
    assert.equal(found.code, "bad_version");
    assert.match(found.message, /x-message-version must be a version such as "1.0"/);
  }
});

Deno.test("parseOrder() reads every minor version of major 1 alike, and refuses another major before reading the body", () => {
  const v = (text: string) => readMessageVersion(text) as MessageVersion;
  for (const version of [undefined, v("1.0"), v("1.1"), v("1"), v("1.99")]) {
    assert.ok(parseOrder(bytes(JSON.stringify(valid)), { version }).ok, version?.text);
  }
  for (const version of [v("2.0"), v("0.9"), v("10")]) {
    const found = rejection(parseOrder(bytes("not even JSON"), { version }));
    assert.equal(found.code, "unsupported_version");
    assert.match(
      found.message,
      new RegExp(`message version ${version.text.replace(".", "\\.")} is not one`),
    );
  }
});

Deno.test("parseOrder() refuses a byte order mark before the JSON, as Go's json.Unmarshal does", () => {
  const withBom = new Uint8Array([0xef, 0xbb, 0xbf, ...bytes(JSON.stringify(valid))]);
  const found = rejection(parseOrder(withBom));
  assert.equal(found.code, "bom");
  assert.match(found.message, /byte order mark/);
});

Deno.test("parseOrder() says a Quantity of 1e400 is not a finite number (not null)", () => {
  const found = rejection(
    parseOrder(bytes(JSON.stringify(valid).replace('"Quantity":42', '"Quantity":1e400'))),
  );
  assert.match(found.message, /Quantity .* got a number that is not finite/);
  assert.doesNotMatch(found.message, /null/);
});

Deno.test("peekRefCode() names the RefCode of an invalid body, and nothing of a non-object", () => {
  assert.equal(peekRefCode(bytes(JSON.stringify({ ...valid, Quantity: -1 }))), REF);
  assert.equal(peekRefCode(bytes('{"RefCode":42}')), undefined);
  assert.equal(peekRefCode(bytes("[1]")), undefined);
  assert.equal(peekRefCode(bytes("{not json")), undefined);
});

const invalid: [string, Uint8Array, string, string?][] = [
  ["an empty body", bytes(""), "empty"],
  ["broken JSON", bytes('{"RefCode":'), "not_json"],
  ["a JSON array", bytes("[1,2]"), "not_object"],
  ["a JSON string", bytes('"CREATE"'), "not_object"],
  ["JSON null", bytes("null"), "not_object"],
  ["a number", bytes("42"), "not_object"],
  ["invalid UTF-8", new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), "not_utf8"],
  ["a missing RefCode", bytes(JSON.stringify({ ...valid, RefCode: undefined })), "missing_field"],
  ["a non-UUID RefCode", bytes(JSON.stringify({ ...valid, RefCode: "abc" })), "bad_field"],
  ["a numeric ColorCode", bytes(JSON.stringify({ ...valid, ColorCode: 7 })), "bad_field"],
  ["a negative Quantity", bytes(JSON.stringify({ ...valid, Quantity: -1 })), "bad_field"],
  ["a fractional Quantity", bytes(JSON.stringify({ ...valid, Quantity: 1.5 })), "bad_field"],
  ["a string Quantity", bytes(JSON.stringify({ ...valid, Quantity: "42" })), "bad_field"],
  [
    "a huge Quantity",
    bytes(JSON.stringify(valid).replace('"Quantity":42', '"Quantity":1e400')),
    "bad_field",
  ],
  [
    "a Quantity past 2^53",
    bytes(JSON.stringify(valid).replace('"Quantity":42', '"Quantity":9007199254740993')),
    "bad_field",
  ],
  ["an unknown EventType", bytes(JSON.stringify({ ...valid, EventType: "DELETE" })), "bad_field"],
  ["a null EventType", bytes(JSON.stringify({ ...valid, EventType: null })), "bad_field"],
  ["a body over the limit", bytes(" ".repeat(MAX_ORDER_BYTES + 1)), "too_large"],
  ["a wrong content type", bytes(JSON.stringify(valid)), "content_type", "text/plain"],
];

for (const [what, body, code, contentType] of invalid) {
  Deno.test(`parseOrder() rejects ${what} as ${code}`, () => {
    const found = rejection(parseOrder(body, { contentType }));
    assert.equal(found.code, code);
    assert.ok(found.message.length > 0 && found.message.length < 200, found.message);
  });
}

Deno.test("parseOrder() names the field and the value it refused", () => {
  const found = rejection(parseOrder(bytes(JSON.stringify({ ...valid, Quantity: -3 }))));
  assert.match(found.message, /Quantity .* got -3/);
});

Deno.test("parseOrder() never throws on random bytes or mutated bodies", () => {
  let seed = 42;
  const random = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const good = encodeOrder(newOrder({ quantity: 7 }));
  for (let i = 0; i < 5_000; i++) {
    const body = i % 2 === 0
      ? Uint8Array.from({ length: Math.floor(random() * 300) }, () => Math.floor(random() * 256))
      : good.map((byte) => (random() < 0.05 ? Math.floor(random() * 256) : byte));
    const result = parseOrder(body);
    assert.equal(typeof result.ok, "boolean");
  }
});

Deno.test("newOrder() draws its quantity from a range, both ends included", () => {
  const range = { min: 1, max: 600 };
  assert.equal(newOrder({ quantity: range, random: () => 0 }).quantity, 1);
  assert.equal(newOrder({ quantity: range, random: () => 0.999_999 }).quantity, 600);
});

Deno.test("parseOrder() matches field names as Go's encoding/json does: case-insensitively, the last of two spellings winning", () => {
  const ref = "0b5a8d4e-2c1f-4a63-9d7e-3f2b1c0a9e8d";
  const color = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
  const lower = parseOrder(
    new TextEncoder().encode(`{"refcode":"${ref}","COLORCODE":"${color}","quantity":5}`),
  );
  assert.ok(lower.ok, JSON.stringify(lower));
  assert.deepEqual([lower.order.refCode, lower.order.colorCode, lower.order.quantity], [
    ref,
    color,
    5,
  ]);
  assert.equal(lower.extra, undefined, "no field is left over");
  // Go sets the field once for each key that matches it, in order: the last one stays.
  const twice = parseOrder(
    new TextEncoder().encode(
      `{"RefCode":"${ref}","ColorCode":"${color}","Quantity":5,"quantity":7}`,
    ),
  );
  assert.ok(twice.ok);
  assert.equal(twice.order.quantity, 7);
});

Deno.test("readMessageVersion() reads a version sent as an AMQP double (1.1) as 1.1", () => {
  assert.deepEqual(readMessageVersion(1.1), { major: 1, minor: 1, text: "1.1" });
  assert.deepEqual(readMessageVersion(2.0), { major: 2, minor: 0, text: "2" });
  const negative = readMessageVersion(-1.5);
  assert.ok(negative !== undefined && "code" in negative && negative.code === "bad_version");
});
