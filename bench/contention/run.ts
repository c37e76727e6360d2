/**
 * bench/contention: throughput of our engine on a shared machine. On 2 cores with one other CPU-bound process,
 * 2-thread libtorch used to run 10–20× slower than 1 thread: OpenMP's idle threads spin-wait between parallel
 * regions, and a spinning thread whose partner was descheduled burns its time slice waiting. Each setting runs
 * in a fresh process (the OpenMP runtime reads its settings once, when libtorch loads), idle and beside one
 * competing busy-loop process, on two workloads (bench/contention/workload.ts), in alternating order.
 *
 *   node dist/bench/contention/run.js [--iterations 5] [--repeats 2] [--out FILE]
 *
 * Settings: "all cores" (HDB_AUTO_THREADS=0: libtorch's own default, what the engine did before), "hdb default"
 * (what the engine does now when the user sets nothing: threads sized to the free cores, see
 * src/engine/native/threads.ts), the alternative it was weighed against (OpenMP's passive wait policy on all
 * cores), and 1 thread. Targets (issue 13): with a competitor, the default's throughput ≥ 50 % of 1 thread's;
 * idle, no slower than before. Writes bench/results/contention-cpu.json.
 */
import { spawn, spawnSync } from "node:child_process";
import { cpus } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { median, repoRoot, writeResult } from "../harness.js";

const { values: args } = parseArgs({
  options: { iterations: { type: "string", default: "5" }, repeats: { type: "string", default: "2" }, out: { type: "string" } },
});
const iterations = Number(args.iterations);
const repeats = Number(args.repeats);
const workloadScript = path.join(repoRoot, "dist", "bench", "contention", "workload.js");

interface Setting { name: string; env: Record<string, string>; threads?: number }
const settings: Setting[] = [
  { name: "all cores", env: { HDB_AUTO_THREADS: "0" } },
  { name: "hdb default", env: {} },
  { name: "all cores, OMP_WAIT_POLICY=PASSIVE", env: { HDB_AUTO_THREADS: "0", OMP_WAIT_POLICY: "PASSIVE" } },
  { name: "1 thread", env: {}, threads: 1 },
];
const workloads = ["txt2img", "train"];

/** The user's own OpenMP settings would decide the outcome: measure without them. */
const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(OMP_|GOMP_|MKL_|HDB_AUTO_THREADS)/.test(k)));

const threadsUsed: Record<string, number[]> = {};
function runWorkload(workload: string, setting: Setting, scenario: string): number[] {
  const argv = [workloadScript, workload, String(iterations), ...(setting.threads === undefined ? [] : [String(setting.threads)])];
  const child = spawnSync(process.execPath, argv, { encoding: "utf8", env: { ...baseEnv, ...setting.env }, timeout: 600_000 });
  if (child.status !== 0) throw new Error(`${workload} with ${setting.name} failed (exit ${child.status}):\n${child.stderr}`);
  const result = JSON.parse(child.stdout.trim().split("\n").at(-1)!) as { times: number[]; threads: number };
  (threadsUsed[`${scenario} ${workload} ${setting.name}`] ??= []).push(result.threads);
  return result.times;
}

type Times = Record<string, Record<string, Record<string, number[]>>>;
const times: Times = {};
for (const scenario of ["idle", "contended"] as const) {
  // One competing process: a busy loop, as another program or a second job on a laptop or CI runner would be.
  const competitor = scenario === "contended" ? spawn(process.execPath, ["-e", "for (;;) {}"], { stdio: "ignore" }) : null;
  try {
    for (let repeat = 0; repeat < repeats; repeat++) {
      const order = repeat % 2 === 0 ? settings : [...settings].reverse();
      for (const workload of workloads) {
        for (const setting of order) {
          const run = runWorkload(workload, setting, scenario);
          ((times[scenario] ??= {})[workload] ??= {})[setting.name] = [...(times[scenario]?.[workload]?.[setting.name] ?? []), ...run];
          console.log(`${scenario} ${workload} ${setting.name}: median ${(median(run) * 1000).toFixed(1)} ms`);
        }
      }
    }
  } finally {
    competitor?.kill("SIGKILL");
  }
}

const perSecond = (values: number[]): number => 1 / median(values);
const summary: Record<string, Record<string, unknown>> = {};
for (const workload of workloads) {
  const of = (scenario: string, setting: string): number => perSecond(times[scenario]![workload]![setting]!);
  summary[workload] = {
    throughputPerSecond: Object.fromEntries(["idle", "contended"].map((s) => [s, Object.fromEntries(settings.map((x) => [x.name, of(s, x.name)]))])),
    contendedDefaultVsOneThread: of("contended", "hdb default") / of("contended", "1 thread"),
    contendedAllCoresVsOneThread: of("contended", "all cores") / of("contended", "1 thread"),
    contendedPassiveVsOneThread: of("contended", "all cores, OMP_WAIT_POLICY=PASSIVE") / of("contended", "1 thread"),
    idleDefaultVsAllCores: of("idle", "hdb default") / of("idle", "all cores"),
    idlePassiveVsAllCores: of("idle", "all cores, OMP_WAIT_POLICY=PASSIVE") / of("idle", "all cores"),
  };
}
const result = {
  benchmark: "contention: throughput idle and beside one busy process, per OpenMP setting, in fresh processes",
  date: new Date().toISOString(), cpu: cpus()[0]?.model ?? "unknown", cores: cpus().length, node: process.version,
  iterations, repeats, settings, targets: { contendedDefaultVsOneThread: ">= 0.5", idleDefaultVsAllCores: ">= 0.95 (no slower, within noise)" },
  summary, threadsUsed, timesSeconds: times,
};
const out = writeResult("contention-cpu", result, args.out);
console.log(JSON.stringify(summary, null, 2));
console.log(`wrote ${out}`);
