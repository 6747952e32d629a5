import { strict as assert } from "node:assert";
import type { Outcome } from "../lib/outcome.ts";
import {
  encodeOrder,
  MAX_ORDER_BYTES,
  newOrder,
  type OrderRejection,
  parseOrder,
} from "../lib/order.ts";
import { HEADER } from "../lib/retry_headers.ts";
import { retryDelays } from "../lib/retry_policy.ts";
import { fastPolicy, startConsumer, takeMessages, withTopology } from "../testing/broker.ts";

const REF = "0b5a8d4e-2c1f-4a63-9d7e-3f2b1c0a9e8d";
const COLOR = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
const valid = { RefCode: REF, ColorCode: COLOR, Quantity: 42, EventType: "CREATE" };
const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
const text = (value: string) => new TextEncoder().encode(value);

/** A malformed message: its body, and the properties it is published with. */
interface Hostile {
  readonly what: string;
  readonly body: Uint8Array;
  readonly contentType?: string;
  readonly headers?: Record<string, unknown>;
}

const HOSTILE: Hostile[] = [
  { what: "broken JSON", body: text('{"RefCode":"') },
  { what: "a trailing comma", body: text(`{"RefCode":"${REF}",}`) },
  { what: "a JSON array", body: text("[]") },
  { what: "an array holding an order", body: json([valid]) },
  { what: "a JSON number", body: text("42") },
  { what: "a JSON string", body: text('"CREATE"') },
  { what: "JSON null", body: text("null") },
  { what: "JSON true", body: text("true") },
  { what: "a string Quantity", body: json({ ...valid, Quantity: "42" }) },
  { what: "a negative Quantity", body: json({ ...valid, Quantity: -1 }) },
  { what: "a fractional Quantity", body: json({ ...valid, Quantity: 1.5 }) },
  {
    what: "a Quantity of 1e400",
    body: text(JSON.stringify(valid).replace('"Quantity":42', '"Quantity":1e400')),
  },
  {
    what: "a Quantity past 2^53",
    body: text(JSON.stringify(valid).replace('"Quantity":42', '"Quantity":9007199254740993')),
  },
  { what: 'a Quantity of "NaN"', body: json({ ...valid, Quantity: "NaN" }) },
  { what: 'a Quantity of "Infinity"', body: json({ ...valid, Quantity: "Infinity" }) },
  { what: "a null Quantity", body: json({ ...valid, Quantity: null }) },
  { what: "an object Quantity", body: json({ ...valid, Quantity: { n: 1 } }) },
  { what: "no RefCode", body: json({ ColorCode: COLOR, Quantity: 1, EventType: "CREATE" }) },
  { what: "no ColorCode", body: json({ RefCode: REF, Quantity: 1, EventType: "CREATE" }) },
  { what: "a byte order mark before the JSON", body: text(`\uFEFF${JSON.stringify(valid)}`) },
  // (An extra field, a __proto__ field among them, is not hostile: the reader keeps it and takes
  // the order; tests/order_test.ts.)
  { what: "a non-UUID RefCode", body: json({ ...valid, RefCode: "ORDER-1" }) },
  { what: "a numeric ColorCode", body: json({ ...valid, ColorCode: 7 }) },
  { what: "EventType DELETE", body: json({ ...valid, EventType: "DELETE" }) },
  { what: "a lower-case EventType", body: json({ ...valid, EventType: "create" }) },
  { what: "an empty body", body: new Uint8Array() },
  { what: "whitespace only", body: text("   \n") },
  { what: "a body over the size limit", body: text(" ".repeat(MAX_ORDER_BYTES + 1)) },
  { what: "invalid UTF-8", body: new Uint8Array([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d]) },
  { what: "deeply nested arrays", body: text("[".repeat(5_000) + "]".repeat(5_000)) },
  { what: "a text/plain content type", body: json(valid), contentType: "text/plain" },
  { what: "an XML content type and body", body: text("<order/>"), contentType: "application/xml" },
  { what: "a string x-retry-count", body: json(valid), headers: { [HEADER.retryCount]: "two" } },
  { what: "a negative x-retry-count", body: json(valid), headers: { [HEADER.retryCount]: -1 } },
  { what: "a huge x-retry-count", body: json(valid), headers: { [HEADER.retryCount]: 1e12 } },
  { what: "a fractional x-retry-count", body: json(valid), headers: { [HEADER.retryCount]: 1.5 } },
  { what: "a string x-delay", body: json(valid), headers: { [HEADER.delay]: "soon" } },
  // (A negative x-delay is valid: the delayed-message plugin negates it on delivery.)
  { what: "an array x-delay", body: json(valid), headers: { [HEADER.delay]: [5] } },
  // (A major version this reader does not know is unsupported-version: tests/delivery_test.ts.)
  { what: "a version that is none", body: json(valid), headers: { "x-message-version": "v2" } },
  { what: "an array version", body: json(valid), headers: { "x-message-version": [1, 0] } },
];

Deno.test(`${HOSTILE.length} hostile messages all end in the DLQ as invalid, none retried, and valid orders between them are processed`, async () => {
  assert.ok(HOSTILE.length >= 25);
  const policy = fastPolicy(2, 50);
  await withTopology("hostile", { retryDelays: retryDelays(policy) }, async (ctx) => {
    const { broker, topo } = ctx;
    const { consumer, outcomes, ledger, publisher } = await startConsumer(ctx, policy);
    try {
      const goods: string[] = [];
      const ids = new Map<string, Hostile>();
      for (const [i, hostile] of HOSTILE.entries()) {
        const id = `hostile-${i}`;
        ids.set(id, hostile);
        await publisher.publish(topo.exchange, topo.routingKey, hostile.body, {
          persistent: true,
          mandatory: true,
          messageId: id,
          ...(hostile.contentType ? { contentType: hostile.contentType } : {}),
          ...(hostile.headers ? { headers: hostile.headers } : {}),
        });
        // A valid order right after each hostile one.
        const order = newOrder({ quantity: 1 + i });
        goods.push(order.refCode);
        await publisher.publish(topo.exchange, topo.routingKey, encodeOrder(order), {
          persistent: true,
          mandatory: true,
          messageId: order.refCode,
          contentType: "application/json",
        });
      }
      const isHostile = (o: Outcome) => "messageKey" in o && ids.has(o.messageKey ?? "");
      const settled = await outcomes.until("every hostile message", isHostile, HOSTILE.length);
      await outcomes.until("every valid order", (o) => o.kind === "created", goods.length);
      for (const outcome of settled) {
        const what = ids.get((outcome as { messageKey: string }).messageKey)!.what;
        assert.equal(outcome.kind, "dead-lettered", `${what}: ${JSON.stringify(outcome)}`);
        assert.equal(outcome.kind === "dead-lettered" && outcome.reason, "invalid", what);
      }
      assert.ok(!outcomes.outcomes.some((o) => o.kind === "retried"), "nothing was retried");
      assert.equal(await ledger.countOrders(), goods.length);
      for (const ref of goods) assert.ok(await ledger.findOrder(ref), ref);
      assert.ok(consumer.ready, "the consumer is still consuming");

      const letters = await takeMessages(broker, topo.deadLetterQueue, HOSTILE.length);
      for (const letter of letters) {
        const hostile = ids.get(String(letter.properties.messageId))!;
        const headers = letter.properties.headers ?? {};
        assert.equal(headers[HEADER.reason], "invalid", hostile.what);
        const error = String(headers[HEADER.lastError]);
        // A readable sentence: printable, short, and saying what was wrong.
        assert.match(
          error,
          /^invalid (order|header)|x-retry-count|x-delay/,
          `${hostile.what}: ${error}`,
        );
        assert.ok(
          error.length < 300 && ![...error].some((c) => c.charCodeAt(0) < 9 || c === "\ufffd"),
          `${hostile.what}: ${error}`,
        );
        assert.deepEqual(
          new Uint8Array(letter.content),
          hostile.body,
          `${hostile.what}: body kept`,
        );
      }
      assert.equal(
        await broker.messageCount(topo.deadLetterQueue),
        0,
        "nothing else was dead-lettered",
      );
    } finally {
      await consumer.stop();
      await ledger.close();
    }
  });
});

const CODES = new Set<OrderRejection["code"]>([
  "empty",
  "too_large",
  "content_type",
  "not_utf8",
  "bom",
  "not_json",
  "not_object",
  "missing_field",
  "bad_field",
  "bad_version",
  "unsupported_version",
]);

/** A seeded generator, so a failure can be replayed. */
function seeded(seed: number): () => number {
  return () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed / 2 ** 31;
  };
}

const ODD_VALUES: unknown[] = [
  null,
  true,
  0,
  -0,
  -1,
  1e308,
  2 ** 53,
  "",
  "NaN",
  "\u0000",
  "\ud800",
  [],
  {},
  [1, 2],
  { RefCode: REF },
  "x".repeat(2_000),
];

Deno.test("parseOrder() fuzzed with random bytes and mutated bodies only ever returns an order or a typed rejection", () => {
  const random = seeded(Number(Deno.env.get("FUZZ_SEED") ?? 42));
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const good = encodeOrder(newOrder({ quantity: 7 }));
  const goodText = new TextDecoder().decode(good);
  const fields = ["RefCode", "ColorCode", "Quantity", "EventType", "Extra"];
  const mutations: (() => Uint8Array)[] = [
    // Random bytes.
    () => Uint8Array.from({ length: Math.floor(random() * 300) }, () => Math.floor(random() * 256)),
    // Flipped bytes in a valid body.
    () => good.map((byte) => (random() < 0.05 ? Math.floor(random() * 256) : byte)),
    // A valid body cut short.
    () => good.subarray(0, Math.floor(random() * good.length)),
    // One field set to an odd value, or removed.
    () => {
      const value: Record<string, unknown> = JSON.parse(goodText);
      const field = pick(fields);
      if (random() < 0.2) delete value[field];
      else value[field] = pick(ODD_VALUES);
      return json(value);
    },
    // Random characters spliced into the JSON text.
    () => {
      const at = Math.floor(random() * goodText.length);
      return text(
        goodText.slice(0, at) + pick(['"', "{", "]", ",", ":", "\\", "\u00ff"]) +
          goodText.slice(at),
      );
    },
  ];
  let accepted = 0;
  for (let i = 0; i < 20_000; i++) {
    const body = pick(mutations)();
    let result;
    try {
      result = parseOrder(body, {
        contentType: random() < 0.9
          ? "application/json"
          : pick(["", "text/plain", "application/json;charset=utf-8"]),
      });
    } catch (error) {
      assert.fail(`parseOrder threw ${error} for ${JSON.stringify(Array.from(body))}`);
    }
    if (result.ok) {
      accepted++;
      assert.equal(typeof result.order.refCode, "string");
      assert.ok(Number.isSafeInteger(result.order.quantity) && result.order.quantity >= 0);
    } else {
      assert.ok(CODES.has(result.rejection.code), result.rejection.code);
      assert.equal(typeof result.rejection.message, "string");
      assert.ok(result.rejection.message.length > 0 && result.rejection.message.length < 300);
    }
  }
  assert.ok(accepted > 0, "some mutations stay valid orders");
});
