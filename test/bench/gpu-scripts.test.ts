// The GPU checks (scripts/gpu/run.sh: bench/gpu/parity, bench/gpu/sd15) run only when a session is lent a GPU,
// with minutes of device time: they must not rot in between. Here they run on the CPU, at toy sizes, and must
// report the same numbers on both sides (identical weights, inputs and kernels).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const dist = fileURLToPath(new URL("../../", import.meta.url));
const runScript = (script: string, ...args: string[]): { status: number | null; out: string } => {
  const child = spawnSync(process.execPath, [path.join(dist, script), ...args], {
    encoding: "utf8", timeout: 240_000, env: { ...process.env, OMP_NUM_THREADS: "1", MKL_NUM_THREADS: "1" },
  });
  return { status: child.status, out: `${child.stdout}\n${child.stderr}` };
};

test("bench/gpu/parity on the CPU: the operator table, the tiny models in fp32/fp16/bf16 autocast and txt2img all agree", () => {
  const out = path.join(mkdtempSync(path.join(tmpdir(), "hdb-gpu-parity-")), "parity.json");
  const run = runScript("bench/gpu/parity.js", "--device", "cpu", "--out", out);
  assert.equal(run.status, 0, run.out.slice(-3000));
  const result = JSON.parse(readFileSync(out, "utf8")) as { summary: { ok: boolean; ops: { passed: number; failed: number; of: number }; checks: { failed: number; errored: number; passed: number } } };
  assert.equal(result.summary.ok, true);
  assert.ok(result.summary.ops.of > 250 && result.summary.ops.passed === result.summary.ops.of, JSON.stringify(result.summary.ops));
  assert.equal(result.summary.checks.failed + result.summary.checks.errored, 0);
  assert.ok(result.summary.checks.passed >= 19, JSON.stringify(result.summary.checks));
});

test("bench/gpu/sd15 at toy widths: both sides load the same random pipeline and give the same UNet output", () => {
  const out = path.join(mkdtempSync(path.join(tmpdir(), "hdb-gpu-sd15-")), "sd15.json");
  const run = runScript("bench/gpu/sd15.js", "--device", "cpu", "--shapes", "mini", "--dtypes", "bfloat16", "--batches", "1",
    "--steps", "2", "--jobs", "unet,train", "--out", out);
  assert.equal(run.status, 0, run.out.slice(-3000));
  const result = JSON.parse(readFileSync(out, "utf8")) as { complete: boolean; ratios: Record<string, number>; outputChecks: Record<string, { relativeDifference: number }> };
  assert.equal(result.complete, true);
  assert.deepEqual(Object.keys(result.ratios).sort(), ["train_lidb_vs_diffusers_lora_bf16_b1", "unet_forward_bfloat16_b1"]);
  for (const ratio of Object.values(result.ratios)) assert.ok(Number.isFinite(ratio) && ratio > 0);
  assert.equal(result.outputChecks["unet_bfloat16_b1"]!.relativeDifference, 0, "same weights and inputs give the same output");
});
