/**
 * safetensors memory: loading must not hold two copies of a checkpoint (a 3.4 GB file must not need 7 GB),
 * and saving must stream rather than build the file in memory. Measured in a child process on a ~400 MB
 * file through the peak resident set (VmHWM, reset through /proc/self/clear_refs where the kernel allows).
 * It also checks that disposing loaded tensors gives their memory back at once.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, statfsSync } from "node:fs";
import { tmpdir, totalmem } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { skipOutsideCI } from "../prerequisites.js";

const TENSORS = 6;
const ELEMENTS = 16 * 1024 * 1024; // 64 MB of float32 each: several bounce-buffer chunks per tensor
const FILE_BYTES = TENSORS * ELEMENTS * 4;

function skipReason(): string | false {
  const disk = statfsSync(tmpdir());
  const free = disk.bavail * disk.bsize;
  if (free < FILE_BYTES * 1.5 + 256 * 2 ** 20) return `needs ${(FILE_BYTES * 1.5 / 2 ** 30).toFixed(1)} GB free in ${tmpdir()}`;
  if (totalmem() < 3 * FILE_BYTES) return "needs about 1.2 GB of RAM";
  return false;
}

/** The child: make tensors, save them (measured), free them, load the file back (measured), check values. */
const CHILD = `
import { existsSync, readFileSync, writeFileSync } from "node:fs";
const engine = await import(process.env.ENGINE_URL);
const file = process.env.FILE;
const field = (name) => {
  if (!existsSync("/proc/self/status")) return process.resourceUsage().maxRSS * 1024;
  return Number(new RegExp(name + ":\\\\s+(\\\\d+) kB").exec(readFileSync("/proc/self/status", "utf8"))[1]) * 1024;
};
let resettable = true;
/** Starts a measurement: resets the peak where possible, else takes the peak so far as the baseline. */
const start = () => {
  try { writeFileSync("/proc/self/clear_refs", "5"); } catch { resettable = false; }
  return resettable ? field("VmRSS") : field("VmHWM");
};
const growth = (base) => field("VmHWM") - base;

const tensors = {};
for (let k = 0; k < ${TENSORS}; k++) tensors["layer." + k + ".weight"] = engine.full([${ELEMENTS / 1024}, 1024], k + 0.5);
tensors["position_ids"] = engine.arange(0, 77, 1, { dtype: "int64" });
engine.saveSafetensors(file + ".warmup", { w: engine.zeros([8]) });
engine.loadSafetensors(file + ".warmup");

let base = start();
engine.saveSafetensors(file, tensors, { format: "pt" });
const saveGrowth = growth(base);
for (const t of Object.values(tensors)) t.dispose();

base = start();
const loaded = engine.loadSafetensors(file);
const loadGrowth = growth(base);
const means = [];
for (let k = 0; k < ${TENSORS}; k++) means.push(loaded.tensors.get("layer." + k + ".weight").mean().item());
const ids = loaded.tensors.get("position_ids").toArray().at(-1);
for (const t of loaded.tensors.values()) t.dispose();

// Disposing loaded tensors must free them at once, not when the garbage collector gets round to it.
base = field("VmRSS");
for (let i = 0; i < 4; i++) for (const t of engine.loadSafetensors(file).tensors.values()) t.dispose();
const retained = field("VmRSS") - base;
console.log(JSON.stringify({ resettable, saveGrowth, loadGrowth, means, ids, retained }));
`;

test("loading a ~400 MB file grows the peak RSS by at most 1.3 x its size; saving streams", { skip: skipOutsideCI(skipReason()), timeout: 120_000 }, () => {
  const folder = mkdtempSync(path.join(tmpdir(), "safetensors-memory-"));
  try {
    const file = path.join(folder, "big.safetensors");
    const child = spawnSync(process.execPath, ["--input-type=module", "-e", CHILD], {
      encoding: "utf8",
      env: { ...process.env, FILE: file, ENGINE_URL: new URL("../../src/engine/index.js", import.meta.url).href },
    });
    assert.equal(child.status, 0, child.stderr);
    const result = JSON.parse(child.stdout.trim().split("\n").at(-1)!) as {
      resettable: boolean; saveGrowth: number; loadGrowth: number; means: number[]; ids: number; retained: number;
    };
    const ratio = result.loadGrowth / FILE_BYTES;
    const mb = (n: number): string => (n / 2 ** 20).toFixed(0);
    console.log(`safetensors memory: file ${mb(FILE_BYTES)} MB, load peak growth ${mb(result.loadGrowth)} MB (${ratio.toFixed(3)} x), ` +
      `save peak growth ${mb(result.saveGrowth)} MB, retained after 4 more load+dispose ${mb(result.retained)} MB, peak reset: ${result.resettable}`);
    assert.deepEqual(result.means, Array.from({ length: TENSORS }, (_, k) => k + 0.5));
    assert.equal(result.ids, 76);
    assert.ok(ratio <= 1.3, `load grew the peak RSS by ${ratio.toFixed(3)} x the file size`);
    assert.ok(result.saveGrowth <= 0.1 * FILE_BYTES + 64 * 2 ** 20, `save grew the peak RSS by ${mb(result.saveGrowth)} MB`);
    assert.ok(result.retained <= 0.25 * FILE_BYTES, `4 loads, each disposed, left ${mb(result.retained)} MB resident`);
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});
