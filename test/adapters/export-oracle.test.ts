// LoRA export against diffusers (paper §4.1): a LiDB file with random non-zero factors on the tiny SD1 and SD2
// pipelines, exported in the diffusers/peft and kohya layouts, is loaded by diffusers' own
// `pipe.load_lora_weights` (test/adapters/lora_oracle.py, run with the .venv Python). Its UNet output, text-encoder
// output and txt2img image for a fixed seed must equal ours with the LiDB file applied (≤ 1e-4 on module
// outputs, ≤ 1/255 on pixels). The exported files read back through our own LoRA path give the LiDB outputs,
// and a plain LoRA (injectLora, random factors, alpha ≠ rank) written in both layouts passes the same check,
// as does a LoRA trained by `hdb train-lora`, and a personalised result (LiDB + rank-relaxed part, paper §4.3)
// exported as one LoRA of rank 1 + r.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Generator, loadSafetensors, noGrad, randn, saveSafetensors, setNumThreads, tensor, tidy, type Tensor } from "../../src/engine/index.js";
import {
  applyLidbFile, applyLoraFile, describeBaseModel, exportLidbFile, injectLidb, injectLora, saveLidbFile, writeLidbFile, writeLoraFile,
  type AdaptedModels, type LidbDimensions,
} from "../../src/adapters/index.js";
import { StableDiffusionPipeline } from "../../src/pipeline/stable-diffusion.js";
import { skipOutsideCI } from "../prerequisites.js";

// Tiny models: one thread is fastest, and steady on a busy machine.
setNumThreads(1);
const root = fileURLToPath(new URL("../../../", import.meta.url));
const python = path.join(root, ".venv/bin/python");
const tiny = path.join(root, "test/fixtures/generated/tiny_sd");
const work = mkdtempSync(path.join(tmpdir(), "hdb-lidb-export-"));
after(() => rmSync(work, { recursive: true, force: true }));

const PROMPT = "a sks face";
const GENERATION = { steps: 3, guidance: 7.5, seed: 5 };
const MODULE_BAR = 1e-4;
const PIXEL_BAR = 1 / 255;

interface Outputs { unet: Tensor; text: Tensor; image: Tensor }
interface OracleCase { name: string; kind: string; pipeline: string; lora: string | null; prompt: string; seed: number; steps: number; guidance: number }

const maxAbs = (a: Tensor, b: Tensor): number => tidy(() => a.float().sub(b.float()).abs().max().item());

/** Our outputs for the oracle's inputs: UNet, text encoder, and the txt2img image in [0, 1] as (N, H, W, 3). */
function outputs(pipeline: StableDiffusionPipeline, inputs: Map<string, Tensor>, kind: string): Outputs {
  return noGrad(() => tidy(() => {
    const unet = pipeline.unet.forward(inputs.get(`${kind}.sample`)!, inputs.get(`${kind}.timestep`)!, inputs.get(`${kind}.encoder_hidden_states`)!);
    const text = pipeline.textEncoder.forward(inputs.get(`${kind}.input_ids`)!).lastHiddenState;
    const result = pipeline.generate({ prompt: PROMPT, steps: GENERATION.steps, guidanceScale: GENERATION.guidance, seed: GENERATION.seed });
    const image = result.images.div(2).add(0.5).clamp(0, 1).permute(0, 2, 3, 1).contiguous();
    return { unet, text, image };
  }));
}

test("exported LiDB files (diffusers and kohya layouts) load in diffusers with the LiDB's outputs; a plain LoRA too", { timeout: 120_000 }, async (t) => {
  const reason = skipOutsideCI(existsSync(python) ? false : "the Python oracle (.venv) is not set up: run scripts/setup.sh");
  if (reason) return t.skip(reason);
  const generator = new Generator("cpu", 1234);
  const inputs = new Map<string, Tensor>();
  const ours = new Map<string, Outputs>();
  const cases: OracleCase[] = [];
  const kinds: [string, LidbDimensions][] = [["sd1", { a: 16, b: 8, rank: 2 }], ["sd2", { a: 100, b: 50, rank: 1 }]];
  for (const [kind, dims] of kinds) {
    const folder = path.join(tiny, kind);
    const pipeline = await StableDiffusionPipeline.fromPretrained(folder);
    const models: AdaptedModels = { unet: pipeline.unet, textEncoder: pipeline.textEncoder };
    const { inputIds } = pipeline.tokenizer.call([PROMPT], { padding: "max_length", maxLength: pipeline.tokenizer.modelMaxLength, truncation: true });
    inputs.set(`${kind}.sample`, randn([1, 4, 16, 16], { generator }));
    inputs.set(`${kind}.timestep`, tensor([417], { dtype: "int64" }));
    inputs.set(`${kind}.encoder_hidden_states`, randn([1, 77, 32], { generator }));
    inputs.set(`${kind}.input_ids`, tensor(BigInt64Array.from(inputIds[0]!, (v) => BigInt(v)), { shape: [1, inputIds[0]!.length] }));
    const base = outputs(pipeline, inputs, kind);

    // A LiDB with random non-zero factors, saved, then applied from the file.
    const lidbPath = path.join(work, `${kind}.lidb.safetensors`);
    const trained = injectLidb(models, { ...dims, seed: 7 });
    tidy(() => trained.setFactors({
      aTrain: randn([trained.size, dims.a, dims.rank], { generator }).mul(0.4),
      bTrain: randn([trained.size, dims.rank, dims.b], { generator }).mul(0.4),
    }));
    saveLidbFile(lidbPath, trained, { baseModel: describeBaseModel(models, `tiny/${kind}`), identifier: "sks" });
    // A personalised result (paper §4.3, `hdb personalize`): the same LiDB part plus a rank-relaxed LoRA (rank 2,
    // alpha 3) in one file, whose export is ONE LoRA of rank 1 + 2 (sd1's LiDB is rank 2 here: 2 + 2).
    const personalPath = path.join(work, `${kind}.personal.lidb.safetensors`);
    if (kind === "sd1") {
      const factors = trained.getFactors();
      const relaxed = new Map(trained.targetShapes.map((t) => [t.name, {
        down: randn([2, t.inFeatures], { generator }).mul(0.3), up: randn([t.outFeatures, 2], { generator }).mul(0.3), alpha: 3,
      }] as const));
      writeLidbFile(personalPath, {
        factors, targets: trained.targetShapes, dims: trained.dims, seed: trained.seed, basisChecksum: trained.basisChecksum,
        baseModel: describeBaseModel(models, `tiny/${kind}`), identifier: "sks", relaxed,
      });
      for (const t of [factors.aTrain, factors.bTrain, ...[...relaxed.values()].flatMap((w) => [w.down, w.up])]) t.dispose();
    }
    trained.dispose();
    const { adapters } = applyLidbFile(models, lidbPath);
    const lidb = outputs(pipeline, inputs, kind);
    adapters.dispose();
    const effect = maxAbs(lidb.unet, base.unet);
    console.log(`${kind}: the LiDB changes the UNet output by up to ${effect.toExponential(2)} and the text states by ${maxAbs(lidb.text, base.text).toExponential(2)}`);
    assert.ok(effect > 1e-2 && maxAbs(lidb.text, base.text) > 1e-2, "the test LiDB must change the outputs visibly");
    ours.set(`${kind}_lidb`, lidb);
    if (kind === "sd1") {
      const personal = applyLidbFile(models, personalPath);
      assert.ok(personal.relaxed, "the personalised file's relaxed part is applied");
      const outputsPersonal = outputs(pipeline, inputs, kind);
      personal.adapters.dispose();
      personal.relaxed.dispose();
      assert.ok(maxAbs(outputsPersonal.unet, lidb.unet) > 1e-2, "the relaxed part must change the outputs visibly");
      ours.set(`${kind}_personal`, outputsPersonal);
      for (const format of ["diffusers", "kohya"] as const) {
        const file = path.join(work, `${kind}.personal.${format}.safetensors`);
        exportLidbFile(personalPath, file, { format });
        const header = loadSafetensors(file);
        const ranks = new Set([...header.tensors.entries()].filter(([k]) => /lora_(A|down)\.weight$/.test(k)).map(([, t]) => t.shape[0]));
        for (const t of header.tensors.values()) t.dispose();
        assert.deepEqual([...ranks], [4], `${format}: one LoRA of rank 2 + 2`);
        cases.push({ name: `${kind}_personal_${format}`, kind, pipeline: folder, lora: file, prompt: PROMPT, ...GENERATION });
      }
    }

    for (const format of ["diffusers", "kohya"] as const) {
      const file = path.join(work, `${kind}.${format}.safetensors`);
      exportLidbFile(lidbPath, file, { format });
      cases.push({ name: `${kind}_lidb_${format}`, kind, pipeline: folder, lora: file, prompt: PROMPT, ...GENERATION });
      // Our own LoRA path on the exported file equals the LiDB path.
      const lora = applyLoraFile(models, file);
      const again = outputs(pipeline, inputs, kind);
      lora.dispose();
      const errors = { unet: maxAbs(again.unet, lidb.unet), text: maxAbs(again.text, lidb.text), image: maxAbs(again.image, lidb.image) };
      console.log(`${kind} ${format}: our --lora path vs the LiDB path ${JSON.stringify(errors)}`);
      assert.ok(errors.unet <= 1e-5 && errors.text <= 1e-5 && errors.image <= 1e-5, `${kind} ${format}: ${JSON.stringify(errors)}`);
    }

    // A plain LoRA (rank 3, alpha 6: scaling 2) with random factors, written in both layouts.
    const plain = injectLora(models, { rank: 3, alpha: 6, seed: 3 });
    tidy(() => {
      for (const [target, adapter] of plain.entries()) {
        adapter.setFactors(adapter.loraA, randn([target.layer.outFeatures, 3], { generator }).mul(0.2));
      }
    });
    const plainOutputs = outputs(pipeline, inputs, kind);
    assert.ok(maxAbs(plainOutputs.unet, base.unet) > 1e-2 && maxAbs(plainOutputs.text, base.text) > 1e-2, "the test LoRA must change the outputs visibly");
    ours.set(`${kind}_lora`, plainOutputs);
    const layers = plain.getFactors();
    for (const format of ["diffusers", "kohya"] as const) {
      const file = path.join(work, `${kind}.plain-${format}.safetensors`);
      writeLoraFile(file, layers, { format, baseModel: describeBaseModel(models, `tiny/${kind}`) });
      cases.push({ name: `${kind}_lora_${format}`, kind, pipeline: folder, lora: file, prompt: PROMPT, ...GENERATION });
    }
    for (const w of layers.values()) {
      w.down.dispose();
      w.up.dispose();
    }
    plain.dispose();

    // A LoRA trained by `hdb train-lora` (the real CLI, a few steps at a high learning rate so it is non-zero)
    // passes the same check: its diffusers-layout file loads in diffusers with our outputs.
    if (kind === "sd1") {
      const trainedDir = path.join(work, "trained-lora");
      const cli = spawnSync(process.execPath, [path.join(root, "dist/src/cli/hdb.js"), "train-lora", "--pretrained-model", folder,
        "--instance-data-dir", path.join(root, "samples/faces/60000-n1.png"), "--output-dir", trainedDir,
        "--max-train-steps", "4", "--learning-rate", "1e-2", "--rank", "2", "--seed", "3"], { encoding: "utf8", timeout: 120_000 });
      assert.equal(cli.status, 0, `hdb train-lora failed:\n${cli.stderr}`);
      const trainedFile = path.join(trainedDir, "60000-n1.lora.safetensors");
      const applied = applyLoraFile(models, trainedFile);
      const trainedOutputs = outputs(pipeline, inputs, kind);
      applied.dispose();
      assert.ok(maxAbs(trainedOutputs.unet, base.unet) > 0 && maxAbs(trainedOutputs.text, base.text) > 0, "the trained LoRA must change the outputs");
      ours.set(`${kind}_trained`, trainedOutputs);
      cases.push({ name: `${kind}_trained_diffusers`, kind, pipeline: folder, lora: trainedFile, prompt: PROMPT, ...GENERATION });
    }
    pipeline.dispose();
  }

  const inputsPath = path.join(work, "inputs.safetensors");
  saveSafetensors(inputsPath, inputs);
  const spec = path.join(work, "spec.json");
  const outPath = path.join(work, "oracle.safetensors");
  writeFileSync(spec, JSON.stringify({ inputs: inputsPath, out: outPath, cases }));
  const started = Date.now();
  const run = spawnSync(python, [path.join(root, "test/adapters/lora_oracle.py"), spec], { encoding: "utf8" });
  assert.equal(run.status, 0, `the diffusers oracle failed:\n${run.stderr}${run.stdout}`);
  console.log(`diffusers oracle: ${cases.length} cases in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const expected = loadSafetensors(outPath).tensors;
  for (const c of cases) {
    const mine = ours.get(c.name.replace(/_(diffusers|kohya)$/, ""))!;
    const errors = {
      unet: maxAbs(mine.unet, expected.get(`${c.name}.unet`)!),
      text: maxAbs(mine.text, expected.get(`${c.name}.text`)!),
      image: maxAbs(mine.image, expected.get(`${c.name}.image`)!),
    };
    console.log(`${c.name}: ours vs diffusers.load_lora_weights ${JSON.stringify(errors)}`);
    assert.ok(errors.unet <= MODULE_BAR, `${c.name}: UNet output differs by ${errors.unet}`);
    assert.ok(errors.text <= MODULE_BAR, `${c.name}: text-encoder output differs by ${errors.text}`);
    assert.ok(errors.image <= PIXEL_BAR, `${c.name}: image differs by ${errors.image}`);
  }
});
