/**
 * Progress of long work on stderr: a bar redrawn in place on a terminal, and otherwise a plain
 * line every few seconds (nothing at all for work that ends sooner).
 *
 * @module
 */

/** Options for {@linkcode Progress}. */
export interface ProgressOptions {
  /** What is being counted, e.g. `"published"`. */
  readonly label: string;
  /** The total, when known. */
  readonly total: number;
  /**
   * Whether to draw a bar in place. Default: whether stderr is a terminal.
   */
  readonly interactive?: boolean;
  /**
   * Where text goes.
   * @default {(text) => Deno.stderr.writeSync(...)}
   */
  readonly write?: (text: string) => void;
  /** A clock in milliseconds. @default {performance.now} */
  readonly now?: () => number;
}

const encoder = new TextEncoder();

/** A progress display; call {@linkcode Progress.update} as often as you like, then `done()`. */
export class Progress {
  readonly #label: string;
  readonly #total: number;
  readonly #interactive: boolean;
  readonly #write: (text: string) => void;
  readonly #now: () => number;
  readonly #start: number;
  #last: number;
  #drawn = false;

  /** Starts a display. Nothing is written until there is something worth showing. */
  constructor(options: ProgressOptions) {
    this.#label = options.label;
    this.#total = options.total;
    this.#interactive = options.interactive ?? Deno.stderr.isTerminal();
    this.#write = options.write ?? ((text) => Deno.stderr.writeSync(encoder.encode(text)));
    this.#now = options.now ?? (() => performance.now());
    this.#start = this.#now();
    this.#last = this.#start;
  }

  /** Reports that `done` of the total are finished. */
  update(done: number): void {
    const now = this.#now();
    const every = this.#interactive ? 100 : 2_000;
    if (now - this.#last < every) return;
    this.#last = now;
    this.#draw(done, now);
  }

  #draw(done: number, now: number): void {
    const seconds = (now - this.#start) / 1000;
    const rate = seconds > 0 ? Math.round(done / seconds) : 0;
    const percent = this.#total > 0 ? Math.floor((done / this.#total) * 100) : 100;
    if (this.#interactive) {
      const width = 30;
      const filled = Math.round((percent / 100) * width);
      const bar = "#".repeat(filled) + "-".repeat(width - filled);
      this.#write(`\r${this.#label} [${bar}] ${percent}% ${done}/${this.#total} ${rate}/s `);
    } else {
      this.#write(`${this.#label}: ${done}/${this.#total} (${percent}%), ${rate}/s\n`);
    }
    this.#drawn = true;
  }

  /** Ends the display: a bar is completed and its line ended. */
  done(done: number): void {
    if (this.#interactive && this.#drawn) {
      this.#draw(done, this.#now());
      this.#write("\n");
    }
  }
}
