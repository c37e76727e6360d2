/**
 * The default number of libtorch threads on a shared machine: the cores that are free when the engine loads.
 *
 * libtorch runs each parallel operator on an OpenMP team of as many threads as cores, and libgomp's idle team
 * threads spin-wait between parallel regions. Beside another busy process that is ruinous: a team thread spins
 * on a core the other process needs while its partner waits to be scheduled (on 2 cores with one competing
 * process, 2-thread runs were 10–20× slower than 1-thread ones; issue 13). A passive wait policy fixes the
 * contended case but costs a wake-up per region when idle (measured: txt2img on the tiny pipeline 2.2× slower
 * idle; bench/contention). So the engine keeps libgomp's spinning and instead sizes its team to the cores that
 * other processes leave free, sampled from /proc/stat over a short window when the engine loads: an idle
 * machine gets every core (as before), a machine with one busy process one core fewer.
 *
 * It applies only when nobody chose: not with OMP_NUM_THREADS set, not with HDB_AUTO_THREADS=0, not in
 * worker threads (they share the process's OpenMP pool), and `setNumThreads` / `--threads` override it later.
 * Only Linux has /proc/stat; elsewhere libtorch's default stands. Load that starts after the engine loaded is
 * not seen: long jobs on busy machines should pass --threads.
 */
import { readFileSync } from "node:fs";

/** Busy and total jiffies of all CPUs from /proc/stat's first line ("cpu user nice system idle iowait …"). */
export function cpuJiffies(procStat: string): { busy: number; total: number } {
  const line = procStat.split("\n").find((l) => l.startsWith("cpu "));
  if (!line) throw new Error("/proc/stat has no aggregate 'cpu' line");
  const values = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = values.reduce((a, b) => a + b, 0);
  const idle = (values[3] ?? 0) + (values[4] ?? 0);  // idle + iowait
  return { busy: total - idle, total };
}

/**
 * Threads to use given two /proc/stat samples taken while this process was idle: the cores not busy with other
 * processes, rounded to the nearest whole core, at least 1 and at most `cores`.
 */
export function freeCoreThreads(before: string, after: string, cores: number): number {
  const a = cpuJiffies(before);
  const b = cpuJiffies(after);
  const total = b.total - a.total;
  if (!(total > 0)) return cores;
  const busyCores = ((b.busy - a.busy) / total) * cores;
  return Math.min(cores, Math.max(1, Math.round(cores - busyCores)));
}

/** Sleeps the thread synchronously (the engine loads synchronously, at import). */
function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * The thread count to set at load, or undefined to keep libtorch's default (see the file comment).
 * `current` is libtorch's default (its thread count before any change).
 */
export function autoThreads(current: number, options: { env?: NodeJS.ProcessEnv; mainThread: boolean; sampleMs?: number }): number | undefined {
  const env = options.env ?? process.env;
  if (!options.mainThread || env["HDB_AUTO_THREADS"] === "0" || env["OMP_NUM_THREADS"] !== undefined || current <= 1) return undefined;
  let before: string;
  try {
    before = readFileSync("/proc/stat", "utf8");
  } catch {
    return undefined;  // not Linux
  }
  sleepMs(options.sampleMs ?? 60);
  const threads = freeCoreThreads(before, readFileSync("/proc/stat", "utf8"), current);
  return threads < current ? threads : undefined;
}
