// DreamBooth training of LiDB adapters on the tiny SD1 pipeline (issue 4's behaviour tests):
//  - a few hundred steps on one identity lower the DreamBooth loss on its photos well below the untrained
//    model's (same evaluation draws for both), and generating with the written LiDB file differs from the base;
//  - a fixed seed gives a bit-identical run; another seed does not.
// LiDB a = b = 16 here: the tiny model's layers are 32 wide, and with a or b above a layer's width the
// factors get directions that do not change ΔW, whose gradient is rounding noise that Adam amplifies.
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { Generator, loadSafetensors } from "../../src/engine/index.js";
import { applyLidbFile } from "../../src/adapters/lidb/file.js";
import { resolveConfig } from "../../src/dreambooth/config.js";
import { DreamBoothTrainer, trainDreamBooth } from "../../src/dreambooth/trainer.js";
import { StableDiffusionPipeline } from "../../src/pipeline/stable-diffusion.js";
import { temporaryDir, tinyConfig, tinySd1, writeIdentities } from "./helpers.js";

const STEPS = 200;

test("200 steps on one identity lower its DreamBooth loss well below the untrained model's; the file changes generation", async (t) => {
  const root = temporaryDir("train-lidb");
  const [identity] = await writeIdentities(root, 1, 2);
  const config = resolveConfig(tinyConfig(path.join(root, "out"), [identity!], { maxTrainSteps: STEPS }));
  const trainer = await DreamBoothTrainer.open(config);
  let file: string;
  try {
    const run = await trainer.startIdentity(identity!);
    const initial = trainer.adapters.initialFactors();
    const untrained = trainer.evaluate(run, initial, { draws: 64 });
    for (const factor of initial.values()) factor.dispose();
    const started = Date.now();
    for (let step = 0; step < STEPS; step++) trainer.trainStep([run]);
    const seconds = (Date.now() - started) / 1000;
    const trained = trainer.evaluate(run, run.factors, { draws: 64 });
    t.diagnostic(`DreamBooth loss on the identity's photos (64 fixed draws): untrained ${untrained.toFixed(4)}, after ${STEPS} steps ${trained.toFixed(4)} ` +
      `(ratio ${(trained / untrained).toFixed(3)}); training loss first/last 10 steps ${mean(run.losses.slice(0, 10)).toFixed(4)} / ${run.recentLoss().toFixed(4)}; ${seconds.toFixed(1)} s`);
    assert.ok(untrained > 0.9, `the untrained loss ${untrained} should be near 1 (a random tiny UNet predicts noise badly)`);
    assert.ok(trained < 0.8 * untrained, `trained loss ${trained} is not well below the untrained ${untrained}`);
    file = path.join(config.outputDir, trainer.finish(run).file);
  } finally {
    trainer.dispose();
  }

  const pipeline = await StableDiffusionPipeline.fromPretrained(tinySd1);
  try {
    const generate = (): Float32Array => {
      const result = pipeline.generate({ prompt: "a sks face", steps: 4, seed: 7 });
      const pixels = result.images.data() as Float32Array;
      result.images.dispose();
      result.latents.dispose();
      return pixels;
    };
    const base = generate();
    const { adapters } = applyLidbFile({ unet: pipeline.unet, textEncoder: pipeline.textEncoder }, file);
    const personalised = generate();
    adapters.dispose();
    const again = generate();
    const difference = maxAbsDifference(base, personalised);
    t.diagnostic(`generation with the LiDB file vs the base model: max |Δpixel| ${difference.toFixed(4)} (pixels in [-1, 1])`);
    assert.ok(difference > 0.05, `generation with the trained file is (almost) the base model's: ${difference}`);
    assert.equal(maxAbsDifference(base, again), 0, "removing the adapters restores the base model exactly");
  } finally {
    pipeline.dispose();
  }
});

test("a fixed seed gives a bit-identical run; another seed gives another result", async () => {
  const root = temporaryDir("train-seed");
  const identities = await writeIdentities(root, 1);
  const factorsOf = async (name: string, seed: number): Promise<Uint8Array[]> => {
    const out = path.join(root, name);
    const { manifest } = await trainDreamBooth(tinyConfig(out, identities, { maxTrainSteps: 6, seed, randomFlip: 0.5, randomCropScale: 0.8 }));
    const { tensors } = loadSafetensors(path.join(out, manifest.identities[0]!.file));
    const bytes = ["lidb.a_train", "lidb.b_train"].map((key) => tensors.get(key)!.bytes());
    for (const tensor of tensors.values()) tensor.dispose();
    return bytes;
  };
  const first = await factorsOf("first", 3);
  const second = await factorsOf("second", 3);
  const other = await factorsOf("other", 4);
  assert.deepEqual(second, first, "same seed, same bits");
  assert.notDeepEqual(other, first, "another seed gives other factors");
});

test("gradient checkpointing gives the factors the gradients of a plain backward pass (two identities in a batch)", async () => {
  const root = temporaryDir("train-checkpointing");
  const identities = await writeIdentities(root, 2);
  const gradients: Float32Array[][] = [];
  for (const gradientCheckpointing of [false, true]) {
    const trainer = await DreamBoothTrainer.open(resolveConfig(tinyConfig(path.join(root, String(gradientCheckpointing)), identities, {
      identitiesPerBatch: 2, gradientCheckpointing,
    })));
    try {
      const runs = [await trainer.startIdentity(identities[0]!), await trainer.startIdentity(identities[1]!)];
      trainer.trainStep(runs); // A_train is zero at first: one step makes every factor's gradient non-zero
      const draws = runs.map((run, i) => run.draw(trainer.shared, false, new Generator("cpu", 100 + i)));
      trainer.batchLosses(runs.map((run) => run.factors), draws, true);
      gradients.push(runs.flatMap((run) => [...run.factors.values()].map((factor) => {
        using grad = factor.grad!;
        return grad.data() as Float32Array;
      })));
    } finally {
      trainer.dispose();
    }
  }
  const [plain, checkpointed] = gradients as [Float32Array[], Float32Array[]];
  plain.forEach((expected, i) => {
    const scale = Math.max(...Array.from(expected, Math.abs));
    assert.ok(scale > 0);
    // The tape backpropagates block by block, so sums are formed in another order: equal up to rounding.
    assert.ok(maxAbsDifference(checkpointed[i]!, expected) <= 1e-5 * scale, `factor ${i}`);
  });
});

function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

function maxAbsDifference(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}
