/**
 * The production-order request that Estoque publishes and OrdemDeProducao consumes.
 *
 * The wire format is the JSON that the Go services marshal from their struct, fields in this
 * order. The Go Estoque has sent three fields since its second commit; its first commit, and our
 * Estoque, add `EventType`:
 *
 * ```json
 * {"RefCode":"<uuid>","ColorCode":"<uuid>","Quantity":42}
 * {"RefCode":"<uuid>","ColorCode":"<uuid>","Quantity":42,"EventType":"CREATE"}
 * ```
 *
 * Both are CREATE orders. The Go OrdemDeProducao ignores `EventType`, so either body works on
 * either consumer.
 *
 * @module
 */

/** The only event type the services know. */
export const EVENT_TYPE_CREATE = "CREATE";

/** The content type Estoque sets and OrdemDeProducao accepts (a missing one is accepted too). */
export const ORDER_CONTENT_TYPE = "application/json";

/** The largest body {@linkcode parseOrder} reads, in bytes. A real order is under 200. */
export const MAX_ORDER_BYTES = 16_384;

/** The largest quantity Estoque picks at random, as the Go Estoque does (`rand.Intn(9999999)`). */
export const MAX_RANDOM_QUANTITY = 9_999_998;

/** A validated production-order request. */
export interface Order {
  /** The order's reference, a UUID in lower case; unique per order and the ledger's key. */
  readonly refCode: string;
  /** The colour's reference, a UUID in lower case. */
  readonly colorCode: string;
  /** How many units to produce: a non-negative safe integer. */
  readonly quantity: number;
  /** Always {@linkcode EVENT_TYPE_CREATE} (a body without `EventType` is a CREATE order). */
  readonly eventType: typeof EVENT_TYPE_CREATE;
}

/** Why a body is not a valid order. */
export interface OrderRejection {
  /** A short machine-readable code, e.g. `"not_json"` or `"bad_field"`. */
  readonly code:
    | "empty"
    | "too_large"
    | "content_type"
    | "not_utf8"
    | "bom"
    | "not_json"
    | "not_object"
    | "missing_field"
    | "unknown_field"
    | "bad_field";
  /** A sentence for operators, naming the field and the value seen. */
  readonly message: string;
}

/** What {@linkcode parseOrder} returns: an order, or the reason there is none. */
export type ParseOrderResult =
  | { readonly ok: true; readonly order: Order }
  | { readonly ok: false; readonly rejection: OrderRejection };

/** Options for {@linkcode parseOrder}. */
export interface ParseOrderOptions {
  /** The message's `content-type` property, if any. */
  contentType?: string | undefined;
  /**
   * The largest body accepted, in bytes.
   * @default {16384}
   */
  maxBytes?: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const FIELDS = ["RefCode", "ColorCode", "Quantity", "EventType"] as const;
const REQUIRED_FIELDS = ["RefCode", "ColorCode", "Quantity"] as const;
// ignoreBOM keeps a byte order mark in the text, so that parseOrder can reject it by name.
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();

function reject(code: OrderRejection["code"], message: string): ParseOrderResult {
  return { ok: false, rejection: { code, message } };
}

/** Quotes a value for an error message, cut short so a huge value cannot flood a log line. */
function preview(value: unknown): string {
  if (typeof value === "number" && !Number.isFinite(value)) {
    return "a number that is not finite (too large for a double)";
  }
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** The rejection of a RefCode or ColorCode that is not a UUID string. */
function notUuid(field: string, value: unknown): ParseOrderResult {
  return reject("bad_field", `${field} must be a UUID string, got ${preview(value)}`);
}

/**
 * Validates a message body as an order. Never throws: every problem is a typed rejection.
 *
 * Accepted: a UTF-8 JSON object with `RefCode`, `ColorCode` and `Quantity` and no other field but
 * `EventType`; UUID codes, a non-negative integer quantity no larger than
 * `Number.MAX_SAFE_INTEGER`, and `EventType`, when present, `"CREATE"`. The content type, when
 * present, must be `application/json` (parameters such as `charset=utf-8` allowed). A body that
 * starts with a UTF-8 byte order mark is rejected (`bom`), as Go's `json.Unmarshal` rejects it.
 *
 * @example
 * ```ts
 * const result = parseOrder(new TextEncoder().encode("[]"));
 * // { ok: false, rejection: { code: "not_object", message: "body is a JSON array, not an object" } }
 * ```
 */
export function parseOrder(body: Uint8Array, options: ParseOrderOptions = {}): ParseOrderResult {
  const maxBytes = options.maxBytes ?? MAX_ORDER_BYTES;
  const contentType = options.contentType;
  // Every message of ours says exactly application/json: only another spelling is normalized.
  if (contentType !== undefined && contentType !== "" && contentType !== ORDER_CONTENT_TYPE) {
    const mediaType = contentType.split(";", 1)[0]!.trim().toLowerCase();
    if (mediaType !== ORDER_CONTENT_TYPE) {
      return reject(
        "content_type",
        `content type must be ${ORDER_CONTENT_TYPE}, got ${preview(contentType)}`,
      );
    }
  }
  if (body.byteLength === 0) return reject("empty", "body is empty");
  if (body.byteLength > maxBytes) {
    return reject("too_large", `body is ${body.byteLength} bytes, over the ${maxBytes}-byte limit`);
  }
  let text: string;
  try {
    text = decoder.decode(body);
  } catch {
    return reject("not_utf8", "body is not valid UTF-8");
  }
  if (text.charCodeAt(0) === 0xfeff) {
    return reject("bom", "body starts with a UTF-8 byte order mark (EF BB BF) before the JSON");
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return reject("not_json", `body is not JSON: ${(error as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    const kind = Array.isArray(value) ? "a JSON array" : value === null ? "null" : typeof value;
    return reject("not_object", `body is ${kind}, not an object`);
  }
  const record = value as Record<string, unknown>;
  for (const key in record) {
    if (!(FIELDS as readonly string[]).includes(key)) {
      return reject("unknown_field", `unknown field ${preview(key)}`);
    }
  }
  for (const field of REQUIRED_FIELDS) {
    if (!(field in record)) return reject("missing_field", `field ${field} is missing`);
  }
  const { RefCode, ColorCode, Quantity, EventType } = record;
  if (typeof RefCode !== "string" || !UUID.test(RefCode)) return notUuid("RefCode", RefCode);
  if (typeof ColorCode !== "string" || !UUID.test(ColorCode)) {
    return notUuid("ColorCode", ColorCode);
  }
  if (typeof Quantity !== "number" || !Number.isSafeInteger(Quantity) || Quantity < 0) {
    return reject(
      "bad_field",
      `Quantity must be a non-negative integer up to ${Number.MAX_SAFE_INTEGER}, got ${
        preview(Quantity)
      }`,
    );
  }
  if (EventType !== undefined && EventType !== EVENT_TYPE_CREATE) {
    return reject("bad_field", `EventType must be "CREATE", got ${preview(EventType)}`);
  }
  return {
    ok: true,
    order: {
      refCode: RefCode.toLowerCase(),
      colorCode: ColorCode.toLowerCase(),
      quantity: Quantity,
      eventType: EVENT_TYPE_CREATE,
    },
  };
}

/**
 * The `RefCode` string of a body that is not a valid order, when it has one, for log lines about
 * it; `undefined` otherwise. Never throws.
 */
export function peekRefCode(body: Uint8Array): string | undefined {
  if (body.byteLength === 0 || body.byteLength > MAX_ORDER_BYTES) return undefined;
  try {
    const value: unknown = JSON.parse(decoder.decode(body).replace(/^\uFEFF/, ""));
    const ref = typeof value === "object" && value !== null
      ? (value as Record<string, unknown>).RefCode
      : undefined;
    return typeof ref === "string" && ref.length > 0 ? ref.slice(0, 64) : undefined;
  } catch {
    return undefined;
  }
}

/** Encodes an order exactly as the Go services marshal it (field order included). */
export function encodeOrder(order: Order): Uint8Array {
  return encoder.encode(JSON.stringify({
    RefCode: order.refCode,
    ColorCode: order.colorCode,
    Quantity: order.quantity,
    EventType: order.eventType,
  }));
}

/** A range of quantities, both ends included. */
export interface QuantityRange {
  readonly min: number;
  readonly max: number;
}

/** Options for {@linkcode newOrder}. */
export interface NewOrderOptions {
  /**
   * A fixed quantity, or a range to draw one from; by default one is drawn from 0 to
   * {@linkcode MAX_RANDOM_QUANTITY}, as the Go Estoque does.
   */
  quantity?: number | QuantityRange | undefined;
  /**
   * The source of randomness for the quantity, returning a number in [0, 1).
   * @default {Math.random}
   */
  random?: () => number;
  /**
   * The source of UUIDs.
   * @default {crypto.randomUUID}
   */
  uuid?: () => string;
}

/** Makes a new order with fresh UUIDs, as Estoque does. */
export function newOrder(options: NewOrderOptions = {}): Order {
  const random = options.random ?? Math.random;
  const uuid = options.uuid ?? (() => crypto.randomUUID());
  return {
    refCode: uuid(),
    colorCode: uuid(),
    quantity: typeof options.quantity === "number"
      ? options.quantity
      : drawQuantity(options.quantity ?? { min: 0, max: MAX_RANDOM_QUANTITY }, random),
    eventType: EVENT_TYPE_CREATE,
  };
}

function drawQuantity(range: QuantityRange, random: () => number): number {
  return range.min + Math.floor(random() * (range.max - range.min + 1));
}
