/**
 * One delivery as the consumer reads it, before any work: its identity, which pass of it this is,
 * and its body parsed. A pure step; the record then travels through every step of its handling.
 *
 * @module
 */

import type { ConsumeMessage } from "amqplib";
import {
  MESSAGE_VERSION_HEADER,
  parseOrder,
  type ParseOrderResult,
  peekRefCode,
  readMessageVersion,
} from "./order.ts";
import { HEADER, readDelay, readIntegerHeader, readRetryCount } from "./retry_headers.ts";

/** One delivery: what travels through every step of its handling. */
export interface Delivery {
  /** The message as the broker delivered it. */
  readonly message: ConsumeMessage;
  /**
   * Its identity, for de-duplication and logs: the message id, else the RefCode in its body (the
   * Go services set no message id, and their retry copies drop ours).
   */
  readonly key: string | undefined;
  /** Which pass of it this is: `<replays>:<retries>`. */
  readonly hop: string;
  /** The retries it had before this delivery (`x-retry-count`). */
  readonly retries: number;
}

/** What {@linkcode readDelivery} found. */
export interface ReadDelivery {
  readonly delivery: Delivery;
  /** The body, as an order or the reason it is none. */
  readonly parsed: ParseOrderResult;
  /** Set when the retry headers are ill-typed: the delivery is invalid, whatever its body. */
  readonly invalid?: unknown;
}

/**
 * Reads a delivery's identity, hop and retry count, and parses its body as the version its
 * `x-message-version` says (none: a Go body). Never throws: ill-typed `x-retry-count`,
 * `x-replay-count` or `x-delay` headers come back as `invalid`; a version that is not one, and a
 * major version this reader does not know, as rejections of the body.
 */
export function readDelivery(message: ConsumeMessage): ReadDelivery {
  const headers = message.properties.headers ?? {};
  const version = readMessageVersion(headers[MESSAGE_VERSION_HEADER]);
  const parsed: ParseOrderResult = version !== undefined && "code" in version
    ? { ok: false, rejection: version }
    : parseOrder(message.content, { contentType: message.properties.contentType, version });
  const id = message.properties.messageId;
  const key = typeof id === "string" && id.length > 0
    ? id
    : parsed.ok
    ? parsed.order.refCode
    : peekRefCode(message.content);
  try {
    const retries = readRetryCount(headers);
    const hop = `${readIntegerHeader(headers, HEADER.replayCount) ?? 0}:${retries}`;
    readDelay(headers); // an ill-typed x-delay makes the message invalid, like x-retry-count
    return { delivery: { message, key, hop, retries }, parsed };
  } catch (error) {
    return { delivery: { message, key, hop: "0:0", retries: 0 }, parsed, invalid: error };
  }
}
