// bench/hypernetwork (the HyperNetwork's training step and prediction vs a PyTorch reference of the same
// architecture and weights) at toy sizes on one thread, so the benchmark keeps working between its runs: the
// reference must reproduce our forward pass, our first two training steps and the encoder's features.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { skipOutsideCI } from "../prerequisites.js";

const dist = fileURLToPath(new URL("../../", import.meta.url));
const root = path.resolve(dist, "..");
const skip = skipOutsideCI(existsSync(path.join(root, ".venv", "bin", "python")) ? false : "the Python oracle (.venv) is missing: run scripts/setup.sh");

interface Difference { maxAbs: number; maxAbsReference: number }
interface Measured { ratio: number; pairedRatio: number; cpuRatio: number; runs: number; machine: { otherCores: number } }

test("bench/hypernetwork at toy sizes: the reference matches ours and every ratio is measured", { skip }, () => {
  const out = path.join(mkdtempSync(path.join(tmpdir(), "hdb-bench-hypernetwork-")), "hypernetwork.json");
  const child = spawnSync(process.execPath, [path.join(dist, "bench", "hypernetwork", "run.js"),
    "--presets", "toy", "--threads", "1", "--predict-threads", "1", "--rounds", "2", "--block", "2", "--min-runs", "4",
    "--predict-rounds", "2", "--predict-block", "2", "--out", out,
  ], { encoding: "utf8", timeout: 60_000, env: { ...process.env, OMP_NUM_THREADS: "1", MKL_NUM_THREADS: "1" } });
  assert.equal(child.status, 0, `${child.stdout}\n${child.stderr}`.slice(-3000));
  const result = JSON.parse(readFileSync(out, "utf8")) as {
    ratios: Record<string, number>; cpuRatios: Record<string, number>; provenance: { threads: number };
    presets: { toy: {
      parity: { forward: { theta: Difference; deltaFromInitial: Difference }; trainSteps: { maxRelativeDifference: number } };
      train: Measured; predict: { parity: { features: Difference; theta: Difference }; byThreads: Record<string, Measured> };
    } };
  };
  const toy = result.presets.toy;
  assert.ok(toy.parity.forward.theta.maxAbs <= 1e-5, JSON.stringify(toy.parity.forward));
  assert.ok(toy.parity.forward.deltaFromInitial.maxAbsReference > 0.01, "the rounds change θ, so the check sees the decoder");
  assert.ok(toy.parity.trainSteps.maxRelativeDifference <= 1e-5, JSON.stringify(toy.parity.trainSteps));
  assert.ok(toy.predict.parity.features.maxAbs <= 1e-5 && toy.predict.parity.theta.maxAbs <= 1e-5, JSON.stringify(toy.predict.parity));
  assert.deepEqual(Object.keys(result.ratios).sort(), ["toy_predict_threads1", "toy_train"]);
  for (const ratio of [...Object.values(result.ratios), ...Object.values(result.cpuRatios)]) assert.ok(Number.isFinite(ratio) && ratio > 0);
  assert.equal(toy.train.runs, 4);
  assert.ok(Number.isFinite(toy.train.machine.otherCores));
  assert.equal(result.provenance.threads, 1);
});
