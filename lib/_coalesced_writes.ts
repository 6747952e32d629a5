/**
 * One socket write for all the frames a connection writes in one turn of the event loop.
 *
 * amqplib writes every frame with its own `socket.write`: a publish's method, header and body, an
 * ack, a channel's batch as the multiplexer drains it. Deno's Node layer sends each write at once,
 * a system call a frame (a dead-letter run made about 60,000 `sendto` calls for 20,000
 * messages). Corking the socket at the first write of a turn and uncorking it on the next tick
 * hands the turn's frames to the socket as one `writev`, in the order they were written. Nothing
 * waits longer than the current turn's synchronous code and the promise jobs it queues.
 *
 * @module
 */

import process from "node:process";

/** What the coalescing needs of a socket (`net.Socket` and `tls.TLSSocket` both have it). */
export interface CorkableSocket {
  write(chunk: unknown, encoding?: unknown, callback?: unknown): boolean;
  cork(): void;
  uncork(): void;
}

/**
 * Makes `socket` gather the writes of each turn into one: corked at a turn's first write,
 * uncorked on the next tick. Backpressure still holds: a write returns false once the turn has
 * buffered the socket's high-water mark, and `drain` follows when it is sent.
 */
export function coalesceWrites(socket: CorkableSocket): void {
  const write = socket.write;
  let corked = false;
  const uncork = () => {
    corked = false;
    socket.uncork();
  };
  // Fixed parameters, not a rest array: this runs for every frame.
  socket.write = function (
    this: CorkableSocket,
    chunk: unknown,
    encoding?: unknown,
    callback?: unknown,
  ): boolean {
    if (!corked) {
      corked = true;
      socket.cork();
      process.nextTick(uncork);
    }
    return write.call(this, chunk, encoding, callback);
  };
}
