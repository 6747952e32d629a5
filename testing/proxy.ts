/**
 * A TCP proxy in front of a server (the broker, PostgreSQL), for a fault on one connection only:
 * it can hold what the server sends (confirms, deliveries, the replies to channel opens, query
 * results) while what the client sends still goes through, as a congested link or a server that
 * has stopped answering would, and let it go again; or cut every connection through it, as a
 * network failure would. Nothing else on the server notices.
 *
 * @module
 */

/** The port of a URL's server when the URL names none. */
const DEFAULT_PORTS: Record<string, number> = { "amqp:": 5672, "amqps:": 5671, "postgres:": 5432 };

/** A proxy to one server; connect through {@linkcode HoldingProxy.url}. */
export class HoldingProxy implements AsyncDisposable {
  readonly #listener: Deno.Listener<Deno.TcpConn, Deno.NetAddr>;
  readonly #target: URL;
  readonly #conns = new Set<Deno.TcpConn>();
  readonly #pipes = new Set<Promise<void>>();
  #gate: PromiseWithResolvers<void> | undefined;
  #accepting: Promise<void>;

  private constructor(listener: Deno.Listener<Deno.TcpConn, Deno.NetAddr>, target: URL) {
    this.#listener = listener;
    this.#target = target;
    this.#accepting = this.#accept();
  }

  /** Listens on a free loopback port and forwards each connection to the server of `url`. */
  static start(url: string): HoldingProxy {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    return new HoldingProxy(listener, new URL(url));
  }

  /** The URL it was started with, the proxy's address in place of the server's. */
  get url(): string {
    const url = new URL(this.#target);
    url.hostname = "127.0.0.1";
    url.port = String(this.#listener.addr.port);
    return url.href;
  }

  /** Whether what the server sends is being held. */
  get holding(): boolean {
    return this.#gate !== undefined;
  }

  /** From now on, what the server sends waits in the proxy (what the client sends goes on). */
  hold(): void {
    this.#gate ??= Promise.withResolvers<void>();
  }

  /** Lets what was held go on to the client, in order, and stops holding. */
  release(): void {
    const gate = this.#gate;
    this.#gate = undefined;
    gate?.resolve();
  }

  /**
   * Cuts every connection through the proxy, as a network failure would: the server sees its
   * clients go (a broker requeues what they had not acknowledged), the clients see the connection
   * drop. What was held is dropped.
   */
  cut(): void {
    for (const conn of this.#conns) {
      try {
        conn.close();
      } catch {
        // Closed already (its pipe ended).
      }
    }
    this.#conns.clear();
    this.release();
  }

  async #accept(): Promise<void> {
    try {
      for await (const client of this.#listener) {
        const port = Number(this.#target.port) || DEFAULT_PORTS[this.#target.protocol] || 5672;
        const server = await Deno.connect({ hostname: this.#target.hostname, port });
        client.setNoDelay(true);
        server.setNoDelay(true);
        this.#conns.add(client);
        this.#conns.add(server);
        this.#pipe(client.readable.pipeTo(server.writable));
        this.#pipe(this.#serverToClient(server, client));
      }
    } catch {
      // The listener closed.
    }
  }

  #pipe(running: Promise<void>): void {
    const done = running.catch(() => {}).finally(() => this.#pipes.delete(done));
    this.#pipes.add(done);
  }

  async #serverToClient(server: Deno.TcpConn, client: Deno.TcpConn): Promise<void> {
    const writer = client.writable.getWriter();
    try {
      for await (const chunk of server.readable) {
        while (this.#gate) await this.#gate.promise;
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
    this.cut();
    await Promise.all(this.#pipes);
  }

  /** Closes the proxy. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
