// Spawning the ranks of a multi-process test on loopback, each with torchrun's environment, without the launcher
// (training/launch.ts stops the other ranks when one fails; these tests watch how a survivor fails by itself).
import { spawn } from "node:child_process";
import { freePort } from "../../src/training/launch.js";

export interface RankEnd {
  rank: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/**
 * Runs `node script ...args` as ranks `ranks` of a world of `worldSize` (default: as many as ranks), waits for all
 * of them, and kills those still running after `limitSeconds`, so that a test never hangs.
 */
export async function runRanks(script: string, args: readonly string[], options: { ranks: number[]; worldSize?: number; env?: NodeJS.ProcessEnv; limitSeconds?: number }): Promise<RankEnd[]> {
  const port = await freePort();
  const worldSize = options.worldSize ?? options.ranks.length;
  return Promise.all(options.ranks.map((rank) => new Promise<RankEnd>((resolve) => {
    const env = {
      ...process.env, OMP_NUM_THREADS: "1", HDB_AUTO_THREADS: "0", HDB_DISTRIBUTED_TIMEOUT: "30", ...options.env,
      RANK: String(rank), LOCAL_RANK: String(rank), WORLD_SIZE: String(worldSize), MASTER_ADDR: "127.0.0.1", MASTER_PORT: String(port),
    };
    const child = spawn(process.execPath, [script, ...args], { env, stdio: ["ignore", "inherit", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), (options.limitSeconds ?? 120) * 1000);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ rank, code, signal, stderr });
    });
  })));
}
