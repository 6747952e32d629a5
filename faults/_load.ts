/**
 * A fault case's load: a mix of valid, over-limit and invalid orders, each with where it must end
 * (the ledger or the DLQ), published with the project's own reconnecting publisher.
 *
 * @module
 */

import { strict as assert } from "node:assert";
import { OrderFeed, publishFeed } from "../lib/order_feed.ts";
import { encodeOrder, newOrder, type Order } from "../lib/order.ts";
import { ConfirmedPublisher } from "../lib/publisher.ts";
import { DoublingTimeout } from "../lib/backoff.ts";
import { ConnectionLost, keepConnected } from "../lib/reconnect.ts";
import type { Broker, ConnectOptions } from "../lib/broker.ts";
import type { Topology } from "../lib/topology.ts";
import type { Deployment } from "./_deployment.ts";

/** What each RefCode of a load should end as. */
export type Expected = "ledger" | "dlq";

/** A mixed load: orders, the invalid bodies some of them are sent as, and where each should end. */
export interface Load {
  readonly orders: Order[];
  readonly invalidBodies: Map<string, Uint8Array>;
  readonly expected: Map<string, Expected>;
  /** How many should end in the ledger. */
  readonly valid: number;
}

const INVALID_BODIES: ((order: Order) => string)[] = [
  (o) => `{"RefCode":"${o.refCode}",`,
  () => "[]",
  () => "42",
  (o) =>
    JSON.stringify({
      RefCode: o.refCode,
      ColorCode: o.colorCode,
      Quantity: "many",
      EventType: "CREATE",
    }),
  (o) => JSON.stringify({ RefCode: o.refCode, Quantity: 3, EventType: "CREATE" }),
  (o) =>
    JSON.stringify({
      RefCode: o.refCode,
      ColorCode: o.colorCode,
      Quantity: 3,
      EventType: "DELETE",
    }),
  (o) =>
    JSON.stringify({
      RefCode: "not-a-uuid",
      ColorCode: o.colorCode,
      Quantity: 3,
      EventType: "CREATE",
    }),
];

/**
 * `total` orders: `overLimit` share above the quantity limit (retried, then dead-lettered),
 * `invalid` share with a malformed body (dead-lettered at once), the rest valid.
 */
export function makeLoad(total: number, overLimit: number, invalid: number): Load {
  const orders: Order[] = [];
  const invalidBodies = new Map<string, Uint8Array>();
  const expected = new Map<string, Expected>();
  const encoder = new TextEncoder();
  for (let i = 0; i < total; i++) {
    const roll = (i * 7919) % 100 / 100; // an even spread of kinds along the run
    const over = roll < overLimit;
    const bad = !over && roll < overLimit + invalid;
    const order = newOrder({ quantity: over ? 501 + (i % 500) : 1 + (i % 500) });
    orders.push(order);
    if (bad) {
      invalidBodies.set(
        order.refCode,
        encoder.encode(INVALID_BODIES[i % INVALID_BODIES.length]!(order)),
      );
    }
    expected.set(order.refCode, over || bad ? "dlq" : "ledger");
  }
  const valid = [...expected.values()].filter((e) => e === "ledger").length;
  return { orders, invalidBodies, expected, valid };
}

/** How a load is published: Estoque's settings ({@linkcode publishLoad} picks the suite's). */
export interface PublishSettings {
  readonly urls: readonly string[];
  readonly connect?: ConnectOptions;
  /** Orders per second. */
  readonly rate: number;
  readonly confirmTimeoutMs: number;
  /** The first confirm's timeout on each connection (Estoque's `--first-confirm-timeout`). */
  readonly firstConfirmTimeoutMs?: number;
  readonly window: number;
  /** Run on each connection before publishing (Estoque declares its topology). */
  readonly prepare?: (broker: Broker) => Promise<void>;
}

/**
 * Publishes a load to `topology` with Estoque's reconnecting publisher (the feed, the confirm
 * window, a new connection for what failed), with `settings`; asserts every order was confirmed.
 */
export async function publishWith(
  load: Load,
  topology: Topology,
  settings: PublishSettings,
  onConfirmed?: () => void,
): Promise<{ confirmed: number; resent: number }> {
  const feed = new OrderFeed({ count: load.orders.length, makeOrder: (i) => load.orders[i]! });
  const firstConfirm = settings.firstConfirmTimeoutMs === undefined
    ? undefined
    : new DoublingTimeout(settings.firstConfirmTimeoutMs, settings.confirmTimeoutMs);
  await keepConnected(
    { urls: settings.urls, ...(settings.connect ? { connect: settings.connect } : {}) },
    async (broker) => {
      await settings.prepare?.(broker);
      const publisher = new ConfirmedPublisher(await broker.confirmChannel(), {
        timeoutMs: settings.confirmTimeoutMs,
        ...(firstConfirm ? { firstConfirmTimeoutMs: firstConfirm.ms } : {}),
        connection: broker,
      });
      const done = await publishFeed({
        publisher,
        topology,
        feed,
        rate: settings.rate,
        window: settings.window,
        encode: (order) => load.invalidBodies.get(order.refCode) ?? encodeOrder(order),
        onConfirmed,
      });
      if (publisher.answered) firstConfirm?.sufficed();
      else if (publisher.firstTimedOut) firstConfirm?.tooShort();
      if (!done) throw new ConnectionLost("publishes to send again");
    },
  );
  const summary = feed.summary();
  assert.equal(summary.confirmed, load.orders.length, "every order of the load was confirmed");
  return { confirmed: summary.confirmed, resent: summary.resent };
}

/** Publishes a load at `rate` per second with Estoque's reconnecting publisher. */
export function publishLoad(
  dep: Deployment,
  load: Load,
  rate: number,
  onConfirmed?: () => void,
): Promise<{ confirmed: number; resent: number }> {
  return publishWith(load, dep.topo, {
    urls: dep.urls,
    connect: { name: `fault ${dep.name} estoque` },
    rate,
    confirmTimeoutMs: 5_000,
    window: 2_000,
  }, onConfirmed);
}

/** A load as JSON, for a publisher in another process (faults/_publish.ts). */
export function loadToJson(load: Load): string {
  const invalid: Record<string, string> = {};
  for (const [ref, body] of load.invalidBodies) invalid[ref] = new TextDecoder().decode(body);
  return JSON.stringify({
    orders: load.orders,
    invalid,
    expected: Object.fromEntries(load.expected),
  });
}

/** A load written by {@linkcode loadToJson}. */
export function loadFromJson(text: string): Load {
  const data = JSON.parse(text) as {
    orders: Order[];
    invalid: Record<string, string>;
    expected: Record<string, Expected>;
  };
  const encoder = new TextEncoder();
  const invalidBodies = new Map(
    Object.entries(data.invalid).map(([ref, body]) => [ref, encoder.encode(body)]),
  );
  const expected = new Map(Object.entries(data.expected));
  const valid = [...expected.values()].filter((e) => e === "ledger").length;
  return { orders: data.orders, invalidBodies, expected, valid };
}
