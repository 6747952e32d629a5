/**
 * A TCP proxy in front of PostgreSQL that can lose the answer to a COMMIT: armed, it passes the
 * next `COMMIT` the client sends, drops what the server answers to it (the server has committed),
 * and cuts the connection, as a network failure at the worst moment would. The client cannot tell
 * whether its transaction committed. Every other byte goes through as it is.
 *
 * @module
 */

import { TcpForwarder } from "./tcp_forwarder.ts";

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
export class CommitDroppingProxy extends TcpForwarder {
  #armed: PromiseWithResolvers<void> | undefined;
  #marker: Uint8Array | undefined;

  /** Listens on a free loopback port and forwards each connection to the server of `url`. */
  static start(url: string): CommitDroppingProxy {
    return new CommitDroppingProxy(url);
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

  protected override forward(client: Deno.TcpConn, server: Deno.TcpConn): void {
    const state = { committing: undefined as PromiseWithResolvers<void> | undefined };
    this.pipe(this.#clientToServer(client, server, state));
    this.pipe(this.#serverToClient(server, client, state));
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
          this.drop([client, server]);
          state.committing.resolve();
          return;
        }
        await writer.write(chunk);
      }
    } finally {
      await writer.close().catch(() => {});
    }
  }
}
