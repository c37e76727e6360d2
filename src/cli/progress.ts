/**
 * A terminal progress bar with rate and ETA, for every long loop the CLI runs (training, denoising).
 * On a TTY it redraws one line; otherwise (CI, logs) it prints a line every `logEverySeconds`.
 */
export interface ProgressOptions {
  label: string;
  total: number;
  /** Steps already done when resuming, so the ETA counts only what is left. */
  start?: number;
  stream?: NodeJS.WriteStream;
  logEverySeconds?: number;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, "0")}m` : m > 0 ? `${m}m${String(sec).padStart(2, "0")}s` : `${sec}s`;
}

export class Progress {
  private done: number;
  private readonly startedAt = Date.now();
  private readonly startCount: number;
  private lastLog = 0;
  private readonly stream: NodeJS.WriteStream;

  constructor(private readonly options: ProgressOptions) {
    this.done = options.start ?? 0;
    this.startCount = this.done;
    this.stream = options.stream ?? process.stderr;
  }

  /** Advances by n steps; `info` (e.g. "loss 0.123") is shown after the bar. */
  tick(n = 1, info = ""): void {
    this.done = Math.min(this.options.total, this.done + n);
    const elapsed = (Date.now() - this.startedAt) / 1000;
    const rate = (this.done - this.startCount) / Math.max(elapsed, 1e-9);
    const eta = rate > 0 ? (this.options.total - this.done) / rate : Infinity;
    const fraction = this.done / this.options.total;
    const width = 24;
    const filled = Math.round(fraction * width);
    const line = `${this.options.label} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${this.done}/${this.options.total} ` +
      `${rate.toFixed(rate < 10 ? 2 : 0)}/s ETA ${formatDuration(eta)}${info ? "  " + info : ""}`;
    if (this.stream.isTTY) {
      this.stream.write(`\r${line}\x1b[K`);
      if (this.done === this.options.total) this.stream.write("\n");
    } else if (Date.now() - this.lastLog >= (this.options.logEverySeconds ?? 5) * 1000 || this.done === this.options.total) {
      this.lastLog = Date.now();
      this.stream.write(line + "\n");
    }
  }
}
