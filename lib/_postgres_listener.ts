/**
 * A PostgreSQL `LISTEN` that lasts: a connection of its own, made again with backoff when it is
 * lost, for the relays of the PostgreSQL stock store.
 *
 * @module
 */

import pg from "pg";
import { backoffDelay } from "./backoff.ts";

/** A channel being listened to. */
export interface ChannelListener {
  /** Stops listening and closes the connection. */
  close(): Promise<void>;
}

/**
 * LISTENs on `channel` at the database of `connectionString`; `wake` is called for each
 * notification, and once each time the connection is made (what was notified while there was none
 * is not delivered: the caller looks for itself). Resolves after the first attempt to connect,
 * whether it worked or not; attempts go on, with backoff, until closed.
 */
export async function listenChannel(
  connectionString: string,
  channel: string,
  wake: () => void,
): Promise<ChannelListener> {
  let closed = false;
  let client: pg.Client | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let round = 0;
  const connect = async () => {
    if (closed) return;
    const next = new pg.Client({
      connectionString,
      application_name: "estoque relay",
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    });
    let lost = false;
    const retry = () => {
      if (lost || closed) return;
      lost = true;
      next.end().catch(() => {});
      if (client === next) client = undefined;
      timer = setTimeout(connect, backoffDelay(++round, { maxMs: 5_000 }));
    };
    next.on("error", retry);
    next.on("end", retry);
    next.on("notification", () => wake());
    try {
      await next.connect();
      await next.query(`LISTEN "${channel}"`);
    } catch {
      retry();
      return;
    }
    if (closed) {
      await next.end().catch(() => {});
      return;
    }
    client = next;
    round = 0;
    wake(); // what was committed before this connection listened
  };
  await connect();
  return {
    close: async () => {
      if (closed) return;
      closed = true;
      clearTimeout(timer);
      await client?.end().catch(() => {});
      client = undefined;
    },
  };
}
