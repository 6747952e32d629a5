/**
 * The production-order request that Estoque publishes and OrdemDeProducao consumes.
 *
 * The wire format is the JSON that the Go services marshal from their struct, fields in this
 * order:
 *
 * ```json
 * {"RefCode":"<uuid>","ColorCode":"<uuid>","Quantity":42,"EventType":"CREATE"}
 * ```
 *
 * @module
 */

/** The only event type the services know. */
export const EVENT_TYPE_CREATE = "CREATE";

/** The content type Estoque sets and OrdemDeProducao accepts (a missing one is accepted too). */
export const ORDER_CONTENT_TYPE = "application/json";

/** The largest body {@linkcode parseOrder} reads, in bytes. A real order is under 200. */
export const MAX_ORDER_BYTES = 16_384;

/** The largest quantity Estoque picks at random, as the Go original did (`rand.Intn(10000000)`). */
export const MAX_RANDOM_QUANTITY = 9_999_999;

/** A validated production-order request. */
export interface Order {
  /** The order's reference, a UUID in lower case; unique per order and the ledger's key. */
  readonly refCode: string;
  /** The colour's reference, a UUID in lower case. */
  readonly colorCode: string;
  /** How many units to produce: a non-negative safe integer. */
  readonly quantity: number;
  /** Always {@linkcode EVENT_TYPE_CREATE}. */
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
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
const encoder = new TextEncoder();

function reject(code: OrderRejection["code"], message: string): ParseOrderResult {
  return { ok: false, rejection: { code, message } };
}

/** Quotes a value for an error message, cut short so a huge value cannot flood a log line. */
function preview(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/**
 * Validates a message body as an order. Never throws: every problem is a typed rejection.
 *
 * Accepted: a UTF-8 JSON object with exactly the four fields, UUID codes, a non-negative integer
 * quantity no larger than `Number.MAX_SAFE_INTEGER`, and `EventType` `"CREATE"`. The content type,
 * when present, must be `application/json` (parameters such as `charset=utf-8` allowed).
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
  if (contentType !== undefined && contentType !== "") {
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
  for (const key of Object.keys(record)) {
    if (!(FIELDS as readonly string[]).includes(key)) {
      return reject("unknown_field", `unknown field ${preview(key)}`);
    }
  }
  for (const field of FIELDS) {
    if (!(field in record)) return reject("missing_field", `field ${field} is missing`);
  }
  const { RefCode, ColorCode, Quantity, EventType } = record;
  for (const [field, code] of [["RefCode", RefCode], ["ColorCode", ColorCode]] as const) {
    if (typeof code !== "string" || !UUID.test(code)) {
      return reject("bad_field", `${field} must be a UUID string, got ${preview(code)}`);
    }
  }
  if (typeof Quantity !== "number" || !Number.isSafeInteger(Quantity) || Quantity < 0) {
    return reject(
      "bad_field",
      `Quantity must be a non-negative integer up to ${Number.MAX_SAFE_INTEGER}, got ${
        preview(Quantity)
      }`,
    );
  }
  if (EventType !== EVENT_TYPE_CREATE) {
    return reject("bad_field", `EventType must be "CREATE", got ${preview(EventType)}`);
  }
  return {
    ok: true,
    order: {
      refCode: (RefCode as string).toLowerCase(),
      colorCode: (ColorCode as string).toLowerCase(),
      quantity: Quantity,
      eventType: EVENT_TYPE_CREATE,
    },
  };
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

/** Options for {@linkcode newOrder}. */
export interface NewOrderOptions {
  /** A fixed quantity; by default one is drawn from 0 to {@linkcode MAX_RANDOM_QUANTITY}. */
  quantity?: number | undefined;
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
    quantity: options.quantity ?? Math.floor(random() * (MAX_RANDOM_QUANTITY + 1)),
    eventType: EVENT_TYPE_CREATE,
  };
}
