/**
 * `--nproc N`: the CLI's own launcher of a data-parallel job on this machine, what `torchrun --standalone
 * --nproc-per-node N` does for a command: N copies of the current command (without `--nproc`), each with torchrun's
 * environment (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1, MASTER_PORT a free port), so
 * each joins the job's process group (engine/distributed.ts) and the training loop shares the batch among them.
 *
 * It waits for all of them. When one fails (an error, or killed), the others are stopped, since their next
 * collective could only fail, and the launch fails with a message naming each rank's end; rerunning the same
 * command resumes every rank from the last checkpoint rank 0 wrote (training/loop.ts).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { availableParallelism } from "node:os";

export interface LaunchOptions {
  /** Processes (ranks) to run. */
  nproc: number;
  /** The command of each rank (default: this process's node, its flags and its arguments, without --nproc). */
  command?: readonly string[];
  /** The environment the ranks' variables are added to (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** The rendezvous port (default: a free one). */
  masterPort?: number;
  /** Seconds the other ranks get to stop after SIGTERM before SIGKILL, once one has failed (default 10). */
  graceSeconds?: number;
}

/** A TCP port that was free a moment ago on the loopback interface (as torchrun finds one for --standalone). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error("no free port found"))));
    });
  });
}

/**
 * `--nproc N` / `--nproc=N` in argv: N and argv without it, or null when absent. A launched rank's command has no
 * --nproc, so it does not launch again.
 */
export function nprocFlag(argv: readonly string[]): { nproc: number; rest: string[] } | null {
  for (const [i, arg] of argv.entries()) {
    const inline = /^--nproc=(.*)$/.exec(arg);
    if (arg !== "--nproc" && !inline) continue;
    const text = inline ? inline[1]! : argv[i + 1];
    const nproc = Number(text);
    if (!Number.isInteger(nproc) || nproc < 1) throw new Error(`--nproc needs a whole number of processes ≥ 1, got ${text ?? "nothing"}`);
    return { nproc, rest: [...argv.slice(0, i), ...argv.slice(i + (inline ? 1 : 2))] };
  }
  return null;
}

/**
 * For a command that takes `--nproc`: when argv asks for more than one process and this process is not already a
 * rank, runs the command as that many ranks and resolves true once all have finished (the caller then exits);
 * otherwise resolves false and the caller trains in this process.
 */
export async function launchIfRequested(argv: readonly string[] = process.argv.slice(2)): Promise<boolean> {
  const flag = nprocFlag(argv);
  if (flag === null || flag.nproc === 1 || process.env["WORLD_SIZE"] !== undefined) return false;
  await launch({ nproc: flag.nproc, command: [process.execPath, ...process.execArgv, process.argv[1]!, ...flag.rest] });
  return true;
}

/** How one rank ended. */
interface Ending {
  rank: number;
  pid: number | undefined;
  code: number | null;
  signal: NodeJS.Signals | null;
}

function describe(end: Ending): string {
  const how = end.signal !== null ? `was killed by ${end.signal}` : `exited with code ${end.code}`;
  return `rank ${end.rank} (pid ${end.pid ?? "?"}) ${how}`;
}

/**
 * Runs the ranks and waits for them; rejects when any fails, after stopping the others (SIGTERM, then SIGKILL
 * after the grace period), naming how each rank ended.
 */
export async function launch(options: LaunchOptions): Promise<void> {
  const { nproc } = options;
  if (!Number.isInteger(nproc) || nproc < 1) throw new Error(`launch: nproc must be a whole number ≥ 1, got ${nproc}`);
  const [file, ...args] = options.command ?? [process.execPath, ...process.execArgv, ...(nprocFlag(process.argv.slice(1))?.rest ?? process.argv.slice(1))];
  if (file === undefined) throw new Error("launch: an empty command");
  const base = options.env ?? process.env;
  const masterPort = options.masterPort ?? await freePort();
  // torchrun sets OMP_NUM_THREADS=1 for N > 1; on CPUs the ranks rather share the cores out.
  const threads = base["OMP_NUM_THREADS"] ?? String(Math.max(1, Math.floor(availableParallelism() / nproc)));
  const children: ChildProcess[] = [];
  const endings: Ending[] = [];
  let failed = false;
  let killTimer: NodeJS.Timeout | undefined;
  const stopOthers = (): void => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    killTimer = setTimeout(() => {
      for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }, (options.graceSeconds ?? 10) * 1000);
  };
  const forward = (signal: NodeJS.Signals): void => {
    for (const child of children) child.kill(signal);
  };
  process.on("SIGINT", forward).on("SIGTERM", forward);
  try {
    await new Promise<void>((resolve) => {
      for (let rank = 0; rank < nproc; rank++) {
        const env = {
          ...base, RANK: String(rank), LOCAL_RANK: String(rank), WORLD_SIZE: String(nproc), LOCAL_WORLD_SIZE: String(nproc),
          MASTER_ADDR: "127.0.0.1", MASTER_PORT: String(masterPort), OMP_NUM_THREADS: threads,
        };
        const child = spawn(file, args, { env, stdio: "inherit" });
        children.push(child);
        const end = (code: number | null, signal: NodeJS.Signals | null): void => {
          if (endings.some((e) => e.rank === rank)) return;
          endings.push({ rank, pid: child.pid, code, signal });
          if ((code !== 0 || signal !== null) && !failed) {
            failed = true;
            stopOthers();
          }
          if (endings.length === nproc) resolve();
        };
        child.on("exit", end);
        child.on("error", () => end(127, null));
      }
    });
  } finally {
    clearTimeout(killTimer);
    process.off("SIGINT", forward).off("SIGTERM", forward);
  }
  if (failed) {
    const first = endings.find((e) => e.code !== 0 || e.signal !== null)!;
    const others = endings.filter((e) => e !== first).map(describe);
    throw new Error(`the job stopped: ${describe(first)}${others.length > 0 ? `; then ${others.join(", ")}` : ""}. ` +
      "Rerun the same command to resume every rank from the last checkpoint.");
  }
}
