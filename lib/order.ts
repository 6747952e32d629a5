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
 * Versions: our Estoque says which version of the body it sends in the `x-message-version` header
 * (`major.minor`, {@linkcode MESSAGE_VERSION}); a message without it is a Go body, version 1. The
 * reader is tolerant within major version 1: a field it does not know (a producer that added one,
 * with or without saying so by a minor version) is kept beside the order
 * ({@linkcode ParsedOrder.extra}), not refused. A major version it does not know is refused as
 * `unsupported_version` before the body is read: its fields may mean something else.
 *
 * | `x-message-version` | body                                    | read as                        |
 * | ------------------- | --------------------------------------- | ------------------------------ |
 * | absent              | the Go 3- or 4-field body               | version 1.0                    |
 * | `1.0`               | ours (4 fields)                         | version 1.0                    |
 * | `1.1`, `1`, …       | version 1 with more fields              | the order, its extra fields kept |
 * | `2.0`, `0.9`, …     | anything                                | `unsupported_version`          |
 * | not `N` or `N.N`    | anything                                | `bad_version` (invalid)        |
 *
 * @module
 */

/** The only event type the services know. */
export const EVENT_TYPE_CREATE = "CREATE";

/** The content type Estoque sets and OrdemDeProducao accepts (a missing one is accepted too). */
export const ORDER_CONTENT_TYPE = "application/json";

/** The header in which a producer says which version of the body it sends: `major.minor`. */
export const MESSAGE_VERSION_HEADER = "x-message-version";

/** The version of the body our Estoque sends. */
export const MESSAGE_VERSION = "1.0";

/** The one major version this reader knows: the Go bodies, ours, and any 1.x adding fields. */
export const SUPPORTED_MAJOR_VERSION = 1;

/** A body's version, from the {@linkcode MESSAGE_VERSION_HEADER}. */
export interface MessageVersion {
  readonly major: number;
  readonly minor: number;
  /** As it was given, for messages. */
  readonly text: string;
}

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
    | "bad_field"
    | "bad_version"
    | "unsupported_version";
  /** A sentence for operators, naming the field and the value seen. */
  readonly message: string;
}

/** A valid order, and the fields of its body this reader does not know. */
export interface ParsedOrder {
  readonly ok: true;
  readonly order: Order;
  /**
   * The body's fields besides `RefCode`, `ColorCode`, `Quantity` and `EventType`, as they were
   * (JSON values); absent when there are none.
   */
  readonly extra?: Readonly<Record<string, unknown>>;
}

/** What {@linkcode parseOrder} returns: an order, or the reason there is none. */
export type ParseOrderResult =
  | ParsedOrder
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
  /**
   * The version the message says its body is ({@linkcode readMessageVersion}); undefined for a
   * message without one (a Go body, version 1).
   */
  version?: MessageVersion | undefined;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const FIELDS = ["RefCode", "ColorCode", "Quantity", "EventType"] as const;
const FIELDS_FOLDED = new Map(FIELDS.map((field) => [field.toLowerCase(), field]));

/** The field a body's key names: exactly, or else as Go matches it, ignoring case. */
function fieldOf(key: string): (typeof FIELDS)[number] | undefined {
  return (FIELDS as readonly string[]).includes(key)
    ? key as (typeof FIELDS)[number]
    : FIELDS_FOLDED.get(key.toLowerCase());
}
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

const VERSION = /^(\d{1,6})(?:\.(\d{1,6}))?$/;

/**
 * Reads the value of a message's {@linkcode MESSAGE_VERSION_HEADER}: undefined when absent,
 * `major.minor` text or `major` (text or an integer), or a non-negative number (`1.1` sent as a
 * double) as a version, anything else a rejection
 * `bad_version`. Never throws.
 *
 * @example
 * ```ts
 * readMessageVersion("1.1"); // { major: 1, minor: 1, text: "1.1" }
 * readMessageVersion(2); // { major: 2, minor: 0, text: "2" }
 * readMessageVersion("v2"); // { code: "bad_version", message: "x-message-version must be ..." }
 * ```
 */
export function readMessageVersion(value: unknown): MessageVersion | OrderRejection | undefined {
  if (value === undefined || value === null) return undefined;
  // A number: an AMQP integer, or a double such as 1.1 (which cannot say 1.10: send text).
  const text = typeof value === "number" && Number.isFinite(value) && value >= 0
    ? String(value)
    : typeof value === "string"
    ? value.trim()
    : undefined;
  const match = text === undefined ? null : VERSION.exec(text);
  if (match === null) {
    return {
      code: "bad_version",
      message: `${MESSAGE_VERSION_HEADER} must be a version such as "1.0", got ${preview(value)}`,
    };
  }
  return { major: Number(match[1]), minor: Number(match[2] ?? 0), text: text! };
}

/** The rejection of a RefCode or ColorCode that is not a UUID string. */
function notUuid(field: string, value: unknown): ParseOrderResult {
  return reject("bad_field", `${field} must be a UUID string, got ${preview(value)}`);
}

/**
 * Validates a message body as an order. Never throws: every problem is a typed rejection.
 *
 * Accepted: of a message of major version 1 (or none), a UTF-8 JSON object with `RefCode`,
 * `ColorCode` and `Quantity`; UUID codes, a non-negative integer quantity no larger than
 * `Number.MAX_SAFE_INTEGER`, and `EventType`, when present, `"CREATE"`. Other fields are kept, as
 * {@linkcode ParsedOrder.extra}. The content type, when present, must be `application/json`
 * (parameters such as `charset=utf-8` allowed). A body that starts with a UTF-8 byte order mark is
 * rejected (`bom`), as Go's `json.Unmarshal` rejects it. Another major version is rejected
 * (`unsupported_version`) before the body is looked at.
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
  const version = options.version;
  if (version !== undefined && version.major !== SUPPORTED_MAJOR_VERSION) {
    return reject(
      "unsupported_version",
      `message version ${version.text} is not one this OrdemDeProducao reads (major ` +
        `${SUPPORTED_MAJOR_VERSION}): a newer one must take it`,
    );
  }
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
  const object = value as Record<string, unknown>;
  // The fields as Go's encoding/json fills them: a key names a field exactly or, failing that,
  // case-insensitively, and each key that names one sets it again, so the last one stays.
  const record: Partial<Record<(typeof FIELDS)[number], unknown>> = {};
  let extra: Record<string, unknown> | undefined;
  for (const key in object) {
    const field = fieldOf(key);
    if (field !== undefined) {
      record[field] = object[key];
      continue;
    }
    extra ??= {};
    // Defined, not assigned: a field named __proto__ stays a field.
    Object.defineProperty(extra, key, {
      value: object[key],
      enumerable: true,
      writable: true,
      configurable: true,
    });
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
  const order: Order = {
    refCode: RefCode.toLowerCase(),
    colorCode: ColorCode.toLowerCase(),
    quantity: Quantity,
    eventType: EVENT_TYPE_CREATE,
  };
  return extra === undefined ? { ok: true, order } : { ok: true, order, extra };
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
