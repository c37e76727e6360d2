/**
 * The service's event loop under engine load (issue 19): latency of GET /health, one request after another, while
 * a personalisation and then a generation run on the worker thread. The target is a p99 under 50 ms on 2 cores:
 * engine work must never run on the event loop. Results: bench/results/server-health.json (with provenance).
 *
 *   node dist/bench/server/health-latency.js        starts `hdb serve` on loopback itself (its own data folder)
 *
 * test/server/api.test.ts runs the same measurement (measureHealthWhileBusy) and records it the same way.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { writeJsonAtomic } from "../../src/util/atomic.js";
import { provenance } from "../../src/util/provenance.js";

const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));

export interface LatencyStats {
  requests: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Requests that did not answer 200. */
  errors: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export interface BusyRun {
  stats: LatencyStats;
  seconds: number;
  jobs: { kind: string; status: string; settings: Record<string, unknown> }[];
}

/**
 * Submits a personalisation (`steps` fine-tuning steps of the sample face) and a generation (`images` images of
 * `genSteps` steps), then requests /health one after another until both have finished; the latencies.
 */
export async function measureHealthWhileBusy(url: string, options: { photo: string; steps: number; genSteps: number; images: number }): Promise<BusyRun> {
  const form = new FormData();
  form.append("photo", new Blob([readFileSync(options.photo)], { type: "image/png" }), "face.png");
  form.append("steps", String(options.steps));
  const accepted = async (response: Response): Promise<{ id: string }> => {
    const body = await response.json() as { id: string };
    if (response.status !== 202) throw new Error(`${response.url}: ${response.status} ${JSON.stringify(body)}`);
    return body;
  };
  const personalization = await accepted(await fetch(`${url}/personalizations`, { method: "POST", body: form }));
  const generation = await accepted(await fetch(`${url}/generations`, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ prompt: "a face as a pencil sketch", steps: options.genSteps, images: options.images }),
  }));
  const latencies: number[] = [];
  let errors = 0;
  const started = performance.now();
  const statuses = async (): Promise<string[]> => Promise.all([personalization.id, generation.id].map(async (id) => {
    const response = await fetch(`${url}/jobs/${id}`);
    const body = await response.json() as { status: string };
    if (response.status !== 200) throw new Error(`GET /jobs/${id}: ${response.status} ${JSON.stringify(body)}`);
    return body.status;
  }));
  for (let i = 0; ; i++) {
    const t = performance.now();
    const response = await fetch(`${url}/health`);
    await response.arrayBuffer();
    latencies.push(performance.now() - t);
    if (response.status !== 200) errors++;
    if (i % 20 === 0 && (await statuses()).every((s) => s !== "queued" && s !== "running")) break;
    if (performance.now() - started > 600_000) throw new Error("the jobs did not finish in 10 minutes");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const seconds = (performance.now() - started) / 1000;
  const sorted = [...latencies].sort((a, b) => a - b);
  const round = (ms: number): number => Math.round(ms * 100) / 100;
  const final = await statuses();
  return {
    stats: { requests: sorted.length, p50Ms: round(percentile(sorted, 50)), p90Ms: round(percentile(sorted, 90)), p99Ms: round(percentile(sorted, 99)), maxMs: round(sorted.at(-1)!), errors },
    seconds,
    jobs: [
      { kind: "personalize", status: final[0]!, settings: { steps: options.steps } },
      { kind: "generate", status: final[1]!, settings: { steps: options.genSteps, images: options.images } },
    ],
  };
}

/** Writes bench/results/server-health.json. */
export function recordHealthLatency(run: BusyRun, command: string[]): string {
  const file = path.join(repoRoot, "bench", "results", "server-health.json");
  writeJsonAtomic(file, {
    what: "GET /health latency (sequential requests) while a personalisation and a generation run on the engine worker thread",
    targetP99Ms: 50, cores: cpus().length, ...run,
    provenance: provenance({ command, threads: 1, measured: [] }),
  });
  return file;
}

async function main(): Promise<void> {
  const data = mkdtempSync(path.join(tmpdir(), "hdb-bench-serve-"));
  const child = spawn(process.execPath, [path.join(repoRoot, "dist", "src", "cli", "hdb.js"), "serve", "--port", "0", "--data", data, "--threads", "1"], {
    cwd: repoRoot, env: { ...process.env, OMP_NUM_THREADS: "1" }, stdio: ["ignore", "pipe", "inherit"],
  });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        const match = /listening on (http:\/\/\S+)/.exec(out);
        if (match) resolve(match[1]!);
      });
      child.once("exit", (code) => reject(new Error(`hdb serve exited (${code})`)));
    });
    const run = await measureHealthWhileBusy(url, { photo: path.join(repoRoot, "samples", "faces", "60000-n1.png"), steps: 200, genSteps: 50, images: 4 });
    const file = recordHealthLatency(run, ["node", "dist/bench/server/health-latency.js"]);
    process.stdout.write(`${JSON.stringify(run.stats)} over ${run.seconds.toFixed(1)} s → ${file}\n`);
  } finally {
    child.kill("SIGTERM");
    rmSync(data, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
