/**
 * The pause state on the broker (lib/control_store.ts, lib/control_lock.ts) and a process's ear
 * on it (lib/control_listener.ts), against real brokers: the last change is kept for readers that
 * come later, one message and no more; readers and writers on many connections at once take turns
 * (without the lock, a reader would find the queue empty while another holds the state); the lock
 * goes with its holder's connection; with QUEUE_TYPE=quorum, on 3.10, 4.0 and 4.3, reading does not wear
 * the state out; and a listener that starts while changes keep coming ends on the last one.
 */

import { strict as assert } from "node:assert";
import { Broker } from "../lib/broker.ts";
import { type InstanceAnswer, type PauseState } from "../lib/control.ts";
import { ControlListener } from "../lib/control_listener.ts";
import { ControlLockError, readPauseState, withControlLock } from "../lib/control_lock.ts";
import {
  changeAudited,
  type ChangeEffect,
  ControlChangeError,
  ControlClient,
} from "../lib/control_store.ts";
import { RABBITMQ_URL, waitFor } from "../testing/broker.ts";
import { withControl } from "../testing/control_plane.ts";
import { HoldingProxy } from "../testing/proxy.ts";
import { EVERY_BROKER } from "../testing/other_brokers.ts";

/** `count` connections, closed by the returned disposer. */
async function connections(count: number, name: string, url = RABBITMQ_URL) {
  const brokers = await Promise.all(
    Array.from({ length: count }, (_, i) => Broker.connect(url, { name: `${name} ${i}` })),
  );
  return Object.assign(brokers, {
    [Symbol.asyncDispose]: () => Promise.all(brokers.map((b) => b.close())).then(() => {}),
  });
}

const pause = (reason: string) => ({ paused: true, by: "test", reason });
const resume = { paused: false, by: "test", reason: "" };

Deno.test("a change is kept for readers that come later, as one message: the last", async () => {
  await withControl("ctl-keep", async (broker, topo) => {
    assert.equal((await readPauseState(broker, topo)).seq, 0, "never paused");
    await using client = await ControlClient.open(broker, topo);
    await client.change(pause("first"));
    await client.change(resume);
    const { before, after } = await client.change(pause("third"));
    assert.equal(before.paused, false);
    assert.equal(after.seq, 3);
    await using later = await Broker.connect(RABBITMQ_URL, { name: "test ctl-keep later" });
    const read = await readPauseState(later, topo);
    assert.deepEqual(read, after);
    assert.equal(await broker.messageCount(topo.control.stateQueue), 1, "the last change only");
  });
});

Deno.test("12 readers on 12 connections at once all read the pause: they take turns with the state", async () => {
  await withControl("ctl-readers", async (broker, topo) => {
    await using client = await ControlClient.open(broker, topo);
    const { after } = await client.change(pause("maintenance"));
    await using readers = await connections(12, "test ctl-readers");
    for (let round = 0; round < 3; round++) {
      const states = await Promise.all(readers.map((r) => readPauseState(r, topo)));
      assert.deepEqual(states.map((s) => s.seq), readers.map(() => after.seq), `round ${round}`);
    }
    assert.equal(await broker.messageCount(topo.control.stateQueue), 1);
  });
});

Deno.test("changes from 6 connections at once are made one at a time: seq 1 to 6, and the last is kept", async () => {
  await withControl("ctl-writers", async (broker, topo) => {
    await using writers = await connections(6, "test ctl-writers");
    const clients = await Promise.all(writers.map((w) => ControlClient.open(w, topo)));
    const made = await Promise.all(
      clients.map((c, i) => c.change(i % 2 === 0 ? pause(`writer ${i}`) : resume)),
    );
    const seqs = made.map((m) => m.after.seq).sort((a, b) => a - b);
    assert.deepEqual(seqs, [1, 2, 3, 4, 5, 6]);
    for (const m of made) assert.equal(m.before.seq, m.after.seq - 1, "each read the one before");
    const last = made.find((m) => m.after.seq === 6)!.after;
    assert.deepEqual(await readPauseState(broker, topo), last);
    assert.equal(await broker.messageCount(topo.control.stateQueue), 1);
    await Promise.all(clients.map((c) => c.close()));
  });
});

Deno.test("the lock is freed when its holder's connection goes, and a reader waits for it at most its timeout", async () => {
  await withControl("ctl-lock", async (broker, topo) => {
    const holder = await Broker.connect(RABBITMQ_URL, { name: "test ctl-lock holder" });
    const held = Promise.withResolvers<void>();
    const holding = withControlLock(holder, topo, () => held.promise).catch(() => {});
    // The holder has the lock once another connection cannot get it.
    const refused = await waitFor("the lock held", async () => {
      const error = await readPauseState(broker, topo, { lockTimeoutMs: 50 }).then(
        () => undefined,
        (e) => e,
      );
      return error instanceof ControlLockError ? error : undefined;
    });
    assert.match(refused.message, /held .*control\.lock for 50 ms/);
    await holder.close(); // crashes, holding it
    assert.equal((await readPauseState(broker, topo, { lockTimeoutMs: 5_000 })).seq, 0);
    held.resolve();
    await holding;
  });
});

for (const [label, target] of EVERY_BROKER) {
  Deno.test(`with QUEUE_TYPE=quorum (${label}), 40 reads do not wear the state out: every read gives it back`, async () => {
    await withControl("ctl-quorum", async (broker, topo) => {
      await using client = await ControlClient.open(broker, topo);
      const { after } = await client.change(pause("quorum"));
      for (let i = 0; i < 40; i++) assert.equal((await client.read()).seq, after.seq, `read ${i}`);
      assert.equal(await broker.messageCount(topo.control.stateQueue), 1);
    }, { url: target.url, quorum: true });
  });
}

Deno.test("a listener gets the state at start and each change after it in order, and answers whoever asks", async () => {
  await withControl("ctl-listen", async (broker, topo) => {
    await using client0 = await ControlClient.open(broker, topo);
    await client0.change(pause("before it started"));
    const seen: PauseState[] = [];
    await using listener = await ControlListener.start({
      broker,
      topology: topo,
      name: "listener-1",
      onState: (state) => void seen.push(state),
      answer: () => ({
        instanceId: "listener-1",
        paused: seen.at(-1)?.paused ?? false,
        seq: seen.at(-1)?.seq ?? 0,
        consuming: false,
        inFlight: 0,
        at: new Date().toISOString(),
      }),
    });
    assert.deepEqual(seen.map((s) => s.seq), [1], "the state read at start");
    const answers: InstanceAnswer[] = [];
    await using client = await ControlClient.open(broker, topo, {
      onAnswer: (answer) => answers.push(answer),
    });
    await client.change(resume);
    await client.change(pause("again"));
    await waitFor("two answers", () => answers.length >= 2 || undefined);
    assert.deepEqual(seen.map((s) => [s.seq, s.paused]), [[1, true], [2, false], [3, true]]);
    assert.deepEqual(answers.map((a) => [a.seq, a.paused]), [[2, false], [3, true]]);
    await client.ping();
    await waitFor("the answer to the ping", () => answers.length >= 3 || undefined);
    assert.equal(answers[2]!.instanceId, "listener-1");
    assert.ok(listener);
  });
});

Deno.test("listeners that start while changes keep coming from another connection each end on the last change", async () => {
  await withControl("ctl-storm", async (broker, topo) => {
    await using writer = await Broker.connect(RABBITMQ_URL, { name: "test ctl-storm writer" });
    await using client = await ControlClient.open(writer, topo);
    let last = 0;
    let stop = false;
    const storm = (async () => {
      for (let i = 0; !stop || i < 5; i++) {
        last = (await client.change(i % 2 === 0 ? pause(`storm ${i}`) : resume)).after.seq;
      }
    })();
    const listeners: { listener: ControlListener; seen: PauseState[] }[] = [];
    try {
      for (let i = 0; i < 8; i++) {
        const seen: PauseState[] = [];
        const listener = await ControlListener.start({
          broker,
          topology: topo,
          name: `storm-${i}`,
          onState: (state) => void seen.push(state),
        });
        listeners.push({ listener, seen });
      }
    } finally {
      stop = true;
      await storm;
    }
    for (const [i, { seen }] of listeners.entries()) {
      await waitFor(`listener ${i} on seq ${last}`, () => seen.at(-1)?.seq === last || undefined);
      const seqs = seen.map((s) => s.seq);
      // What it read at start, then each change after it, each once, in order.
      for (let j = 1; j < seqs.length; j++) assert.equal(seqs[j], seqs[j - 1]! + 1, `${seqs}`);
    }
    await Promise.all(listeners.map(({ listener }) => listener.close()));
  });
});

Deno.test("a change the broker does not confirm in time is audited all the same, with what the state read back says", async () => {
  await withControl("ctl-unconfirmed", async (broker, topo) => {
    await using proxy = HoldingProxy.start(RABBITMQ_URL);
    await using held = await Broker.connect(proxy.url, { name: "test ctl-unconfirmed held" });
    await using client = await ControlClient.open(held, topo, {
      confirmTimeoutMs: 300,
      lockTimeoutMs: 300,
    });
    const audited: [number, ChangeEffect][] = [];
    const error = await changeAudited(
      client,
      pause("unconfirmed"),
      (state, effect) => Promise.resolve(void audited.push([state.seq, effect])),
      // Called between the read and the publish: from then on the broker's answers are held.
      () => (proxy.hold(), new Date()),
    ).then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof ControlChangeError, String(error));
    assert.deepEqual(audited, [[1, "unknown"]], "audited, though not confirmed");
    proxy.release();
    // It was in effect: the broker had it.
    const read = await readPauseState(broker, topo, { lockTimeoutMs: 5_000 });
    assert.equal(read.id, error.attempted.id);
    // And read back when the broker answers, it is audited as in effect.
    await using answering = await ControlClient.open(broker, topo);
    const effects: ChangeEffect[] = [];
    await changeAudited(
      answering,
      resume,
      (_, effect) => Promise.resolve(void effects.push(effect)),
    );
    assert.deepEqual(effects, ["confirmed"]);
  });
});

Deno.test("a change whose connection goes silent lets the lock go by its deadline: its own connection is dropped, and another change gets the lock", async () => {
  await withControl("ctl-silent", async (broker, topo) => {
    await using proxy = HoldingProxy.start(RABBITMQ_URL);
    const opened: Broker[] = [];
    // The client's long-lived connection and each change's own go through the proxy, with
    // heartbeats slow enough that only the change's deadline can end it (as under a resource
    // alarm, where the broker's heartbeats still come).
    await using main = await Broker.connect(proxy.url, {
      name: "test ctl-silent main",
      heartbeatSeconds: 60,
    });
    await using client = await ControlClient.open(main, topo, {
      connect: async () => {
        const own = await Broker.connect(proxy.url, {
          name: "test ctl-silent change",
          heartbeatSeconds: 60,
        });
        opened.push(own);
        return { broker: own };
      },
      changeTimeoutMs: 1_000,
    });
    // Let go first, pass or fail: closing the client waits for the broker's answer.
    await using _release = { [Symbol.asyncDispose]: () => Promise.resolve(proxy.release()) };
    const locked = Promise.withResolvers<void>();
    const started = performance.now();
    // Called holding the lock, between the read and the publish: from then on nothing answers.
    const silent = client.change(pause("silent"), () => {
      proxy.hold();
      locked.resolve();
      return new Date();
    }).then(() => undefined, (e: unknown) => e);
    await locked.promise;
    await using other = await ControlClient.open(broker, topo, { lockTimeoutMs: 5_000 });
    const { before, after } = await other.change(resume);
    const tookMs = performance.now() - started;
    assert.ok(tookMs < 2_500, `the lock was let go after ${Math.round(tookMs)} ms`);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const error = await Promise.race([
      silent,
      new Promise((resolve) => timer = setTimeout(() => resolve("still running"), 3_000)),
    ]).finally(() => clearTimeout(timer));
    assert.ok(error instanceof ControlChangeError, `the silent change ended: ${error}`);
    assert.equal(before.id, error.attempted.id, "the broker had taken the silent change");
    assert.equal(after.seq, 2);
    assert.equal(opened.length, 1, "the change ran on a connection of its own");
  });
});

Deno.test("a change on a connection of its own closes it when done, and a client without one changes on the connection it was given", async () => {
  await withControl("ctl-own", async (broker, topo) => {
    const opened: Broker[] = [];
    await using client = await ControlClient.open(broker, topo, {
      connect: async () => {
        const own = await Broker.connect(RABBITMQ_URL, { name: "test ctl-own change" });
        opened.push(own);
        return { broker: own };
      },
    });
    assert.equal((await client.change(pause("own"))).after.seq, 1);
    assert.equal((await client.readWithin(5_000)).seq, 1);
    assert.equal(opened.length, 2, "one connection for the change, one for the read");
    assert.ok(opened.every((b) => !b.isOpen), "each closed");
    assert.ok(broker.isOpen);
  });
});
