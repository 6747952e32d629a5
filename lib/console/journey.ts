/**
 * An order's journey by RefCode: every step the system knows of, from the ledger (each hop the
 * order was passed on at, with its error and delay; its production order, by which instance, with
 * the fields of its body this reader did not know) and
 * from the dead-letter queue (each dead letter of it, headers and body byte for byte).
 *
 * @module
 */

import { type DeadLetter, deadLetterJson } from "../dead_letters.ts";
import { MESSAGE_VERSION_HEADER, parseOrder, readMessageVersion } from "../order.ts";
import type { LedgerJourney } from "../ledger.ts";

/** One step of a journey, oldest first. */
export interface JourneyStep {
  /** `published`, `retried`, `dead-lettered`, `created`, `replayed` or `in-dlq`. */
  readonly kind: string;
  /** When (ISO 8601), if known. */
  readonly at: string | undefined;
  /** The attempt (retries before it), where known. */
  readonly attempt: number | undefined;
  /** What an operator reads: the error, the delay, the instance. */
  readonly detail: string;
}

/**
 * A dead letter as the journey shows it: what `dlq show --json` prints, with headers and
 * properties as plain JSON, and the body as text (null when it is not UTF-8) and always as hex.
 * Of a body larger than the console keeps, the text and hex are of its first bytes only, and
 * `bodyTruncated` says so; `bodyBytes` is always the whole body's size. `messageVersion` is its
 * `x-message-version` (null: none, a Go body), and `extraFields` the fields of a valid order's
 * body that this reader does not know, kept as they were (null when the body is no order).
 */
export type ShownDeadLetter = Record<string, unknown> & {
  readonly bodyText: string | null;
  readonly bodyHex: string;
  readonly bodyBytes: number;
  readonly bodyTruncated: boolean;
  readonly messageVersion: string | null;
  readonly extraFields: Readonly<Record<string, unknown>> | null;
};

/** A dead letter's version header as text, and the fields of its order this reader does not know. */
function versionAndExtras(
  letter: DeadLetter,
): Pick<ShownDeadLetter, "messageVersion" | "extraFields"> {
  const raw = letter.headers[MESSAGE_VERSION_HEADER];
  const version = readMessageVersion(raw);
  const messageVersion = raw === undefined || raw === null ? null : String(raw);
  if (letter.body.byteLength < letter.size || (version !== undefined && "code" in version)) {
    return { messageVersion, extraFields: null };
  }
  const contentType = letter.properties.contentType;
  const parsed = parseOrder(letter.body, {
    contentType: typeof contentType === "string" ? contentType : undefined,
    version,
  });
  return { messageVersion, extraFields: parsed.ok ? parsed.extra ?? {} : null };
}

/** Everything known of one RefCode. */
export interface Journey {
  readonly refCode: string;
  readonly steps: readonly JourneyStep[];
  readonly deadLetters: readonly ShownDeadLetter[];
  readonly productionOrder: LedgerJourney["order"];
}

/** A dead letter for the page: body as text where it is UTF-8, and always as hex. */
export function showDeadLetter(letter: DeadLetter): ShownDeadLetter {
  const { body, bodyBase64: _base64, ...shown } = deadLetterJson(letter, true);
  return {
    ...shown,
    bodyText: typeof body === "string" ? body : null,
    bodyHex: Array.from(letter.body, (b) => b.toString(16).padStart(2, "0")).join(""),
    bodyBytes: letter.size,
    bodyTruncated: letter.body.byteLength < letter.size,
    ...versionAndExtras(letter),
  };
}

/** What a step says of the fields of an order's body this reader does not know: their names. */
function keptFields(extra: Readonly<Record<string, unknown>> | null | undefined): string {
  const names = Object.keys(extra ?? {});
  return names.length === 0 ? "" : ` (fields this reader does not know, kept: ${names.join(", ")})`;
}

/** The attempt of a hop `<replays>:<retries>`. */
function hopParts(hop: string): { replays: number; retries: number } | undefined {
  // `<replays>:<retries>`, then `@` and which physical message it was (copy_identity.ts).
  const match = /^(\d+):(\d+)(?:@.*)?$/.exec(hop);
  return match ? { replays: Number(match[1]), retries: Number(match[2]) } : undefined;
}

/**
 * Puts the ledger's record and the dead letters of a RefCode in order; undefined when nothing is
 * known of it.
 */
export function buildJourney(
  refCode: string,
  ledger: LedgerJourney,
  deadLetters: readonly DeadLetter[],
): Journey | undefined {
  if (ledger.order === undefined && ledger.forwards.length === 0 && deadLetters.length === 0) {
    return undefined;
  }
  const steps: JourneyStep[] = [];
  const published = deadLetters.map((l) => l.properties.timestamp).find((t) =>
    typeof t === "number"
  );
  if (typeof published === "number") {
    steps.push({
      kind: "published",
      at: new Date(published * 1000).toISOString(),
      attempt: undefined,
      detail: "by Estoque (the message's timestamp)",
    });
  }
  const replaysSeen = new Set<number>();
  for (const forward of ledger.forwards) {
    const hop = hopParts(forward.hop);
    if (hop && hop.replays > 0 && !replaysSeen.has(hop.replays)) {
      replaysSeen.add(hop.replays);
      steps.push({
        kind: "replayed",
        at: undefined,
        attempt: 0,
        detail: `replay ${hop.replays} from the dead-letter queue`,
      });
    }
    const by = forward.instanceId ? ` (by ${forward.instanceId})` : "";
    const error = forward.error ?? "error not recorded";
    steps.push({
      kind: forward.outcome,
      at: forward.at,
      attempt: hop?.retries,
      detail: forward.outcome === "retried"
        ? `attempt failed: ${error}; retried${
          forward.delayMs === undefined ? "" : ` after ${forward.delayMs / 1000} s`
        }${by}`
        : `attempt failed: ${error}; dead-lettered${by}`,
    });
  }
  const order = ledger.order;
  if (order !== undefined) {
    steps.push({
      kind: "created",
      at: order.createdAt,
      attempt: order.attempt,
      detail:
        `production order created by ${order.instanceId}: ${order.quantity} of colour ${order.colorCode}${
          keptFields(order.extra)
        }`,
    });
  }
  for (const letter of deadLetters) {
    const { extraFields } = versionAndExtras(letter);
    steps.push({
      kind: "in-dlq",
      at: letter.deadLetteredAt?.toISOString(),
      attempt: letter.attempts,
      detail: `in the dead-letter queue now: ${letter.reason}${
        letter.lastError ? `: ${letter.lastError}` : ""
      }${keptFields(extraFields)}`,
    });
  }
  return {
    refCode,
    steps,
    deadLetters: deadLetters.map(showDeadLetter),
    productionOrder: order,
  };
}
