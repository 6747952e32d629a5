/** What the benchmark's two sides share: a fresh topology per run, prefill, statistics. */

import { Buffer } from "node:buffer";
import { Broker, type ConnectOptions } from "../lib/broker.ts";
import { encodeOrder, newOrder, type Order, ORDER_CONTENT_TYPE } from "../lib/order.ts";
import { HEADER } from "../lib/retry_headers.ts";
import { type Topology, topology } from "../lib/topology.ts";
import { declareTopology, deleteTopology } from "../lib/declare_topology.ts";
import type { Settings } from "./_settings.ts";

/** One timed run of one side of one case. */
export interface RunResult {
  /** Messages handled. */
  readonly messages: number;
  /** Wall time, in milliseconds. */
  readonly elapsedMs: number;
}

/** What a run gets. */
export interface RunContext {
  readonly url: string;
  /** A connection of the bench's, for set-up (prefill) only. */
  readonly broker: Broker;
  readonly topo: Topology;
  readonly messages: number;
  /** A scratch directory (ledgers). */
  readonly dir: string;
  /** The settings of the side that runs. */
  readonly settings: Settings;
  /** Where our ledger's commit times (milliseconds) go, when a run records them. */
  readonly commitTimes?: number[];
}

/** Runs `fn` on a connection of its own, closed afterwards. */
export async function withConnection<T>(
  url: string,
  options: ConnectOptions,
  fn: (broker: Broker) => Promise<T>,
): Promise<T> {
  const broker = await Broker.connect(url, options);
  try {
    return await fn(broker);
  } finally {
    await broker.close();
  }
}

/**
 * Runs `fn` with a second connection for publishing, as RabbitMQ advises: flow control on a
 * publishing connection then slows only that connection, not the consumer's deliveries.
 */
export function withPublisherConnection<T>(
  url: string,
  fn: (broker: Broker) => Promise<T>,
  options: ConnectOptions = {},
): Promise<T> {
  return withConnection(url, { name: "bench-publisher", ...options }, fn);
}

/** The retry delays of the bench topology: one short tier, one long tier for parking. */
export const BENCH_DELAYS = [200, 3_600_000];

/** Makes a fresh topology, runs `fn`, deletes the topology. */
export async function withBenchTopology<T>(
  url: string,
  fn: (broker: Broker, topo: Topology) => Promise<T>,
  retryDelays: readonly number[] = BENCH_DELAYS,
): Promise<T> {
  const broker = await Broker.connect(url, { name: "bench" });
  const topo = topology({ prefix: `bench.${crypto.randomUUID().slice(0, 8)}.`, retryDelays });
  try {
    await declareTopology(broker, topo);
    return await fn(broker, topo);
  } finally {
    await deleteTopology(broker, topo).catch(() => {});
    await broker.close();
  }
}

/** The orders of a run: distinct RefCodes, a fixed quantity. */
export function orders(n: number, quantity: number): Order[] {
  return Array.from({ length: n }, () => newOrder({ quantity }));
}

/** Publishes bodies straight into a queue (untimed set-up), with confirms. */
export async function prefill(
  broker: Broker,
  queue: string,
  list: Order[],
  headers: Record<string, unknown> = {},
): Promise<void> {
  const channel = await broker.confirmChannel();
  for (const order of list) {
    const ok = channel.sendToQueue(queue, Buffer.from(encodeOrder(order)), {
      persistent: true,
      contentType: ORDER_CONTENT_TYPE,
      messageId: order.refCode,
      headers,
    });
    if (!ok) await new Promise((resolve) => channel.once("drain", resolve));
  }
  await channel.waitForConfirms();
  await channel.close();
}

/** Headers of a message that has used up its retries (for the dead-letter path). */
export const EXHAUSTED = { [HEADER.retryCount]: 3 };

/** The q-quantile (0..1) of numbers, nearest rank. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/**
 * Calls `send(i)` for i = 0..n-1 at `rate` a second, in 5 ms slices; resolves when all are sent,
 * or when `signal` aborts.
 */
export async function paced(
  n: number,
  rate: number,
  send: (i: number) => void,
  signal?: AbortSignal,
): Promise<void> {
  const started = performance.now();
  let sent = 0;
  while (sent < n && !signal?.aborted) {
    const due = Math.min(n, Math.floor(((performance.now() - started) / 1000) * rate) + 1);
    while (sent < due) send(sent++);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Peak RSS (VmHWM) of a process in bytes, read from /proc; undefined when unavailable. */
export async function peakRssOf(pid: number): Promise<number | undefined> {
  try {
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(status);
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Samples how late a 10 ms timer fires, in milliseconds, until `stop()`: the event loop's delay.
 * (Deno's `monitorEventLoopDelay` from node:perf_hooks does not record blocking, so it is measured
 * directly.)
 */
export function sampleLoopDelay(): { stop(): number[] } {
  const delays: number[] = [];
  const period = 10;
  let due = performance.now() + period;
  const timer = setInterval(() => {
    const now = performance.now();
    delays.push(Math.max(0, now - due));
    due = now + period;
  }, period);
  return {
    stop() {
      clearInterval(timer);
      return delays;
    },
  };
}

/**
 * The disk's own commit time: `n` times, appends 4 KiB to a file in `dir` and waits for
 * `fdatasync`; returns each time in milliseconds. A durable ledger cannot commit faster.
 */
export async function fsyncTimes(dir: string, n: number): Promise<number[]> {
  const path = `${dir}/fsync-probe`;
  const block = new Uint8Array(4096).fill(7);
  const times: number[] = [];
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    await file.write(block);
    await file.syncData();
    times.push(performance.now() - started);
  }
  await Deno.remove(path);
  return times;
}
