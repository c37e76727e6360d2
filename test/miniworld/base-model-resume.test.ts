// Resuming `hdb miniworld build` (issue 5): a build stopped mid-stage (`stopAfterSteps`, as a kill would stop it)
// and run again until it finishes gives bit-identical weights to an uninterrupted build of the same recipe, for
// both training stages and the exported folder; a finished build run again changes nothing; another recipe on
// the same work folder is refused. The real CLI killed with SIGKILL mid-stage resumes from its last checkpoint.
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { getNumThreads, loadSafetensors, setNumThreads, tidy } from "../../src/engine/index.js";
import { baseModelRecipe, type BaseModelRecipe } from "../../src/miniworld/base-model/config.js";
import { buildMiniworld, type BuildRecord } from "../../src/miniworld/base-model/recipe.js";

// One thread: the same kernels in every run, so the resumed run can be compared bit for bit.
setNumThreads(1);
const root = fileURLToPath(new URL("../../../", import.meta.url));
const work = mkdtempSync(path.join(tmpdir(), "hdb-base-model-resume-"));
after(() => rmSync(work, { recursive: true, force: true }));

const RECIPE = baseModelRecipe({
  seed: 5, datasetSize: 16, checkpointEvery: 2,
  vae: { steps: 5, batchSize: 2, warmupSteps: 1, decoderSteps: 3 },
  diffusion: { steps: 5, batchSize: 2, warmupSteps: 1 }, continuation: { steps: 2, warmupSteps: 1 }, conditioning: { steps: 3, warmupSteps: 1 }, colourBalance: { steps: 2, warmupSteps: 1 },
});
/** Files that must be bit-identical: the float32 stage results, the last checkpoints (weights, EMA, AdamW) and the export. */
const COMPARED = [
  "work/vae/final/diffusion_pytorch_model.safetensors", "work/vae/final/config.json",
  "work/vae/checkpoint-5/model.safetensors", "work/vae/checkpoint-5/optimizer.safetensors",
  "work/diffusion/final/unet/diffusion_pytorch_model.safetensors", "work/diffusion/final/text_encoder/model.safetensors",
  "work/diffusion/checkpoint-5/model.safetensors", "work/diffusion/checkpoint-5/optimizer.safetensors",
  "work/diffusion-2/checkpoint-2/model.safetensors", "work/diffusion-3/final/unet/diffusion_pytorch_model.safetensors",
  "work/diffusion-3/checkpoint-3/model.safetensors", "work/diffusion-3/checkpoint-3/optimizer.safetensors",
  "work/diffusion-4/final/unet/diffusion_pytorch_model.safetensors", "work/diffusion-4/checkpoint-2/model.safetensors",
  "work/vae-decoder/final/diffusion_pytorch_model.safetensors", "work/vae-decoder/checkpoint-3/model.safetensors",
];

interface Run { finished: boolean; record: BuildRecord; log: string[] }

async function build(dir: string, recipe: BaseModelRecipe, stopAfterSteps?: number, command?: string): Promise<Run> {
  const log: string[] = [];
  const result = await buildMiniworld({
    recipe, outDir: path.join(dir, "out"), workDir: path.join(dir, "work"), log: (line) => log.push(line), withMetrics: false,
    ...(stopAfterSteps === undefined ? {} : { stopAfterSteps }), ...(command === undefined ? {} : { command }),
  });
  return { finished: result.finished, record: result.record, log };
}

/** Every file of a folder (relative paths), sorted. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name))).sort();
}

/** Largest absolute difference between the same-named tensors of two safetensors files. */
function maxTensorDifference(a: string, b: string): number {
  const left = loadSafetensors(a).tensors;
  const right = loadSafetensors(b).tensors;
  let worst = 0;
  for (const [name, t] of left) {
    const other = right.get(name);
    assert.ok(other !== undefined, `${b} lacks ${name}`);
    worst = Math.max(worst, tidy(() => t.float().sub(other.float()).abs().max().item()));
  }
  for (const t of [...left.values(), ...right.values()]) t.dispose();
  return worst;
}

/** Asserts two files are byte-identical; for differing safetensors files, reports the largest tensor difference. */
function assertSameFile(a: string, b: string, label: string): void {
  const same = readFileSync(a).equals(readFileSync(b));
  if (!same && a.endsWith(".safetensors")) assert.fail(`${label}: the resumed build differs, by up to ${maxTensorDifference(a, b)}`);
  assert.ok(same, `${label} differs between the uninterrupted and the resumed build`);
}

let uninterrupted: Run;
let resumedLast: Run;
const straight = path.join(work, "straight");
const resumed = path.join(work, "resumed");

test("a build stopped mid-stage and run again equals an uninterrupted build, bit for bit", { timeout: 180_000 }, async () => {
  const started = performance.now();
  uninterrupted = await build(straight, RECIPE);
  assert.ok(uninterrupted.finished);

  // Run 1 stops the VAE after 3 steps: its newest checkpoint is step 2, nothing is exported.
  const first = await build(resumed, RECIPE, 3);
  assert.equal(first.finished, false);
  assert.deepEqual(readdirSync(path.join(resumed, "work/vae")).filter((name) => name.startsWith("checkpoint")), ["checkpoint-2"]);
  assert.equal(first.record.stages.vae?.steps, 3);
  assert.ok(!existsSync(path.join(resumed, "out")), "a stopped build must not write the output folder");

  // Run 2 resumes the VAE from step 2 and finishes it, then stops the diffusion stage after 3 steps.
  const second = await build(resumed, RECIPE, 3);
  assert.equal(second.finished, false);
  assert.ok(second.log.some((line) => /^vae: resuming from .*checkpoint-2 \(step 2 of 5\)$/.test(line)), second.log.join("\n"));
  assert.ok(existsSync(path.join(resumed, "work/vae/final/result.json")));
  assert.deepEqual(readdirSync(path.join(resumed, "work/diffusion")).filter((name) => name.startsWith("checkpoint")), ["checkpoint-2"]);

  // Run 3 resumes the diffusion stage from step 2 and exports.
  resumedLast = await build(resumed, RECIPE);
  assert.ok(resumedLast.finished);
  assert.ok(resumedLast.log.some((line) => /^diffusion: resuming from .*checkpoint-2 \(step 2 of 5\)$/.test(line)), resumedLast.log.join("\n"));
  assert.ok(!resumedLast.log.some((line) => line.startsWith("vae: resuming")), "a finished stage must be skipped, not resumed");

  for (const file of COMPARED) assertSameFile(path.join(straight, file), path.join(resumed, file), file);
  const base = filesUnder(path.join(straight, "out/base"));
  assert.deepEqual(filesUnder(path.join(resumed, "out/base")), base);
  for (const file of base) assertSameFile(path.join(straight, "out/base", file), path.join(resumed, "out/base", file), `base/${file}`);
  assert.equal(resumedLast.record.scalingFactor, uninterrupted.record.scalingFactor);
  for (const stage of ["vae", "diffusion"] as const) assert.equal(resumedLast.record.stages[stage]?.steps, 5);
  console.log(`resume: ${COMPARED.length + base.length} files bit-identical to the uninterrupted build (${((performance.now() - started) / 1000).toFixed(1)} s for 4 builds)`);

  // A finished build run again trains nothing and rewrites the same folder.
  const again = await build(resumed, RECIPE);
  assert.ok(again.finished);
  assert.ok(!again.log.some((line) => line.includes("resuming")), again.log.join("\n"));
  for (const file of base) assertSameFile(path.join(straight, "out/base", file), path.join(resumed, "out/base", file), `base/${file} (run again)`);
});

test("a finished build asked for more phase-4 steps extends that run, ending where an uninterrupted longer run ends", { timeout: 180_000 }, async () => {
  assert.ok(uninterrupted !== undefined, "the resume test above must run first");
  const extended = path.join(work, "extended");
  const shorter = baseModelRecipe({ ...RECIPE, colourBalance: { ...RECIPE.colourBalance, steps: 1 } });
  assert.ok((await build(extended, shorter, undefined, "first")).finished);
  const longer = await build(extended, RECIPE, undefined, "longer");
  assert.ok(longer.finished);
  // build.json keeps both command lines: the one that started the folder and the one that extended it.
  assert.equal(longer.record.command, "first");
  const commit = spawnSync("git", ["rev-parse", "HEAD"], { cwd: fileURLToPath(new URL("../../../", import.meta.url)), encoding: "utf8" }).stdout.trim();
  assert.equal(longer.record.commit, commit, "build.json records the commit of the code that started it");
  assert.deepEqual(longer.record.laterCommands, [{ command: "longer", threads: getNumThreads(), commit }]);
  const baseFiles = Object.keys(longer.record.baseModelFiles ?? {});
  assert.ok(baseFiles.some((f) => f.endsWith("unet/diffusion_pytorch_model.safetensors")), baseFiles.join(", "));
  assert.ok(Object.values(longer.record.baseModelFiles ?? {}).every((h) => /^[0-9a-f]{64}$/.test(h)));
  assert.ok(longer.log.some((line) => /^diffusion-4: resuming from .*checkpoint-1 \(step 1 of 2\)$/.test(line)), longer.log.join("\n"));
  assert.ok(!longer.log.some((line) => /^(vae|diffusion|diffusion-2|diffusion-3): resuming/.test(line)), "the earlier stages must be kept as they are");
  for (const file of COMPARED) assertSameFile(path.join(straight, file), path.join(extended, file), `${file} (extended)`);
  for (const file of filesUnder(path.join(straight, "out/base"))) assertSameFile(path.join(straight, "out/base", file), path.join(extended, "out/base", file), `base/${file} (extended)`);
  assert.equal(longer.record.stages["diffusion-4"]?.steps, 2);
});

// A record whose window spans the stop must average every step of it, not only those after the resume (the
// checkpoint keeps every step's loss).
test("a resumed build records the same losses as an uninterrupted one", () => {
  assert.ok(uninterrupted !== undefined && resumedLast !== undefined, "the resume test above must run first");
  const records = (run: Run): unknown => Object.fromEntries((["vae", "diffusion"] as const).map((stage) => [stage, run.record.stages[stage]?.losses]));
  console.log(`loss records: uninterrupted ${JSON.stringify(records(uninterrupted))}, resumed ${JSON.stringify(records(resumedLast))}`);
  assert.deepEqual(records(resumedLast), records(uninterrupted));
});

test("another recipe on the same work folder is refused, naming the folder", async () => {
  assert.ok(existsSync(path.join(resumed, "work/build.json")), "the resume test above must run first");
  const other = baseModelRecipe({ ...RECIPE, vae: { ...RECIPE.vae, steps: 6 } });
  await assert.rejects(build(resumed, other), (error: Error) => {
    assert.match(error.message, /work[/\\]build\.json was made with another recipe .*"steps":5.*; use another --work folder or delete it$/);
    return true;
  });
  // Nothing was overwritten: the recorded recipe is still the first one.
  assert.deepEqual((JSON.parse(readFileSync(path.join(resumed, "work/build.json"), "utf8")) as BuildRecord).recipe, RECIPE);
});

/** Runs `hdb miniworld build` and SIGKILLs it as soon as `watch` exists; resolves with its stderr and signal. */
function runUntilKilled(args: string[], watch: string): Promise<{ signal: NodeJS.Signals | null; stderr: string }> {
  const child: ChildProcess = spawn(process.execPath, [path.join(root, "dist/src/cli/hdb.js"), "miniworld", "build", ...args], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => void (stderr += chunk.toString()));
  const poll = setInterval(() => {
    if (existsSync(watch)) child.kill("SIGKILL");
  }, 20);
  return new Promise((resolve) => child.on("exit", (_code, signal) => {
    clearInterval(poll);
    resolve({ signal, stderr });
  }));
}

function runToEnd(args: string[]): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const child = spawn(process.execPath, [path.join(root, "dist/src/cli/hdb.js"), "miniworld", "build", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  let stdout = "";
  child.stderr.on("data", (chunk: Buffer) => void (stderr += chunk.toString()));
  child.stdout.on("data", (chunk: Buffer) => void (stdout += chunk.toString()));
  return new Promise((resolve) => child.on("exit", (code) => resolve({ code, stderr, stdout })));
}

const killed = path.join(work, "killed");
const CLI_ARGS = ["--out", path.join(killed, "out"), "--work", path.join(killed, "work"), "--threads", "1", "--dataset-size", "16",
  "--vae-steps", "3", "--diffusion-steps", "2", "--continuation-steps", "2", "--conditioning-steps", "1", "--balance-steps", "1", "--decoder-steps", "2", "--batch-size", "2", "--checkpoint-every", "1", "--seed", "2", "--until", "export"];

test("hdb miniworld build killed with SIGKILL mid-stage resumes from its last checkpoint", { timeout: 120_000 }, async () => {
  const stopped = await runUntilKilled(CLI_ARGS, path.join(killed, "work/vae/checkpoint-1"));
  assert.equal(stopped.signal, "SIGKILL", `the build ended before it could be killed:\n${stopped.stderr}`);
  assert.ok(!existsSync(path.join(killed, "work/vae/final")));
  cpSync(path.join(killed, "work"), path.join(work, "killed-copy"), { recursive: true });

  const rerun = await runToEnd(CLI_ARGS);
  assert.equal(rerun.code, 0, rerun.stderr);
  assert.match(rerun.stderr, /vae: resuming from .*checkpoint-[12] \(step [12] of 3\)/);
  assert.match(rerun.stdout, /^done in .*vae .*\(final loss \d+\.\d+\), diffusion .*\(final loss \d+\.\d+\), export/);
  assert.ok(existsSync(path.join(killed, "out/base/unet/diffusion_pytorch_model.safetensors")));
});

// A kill during the first stage leaves checkpoints but no work/build.json (buildMiniworld writes it only after
// the VAE stage returns), so another recipe then resumes the killed build's checkpoints unchecked.
// Fix: write the record (recipe) to work/build.json before the first stage starts.
test("after a kill in the first stage, another recipe on the work folder is refused", async () => {
  const copy = path.join(work, "killed-copy");
  assert.ok(existsSync(path.join(copy, "vae")), "the kill test above must run first");
  const other = baseModelRecipe({ seed: 2, datasetSize: 16, checkpointEvery: 1, vae: { steps: 4, decoderSteps: 2 }, diffusion: { steps: 2, batchSize: 2 }, continuation: { steps: 2, warmupSteps: 1 } });
  // stopAfterSteps 0: if the recipe is (wrongly) accepted, the VAE stage resumes and stops before training.
  await assert.rejects(buildMiniworld({ recipe: other, outDir: path.join(work, "killed-copy-out"), workDir: copy, stopAfterSteps: 0, withMetrics: false }), /was made with another recipe/);
});
