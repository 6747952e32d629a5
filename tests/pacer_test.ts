import { strict as assert } from "node:assert";
import { Pacer } from "../lib/pacer.ts";

/**
 * Drives a pacer as publishFeed() does, on a clock that moves only when the loop sleeps (sending
 * takes no time) and whose timers fire `lateMs` late; `heldAt` holds the loop that long before
 * the given order, as a full window would. Returns when each order went, in milliseconds.
 */
function drive(
  rate: number,
  orders: number,
  { lateMs = 0, heldAt = new Map<number, number>() } = {},
): number[] {
  let now = 0;
  const pacer = new Pacer(rate, () => now);
  const at: number[] = [];
  while (at.length < orders) {
    const held = heldAt.get(at.length);
    if (held !== undefined) {
      heldAt.delete(at.length);
      now += held;
      pacer.held(held);
      continue;
    }
    const wait = pacer.wait();
    if (wait > 4) {
      now += wait + lateMs;
      continue;
    }
    at.push(now);
    pacer.sent();
  }
  return at;
}

Deno.test("Pacer: the first order is due at once, the next ones a slot apart", () => {
  assert.deepEqual(drive(20, 4), [0, 50, 100, 150]);
});

Deno.test("Pacer: timers that fire late do not slow the rate: what fell due meanwhile goes at once", () => {
  // 600 orders at 600/s, every timer 3 ms late (a loaded machine): about 1 s, not 1.6 s.
  const at = drive(600, 600, { lateMs: 3 });
  const last = at.at(-1)!;
  assert.ok(last <= 1_000 + 10, `600 orders at 600/s took ${last.toFixed(0)} ms`);
});

Deno.test("Pacer: after the loop was held, the schedule moves to now instead of bursting through the backlog", () => {
  // 40 orders at 20/s, held 2 s before the 10th: the 30 after it still go at 20/s.
  const at = drive(20, 40, { heldAt: new Map([[10, 2_000]]) });
  const after = at.slice(10);
  const burst = after.filter((t) => t - after[0]! < 100).length;
  assert.ok(burst <= 3, `${burst} orders went within 100 ms of the stall's end`);
  assert.ok(after.at(-1)! - after[0]! >= 29 * 50 - 5 * 29);
});

Deno.test("Pacer: a short hold while behind after late timers forgives the hold only, not the lateness", () => {
  // 600 orders at 600/s, timers 3 ms late, and a 1 ms hold (a socket to drain) every 4 orders:
  // at most about 1 s plus the 149 ms held, not the rate falling short by the lateness too.
  const heldAt = new Map(
    Array.from({ length: 149 }, (_, i) => [(i + 1) * 4, 1] as [number, number]),
  );
  const at = drive(600, 600, { lateMs: 3, heldAt });
  const last = at.at(-1)!;
  assert.ok(last <= 1_000 + 149 + 10, `600 orders at 600/s took ${last.toFixed(0)} ms`);
});
