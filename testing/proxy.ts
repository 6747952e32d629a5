/**
 * A TCP proxy in front of a server (the broker, PostgreSQL), for a fault on one connection only:
 * it can hold what the server sends (confirms, deliveries, the replies to channel opens, query
 * results) while what the client sends still goes through, as a congested link or a server that
 * has stopped answering would, and let it go again; stop reading what the client sends, as a
 * server that no longer reads its socket does (the client's writes back up once the buffers between
 * are full); or cut every connection through it, as a network failure would. Nothing else on the
 * server notices.
 *
 * @module
 */

import { TcpForwarder } from "./tcp_forwarder.ts";

/** A proxy to one server; connect through {@linkcode HoldingProxy.url}. */
export class HoldingProxy extends TcpForwarder {
  #gate: PromiseWithResolvers<void> | undefined;
  /** Reads from the server still to let go before holding ({@linkcode HoldingProxy.holdAfter}). */
  #passing: number | undefined;
  #clientGate: PromiseWithResolvers<void> | undefined;

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

  /**
   * Lets the next `chunks` reads from the server go on (one reply each, when the client waits for
   * it before it sends more), then holds what the server sends, as {@linkcode HoldingProxy.hold}.
   */
  holdAfter(chunks: number): void {
    this.#passing = chunks;
  }

  /** Lets what was held go on to the client, in order, and stops holding. */
  release(): void {
    const gate = this.#gate;
    this.#gate = undefined;
    gate?.resolve();
  }

  /**
   * From now on, what the client sends is not read: it waits in the kernel's buffers, and once
   * they are full the client's writes back up (what the server sends goes on).
   */
  stopReadingClient(): void {
    this.#clientGate ??= Promise.withResolvers<void>();
  }

  /** Reads what the client sends again, and forwards it. */
  readClient(): void {
    const gate = this.#clientGate;
    this.#clientGate = undefined;
    gate?.resolve();
  }

  /** Cuts every connection, as {@linkcode TcpForwarder.cut} does; what was held is dropped. */
  override cut(): void {
    super.cut();
    this.release();
    this.readClient();
  }

  protected override forward(client: Deno.TcpConn, server: Deno.TcpConn): void {
    this.pipe(this.#clientToServer(client, server));
    this.pipe(this.#serverToClient(server, client));
  }

  /** Resolves once the proxy reads what the client sends (at once when it does). */
  async #whileNotReading(): Promise<void> {
    while (this.#clientGate) await this.#clientGate.promise;
  }

  async #clientToServer(client: Deno.TcpConn, server: Deno.TcpConn): Promise<void> {
    const reader = client.readable.getReader();
    const writer = server.writable.getWriter();
    try {
      while (true) {
        // Checked before each read: while stopped, nothing more is taken off the socket.
        await this.#whileNotReading();
        const { value, done } = await reader.read();
        if (done) break;
        // A read under way when the proxy stopped reading: what it took waits with the rest.
        await this.#whileNotReading();
        await writer.write(value);
      }
    } catch (error) {
      // The server's side failed: the client's is ended too, as pipeTo() would.
      await reader.cancel(error).catch(() => {});
      throw error;
    } finally {
      reader.releaseLock();
      await writer.close().catch(() => {});
    }
  }

  async #serverToClient(server: Deno.TcpConn, client: Deno.TcpConn): Promise<void> {
    const writer = client.writable.getWriter();
    try {
      for await (const chunk of server.readable) {
        if (this.#passing !== undefined && this.#passing-- <= 0) {
          this.#passing = undefined;
          this.hold();
        }
        while (this.#gate) await this.#gate.promise;
        await writer.write(chunk);
      }
    } finally {
      await writer.close().catch(() => {});
    }
  }
}
