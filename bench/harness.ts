/**
 * Shared benchmark machinery: a PyTorch worker process spoken to over JSON lines, interleaved timing of the
 * TypeScript and PyTorch sides (so both see the same machine state), medians, and atomic JSON results.
 * Benchmarks print ratios measured in one run; they are scripts, never timed unit tests.
 */
import { spawn, type ChildProcessByStdio } from "node:child_process";
import type { Readable, Writable } from "node:stream";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { packageRoot } from "../src/engine/native/libtorch.js";
import { buildInfo, getNumThreads } from "../src/engine/index.js";
import { provenance } from "../src/util/provenance.js";
import { writeJsonAtomic } from "../src/util/atomic.js";

export const repoRoot = packageRoot();

export function median(values: number[]): number {
  if (values.length === 0) throw new Error("median of no values");
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** A Python worker (from `.venv`) that answers one JSON line per JSON request line. */
export class PythonWorker {
  private readonly process: ChildProcessByStdio<Writable, Readable, null>;
  private readonly lines: AsyncIterator<string>;

  constructor(script: string, config: object) {
    const python = path.join(repoRoot, ".venv", "bin", "python");
    this.process = spawn(python, [script, JSON.stringify(config)], { stdio: ["pipe", "pipe", "inherit"] });
    this.lines = createInterface({ input: this.process.stdout })[Symbol.asyncIterator]();
  }

  /** Sends a request (or none, to read the greeting) and returns the parsed answer. */
  async ask<T>(message: object | null): Promise<T> {
    if (message) this.process.stdin.write(JSON.stringify(message) + "\n");
    const next = await this.lines.next();
    if (next.done) throw new Error("the PyTorch worker exited early (see its error above)");
    return JSON.parse(next.value) as T;
  }

  close(): void {
    this.process.stdin.write(JSON.stringify({ cmd: "quit" }) + "\n");
    this.process.stdin.end();
  }
}

/**
 * Runs `rounds` rounds; in each, a block of TypeScript runs and a block of PyTorch runs, alternating who goes
 * first. Each side returns the per-step seconds of its block.
 */
export async function interleave(
  rounds: number, tsBlock: () => number[], pyBlock: () => Promise<number[]>,
): Promise<{ ts: number[]; torch: number[] }> {
  const ts: number[] = [];
  const torch: number[] = [];
  for (let round = 0; round < rounds; round++) {
    if (round % 2 === 0) {
      ts.push(...tsBlock());
      torch.push(...(await pyBlock()));
    } else {
      torch.push(...(await pyBlock()));
      ts.push(...tsBlock());
    }
  }
  return { ts, torch };
}

/** Seconds taken by fn (wall clock, high resolution). */
export function seconds(fn: () => void): number {
  const started = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - started) / 1e9;
}

/**
 * Writes a result file atomically under bench/results/ (or at `file`) and returns its path. The result gets a
 * `provenance` field: the commit, the command that ran (repository-relative), the threads and the versions.
 */
export function writeResult(name: string, result: object, file?: string): string {
  const out = file ?? path.join(repoRoot, "bench", "results", `${name}.json`);
  mkdirSync(path.dirname(out), { recursive: true });
  const script = process.argv[1] ? path.relative(repoRoot, process.argv[1]) : "?";
  const record = provenance({ command: ["node", script, ...process.argv.slice(2)], threads: getNumThreads(), versions: { torch: buildInfo().torchVersion }, cwd: repoRoot });
  writeJsonAtomic(out, { ...result, provenance: record });
  return out;
}
