import { strict as assert } from "node:assert";
import type { ConsumeMessage } from "amqplib";
import { readDelivery } from "../lib/delivery.ts";
import { LedgerUnavailableError, TransientError } from "../lib/errors.ts";
import { FailurePath, type FailurePathOptions } from "../lib/failure_path.ts";
import type { Forwarder } from "../lib/forwarder.ts";
import type { Ledger, LedgerWrite } from "../lib/ledger.ts";
import { encodeOrder, newOrder } from "../lib/order.ts";
import type { Outcome } from "../lib/outcome.ts";
import { HEADER } from "../lib/retry_headers.ts";
import { DEFAULT_RETRY_POLICY } from "../lib/retry_policy.ts";

/** An over-limit order as the broker would deliver it, with `headers`. */
function message(headers: Record<string, unknown>): ConsumeMessage {
  return {
    content: encodeOrder(newOrder({ quantity: 900 })),
    fields: {
      deliveryTag: 1,
      redelivered: false,
      exchange: "productionorder",
      routingKey: "create",
      consumerTag: "test",
    },
    properties: { headers, messageId: "m-1" },
  } as unknown as ConsumeMessage;
}

/** A failure path over fakes that record what it asks of them. */
function path(options: {
  forwarded?: boolean | Error;
  passOn?: "retried" | "refused";
} = {}) {
  const seen = {
    lookups: [] as string[][],
    passedOn: [] as { copyId: string | undefined }[],
    writes: [] as LedgerWrite[],
    acks: 0,
    requeues: 0,
    putBack: 0,
    order: [] as string[],
  };
  const ledger = {
    wasForwarded: (key: string, hop: string) => {
      seen.lookups.push([key, hop]);
      const forwarded = options.forwarded ?? false;
      return forwarded instanceof Error ? Promise.reject(forwarded) : Promise.resolve(forwarded);
    },
  } as unknown as Ledger;
  const forwarder = {
    passOnUntilTaken: (_delivery: unknown, failure: { copyId?: string }) => {
      seen.passedOn.push({ copyId: failure.copyId });
      seen.order.push("confirmed");
      return Promise.resolve(
        options.passOn === "refused"
          ? { kind: "refused", error: "channel closed" }
          : { kind: "retried", messageKey: "m-1", retry: 1, delayMs: 5_000, error: "too many" },
      );
    },
  } as unknown as Forwarder;
  const fakes: FailurePathOptions = {
    ledger,
    policy: DEFAULT_RETRY_POLICY,
    random: () => 0.5,
    now: () => new Date(0),
    forwarder,
    passOnOptions: { delay: () => 0, stopping: () => false },
    record: (write) => {
      seen.writes.push(write);
      seen.order.push("recorded");
      return Promise.resolve("recorded");
    },
    ack: () => {
      seen.acks++;
      seen.order.push("acked");
    },
    requeue: () => void seen.requeues++,
    putBack: (delivery) => {
      seen.putBack++;
      return { kind: "requeued", messageKey: delivery.key, error: "ledger away" } as Outcome;
    },
    trip: () => {},
  };
  return { failures: new FailurePath(fakes), seen };
}

const overLimit = new TransientError("maximum quantity exceeded: 900 > 500");

Deno.test("FailurePath: a copy of ours whose hop was passed on already is acked and dropped, never passed on again", async () => {
  const { failures, seen } = path({ forwarded: true });
  const { delivery } = readDelivery(
    message({ [HEADER.retryCount]: 1, [HEADER.copyId]: "c:ab/0:0" }),
  );
  const outcome = await failures.fail(delivery, overLimit);
  assert.deepEqual(outcome, { kind: "skipped", messageKey: "m-1" });
  assert.deepEqual(seen.lookups, [["m-1", "0:1@c:ab/0:0"]]);
  assert.equal(seen.passedOn.length, 0);
  assert.equal(seen.acks, 1);
  assert.equal(seen.writes.length, 0);
});

Deno.test("FailurePath: a copy of ours not passed on yet goes on as the next copy of its chain, recorded under its hop, acked after the confirm", async () => {
  const { failures, seen } = path();
  const { delivery } = readDelivery(
    message({ [HEADER.retryCount]: 1, [HEADER.copyId]: "c:ab/0:0" }),
  );
  const outcome = await failures.fail(delivery, overLimit);
  assert.equal(outcome.kind, "retried");
  assert.deepEqual(seen.passedOn, [{ copyId: "c:ab/0:1" }]);
  assert.deepEqual(
    seen.writes.map((w) => w.kind === "forward" ? [w.messageKey, w.hop, w.outcome] : []),
    [["m-1", "0:1@c:ab/0:0", "retried"]],
  );
  assert.deepEqual(seen.order, ["confirmed", "recorded", "acked"]);
});

Deno.test("FailurePath: a message that is not a copy of ours is never looked up, and goes on with a copy id of its own", async () => {
  const { failures, seen } = path({ forwarded: true }); // would be dropped if looked up
  const { delivery } = readDelivery(message({}));
  const outcome = await failures.fail(delivery, overLimit);
  assert.equal(outcome.kind, "retried");
  assert.deepEqual(seen.lookups, []);
  const copyId = seen.passedOn[0]?.copyId ?? "";
  assert.match(copyId, /^c:[0-9a-f]{32}\/0:0$/);
  assert.equal(seen.writes[0]?.kind === "forward" && seen.writes[0].hop, `0:0@${copyId}`);
});

Deno.test("FailurePath: a ledger outage on the lookup puts the delivery back, passing nothing on", async () => {
  const { failures, seen } = path({ forwarded: new LedgerUnavailableError("database is locked") });
  const { delivery } = readDelivery(message({ [HEADER.copyId]: "c:ab/0:0" }));
  const outcome = await failures.fail(delivery, overLimit);
  assert.equal(outcome.kind, "requeued");
  assert.equal(seen.putBack, 1);
  assert.deepEqual([seen.passedOn.length, seen.acks, seen.writes.length], [0, 0, 0]);
});

Deno.test("FailurePath: a copy refused while the consumer stops sends the original back unchanged, unacked and unrecorded", async () => {
  const { failures, seen } = path({ passOn: "refused" });
  const { delivery } = readDelivery(message({}));
  const outcome = await failures.fail(delivery, overLimit);
  assert.deepEqual(outcome, { kind: "requeued", messageKey: "m-1", error: "channel closed" });
  assert.deepEqual([seen.requeues, seen.acks, seen.writes.length], [1, 0, 0]);
});
