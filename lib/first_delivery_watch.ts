/**
 * A consumer the broker says is consuming but that is sent nothing. On RabbitMQ 3.10, a consumer
 * that starts on a quorum queue while the node it is connected to still names a leader that a
 * partition cut off can get its `consume-ok`, then nothing until the partition heals: its channel
 * keeps the old leader (seen on a stalled run of the partition suite: docs/guarantees.md). A new
 * channel made a few seconds later finds the new leader. The watch looks, from the consumer's
 * start until its first delivery, whether the queue holds ready messages; seen there on two looks
 * in a row, with no delivery and the consumer consuming all along, the consumer is taken for
 * stuck.
 *
 * @module
 */

/** What {@linkcode watchFirstDelivery} needs to know of a consumer and its queue. */
export interface FirstDeliveryWatchOptions {
  /**
   * How long a consumer may go without a delivery while its queue holds ready messages; looked
   * at every half of it (less often on a queue found empty again and again). 0 turns the watch
   * off.
   */
  readonly timeoutMs: number;
  /** Deliveries the consumer received so far. */
  readonly deliveries: () => number;
  /**
   * Whether the consumer should be sent deliveries now: consuming, not paused. A look made while
   * it should not counts for nothing.
   */
  readonly expecting: () => boolean;
  /**
   * How many times the consumer started consuming: one that started again since the last look
   * (paused and resumed) is looked at anew.
   */
  readonly starts: () => number;
  /** Whether the consumer has stopped (or is stopping): the watch then ends. */
  readonly ended: () => boolean;
  /**
   * The queue's ready messages, seen on a channel of its own. A look that fails or takes more than
   * half the timeout says nothing.
   */
  readonly readyMessages: () => Promise<number>;
  /** Called once when the consumer is taken for stuck, with what was seen. */
  readonly onStuck: (seen: { readonly readyMessages: number; readonly waitedMs: number }) => void;
  /** Called after each look, with the ready messages it saw (undefined: nothing seen). For tests. */
  readonly onLook?: (readyMessages: number | undefined) => void;
}

/** A running watch; {@linkcode FirstDeliveryWatch.stop} ends it. */
export interface FirstDeliveryWatch {
  /** Ends the watch (at once; a look under way is ignored). */
  stop(): void;
}

/**
 * Looks whose passive declare may go unanswered at once (a node that does not answer it): past
 * that, a look asks nothing, so that channels do not pile up.
 */
const MAX_UNANSWERED_LOOKS = 3;

/** The longest wait between two looks at a queue found empty again and again. */
const LONGEST_LOOK_INTERVAL_MS = 30_000;

/**
 * Starts watching a consumer that just got its `consume-ok`. The watch ends by itself at the
 * first delivery, when the consumer ends, or once it called `onStuck`.
 */
export function watchFirstDelivery(options: FirstDeliveryWatchOptions): FirstDeliveryWatch {
  if (options.timeoutMs <= 0) return { stop: () => {} };
  const half = options.timeoutMs / 2;
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  /** Looks in a row that saw ready messages while the consumer consumed and was sent none. */
  let seenReady = 0;
  /** Looks in a row that saw nothing to send: the next one waits longer. */
  let empty = 0;
  let starts = options.starts();
  /** When the consumer last started consuming, as the watch saw it. */
  let since = performance.now();
  /** When the first look of the streak that saw ready messages was made. */
  let readySince = since;
  /** Looks whose passive declare has not answered (each holds a channel): a few at most. */
  let unanswered = 0;
  let timeout: ReturnType<typeof setTimeout> | undefined;
  const stop = () => {
    stopped = true;
    clearTimeout(timer);
    clearTimeout(timeout);
  };
  const over = () => stopped || options.deliveries() > 0 || options.ended();
  const look = async () => {
    if (over()) return stop();
    let ready: number | undefined;
    if (options.expecting()) {
      if (unanswered < MAX_UNANSWERED_LOOKS) {
        const late = new Promise<undefined>((resolve) => {
          timeout = setTimeout(() => resolve(undefined), half);
        });
        // A look that fails (the connection going) says nothing: the consumer learns of that
        // itself.
        unanswered++;
        const question = options.readyMessages().catch(() => undefined).finally(() => {
          unanswered--;
        });
        ready = await Promise.race([question, late]);
        clearTimeout(timeout);
        if (over()) return stop();
      }
    }
    const startsNow = options.starts();
    if (startsNow !== starts || !options.expecting()) {
      // Paused, or started again since the look before: its wait starts anew.
      starts = startsNow;
      since = performance.now();
      seenReady = 0;
    } else if (ready !== undefined && ready > 0) {
      // The messages may have come just after the look before: the wait counts from half a
      // timeout before the first look that saw them, or the start, whichever is later.
      if (seenReady++ === 0) readySince = Math.max(since, performance.now() - half);
    } else {
      seenReady = 0;
    }
    empty = ready === 0 ? empty + 1 : 0;
    options.onLook?.(ready);
    if (seenReady >= 2) {
      stop();
      options.onStuck({ readyMessages: ready!, waitedMs: performance.now() - readySince });
      return;
    }
    const next = Math.min(half * 2 ** Math.max(0, empty - 3), LONGEST_LOOK_INTERVAL_MS);
    timer = setTimeout(look, seenReady > 0 ? half : next);
  };
  timer = setTimeout(look, half);
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
        `it started consuming, or since the queue held ready messages (${seen.readyMessages} at ` +
        `the last look): taken for stuck (on a quorum queue after a partition, its node may ` +
        `still name the old leader)`,
    );
    this.name = "ConsumerStuckError";
  }
}
