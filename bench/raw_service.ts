/**
 * Raw amqplib as two processes, the baseline of the services' path (bench/_services.ts): one
 * consumes the work queue and acks in bulk, one publishes N orders with confirms in a bounded,
 * bursty window, each on its own connection, at raw's end-to-end settings. Not a command for
 * users.
 *
 *   deno run -A bench/raw_service.ts consume --queue Q -n N --prefetch P --writes as-is|coalesced
 *   deno run -A bench/raw_service.ts publish --exchange E --routing-key K -n N --window W --writes …
 *
 * The consumer prints `ready` once it consumes and `done <ms>` at its last ack; the publisher
 * prints `publishing` just before its first publish. Times are milliseconds since the epoch
 * (`performance.timeOrigin + performance.now()`). Env: RABBITMQ_URL.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { parseArgs } from "node:util";
import { DEFAULT_RABBITMQ_URL } from "../lib/broker.ts";
import { encodeOrder, newOrder } from "../lib/order.ts";
import { orderProperties } from "../lib/order_properties.ts";
import { BatchedAcks, publishWindowed, rawConnect } from "./_raw_client.ts";
import { RAW_START, type Settings, type Writes } from "./_settings.ts";

/** Milliseconds since the epoch, to the microsecond: the same clock in every process here. */
export const epochMs = (): number => performance.timeOrigin + performance.now();

const { positionals, values } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    queue: { type: "string" },
    exchange: { type: "string" },
    "routing-key": { type: "string" },
    n: { type: "string", short: "n" },
    prefetch: { type: "string", default: "0" },
    window: { type: "string", default: "0" },
    writes: { type: "string", default: "as-is" },
  },
});

const url = Deno.env.get("RABBITMQ_URL") ?? DEFAULT_RABBITMQ_URL;
const count = Number(values.n);
const settings: Settings = {
  ...RAW_START,
  prefetch: Number(values.prefetch),
  window: Number(values.window),
  writes: values.writes as Writes,
};

if (import.meta.main) {
  const broker = await rawConnect(url, settings, `bench-raw-${positionals[0]}`);
  try {
    if (positionals[0] === "consume") {
      const channel = await broker.channel();
      await channel.prefetch(settings.prefetch);
      const done = Promise.withResolvers<number>();
      const acks = new BatchedAcks(channel, (upTo) => {
        if (upTo >= count) done.resolve(epochMs());
      });
      await channel.consume(values.queue!, (message) => {
        if (!message) return;
        JSON.parse(message.content.toString());
        acks.settle(message);
      });
      console.log("ready");
      console.log(`done ${await done.promise}`);
      await channel.close();
    } else if (positionals[0] === "publish") {
      const channel = await broker.confirmChannel();
      console.log("publishing");
      await publishWindowed(channel, count, () => {
        const order = newOrder({ quantity: 42 });
        return {
          exchange: values.exchange!,
          routingKey: values["routing-key"]!,
          content: Buffer.from(encodeOrder(order)),
          options: orderProperties(order, Date.now()),
        };
      }, settings.window);
      await channel.close();
    } else {
      throw new TypeError(`raw_service.ts consume|publish, got ${JSON.stringify(positionals[0])}`);
    }
  } finally {
    await broker.close();
  }
}
