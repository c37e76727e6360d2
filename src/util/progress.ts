/**
 * Progress of long loops (training, denoising, rendering): the loops report, the CLI draws.
 *
 * A loop takes a `ProgressReporter` and calls it once as it starts (done = the steps already done, e.g. after a
 * resume) and after every step; it never draws anything itself. The CLI passes `progressBars()`, which turns
 * those reports into terminal bars with rate and ETA (`Progress`); a library caller can pass anything else, or
 * nothing.
 */

/** Where a loop is. */
export interface ProgressUpdate {
  /** Names the loop ("vae", "identity-network", "train-lidb"); a new label starts a new bar. */
  label: string;
  /** Steps done so far, out of `total` (including `start`). */
  done: number;
  total: number;
  /** Steps that were done before this run (a resume), so the rate and the ETA count only this run's. */
  start?: number;
  /** The latest (or smoothed) loss, shown after the bar as "loss 0.1234". */
  loss?: number;
  /** Shown after the bar instead of the loss ("3 identities", a prompt). */
  note?: string;
}

/** What a long loop reports its progress to. */
export type ProgressReporter = (update: ProgressUpdate) => void;

/** Where a bar is drawn: a terminal (redrawn in place) or a log (one line every few seconds). */
export interface ProgressStream {
  isTTY?: boolean;
  write(text: string): unknown;
}

export interface ProgressOptions {
  label: string;
  total: number;
  /** Steps already done when resuming, so the rate and ETA count only what this run does. */
  start?: number;
  /** Default: process.stderr. */
  stream?: ProgressStream;
  /** Off a terminal, print a line at most this often (and at the end); default 5. */
  logEverySeconds?: number;
  /** Milliseconds since some origin (tests); default Date.now. */
  clock?: () => number;
}

/** A duration as "12s", "3m05s" or "2h07m"; "?" when unknown (infinite, NaN). */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, "0")}m` : m > 0 ? `${m}m${String(sec).padStart(2, "0")}s` : `${sec}s`;
}

/**
 * A terminal progress bar with rate and ETA. On a TTY it redraws one line; otherwise (CI, logs) it prints a
 * line every `logEverySeconds`. The rate (and so the ETA) is shown once it means something: after two steps
 * of this run, or a second; before that, a first step right after the bar was made would divide by an
 * elapsed time near zero.
 */
export class Progress {
  private done: number;
  private startCount: number;
  /** Updates that advanced this run's own count. */
  private ticks = 0;
  private readonly clock: () => number;
  private readonly startedAt: number;
  private lastLog = -Infinity;
  private readonly stream: ProgressStream;

  constructor(private readonly options: ProgressOptions) {
    this.done = options.start ?? 0;
    this.startCount = this.done;
    this.stream = options.stream ?? process.stderr;
    this.clock = options.clock ?? Date.now;
    this.startedAt = this.clock();
  }

  get label(): string {
    return this.options.label;
  }

  get total(): number {
    return this.options.total;
  }

  /** Steps done so far. */
  get count(): number {
    return this.done;
  }

  /** The count this run's rate is measured from (steps done before it, or skipped by it, are left out). */
  get countedFrom(): number {
    return this.startCount;
  }

  /** Advances by n steps; `info` (e.g. "loss 0.123") is shown after the bar. */
  tick(n = 1, info = ""): void {
    this.moveTo(this.done + n, info);
  }

  /**
   * Sets the count to `done` and draws; `start` raises the steps counted as done before this run (work a
   * resumed loop skips, e.g. an identity restarting from its checkpoint), which the rate leaves out.
   */
  moveTo(done: number, info = "", start?: number): void {
    const total = this.options.total;
    const ownBefore = this.done - this.startCount;
    this.done = Math.min(total, done);
    if (start !== undefined && start > this.startCount) this.startCount = Math.min(start, this.done);
    const own = this.done - this.startCount;
    if (own > ownBefore) this.ticks += 1;
    const now = this.clock();
    const elapsed = (now - this.startedAt) / 1000;
    const measured = elapsed > 0 && (elapsed >= 1 || this.ticks >= 2);
    const rate = measured ? own / elapsed : NaN;
    const eta = rate > 0 ? (total - this.done) / rate : Infinity;
    const fraction = total > 0 ? this.done / total : 1;
    const width = 24;
    const filled = Math.round(fraction * width);
    const shownRate = Number.isNaN(rate) ? "?" : rate.toFixed(rate < 10 ? 2 : 0);
    const line = `${this.options.label} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${this.done}/${total} ` +
      `${shownRate}/s ETA ${formatDuration(eta)}${info ? "  " + info : ""}`;
    if (this.stream.isTTY) {
      this.stream.write(`\r${line}\x1b[K`);
      if (this.done === total) this.stream.write("\n");
    } else if (now - this.lastLog >= (this.options.logEverySeconds ?? 5) * 1000 || this.done === total) {
      this.lastLog = now;
      this.stream.write(line + "\n");
    }
  }
}

export interface ProgressBarsOptions {
  stream?: ProgressStream;
  logEverySeconds?: number;
  clock?: () => number;
}

/**
 * A reporter that draws the loops' reports as bars (the CLI's): one bar at a time, a new one whenever the
 * label or the total changes, the count goes back, or a report restarts the rate (start = done). A loop's first report (nothing done yet in this run)
 * starts the bar's clock and draws nothing, as a bar made before the loop would.
 */
export function progressBars(options: ProgressBarsOptions = {}): ProgressReporter {
  let bar: Progress | null = null;
  return (update) => {
    const info = update.note ?? (update.loss === undefined ? "" : `loss ${update.loss.toFixed(4)}`);
    // A report with start = done above the bar's own start says "the rate starts again here" (a loop whose earlier
    // work was of another kind, e.g. the evaluation's images after a method's training): a new bar, a new clock.
    const restarts = bar !== null && update.start !== undefined && update.start === update.done && update.start > bar.countedFrom;
    if (bar === null || restarts || bar.label !== update.label || bar.total !== update.total || update.done < bar.count) {
      const start = Math.min(update.start ?? update.done, update.done);
      bar = new Progress({ ...options, label: update.label, total: update.total, start });
      if (update.done === start) return;
    }
    bar.moveTo(update.done, info, update.start);
  };
}
