/**
 * The outbox relay against the real broker (a topology of its own per test, deleted afterwards)
 * and the real stores (SQLite; PostgreSQL in a schema of its own, dropped afterwards): it publishes
 * in order as `estoque -n` publishes, marks a row sent only after its confirm, publishes again what
 * a lost connection left unconfirmed (OrdemDeProducao's ledger takes it once), waits for an
 * unreachable broker, wakes on a commit rather than polling, shares a PostgreSQL outbox with
 * another relay without publishing a row twice, and forgets sent rows after their retention.
 */

import { strict as assert } from "node:assert";
import { join } from "node:path";
import { commitOutboxRows, outboxOrders } from "../bench/outbox.ts";
import type { Broker } from "../lib/broker.ts";
import { FatalError } from "../lib/errors.ts";
import { setupLogging } from "../lib/log.ts";
import { encodeOrder } from "../lib/order.ts";
import { ESTOQUE_APP_ID } from "../lib/order_properties.ts";
import { OutboxMetrics } from "../lib/outbox_metrics.ts";
import { OutboxRelay, type OutboxRelayOptions } from "../lib/outbox_relay.ts";
import { PostgresStockStore } from "../lib/postgres_stock_store.ts";
import { SqliteStockStore } from "../lib/sqlite_stock_store.ts";
import {
  type OutboxClaim,
  outboxOrder,
  type StockStore,
  StockStoreUnavailableError,
} from "../lib/stock_store.ts";
import type { Topology } from "../lib/topology.ts";
import {
  fastPolicy,
  POSTGRES_URL,
  RABBITMQ_URL,
  startConsumer,
  takeMessages,
  tempDir,
  waitFor,
  within,
  withTopology,
} from "../testing/broker.ts";
import { dropSchema, freePort } from "../testing/postgres.ts";
import { HoldingProxy } from "../testing/proxy.ts";

type Kind = "sqlite" | "postgres";

/** Runs `fn` with a fresh store of `kind`, removed afterwards. */
async function withStore(kind: Kind, fn: (open: () => Promise<StockStore>) => Promise<void>) {
  if (kind === "sqlite") {
    await using dir = await tempDir();
    await fn(() => SqliteStockStore.open(join(dir.path, "stock.sqlite")));
    return;
  }
  const schema = `test_relay_${crypto.randomUUID().slice(0, 8)}`;
  try {
    await fn(() => PostgresStockStore.open(POSTGRES_URL, { schema }));
  } finally {
    await dropSchema(POSTGRES_URL, schema);
  }
}

/** A relay for a test: fast backoff, the test topology already declared. */
function relayOf(
  store: StockStore,
  topo: Topology,
  options: Partial<OutboxRelayOptions> = {},
): OutboxRelay {
  return OutboxRelay.start({
    store,
    urls: [RABBITMQ_URL],
    topology: topo,
    backoff: { initialMs: 250, maxMs: 1_000 },
    ...options,
  });
}

/** Puts `count` requests in the outbox: a colour each, whose one movement crosses its point. */
async function crossings(store: StockStore, count: number, quantity = 7): Promise<string[]> {
  const refs: string[] = [];
  for (let i = 0; i < count; i++) {
    const color = crypto.randomUUID();
    await store.setItem({ color, quantity: 1, reorderPoint: 1, reorderQuantity: quantity + i });
    refs.push((await store.move({ color, delta: -1 })).request!.refCode);
  }
  return refs;
}

/** Waits until the outbox has no unsent row. */
function allSent(store: StockStore, timeoutMs = 15_000): Promise<true> {
  return waitFor(
    "every outbox row sent",
    async () => (await store.outboxStats()).depth === 0 ? true : undefined,
    timeoutMs,
  );
}

/**
 * Waits until the relay counted `count` rows marked sent. The store says so a moment earlier: the
 * mark commits in SQLite's worker before the relay hears back.
 */
async function marked(relay: OutboxRelay, count: number): Promise<void> {
  await waitFor(`${count} rows marked sent`, () => relay.published === count || undefined);
  assert.equal(relay.published, count);
}

for (const kind of ["sqlite", "postgres"] as const) {
  Deno.test(`the relay publishes the outbox in order as estoque -n publishes, and marks a row sent only after its confirm (${kind})`, async () => {
    await withTopology(`relay-order-${kind}`, {}, async ({ broker, topo }) => {
      await withStore(kind, async (open) => {
        await using store = await open();
        await using proxy = HoldingProxy.start(RABBITMQ_URL);
        await using relay = relayOf(store, topo, { urls: [proxy.url] });
        await waitFor("the relay connected", () => relay.connected || undefined);
        proxy.hold(); // the broker's confirms wait in the proxy; what the relay sends goes on
        const refs = await crossings(store, 3);
        // The first request woke the relay: its batch is published and waits for its confirms
        // (the rows made meanwhile wait for the next batch).
        await waitFor(
          "the first batch in the queue",
          async () => await broker.messageCount(topo.queue) >= 1 || undefined,
        );
        const rows = await store.outboxRows();
        assert.deepEqual(rows.map((r) => r.sentAt), [undefined, undefined, undefined]);
        proxy.release();
        await allSent(store);
        await marked(relay, 3);
        const messages = await takeMessages(broker, topo.queue, 3);
        assert.deepEqual(messages.map((m) => m.properties.messageId), refs);
        for (const [i, message] of messages.entries()) {
          const row = rows[i]!;
          assert.deepEqual(new Uint8Array(message.content), encodeOrder(outboxOrder(row)));
          assert.equal(message.properties.contentType, "application/json");
          assert.equal(message.properties.appId, ESTOQUE_APP_ID);
          assert.equal(message.properties.deliveryMode, 2);
          assert.equal(message.properties.timestamp, Math.floor(row.createdAt.getTime() / 1000));
          assert.equal(message.fields.routingKey, topo.routingKey);
        }
      });
    });
  });
}

for (const kind of ["sqlite", "postgres"] as const) {
  Deno.test(`while the broker confirms a batch the relay claims and publishes the next, never more than two at once, in order (${kind})`, async () => {
    await withTopology(`relay-pipelined-${kind}`, {}, async ({ broker, topo }) => {
      await withStore(kind, async (open) => {
        await using real = await open();
        let claimsOpen = 0;
        let most = 0;
        const rowsMade = Promise.withResolvers<void>();
        const store = claimingWith(real, async (limit) => {
          await rowsMade.promise; // every claim sees the twelve rows
          const claim = await real.claimOutbox(limit);
          if (claim.rows.length === 0) return claim;
          most = Math.max(most, ++claimsOpen);
          let ended = false;
          const end = () => ended ? undefined : (ended = true, claimsOpen--);
          return {
            rows: claim.rows,
            finish: (...args) => claim.finish(...args).finally(end),
            abandon: () => claim.abandon().finally(end),
          };
        });
        await using proxy = HoldingProxy.start(RABBITMQ_URL);
        await using relay = relayOf(store, topo, { urls: [proxy.url], batchSize: 4 });
        await waitFor("the relay connected", () => relay.connected || undefined);
        proxy.hold(); // no confirm reaches the relay
        const refs = await crossings(real, 12);
        rowsMade.resolve();
        // The first batch waits for its confirms; the second is claimed and published meanwhile,
        // and the third waits for the first to be marked.
        await waitFor(
          "two batches in the queue before any confirm",
          async () => await broker.messageCount(topo.queue) >= 8 || undefined,
        );
        assert.equal(claimsOpen, 2);
        proxy.release();
        await allSent(real);
        await marked(relay, 12);
        assert.equal(most, 2);
        const messages = await takeMessages(broker, topo.queue, 12);
        assert.deepEqual(messages.map((m) => m.properties.messageId), refs);
      });
    });
  });
}

Deno.test("a relay stopped while it claims gives the claim back unpublished", async () => {
  await withTopology("relay-stop-claiming", {}, async ({ broker, topo }) => {
    await withStore("sqlite", async (open) => {
      await using real = await open();
      const claiming = Promise.withResolvers<void>();
      const release = Promise.withResolvers<void>();
      let held = false;
      const store = claimingWith(real, async (limit) => {
        if (held) {
          claiming.resolve();
          await release.promise;
        }
        return real.claimOutbox(limit);
      });
      const relay = relayOf(store, topo);
      await waitFor("the relay asleep", () => (relay.connected && relay.idle) || undefined);
      held = true;
      await crossings(real, 3);
      await claiming.promise; // woken: its claim is under way
      const stopping = relay.stop();
      release.resolve();
      await stopping;
      assert.equal(await broker.messageCount(topo.queue), 0);
      assert.equal(relay.published, 0);
      const again = await real.claimOutbox(10); // given back: the store holds none of them
      assert.equal(again.rows.length, 3);
      await again.abandon();
    });
  });
});

Deno.test("a PostgreSQL stock store takes two claims of a relay at once only with a connection to spare beside them and the movements' writers", async () => {
  for (const [connections, claims] of [[2, 1], [4, 1], [5, 2], [8, 2]] as const) {
    const schema = `test_claims_${crypto.randomUUID().slice(0, 8)}`;
    try {
      await using store = await PostgresStockStore.open(POSTGRES_URL, {
        schema,
        maxConnections: connections,
      });
      assert.equal(store.outboxClaimsAtOnce, claims, `${connections} connections`);
    } finally {
      await dropSchema(POSTGRES_URL, schema);
    }
  }
});

Deno.test("a request no queue takes stays in the outbox, its failures counted, until it can be routed", async () => {
  await withTopology("relay-unroutable", {}, async ({ broker, topo }) => {
    await withStore("sqlite", async (open) => {
      await using store = await open();
      const channel = await broker.channel();
      await channel.unbindQueue(topo.queue, topo.exchange, topo.routingKey);
      await using relay = relayOf(store, topo, { declare: false });
      await crossings(store, 1);
      await waitFor(
        "two refused publishes",
        async () => (await store.outboxStats()).maxAttempts >= 2 || undefined,
      );
      assert.equal((await store.outboxStats()).depth, 1);
      await channel.bindQueue(topo.queue, topo.exchange, topo.routingKey);
      await channel.close();
      await allSent(store);
      assert.equal(await broker.messageCount(topo.queue), 1);
      await marked(relay, 1);
    });
  });
});

Deno.test("a relay whose connection dies between publish and confirm publishes the row again, and OrdemDeProducao takes it once", async () => {
  await withTopology("relay-lost-confirm", {}, async (ctx) => {
    await withStore("sqlite", async (open) => {
      await using store = await open();
      const { consumer, outcomes, ledger } = await startConsumer(ctx, fastPolicy(2, 50));
      await using _ledger = ledger;
      await using _consumer = consumer;
      await using proxy = HoldingProxy.start(RABBITMQ_URL);
      await using relay = relayOf(store, ctx.topo, { urls: [proxy.url] });
      await waitFor("the relay connected", () => relay.connected || undefined);
      proxy.hold();
      const [ref] = await crossings(store, 1);
      // The broker has the request (the consumer took it); its confirm waits in the proxy.
      await outcomes.until("the request's production order", (o) => o.kind === "created");
      assert.equal((await store.outboxRows())[0]!.sentAt, undefined);
      proxy.cut(); // the relay's connection dies before the confirm reaches it
      await outcomes.until("the copy published again", (o) => o.kind === "duplicate");
      await allSent(store);
      assert.deepEqual(
        outcomes.outcomes.map((o) => [o.kind, "refCode" in o ? o.refCode : undefined]),
        [["created", ref], ["duplicate", ref]],
      );
      assert.equal(await ledger.countOrders(), 1);
    });
  });
});

Deno.test("two relays on one PostgreSQL outbox never publish the same row twice", async () => {
  await withTopology("relay-two", {}, async ({ broker, topo }) => {
    await withStore("postgres", async (open) => {
      await using store = await open();
      await using other = await open();
      await using one = relayOf(store, topo, { batchSize: 20 });
      await using two = relayOf(other, topo, { batchSize: 20 });
      // 20 colours, 15 crossings each, moved at once through both stores.
      const colors = Array.from({ length: 20 }, () => crypto.randomUUID());
      for (const color of colors) {
        await store.setItem({ color, quantity: 1, reorderPoint: 1, reorderQuantity: 5 });
      }
      await Promise.all(colors.map(async (color, i) => {
        const mover = i % 2 === 0 ? store : other;
        for (let n = 0; n < 15; n++) {
          await mover.move({ color, delta: -1 });
          await mover.move({ color, delta: 1 });
        }
      }));
      await allSent(store);
      await waitFor("300 marked", () => one.published + two.published === 300 || undefined);
      const messages = await takeMessages(broker, topo.queue, 300);
      const ids = new Set(messages.map((m) => m.properties.messageId));
      assert.equal(ids.size, 300);
      assert.equal(await broker.messageCount(topo.queue), 0);
    });
  });
});

/**
 * A stand-in for the broker's address on `port`: first it takes connections and drops them at
 * once (a broker that is down), counting them; then, after `forward()`, it passes them to the real
 * broker.
 */
function brokerAddress(port: number) {
  const target = new URL(RABBITMQ_URL);
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  const attempts: number[] = [];
  const attempted = new Set<() => void>();
  let forwarding = false;
  const conns = new Set<Deno.Conn>();
  const serving = (async () => {
    for await (const conn of listener) {
      if (!forwarding) {
        attempts.push(performance.now());
        conn.close();
        for (const check of attempted) check();
        continue;
      }
      const server = await Deno.connect({
        hostname: target.hostname,
        port: Number(target.port) || 5672,
      });
      conns.add(conn).add(server);
      conn.readable.pipeTo(server.writable).catch(() => {});
      server.readable.pipeTo(conn.writable).catch(() => {});
    }
  })().catch(() => {});
  return {
    attempts,
    /** Resolves once `count` connections were dropped. */
    until(count: number): Promise<void> {
      return new Promise((resolve) => {
        const check = () => {
          if (attempts.length < count) return;
          attempted.delete(check);
          resolve();
        };
        attempted.add(check);
        check();
      });
    },
    forward() {
      forwarding = true;
    },
    async [Symbol.asyncDispose]() {
      listener.close();
      await serving;
      for (const conn of conns) {
        try {
          conn.close();
        } catch { /* closed already */ }
      }
    },
  };
}

Deno.test("on one PostgreSQL outbox a claim takes up to a batch and another claim meanwhile finds those rows locked: several relays share only what is beyond a batch", async () => {
  await withStore("postgres", async (open) => {
    await using store = await open();
    await using other = await open();
    await crossings(store, 10);
    const first = await store.claimOutbox(20);
    try {
      assert.equal(first.rows.length, 10, "the whole backlog, within a batch");
      assert.equal((await other.claimOutbox(20)).rows.length, 0, "the other relay's claim");
    } finally {
      await first.abandon();
    }
    const smaller = await other.claimOutbox(4);
    try {
      assert.equal(smaller.rows.length, 4, "at most a batch");
      const rest = await store.claimOutbox(20);
      assert.equal(rest.rows.length, 6, "what is beyond the other's batch");
      await rest.abandon();
    } finally {
      await smaller.abandon();
    }
  });
});

Deno.test("the relay waits while the broker is unreachable, without spinning, and catches up after", async () => {
  await withTopology("relay-unreachable", {}, async ({ broker, topo }) => {
    await withStore("sqlite", async (open) => {
      await using store = await open();
      const port = freePort();
      await using address = brokerAddress(port);
      const url = new URL(RABBITMQ_URL);
      url.hostname = "127.0.0.1";
      url.port = String(port);
      await crossings(store, 5);
      await using relay = relayOf(store, topo, { urls: [url.href] });
      await address.until(3);
      assert.equal((await store.outboxStats()).depth, 5);
      const [first, second, third] = address.attempts as [number, number, number];
      assert.ok(second - first >= 240 && third - second >= 240, `tries ${address.attempts}`);
      await crossings(store, 2);
      address.forward();
      await allSent(store, 20_000);
      assert.equal(await broker.messageCount(topo.queue), 7);
      await marked(relay, 7);
    });
  });
});

/**
 * Runs `fn` with a relay whose PostgreSQL store goes through a proxy (holding what the server
 * sends makes every statement time out, 0.5 s, as a database that stopped answering would), and a
 * store of its own for the movements beside it; the relay asleep on an empty outbox to begin with.
 */
async function withRelayBehindProxy(
  name: string,
  options: Partial<OutboxRelayOptions>,
  fn: (ctx: {
    broker: Broker;
    topo: Topology;
    mover: PostgresStockStore;
    proxy: HoldingProxy;
    relay: OutboxRelay;
  }) => Promise<void>,
): Promise<void> {
  await withTopology(name, {}, async ({ broker, topo }) => {
    const schema = `test_relay_${crypto.randomUUID().slice(0, 8)}`;
    try {
      await using mover = await PostgresStockStore.open(POSTGRES_URL, { schema });
      await using proxy = HoldingProxy.start(POSTGRES_URL);
      await using store = await PostgresStockStore.open(proxy.url, {
        schema,
        statementTimeoutMs: 500,
      });
      await using relay = relayOf(store, topo, options);
      await waitFor("the relay asleep", () => (relay.connected && relay.idle) || undefined);
      await fn({ broker, topo, mover, proxy, relay });
    } finally {
      await dropSchema(POSTGRES_URL, schema);
    }
  });
}

Deno.test("while its PostgreSQL store does not answer the relay pauses, and catches up once it answers again", async () => {
  await withRelayBehindProxy("relay-store-away", { pollMs: 100 }, async (ctx) => {
    const { broker, topo, mover, proxy, relay } = ctx;
    proxy.hold();
    const refs = await crossings(mover, 3);
    await waitFor("the relay paused", () => !relay.storeAvailable || undefined);
    assert.equal((await mover.outboxStats()).depth, 3);
    assert.equal(await broker.messageCount(topo.queue), 0);
    proxy.cut(); // the held connections end; new ones are answered
    await allSent(mover, 30_000);
    assert.ok(relay.storeAvailable);
    const messages = await takeMessages(broker, topo.queue, 3);
    assert.deepEqual(messages.map((m) => m.properties.messageId), refs);
    assert.equal(await broker.messageCount(topo.queue), 0);
  });
});

Deno.test("a relay paused for its PostgreSQL store relays again at the store's first wake-up, not at the end of its backoff", async () => {
  // A backoff of 10-20 s after a failed claim: longer than the test's deadline below.
  const options = { pollMs: 60_000, backoff: { initialMs: 20_000, maxMs: 20_000 } };
  await withRelayBehindProxy("relay-store-back", options, async (ctx) => {
    const { broker, topo, mover, proxy, relay } = ctx;
    proxy.hold();
    await crossings(mover, 3);
    relay.wake(); // it looks, and finds the store away
    await waitFor("the relay paused", () => !relay.storeAvailable || undefined);
    const back = performance.now();
    proxy.cut(); // the store answers again; its LISTEN connection is made again and wakes it
    await allSent(mover, 5_000);
    const ms = performance.now() - back;
    assert.equal(await broker.messageCount(topo.queue), 3);
    assert.ok(ms < 5_000, `relayed again ${Math.round(ms)} ms after the store came back`);
  });
});

for (const kind of ["sqlite", "postgres"] as const) {
  Deno.test(`a movement committed while a claim hangs before failing wakes the relay when that claim fails, not at the end of its backoff (${kind})`, async () => {
    await withTopology(`relay-wake-kept-${kind}`, {}, async ({ broker, topo }) => {
      await withStore(kind, async (open) => {
        await using real = await open();
        // The next claim hangs (a pooled connection whose peer vanished) until let go, then fails
        // as an outage; the backoff after it (20 s) is longer than the test's deadline below.
        let hangNext = false;
        const gate = Promise.withResolvers<void>();
        // Every wake-up the store gives the relay, counted: in-process ones, and on PostgreSQL
        // its NOTIFYs too, which come later, over the LISTEN connection.
        let wakes = 0;
        const store = counting(
          claimingWith(real, async (limit) => {
            if (!hangNext) return await real.claimOutbox(limit);
            hangNext = false;
            await gate.promise;
            throw new StockStoreUnavailableError("the claim's connection timed out");
          }),
          () => wakes++,
        );
        await using relay = relayOf(store, topo, {
          pollMs: 60_000,
          backoff: { initialMs: 20_000, maxMs: 20_000 },
        });
        await waitFor("the relay asleep", () => (relay.connected && relay.idle) || undefined);
        hangNext = true;
        relay.wake();
        await waitFor("the claim hanging", () => !hangNext || undefined);
        const before = wakes;
        await crossings(real, 3); // committed in the relay's process: it is woken meanwhile
        // Every wake-up of the three has come (a NOTIFY heard after the claim failed would wake
        // the relay whatever it kept, and hide a wake-up lost while the claim hung).
        const expected = kind === "postgres" ? 6 : 3;
        await waitFor("every wake-up in", () => wakes - before >= expected || undefined);
        const failed = performance.now();
        gate.resolve();
        await allSent(real, 5_000);
        const ms = performance.now() - failed;
        assert.equal(await broker.messageCount(topo.queue), 3);
        assert.ok(ms < 5_000, `relayed ${Math.round(ms)} ms after the hung claim failed`);
      });
    });
  });
}

for (const kind of ["sqlite", "postgres"] as const) {
  Deno.test(`a commit wakes the relay: the lag is far under the fallback poll (${kind})`, async () => {
    await withTopology(`relay-wake-${kind}`, {}, async ({ broker, topo }) => {
      await withStore(kind, async (open) => {
        await using store = await open();
        // On PostgreSQL the movement comes from another store (another instance): NOTIFY.
        await using mover = kind === "postgres" ? await open() : undefined;
        await using relay = relayOf(store, topo, { pollMs: 60_000 });
        await waitFor("the relay asleep", () => (relay.connected && relay.idle) || undefined);
        const started = performance.now();
        await crossings(mover ?? store, 1);
        await waitFor(
          "the request in the queue",
          async () => await broker.messageCount(topo.queue) === 1 || undefined,
        );
        const lagMs = performance.now() - started;
        assert.ok(lagMs < 1_000, `lag ${lagMs} ms`);
        await allSent(store);
      });
    });
  });
}

Deno.test("sent rows are kept for the retention, then deleted; the metrics show the outbox and the lag", async () => {
  await withTopology("relay-retention", {}, async ({ topo }) => {
    await withStore("sqlite", async (open) => {
      await using store = await open();
      const metrics = new OutboxMetrics({ instanceId: "test", stats: () => store.outboxStats() });
      await crossings(store, 2);
      const before = await metrics.registry.metrics();
      assert.match(before, /^estoque_outbox_depth\{instance_id="test"\} 2$/m);
      assert.match(before, /^estoque_outbox_oldest_unsent_age_seconds\{instance_id="test"\} \d/m);
      await using relay = relayOf(store, topo, { retentionMs: 1_500, purgeEveryMs: 100, metrics });
      await allSent(store);
      await marked(relay, 2);
      // Kept: marked sent, still there.
      const rows = await store.outboxRows();
      assert.equal(rows.length, 2);
      assert.ok(rows.every((r) => r.sentAt !== undefined));
      const after = await metrics.registry.metrics();
      assert.match(after, /^estoque_outbox_depth\{instance_id="test"\} 0$/m);
      assert.match(after, /^estoque_outbox_oldest_unsent_age_seconds\{instance_id="test"\} 0$/m);
      assert.match(after, /^estoque_outbox_publish_lag_seconds_count\{instance_id="test"\} 2$/m);
      assert.match(after, /^estoque_outbox_published_total\{instance_id="test"\} 2$/m);
      await waitFor(
        "sent rows deleted",
        async () => (await store.outboxRows()).length === 0 || undefined,
      );
      // The relay counts the deletion once its delete has returned, just after the rows went.
      await waitFor(
        "the deletion counted",
        async () =>
          /^estoque_outbox_deleted_total\{instance_id="test"\} 2$/m.test(
            await metrics.registry.metrics(),
          ) || undefined,
      );
    });
  });
});

/** The log lines written while `fn` runs, at info and above. */
async function logged(fn: (lines: string[]) => Promise<void>): Promise<void> {
  const lines: string[] = [];
  setupLogging({ level: "info", write: (line) => lines.push(line) });
  try {
    await fn(lines);
  } finally {
    setupLogging({ level: "fatal" });
  }
}

for (const kind of ["sqlite", "postgres"] as const) {
  Deno.test(`an idle relay claims again only when woken or at its poll interval, never in a loop (${kind})`, async () => {
    await withTopology(`relay-no-spin-${kind}`, {}, async ({ topo }) => {
      await withStore(kind, async (open) => {
        await using real = await open();
        let claims = 0;
        const store = claimingWith(real, (limit) => {
          claims++;
          return real.claimOutbox(limit);
        });
        await using relay = relayOf(store, topo, { pollMs: 60_000 });
        await waitFor("the relay asleep", () => (relay.connected && relay.idle) || undefined);
        const asleep = claims;
        // Two movements, each a wake-up (two on PostgreSQL: in-process and NOTIFY), each relayed.
        await crossings(real, 2);
        await allSent(real);
        await waitFor("the relay asleep again", () => relay.idle || undefined);
        const woken = claims - asleep;
        // At most a claim that finds rows and one that finds none, per wake-up; a relay that
        // kept an old wake-up (never cleared) would claim all the time it waited above.
        assert.ok(woken >= 1 && woken <= 8, `${woken} claims for 2 movements`);
        assert.ok(asleep <= 3, `${asleep} claims before the relay was first idle`);
      });
    });
  });
}

/** `store` with `claimOutbox` replaced. */
/** `store` with each wake-up its relay is given also calling `onWake`. */
function counting(store: StockStore, onWake: () => void): StockStore {
  return new Proxy(store, {
    get(target, property) {
      if (property === "listen") {
        return (wake: () => void) =>
          target.listen(() => {
            onWake();
            wake();
          });
      }
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

function claimingWith(
  store: StockStore,
  claimOutbox: (limit: number) => Promise<OutboxClaim>,
): StockStore {
  return new Proxy(store, {
    get(target, property) {
      if (property === "claimOutbox") return claimOutbox;
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

Deno.test("after a batch the broker does not confirm in time the relay claims half as many rows, and twice as many again after batches confirmed whole", async () => {
  await withTopology("relay-slow-confirms", {}, async ({ topo }) => {
    await withStore("sqlite", async (open) => {
      await using real = await open();
      const limits: number[] = [];
      const store = claimingWith(real, (limit) => (limits.push(limit), real.claimOutbox(limit)));
      await using proxy = HoldingProxy.start(RABBITMQ_URL);
      await using relay = relayOf(store, topo, {
        urls: [proxy.url],
        batchSize: 8,
        confirmTimeoutMs: 300,
      });
      await waitFor("the relay connected", () => relay.connected || undefined);
      proxy.hold(); // no confirm comes: the first batch times out
      await crossings(real, 12);
      await waitFor("a batch timed out", async () => {
        const rows = await real.outboxRows();
        return rows.some((r) => r.attempts > 0) || undefined;
      });
      proxy.release();
      await allSent(real);
      const halved = limits.indexOf(4);
      assert.ok(halved > 0 && limits.slice(0, halved).every((l) => l === 8), `${limits}`);
      assert.ok(limits.slice(halved).includes(8), `grown back: ${limits}`);
    });
  });
});

Deno.test("two batches the broker does not confirm in time, the second claimed behind the first, halve the claims once, not twice", async () => {
  await withTopology("relay-two-timeouts", {}, async ({ topo }) => {
    await withStore("sqlite", async (open) => {
      await using real = await open();
      const limits: number[] = [];
      const rowsMade = Promise.withResolvers<void>();
      const store = claimingWith(real, async (limit) => {
        await rowsMade.promise; // the first claim takes 8 of the 12 rows, the second 4
        limits.push(limit);
        return real.claimOutbox(limit);
      });
      await using proxy = HoldingProxy.start(RABBITMQ_URL);
      await using relay = relayOf(store, topo, {
        urls: [proxy.url],
        batchSize: 8,
        confirmTimeoutMs: 300,
      });
      await waitFor("the relay connected", () => relay.connected || undefined);
      proxy.hold(); // neither batch is confirmed: both time out
      await crossings(real, 12);
      rowsMade.resolve();
      await waitFor("both batches timed out", async () => {
        const rows = await real.outboxRows();
        return rows.filter((r) => r.attempts > 0).length === 12 || undefined;
      });
      proxy.release();
      await allSent(real);
      // The first claim after the two timeouts: what the claims after it take depends on how
      // fast the broker confirms once released, not on the halving.
      assert.deepEqual(limits.slice(0, 3), [8, 8, 4], `halved once: ${limits}`);
    });
  });
});

Deno.test("an error that stops the relay in the batch behind one lost with its connection stops the relay; it is not taken for the lost connection", async () => {
  await withTopology("relay-error-behind-lost", {}, async ({ topo }) => {
    await withStore("sqlite", async (open) => {
      await using real = await open();
      const rowsMade = Promise.withResolvers<void>();
      const store = claimingWith(real, async (limit) => {
        await rowsMade.promise;
        return real.claimOutbox(limit);
      });
      let batches = 0;
      const crash = new FatalError("the relay crashed marking its second batch");
      await using proxy = HoldingProxy.start(RABBITMQ_URL);
      const relay = relayOf(store, topo, {
        urls: [proxy.url],
        batchSize: 4,
        confirmTimeoutMs: 300,
        hooks: {
          beforeMarkSent: () => {
            // The first batch times out (the session ends for its connection); the second,
            // settling after it, fails with an error that stops the relay.
            if (++batches === 2) throw crash;
          },
        },
      });
      await waitFor("the relay connected", () => relay.connected || undefined);
      proxy.hold();
      await crossings(real, 8);
      rowsMade.resolve();
      await assert.rejects(
        within(relay.done, 10_000, "the relay stopping"),
        (error) => error === crash,
      );
      assert.equal(batches, 2);
      proxy.release();
      assert.equal((await real.outboxStats()).depth, 8, "nothing marked sent");
    });
  });
});

/**
 * A relay on a SQLite store in front of a proxy, asleep, with a batch of {@linkcode UNREAD_ROWS}
 * rows; then the proxy stops reading what the relay sends, the rows are committed and the relay
 * woken: its batch's writes back up once the buffers between are full (the broker, behind the
 * proxy, sends on but reads nothing; no heartbeat, so it never closes the connection). `fn` runs
 * once the writing first waits for the channel.
 */
async function withUnreadBatch(
  name: string,
  fn: (t: {
    relay: OutboxRelay;
    store: StockStore;
    proxy: HoldingProxy;
    broker: Broker;
    topo: Topology;
  }) => Promise<void>,
): Promise<void> {
  await withTopology(name, {}, async ({ broker, topo }) => {
    await using dir = await tempDir();
    const path = join(dir.path, "stock.sqlite");
    await using store = await SqliteStockStore.open(path);
    await using proxy = HoldingProxy.start(RABBITMQ_URL);
    const url = new URL(proxy.url);
    url.searchParams.set("heartbeat", "0");
    const claimed = Promise.withResolvers<void>();
    const claiming = claimingWith(store, async (limit) => {
      const claim = await store.claimOutbox(limit);
      if (claim.rows.length > 0) claimed.resolve();
      return claim;
    });
    const backedUp = Promise.withResolvers<void>();
    const relay = relayOf(claiming, topo, {
      urls: [url.href],
      batchSize: UNREAD_ROWS,
      confirmTimeoutMs: 1_000,
      hooks: { waitingToWrite: () => backedUp.resolve() },
    });
    try {
      await waitFor("the relay asleep", () => (relay.connected && relay.idle) || undefined);
      proxy.stopReadingClient();
      commitOutboxRows(path, outboxOrders(UNREAD_ROWS), new Date());
      relay.wake();
      await claimed.promise;
      await backedUp.promise; // its writes wait for the channel
      await fn({ relay, store, proxy, broker, topo });
    } finally {
      proxy.readClient();
      await relay.stop().catch(() => {});
    }
  });
}

/** Rows enough that their messages fill the socket buffers between the relay and the broker. */
const UNREAD_ROWS = 20_000;

Deno.test("stop() ends a relay whose broker stopped reading in the middle of a batch, in the confirm timeout and a close; nothing is marked sent", async () => {
  await withUnreadBatch("relay-stop-unread", async ({ relay, store, broker, topo }) => {
    const started = performance.now();
    await within(relay.stop(), 15_000, "the relay stopping");
    const took = performance.now() - started;
    assert.ok(took < 1_000 + 5_000 + 2_000, `stopped after ${took} ms`);
    // What the proxy took before it stopped reading may have been confirmed and marked; nothing
    // else is marked sent.
    const marked = UNREAD_ROWS - (await store.outboxStats()).depth;
    assert.ok(marked < UNREAD_ROWS / 2, `${marked} marked sent`);
    assert.ok(await broker.messageCount(topo.queue) >= marked);
  });
});

Deno.test("a batch whose written rows time out while the rest cannot be written ends the session; once the broker reads again every row is sent", async () => {
  await withUnreadBatch("relay-unread-timeout", async ({ relay, store, proxy }) => {
    await waitFor("the session ended", () => !relay.connected || undefined, 10_000);
    proxy.readClient();
    await allSent(store, 60_000);
  });
});

Deno.test("a claim that fails with an error that is not an outage is logged at error level every time, by its type and code; the store is not called unavailable", async () => {
  await withTopology("relay-claim-bug", {}, async ({ broker, topo }) => {
    await withStore("sqlite", async (open) => {
      await using real = await open();
      let failures = 0;
      const store = claimingWith(real, (limit) => {
        if (failures < 3) {
          failures++;
          const error = Object.assign(new Error('column "attempts" does not exist'), {
            code: "42703",
          });
          return Promise.reject(error);
        }
        return real.claimOutbox(limit);
      });
      await logged(async (lines) => {
        await crossings(real, 1);
        await using relay = relayOf(store, topo, { backoff: { initialMs: 50, maxMs: 100 } });
        let calledUnavailable = false;
        await waitFor("the row sent", async () => {
          calledUnavailable ||= !relay.storeAvailable;
          return (await real.outboxStats()).depth === 0 || undefined;
        });
        assert.equal(calledUnavailable, false);
        const errors = lines.filter((l) => /level="?error/i.test(l) || /\bERR/.test(l));
        const claimErrors = errors.filter((l) => l.includes("42703") && l.includes("Error"));
        assert.equal(claimErrors.length, 3, lines.join(""));
        assert.equal(await broker.messageCount(topo.queue), 1);
      });
    });
  });
});

Deno.test("a publish that fails with an error that is not the broker's is logged by its type, counted on its row, and does not drop the connection", async () => {
  await withTopology("relay-publish-bug", {}, async ({ broker, topo }) => {
    await withStore("sqlite", async (open) => {
      await using real = await open();
      await crossings(real, 2);
      let bad = true;
      // The first claim's first row carries a time no message can have (Invalid Date).
      const store = claimingWith(real, async (limit) => {
        const claim = await real.claimOutbox(limit);
        if (!bad || claim.rows.length === 0) return claim;
        bad = false;
        const rows = claim.rows.map((row, i) =>
          i === 0 ? { ...row, createdAt: new Date(Number.NaN) } : row
        );
        return { ...claim, rows, finish: claim.finish, abandon: claim.abandon };
      });
      await logged(async (lines) => {
        await using relay = relayOf(store, topo, { backoff: { initialMs: 50, maxMs: 100 } });
        await allSent(real);
        const [first, second] = await real.outboxRows();
        assert.equal(first!.attempts, 1);
        assert.equal(second!.attempts, 0);
        const errors = lines.filter((l) => l.includes("RangeError"));
        assert.ok(errors.length >= 1, lines.join(""));
        assert.equal(
          lines.filter((l) => l.includes("relaying the outbox")).length,
          1,
          `reconnected: ${lines.join("")}`,
        );
        assert.ok(relay.connected);
        // The row whose publish failed went again after the one behind it.
        const messages = await takeMessages(broker, topo.queue, 2);
        assert.deepEqual(messages.map((m) => m.properties.messageId), [
          second!.refCode,
          first!.refCode,
        ]);
      });
    });
  });
});
