/**
 * A consumer the broker says is consuming but that is sent nothing. On RabbitMQ 3.10, a consumer
 * that starts on a quorum queue while the node it is connected to still names a leader that a
 * partition cut off gets its `consume-ok`, then nothing until the partition heals: its channel
 * keeps the old leader (seen on a stalled run of the partition suite: docs/guarantees.md). A new
 * channel made a few seconds later finds the new leader. The watch looks, from the consumer's
 * start until its first delivery, whether the queue holds ready messages; seen there on two looks
 * in a row with still no delivery, the consumer is taken for stuck.
 *
 * @module
 */

/** What {@linkcode watchFirstDelivery} needs to know of a consumer and its queue. */
export interface FirstDeliveryWatchOptions {
  /**
   * How long a consumer may go without a delivery while its queue holds ready messages; looked
   * at every half of it. 0 turns the watch off.
   */
  readonly timeoutMs: number;
  /** Deliveries the consumer received so far. */
  readonly deliveries: () => number;
  /**
   * Whether the consumer should be sent deliveries now: consuming, not paused. A look made while
   * it should not counts for nothing.
   */
  readonly expecting: () => boolean;
  /** Whether the consumer has stopped (or is stopping): the watch then ends. */
  readonly ended: () => boolean;
  /** The queue's ready messages, seen on a channel of its own. */
  readonly readyMessages: () => Promise<number>;
  /** Called once when the consumer is taken for stuck, with what was seen. */
  readonly onStuck: (seen: { readonly readyMessages: number; readonly waitedMs: number }) => void;
  /** Called after each look, with the ready messages it saw (undefined: not looked). For tests. */
  readonly onLook?: (readyMessages: number | undefined) => void;
}

/** A running watch; {@linkcode FirstDeliveryWatch.stop} ends it. */
export interface FirstDeliveryWatch {
  /** Ends the watch (at once; a look under way is ignored). */
  stop(): void;
}

/**
 * Starts watching a consumer that just got its `consume-ok`. The watch ends by itself at the
 * first delivery, when the consumer ends, or once it called `onStuck`.
 */
export function watchFirstDelivery(options: FirstDeliveryWatchOptions): FirstDeliveryWatch {
  if (options.timeoutMs <= 0) return { stop: () => {} };
  const started = performance.now();
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  /** Looks in a row that saw ready messages while the consumer was sent none. */
  let seenReady = 0;
  const stop = () => {
    stopped = true;
    clearTimeout(timer);
  };
  const look = async () => {
    if (stopped) return;
    if (options.deliveries() > 0 || options.ended()) return stop();
    let ready: number | undefined;
    if (options.expecting()) {
      // A look that fails (the connection going) says nothing: the consumer learns of that itself.
      ready = await options.readyMessages().catch(() => undefined);
      if (stopped) return;
      if (options.deliveries() > 0 || options.ended()) return stop();
    }
    seenReady = ready !== undefined && ready > 0 && options.expecting() ? seenReady + 1 : 0;
    options.onLook?.(ready);
    if (seenReady >= 2) {
      stop();
      options.onStuck({ readyMessages: ready!, waitedMs: performance.now() - started });
      return;
    }
    timer = setTimeout(look, options.timeoutMs / 2);
  };
  timer = setTimeout(look, options.timeoutMs / 2);
  return { stop };
}

/**
 * A consumer taken for stuck by {@linkcode watchFirstDelivery}: its session ends and the service
 * consumes again on a new connection. Code `consumer_stuck`.
 */
export class ConsumerStuckError extends Error {
  /** Always `consumer_stuck`. */
  readonly code = "consumer_stuck";

  /** Creates the error for the consumer of `queue`, with what the watch saw. */
  constructor(queue: string, seen: { readonly readyMessages: number; readonly waitedMs: number }) {
    super(
      `the consumer of ${queue} was sent nothing ${(seen.waitedMs / 1000).toFixed(1)} s after ` +
        `it started consuming while the queue held ${seen.readyMessages} ready messages: taken ` +
        `for stuck (a quorum queue's leader that moved, still named by this node)`,
    );
    this.name = "ConsumerStuckError";
  }
}
