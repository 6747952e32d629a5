/**
 * A TCP proxy in front of a server (the broker, PostgreSQL), for a fault on one connection only:
 * it can hold what the server sends (confirms, deliveries, the replies to channel opens, query
 * results) while what the client sends still goes through, as a congested link or a server that
 * has stopped answering would, and let it go again; or cut every connection through it, as a
 * network failure would. Nothing else on the server notices.
 *
 * @module
 */

import { TcpForwarder } from "./tcp_forwarder.ts";

/** A proxy to one server; connect through {@linkcode HoldingProxy.url}. */
export class HoldingProxy extends TcpForwarder {
  #gate: PromiseWithResolvers<void> | undefined;

  /** Listens on a free loopback port and forwards each connection to the server of `url`. */
  static start(url: string): HoldingProxy {
    return new HoldingProxy(url);
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

  /** Cuts every connection, as {@linkcode TcpForwarder.cut} does; what was held is dropped. */
  override cut(): void {
    super.cut();
    this.release();
  }

  protected override forward(client: Deno.TcpConn, server: Deno.TcpConn): void {
    this.pipe(client.readable.pipeTo(server.writable));
    this.pipe(this.#serverToClient(server, client));
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
}
