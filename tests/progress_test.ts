import { strict as assert } from "node:assert";
import { Progress } from "../lib/progress.ts";

function clock() {
  let now = 0;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

Deno.test("Progress draws a bar in place on a terminal, at most every 100 ms", () => {
  const out: string[] = [];
  const time = clock();
  const progress = new Progress({
    label: "replayed",
    total: 200,
    interactive: true,
    write: (t) => out.push(t),
    now: time.now,
  });
  progress.update(10);
  assert.equal(out.length, 0, "nothing before 100 ms");
  time.advance(1_000);
  progress.update(100);
  time.advance(50);
  progress.update(120);
  assert.deepEqual(out, ["\rreplayed [###############---------------] 50% 100/200 100/s "]);
  progress.done(200);
  assert.equal(out.at(-1), "\n");
  assert.match(out.at(-2)!, /100% 200\/200/);
});

Deno.test("Progress off a terminal writes a plain line every 2 s, and nothing for short work", () => {
  const out: string[] = [];
  const time = clock();
  const quick = new Progress({
    label: "published",
    total: 10,
    interactive: false,
    write: (t) => out.push(t),
    now: time.now,
  });
  time.advance(500);
  quick.update(10);
  quick.done(10);
  assert.equal(out.length, 0);

  const time2 = clock();
  const slow = new Progress({
    label: "published",
    total: 1000,
    interactive: false,
    write: (t) => out.push(t),
    now: time2.now,
  });
  time2.advance(2_000);
  slow.update(400);
  time2.advance(1_000);
  slow.update(500);
  slow.done(1000);
  assert.deepEqual(out, ["published: 400/1000 (40%), 200/s\n"]);
});
