// The mini-world base-model recipe end to end (issue 5): a tiny `buildMiniworld` (full-width models, a few steps
// on 16 images) writes <out>/base as a diffusers folder with float16 weights, the EMA weights of the diffusion
// stage, and build.json; our StableDiffusionPipeline loads it and generates 64 × 64 images. Then diffusers
// itself (test/miniworld/base_model_oracle.py, the .venv Python) loads the same folder: its UNet and text-encoder
// outputs, tokenization and txt2img images for two prompts must equal ours (≤ 1e-4 on module outputs, ≤ 1/255
// on pixels), and our ExponentialMovingAverage must follow diffusers' EMAModel. The same comparison runs on the
// bundled default, models/miniworld/base.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  Generator, loadSafetensors, noGrad, randn, readSafetensorsHeader, saveSafetensors, setNumThreads, tensor, tidy, type Tensor,
} from "../../src/engine/index.js";
import { ExponentialMovingAverage } from "../../src/engine/optim/index.js";
import { baseModelRecipe } from "../../src/miniworld/base-model/config.js";
import { buildMiniworld, type BuildRecord } from "../../src/miniworld/base-model/recipe.js";
import { CLIPTextModel } from "../../src/models/clip/text-encoder.js";
import { UNet2DConditionModel } from "../../src/models/unet/index.js";
import { StableDiffusionPipeline } from "../../src/pipeline/stable-diffusion.js";
import { skipOutsideCI } from "../prerequisites.js";

// Full-width models on a busy machine: one thread is fastest and keeps kernels (and so results) fixed.
setNumThreads(1);
const root = fileURLToPath(new URL("../../../", import.meta.url));
const python = path.join(root, ".venv/bin/python");
const work = mkdtempSync(path.join(tmpdir(), "hdb-base-model-"));
after(() => rmSync(work, { recursive: true, force: true }));
const outDir = path.join(work, "out");
const workDir = path.join(work, "work");
const baseDir = path.join(outDir, "base");

const RECIPE = baseModelRecipe({
  seed: 3, datasetSize: 16, checkpointEvery: 2,
  vae: { steps: 2, batchSize: 2, warmupSteps: 1, decoderSteps: 2 },
  diffusion: { steps: 3, batchSize: 2, warmupSteps: 1 }, continuation: { steps: 2, warmupSteps: 1 }, conditioning: { steps: 2, warmupSteps: 1 }, colourBalance: { steps: 2, warmupSteps: 1 },
});
const PROMPTS = ["a face as a pencil sketch", "a photo of a woman with long wavy red hair"];
const GENERATION = { steps: 3, guidance: 7.5, seed: 11 };
const MODULE_BAR = 1e-4;
const PIXEL_BAR = 1 / 255;
const EMA_DECAY = 0.3;

const maxAbs = (a: Tensor, b: Tensor): number => tidy(() => a.float().sub(b.float()).abs().max().item());
const readJson = <T>(file: string): T => JSON.parse(readFileSync(file, "utf8")) as T;

let built = false;
/** Our EMA shadows after each update of the EMA case, and the oracle's output file, for the EMA test. */
const ourShadows = new Map<string, Tensor>();
let oracleOutput: string | null = null;

test("a tiny build writes a float16 diffusers folder, EMA weights and build.json; our pipeline generates from it", { timeout: 120_000 }, async () => {
  const lines: string[] = [];
  const result = await buildMiniworld({ recipe: RECIPE, outDir, workDir, log: (line) => lines.push(line), command: "test", withMetrics: false });
  assert.ok(result.finished, `the build stopped early:\n${lines.join("\n")}`);
  assert.equal(result.baseDir, baseDir);

  // The diffusers layout, weights in float16.
  const modelIndex = readJson<Record<string, unknown>>(path.join(baseDir, "model_index.json"));
  assert.equal(modelIndex._class_name, "StableDiffusionPipeline");
  assert.deepEqual(modelIndex.unet, ["diffusers", "UNet2DConditionModel"]);
  assert.deepEqual(modelIndex.scheduler, ["diffusers", "PNDMScheduler"]);
  for (const file of ["scheduler/scheduler_config.json", "text_encoder/config.json", "unet/config.json", "vae/config.json",
    "tokenizer/vocab.json", "tokenizer/merges.txt", "tokenizer/tokenizer_config.json", "tokenizer/special_tokens_map.json"]) {
    assert.ok(existsSync(path.join(baseDir, file)), `${file} is missing from ${baseDir}`);
  }
  assert.deepEqual(readdirSync(baseDir).sort(), ["model_index.json", "scheduler", "text_encoder", "tokenizer", "unet", "vae"]);
  const weightFiles = ["unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors"];
  for (const file of weightFiles) {
    const { entries } = readSafetensorsHeader(path.join(baseDir, file));
    assert.ok(entries.size > 10, `${file} holds only ${entries.size} tensors`);
    const other = [...entries].filter(([name, entry]) => entry.dtype !== "float16" && !name.endsWith("position_ids"));
    assert.deepEqual(other.map(([name, entry]) => `${name}: ${entry.dtype}`), [], `${file}: every weight is float16`);
  }

  // build.json: the recipe, each stage's seconds, steps and finite final loss, the scaling factor and the size.
  const record = readJson<BuildRecord>(path.join(outDir, "build.json"));
  assert.deepEqual(record.recipe, RECIPE);
  assert.equal(record.command, "test");
  assert.equal(record.threads, 1);
  for (const stage of ["dataset", "vae", "diffusion", "diffusion-2", "diffusion-3", "diffusion-4", "vae-decoder", "export"] as const) {
    const seconds = record.stages[stage]?.seconds;
    assert.ok(seconds !== undefined && Number.isFinite(seconds) && seconds > 0, `build.json: ${stage} seconds ${seconds}`);
  }
  for (const [stage, steps] of [["vae", RECIPE.vae.steps], ["diffusion", RECIPE.diffusion.steps], ["diffusion-2", RECIPE.continuation.steps], ["diffusion-3", RECIPE.conditioning.steps], ["diffusion-4", RECIPE.colourBalance.steps], ["vae-decoder", RECIPE.vae.decoderSteps]] as const) {
    const entry = record.stages[stage]!;
    assert.equal(entry.steps, steps, `build.json: ${stage} steps`);
    assert.ok(Number.isFinite(entry.finalLoss) && entry.finalLoss! > 0, `build.json: ${stage} final loss ${entry.finalLoss}`);
    assert.deepEqual(entry.losses?.at(-1), { step: steps, loss: entry.finalLoss });
  }
  console.log(`build.json: ${JSON.stringify(Object.fromEntries(Object.entries(record.stages).map(([k, v]) => [k, { seconds: Number(v.seconds.toFixed(2)), finalLoss: v.finalLoss }])))}`);
  const vaeConfig = readJson<{ scaling_factor: number }>(path.join(baseDir, "vae/config.json"));
  assert.ok(Number.isFinite(record.scalingFactor) && record.scalingFactor! > 0, `scaling factor ${record.scalingFactor}`);
  assert.equal(vaeConfig.scaling_factor, record.scalingFactor);
  const bytes = readdirSync(baseDir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile())
    .reduce((sum, e) => sum + statSync(path.join(e.parentPath, e.name)).size, 0);
  assert.equal(record.baseModelBytes, bytes);
  assert.deepEqual(readJson<BuildRecord>(path.join(workDir, "build.json")), record);

  // The exported UNet and text encoder are the last diffusion phase's EMA weights, cast to float16 (not the last step's).
  const checkpoint = loadSafetensors(path.join(workDir, "diffusion-4", `checkpoint-${RECIPE.colourBalance.steps}`, "model.safetensors")).tensors;
  const exported = new Map<string, Tensor>([
    ...[...loadSafetensors(path.join(baseDir, weightFiles[0]!)).tensors].map(([k, t]) => [`unet.${k}`, t] as const),
    ...[...loadSafetensors(path.join(baseDir, weightFiles[2]!)).tensors].map(([k, t]) => [`text_encoder.${k}`, t] as const),
  ]);
  const unet = UNet2DConditionModel.fromPretrained(path.join(workDir, "diffusion-4/final/unet"));
  const textEncoder = CLIPTextModel.fromPretrained(path.join(workDir, "diffusion-4/final/text_encoder"));
  const names: string[] = [...unet.namedParameters().map(([k]) => `unet.${k}`), ...textEncoder.namedParameters().map(([k]) => `text_encoder.${k}`)];
  const final = new Map<string, Tensor>([...[...unet.stateDict()].map(([k, t]) => [`unet.${k}`, t] as const), ...[...textEncoder.stateDict()].map(([k, t]) => [`text_encoder.${k}`, t] as const)]);
  let emaError = 0;
  let exportError = 0;
  let movedFromLastStep = 0;
  names.forEach((name, i) => {
    const shadow = checkpoint.get(`ema.${i}`);
    assert.ok(shadow !== undefined, `the checkpoint lacks ema.${i} (${name})`);
    emaError = Math.max(emaError, maxAbs(final.get(name)!, shadow));
    exportError = Math.max(exportError, maxAbs(exported.get(name)!, tidy(() => shadow.to("float16"))));
    movedFromLastStep = Math.max(movedFromLastStep, maxAbs(shadow, checkpoint.get(name)!));
  });
  assert.equal(checkpoint.size, 2 * names.length + [...final.keys()].filter((k) => !names.includes(k)).length);
  console.log(`export: EMA shadow vs final weights ${emaError}, float16 export vs shadow.half() ${exportError}, EMA vs last step ${movedFromLastStep.toExponential(2)}`);
  assert.equal(emaError, 0);
  assert.equal(exportError, 0);
  assert.ok(movedFromLastStep > 0, "the EMA weights must differ from the last step's");
  unet.dispose();
  textEncoder.dispose();
  for (const t of [...checkpoint.values(), ...exported.values()]) t.dispose();

  // Our pipeline loads the folder and generates 64 × 64 images.
  const pipeline = await StableDiffusionPipeline.fromPretrained(baseDir);
  try {
    const images = noGrad(() => pipeline.generate({ prompt: PROMPTS[0]!, steps: 2, seed: 1 }).images);
    assert.deepEqual(images.shape, [1, 3, 64, 64]);
    assert.ok(Number.isFinite(tidy(() => images.abs().max().item())));
    images.dispose();
  } finally {
    pipeline.dispose();
  }
  built = true;
});

/**
 * Our pipeline and diffusers (base_model_oracle.py) on the same diffusers folder: UNet and text-encoder outputs on
 * random inputs, tokenization and txt2img images of PROMPTS. `extraInputs` go to the oracle too (the EMA case)
 * and are disposed with the other inputs.
 * Returns the largest differences and the oracle's output file.
 */
async function compareWithDiffusers(folder: string, name: string, extraInputs: Map<string, Tensor> = new Map()): Promise<{ errors: Record<string, number>; outPath: string }> {
  const generator = new Generator("cpu", 1234);
  const pipeline = await StableDiffusionPipeline.fromPretrained(folder);
  const inputs = new Map<string, Tensor>(extraInputs);
  const { inputIds } = pipeline.tokenizer.call(PROMPTS, { padding: "max_length", maxLength: pipeline.tokenizer.modelMaxLength, truncation: true });
  inputs.set("unet.sample", randn([2, 4, 16, 16], { generator }));
  inputs.set("unet.timestep", tensor([417, 31], { dtype: "int64" }));
  inputs.set("unet.encoder_hidden_states", randn([2, 77, 128], { generator }));
  inputs.set("text.input_ids", tensor(inputIds, { dtype: "int64" }));
  const ours = noGrad(() => tidy(() => {
    const text = pipeline.textEncoder.forward(inputs.get("text.input_ids")!);
    const generated = pipeline.generate({ prompt: PROMPTS, steps: GENERATION.steps, guidanceScale: GENERATION.guidance, seed: GENERATION.seed });
    return {
      unet: pipeline.unet.forward(inputs.get("unet.sample")!, inputs.get("unet.timestep")!, inputs.get("unet.encoder_hidden_states")!),
      text: text.lastHiddenState,
      textPooled: text.pooledOutput,
      image: generated.images.div(2).add(0.5).clamp(0, 1).permute(0, 2, 3, 1).contiguous(),
    };
  }));
  pipeline.dispose();
  assert.deepEqual(ours.image.shape, [2, 64, 64, 3]);

  const inputsPath = path.join(work, `${name}-oracle-inputs.safetensors`);
  saveSafetensors(inputsPath, inputs);
  const outPath = path.join(work, `${name}-oracle.safetensors`);
  const spec = path.join(work, `${name}-oracle-spec.json`);
  writeFileSync(spec, JSON.stringify({ pipeline: folder, inputs: inputsPath, out: outPath, prompts: PROMPTS, ema_decay: EMA_DECAY, ...GENERATION }));
  const started = Date.now();
  const run = spawnSync(python, [path.join(root, "test/miniworld/base_model_oracle.py"), spec], { encoding: "utf8" });
  assert.equal(run.status, 0, `the diffusers oracle failed:\n${run.stderr}${run.stdout}`);
  const expected = loadSafetensors(outPath).tensors;
  const loaded = readJson<{ scheduler: string }>(`${outPath}.json`);
  assert.equal(loaded.scheduler, "PNDMScheduler");

  assert.deepEqual(expected.get("prompt_ids")!.toArray(), inputs.get("text.input_ids")!.toArray(), "our tokenization of the prompts differs from diffusers'");
  const errors = {
    unet: maxAbs(ours.unet, expected.get("unet")!),
    text: maxAbs(ours.text, expected.get("text")!),
    textPooled: maxAbs(ours.textPooled, expected.get("text_pooled")!),
    image: maxAbs(ours.image, expected.get("image")!),
  };
  console.log(`ours vs diffusers on ${name} (${((Date.now() - started) / 1000).toFixed(1)} s in Python): ${JSON.stringify(errors)}`);
  assert.ok(tidy(() => ours.image.std().item()) > 1e-3, "the generated images must not be flat");
  for (const x of [...inputs.values(), ...expected.values(), ...Object.values(ours)]) x.dispose();
  return { errors, outPath };
}

function assertWithinBars(errors: Record<string, number>): void {
  assert.ok(errors.unet! <= MODULE_BAR, `UNet output differs by ${errors.unet}`);
  assert.ok(errors.text! <= MODULE_BAR && errors.textPooled! <= MODULE_BAR, `text-encoder output differs by ${errors.text} (pooled ${errors.textPooled})`);
  assert.ok(errors.image! <= PIXEL_BAR, `images differ by ${errors.image}`);
}

test("diffusers loads <out>/base and gives our module outputs, tokens and images", { timeout: 120_000 }, async (t) => {
  const reason = skipOutsideCI(existsSync(python) ? false : "the Python oracle (.venv) is not set up: run scripts/setup.sh");
  if (reason) return t.skip(reason);
  assert.ok(built, "the build test above must pass first");
  // The EMA case: two tensors, an initial value and five updates (the warm-up and the decay cap at 0.3).
  const generator = new Generator("cpu", 4321);
  const emaInputs = new Map<string, Tensor>();
  const initial = [randn([3, 4], { generator }), randn([5], { generator })];
  initial.forEach((v, i) => emaInputs.set(`ema.initial.${i}`, v));
  const parameters = initial.map((v) => v.clone());
  const ema = new ExponentialMovingAverage(parameters, EMA_DECAY);
  for (let k = 0; k < 5; k++) {
    parameters.forEach((p, i) => {
      const value = randn(p.shape, { generator });
      emaInputs.set(`ema.value.${k}.${i}`, value);
      noGrad(() => p.copy_(value));
    });
    ema.update();
    ema.shadow.forEach((s, i) => ourShadows.set(`ema.shadow.${k}.${i}`, s.clone()));
  }
  ema.dispose();
  for (const x of parameters) x.dispose();

  const { errors, outPath } = await compareWithDiffusers(baseDir, "the tiny build's base", emaInputs);
  oracleOutput = outPath;
  assertWithinBars(errors);
});

// The bundled default itself (models/miniworld/base, what `npm start` runs on) must load in diffusers too.
test("diffusers loads the bundled models/miniworld/base and gives our module outputs, tokens and images", { timeout: 120_000 }, async (t) => {
  const reason = skipOutsideCI(existsSync(python) ? false : "the Python oracle (.venv) is not set up: run scripts/setup.sh");
  if (reason) return t.skip(reason);
  const { errors } = await compareWithDiffusers(path.join(root, "models", "miniworld", "base"), "the bundled base");
  assertWithinBars(errors);
});

// ExponentialMovingAverage follows diffusers' EMAModel warm-up: the first update uses decay 0 (the shadow becomes
// the parameters: get_decay returns 0 while optimization_step - 1 <= 0), then min(maxDecay, (1 + n) / (10 + n)).
test("ExponentialMovingAverage follows diffusers' EMAModel update by update", (t) => {
  if (oracleOutput === null) return t.skip("needs the diffusers oracle run above");
  const expected = loadSafetensors(oracleOutput).tensors;
  const perUpdate: string[] = [];
  let emaError = 0;
  for (let k = 0; k < 5; k++) {
    let error = 0;
    for (const [name, shadow] of ourShadows) if (name.startsWith(`ema.shadow.${k}.`)) error = Math.max(error, maxAbs(shadow, expected.get(name)!));
    perUpdate.push(error.toExponential(2));
    emaError = Math.max(emaError, error);
  }
  for (const x of [...expected.values(), ...ourShadows.values()]) x.dispose();
  console.log(`ExponentialMovingAverage vs diffusers' EMAModel, max difference after each of 5 updates: ${perUpdate.join(", ")}`);
  assert.ok(emaError <= 1e-6, `the EMA shadows differ from diffusers' EMAModel by up to ${emaError}`);
});
