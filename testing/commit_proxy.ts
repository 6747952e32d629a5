/**
 * A TCP proxy in front of PostgreSQL that can lose the answer to a COMMIT: armed, it passes the
 * next `COMMIT` the client sends, drops what the server answers to it (the server has committed),
 * and cuts the connection, as a network failure at the worst moment would. The client cannot tell
 * whether its transaction committed. Every other byte goes through as it is.
 *
 * @module
 */

const COMMIT = new TextEncoder().encode("COMMIT\0");

/** Whether `chunk` holds `needle`. */
function holds(chunk: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= chunk.length; i++) {
    for (let j = 0; j < needle.length; j++) {
      if (chunk[i + j] !== needle[j]) continue outer;
    }
    return true;
  }
  return false;
}

/** A proxy to one PostgreSQL; connect through {@linkcode CommitDroppingProxy.url}. */
export class CommitDroppingProxy implements AsyncDisposable {
  readonly #listener: Deno.Listener<Deno.TcpConn, Deno.NetAddr>;
  readonly #target: URL;
  readonly #conns = new Set<Deno.TcpConn>();
  readonly #pipes = new Set<Promise<void>>();
  #armed: PromiseWithResolvers<void> | undefined;
  #marker: Uint8Array | undefined;
  readonly #accepting: Promise<void>;

  private constructor(listener: Deno.Listener<Deno.TcpConn, Deno.NetAddr>, target: URL) {
    this.#listener = listener;
    this.#target = target;
    this.#accepting = this.#accept();
  }

  /** Listens on a free loopback port and forwards each connection to the server of `url`. */
  static start(url: string): CommitDroppingProxy {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    return new CommitDroppingProxy(listener, new URL(url));
  }

  /** The URL it was started with, the proxy's address in place of the server's. */
  get url(): string {
    const url = new URL(this.#target);
    url.hostname = "127.0.0.1";
    url.port = String(this.#listener.addr.port);
    return url.href;
  }

  /**
   * Loses the answer to the next COMMIT any client sends through the proxy (with `after`, the next
   * one of a transaction that sent SQL holding `after`, e.g. `INSERT INTO stock_movements`);
   * resolves once the server has answered it (it committed) and that connection has been cut.
   */
  dropNextCommit(after?: string): Promise<void> {
    this.#marker = after === undefined ? undefined : new TextEncoder().encode(after);
    this.#armed ??= Promise.withResolvers<void>();
    return this.#armed.promise;
  }

  async #accept(): Promise<void> {
    try {
      for await (const client of this.#listener) {
        const port = Number(this.#target.port) || 5432;
        const server = await Deno.connect({ hostname: this.#target.hostname, port });
        this.#conns.add(client);
        this.#conns.add(server);
        const state = { committing: undefined as PromiseWithResolvers<void> | undefined };
        this.#pipe(this.#clientToServer(client, server, state));
        this.#pipe(this.#serverToClient(server, client, state));
      }
    } catch {
      // The listener closed.
    }
  }

  #pipe(running: Promise<void>): void {
    const done = running.catch(() => {}).finally(() => this.#pipes.delete(done));
    this.#pipes.add(done);
  }

  async #clientToServer(
    client: Deno.TcpConn,
    server: Deno.TcpConn,
    state: { committing: PromiseWithResolvers<void> | undefined },
  ): Promise<void> {
    const writer = server.writable.getWriter();
    let marked = false;
    try {
      for await (const chunk of client.readable) {
        if (this.#marker && holds(chunk, this.#marker)) marked = true;
        if (holds(chunk, COMMIT)) {
          if (this.#armed && state.committing === undefined && (!this.#marker || marked)) {
            state.committing = this.#armed;
            this.#armed = undefined;
          }
          marked = false;
        }
        await writer.write(chunk);
      }
    } finally {
      await writer.close().catch(() => {});
    }
  }

  async #serverToClient(
    server: Deno.TcpConn,
    client: Deno.TcpConn,
    state: { committing: PromiseWithResolvers<void> | undefined },
  ): Promise<void> {
    const writer = client.writable.getWriter();
    try {
      for await (const chunk of server.readable) {
        if (state.committing) {
          // The server's answer to the COMMIT: dropped, and the connection cut both ways.
          for (const conn of [client, server]) {
            this.#conns.delete(conn);
            try {
              conn.close();
            } catch {
              // Closed already.
            }
          }
          state.committing.resolve();
          return;
        }
        await writer.write(chunk);
      }
    } finally {
      await writer.close().catch(() => {});
    }
  }

  /** Closes the listener and every connection through the proxy. */
  async close(): Promise<void> {
    this.#listener.close();
    await this.#accepting;
    for (const conn of this.#conns) {
      try {
        conn.close();
      } catch {
        // Closed already.
      }
    }
    this.#conns.clear();
    await Promise.all(this.#pipes);
  }

  /** Closes the proxy. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
