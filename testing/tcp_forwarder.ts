/**
 * What the test proxies share: a listener on a free loopback port that connects each client to
 * one server and pipes the two through what a proxy makes of them, and keeps every connection and
 * pipe so that it can cut them and close. A proxy says only how the bytes go
 * ({@linkcode TcpForwarder.forward}).
 *
 * @module
 */

/** The port of a URL's server when the URL names none. */
const DEFAULT_PORTS: Record<string, number> = {
  "amqp:": 5672,
  "amqps:": 5671,
  "postgres:": 5432,
  "postgresql:": 5432,
};

/** A proxy to one server; connect through {@linkcode TcpForwarder.url}. */
export abstract class TcpForwarder implements AsyncDisposable {
  readonly #listener: Deno.Listener<Deno.TcpConn, Deno.NetAddr>;
  readonly #target: URL;
  readonly #conns = new Set<Deno.TcpConn>();
  readonly #pipes = new Set<Promise<void>>();
  readonly #accepting: Promise<void>;

  /** Listens on a free loopback port and forwards each connection to the server of `url`. */
  protected constructor(url: string) {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#target = new URL(url);
    this.#accepting = this.#accept();
  }

  /** The URL it was started with, the proxy's address in place of the server's. */
  get url(): string {
    const url = new URL(this.#target);
    url.hostname = "127.0.0.1";
    url.port = String(this.#listener.addr.port);
    return url.href;
  }

  /** Starts the pipes of one client and its server, each through {@linkcode pipe}. */
  protected abstract forward(client: Deno.TcpConn, server: Deno.TcpConn): void;

  /** Keeps a running pipe, so that {@linkcode close} waits for it. */
  protected pipe(running: Promise<void>): void {
    const done = running.catch(() => {}).finally(() => this.#pipes.delete(done));
    this.#pipes.add(done);
  }

  /** Closes `conns` (by default every connection through the proxy) and forgets them. */
  protected drop(conns: Iterable<Deno.TcpConn> = this.#conns): void {
    for (const conn of [...conns]) {
      this.#conns.delete(conn);
      try {
        conn.close();
      } catch {
        // Closed already (its pipe ended).
      }
    }
  }

  /**
   * Cuts every connection through the proxy, as a network failure would: the server sees its
   * clients go (a broker requeues what they had not acknowledged), the clients see the connection
   * drop.
   */
  cut(): void {
    this.drop();
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
        this.forward(client, server);
      }
    } catch {
      // The listener closed.
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
