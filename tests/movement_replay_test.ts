// Both stores answering a repeated movement, on SQLite and PostgreSQL, is in stock_store_test.ts;
// here the answer itself, from a recorded movement.
import { strict as assert } from "node:assert";
import { type RecordedMovement, replayedResult } from "../lib/movement_replay.ts";
import { StockError } from "../lib/stock_store.ts";

const RED = "6f1c2a4e-8d3b-4f5a-9c7e-1b2d3e4f5a6b";
const AT = new Date("2026-01-02T03:04:05.000Z");

const recorded: RecordedMovement = {
  id: 7,
  color: RED,
  delta: -3,
  reason: "order 12",
  quantityAfter: 9,
  at: AT,
  refCode: "ref-1",
  outbox: { id: 4, quantity: 50, attempts: 2 },
  reorderPoint: 10,
  reorderQuantity: 60,
};

Deno.test("replayedResult() answers the first movement's result, marked replayed", () => {
  const movement = { color: RED, delta: -3, reason: "order 12", idempotencyKey: "k" };
  assert.deepEqual(replayedResult(recorded, movement), {
    movementId: 7,
    item: {
      color: RED,
      quantity: 9,
      reorderPoint: 10,
      reorderQuantity: 60,
      updatedAt: "2026-01-02T03:04:05.000Z",
    },
    before: 12,
    request: {
      id: 4,
      refCode: "ref-1",
      colorCode: RED,
      quantity: 50,
      createdAt: AT,
      attempts: 2,
    },
    replayed: true,
  });
});

Deno.test("replayedResult() gives a request whose outbox row was deleted id 0 and the reorder quantity of now", () => {
  const movement = { color: RED, delta: -3, reason: "order 12" };
  const result = replayedResult({ ...recorded, outbox: undefined }, movement);
  assert.deepEqual(result.request, {
    id: 0,
    refCode: "ref-1",
    colorCode: RED,
    quantity: 60,
    createdAt: AT,
    attempts: 0,
  });
});

Deno.test("replayedResult() answers no request for a movement that made none", () => {
  const movement = { color: RED, delta: -3, reason: "order 12" };
  const result = replayedResult({ ...recorded, refCode: null, outbox: undefined }, movement);
  assert.equal(result.request, undefined);
  assert.equal(result.replayed, true);
});

Deno.test("replayedResult() refuses a key used for another movement (key_reused), whatever differs", () => {
  const others = [
    { color: "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", delta: -3, reason: "order 12" },
    { color: RED, delta: -4, reason: "order 12" },
    { color: RED, delta: -3, reason: "order 13" },
    { color: RED, delta: -3 },
  ];
  for (const movement of others) {
    assert.throws(
      () => replayedResult(recorded, { ...movement, idempotencyKey: "k" }),
      (error) => error instanceof StockError && error.code === "key_reused",
    );
  }
});

Deno.test("replayedResult() takes a recorded reason of null as no reason", () => {
  const result = replayedResult({ ...recorded, reason: null }, { color: RED, delta: -3 });
  assert.equal(result.movementId, 7);
});
