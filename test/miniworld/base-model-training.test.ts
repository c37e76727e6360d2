// Training behaviour and inputs of the mini-world base-model recipe (issue 5): the training set is drawn from
// the seed and cached; the VAE stage lowers its loss (the recorded training losses fall, and the trained VAE
// reconstructs the training images far better than the same VAE at initialisation); bad recipes and bad
// `hdb miniworld build` flags are refused with messages naming the flag and the value, before any file is written.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { arange, manualSeed, mseLoss, noGrad, setNumThreads, tidy, type Tensor } from "../../src/engine/index.js";
import { baseModelRecipe, MINIWORLD_VAE_CONFIG } from "../../src/miniworld/base-model/config.js";
import { planSamples, renderDataset } from "../../src/miniworld/base-model/dataset.js";
import { imageBatch } from "../../src/pipeline/images.js";
import { trainVae } from "../../src/miniworld/base-model/train-vae.js";
import { STYLES } from "../../src/miniworld/styles.js";
import { AutoencoderKL } from "../../src/models/vae/index.js";

setNumThreads(1);
const root = fileURLToPath(new URL("../../../", import.meta.url));
const work = mkdtempSync(path.join(tmpdir(), "hdb-base-model-training-"));
after(() => rmSync(work, { recursive: true, force: true }));

test("the training set is drawn from the seed, captioned twice, and cached in the work folder", async () => {
  const samples = planSamples(8, 4);
  assert.deepEqual(planSamples(8, 4), samples);
  assert.notDeepEqual(planSamples(8, 5), samples);
  assert.equal(new Set(samples.map((s) => s.id)).size, 8, "each sample is a different identity");
  for (const s of samples) {
    // The long caption and the short "a face <styles>" both name every style of the image.
    assert.ok(s.styles.length <= 2 && s.shortCaption.startsWith("a face"), JSON.stringify(s));
    for (const name of s.styles) {
      const phrase = STYLES.find((style) => style.name === name)!.prompt;
      assert.ok(s.caption.includes(phrase) && s.shortCaption.includes(phrase), `${JSON.stringify(s)} lacks '${phrase}'`);
    }
    if (s.styles.length === 0) assert.equal(s.shortCaption, "a face");
  }
  const dir = path.join(work, "dataset");
  const images = await renderDataset(samples, 4, dir);
  assert.deepEqual([images.dtype, ...images.shape], ["uint8", 8, 64, 64, 3]);
  assert.deepEqual(readdirSync(dir), ["images-8-4.safetensors"]);
  const cached = await renderDataset(samples, 4, dir, () => assert.fail("the cached images must not be rendered again"));
  assert.deepEqual(cached.data(), images.data(), "the cache holds the rendered pixels");
  const batch = imageBatch(images, arange(0, 2));
  assert.deepEqual(batch.shape, [2, 3, 64, 64]);
  const [low, high] = tidy(() => [batch.min().item(), batch.max().item()]);
  assert.ok(low >= -1 && high <= 1 && high - low > 1, `pixels in [-1, 1], got [${low}, ${high}]`);
  for (const t of [images, cached, batch]) t.dispose();
});

/** L1 + L2 reconstruction error of the posterior mode over all images (the VAE objective without its sampling and KL). */
function reconstructionError(vae: AutoencoderKL, images: Tensor): number {
  return noGrad(() => tidy(() => {
    const x = imageBatch(images, arange(0, images.shape[0]!));
    const reconstruction = vae.forward(x);
    return reconstruction.sub(x).abs().mean().add(mseLoss(reconstruction, x)).item();
  }));
}

test("the VAE stage lowers its loss: later loss records are lower, and the trained VAE reconstructs far better", { timeout: 120_000 }, async () => {
  const recipe = baseModelRecipe({ seed: 1, datasetSize: 24, checkpointEvery: 30, vae: { steps: 60, batchSize: 2, warmupSteps: 5, learningRate: 1e-3 } });
  const dir = path.join(work, "vae");
  const images = await renderDataset(planSamples(recipe.datasetSize, recipe.seed), recipe.seed, dir);
  // The VAE as the stage initialises it (same seed, same construction), before any step.
  manualSeed(recipe.seed);
  const initial = new AutoencoderKL(MINIWORLD_VAE_CONFIG);
  const before = reconstructionError(initial, images);
  initial.dispose();

  const started = performance.now();
  const result = await trainVae({ recipe, images, workDir: dir });
  const seconds = (performance.now() - started) / 1000;
  assert.ok(result.finished);
  // A stage records the mean loss of every 50 steps and of the remainder at the end.
  const losses = result.state.losses;
  assert.deepEqual(losses.map((r) => r.step), [50, 60]);
  assert.ok(losses.every((r) => Number.isFinite(r.loss) && r.loss > 0));
  const trained = AutoencoderKL.fromPretrained(result.dir);
  const afterTraining = reconstructionError(trained, images);
  trained.dispose();
  images.dispose();
  console.log(`VAE, 60 steps of 2 images (${seconds.toFixed(1)} s): mean loss steps 1-50 ${losses[0]!.loss.toFixed(4)}, steps 51-60 ${losses[1]!.loss.toFixed(4)}; `
    + `reconstruction error ${before.toFixed(4)} at initialisation, ${afterTraining.toFixed(4)} trained; scaling factor ${result.scalingFactor.toFixed(3)}`);
  assert.ok(losses[1]!.loss < 0.8 * losses[0]!.loss, `the loss must fall: ${JSON.stringify(losses)}`);
  assert.ok(afterTraining < 0.5 * before, `training must halve the reconstruction error: ${before} → ${afterTraining}`);
  assert.ok(Number.isFinite(result.scalingFactor) && result.scalingFactor > 0);
});

test("bad recipes are refused, naming the number", () => {
  assert.throws(() => baseModelRecipe({ vae: { steps: 0 } }), /^Error: base model recipe: vae\.steps must be a positive integer, got 0$/);
  assert.throws(() => baseModelRecipe({ diffusion: { batchSize: 2.5 } }), /diffusion\.batchSize must be a positive integer, got 2\.5/);
  assert.throws(() => baseModelRecipe({ checkpointEvery: -1 }), /checkpointEvery must be a positive integer, got -1/);
  assert.throws(() => baseModelRecipe({ colourBalance: { steps: 0 } }), /colourBalance\.steps must be a positive integer, got 0/);
  assert.throws(() => baseModelRecipe({ vae: { decoderSampling: "balanced" as never } }), /vae\.decoderSampling must be "uniform" or "hair-colour-balanced", got "balanced"/);
});

test("balanced sampling (decoder stage, diffusion phase 4) draws every hair colour about equally often", async () => {
  const { hairColourBalancedWeights } = await import("../../src/miniworld/base-model/dataset.js");
  const { identityFromId, HAIR_COLOURS } = await import("../../src/miniworld/identity.js");
  const { Generator, multinomial } = await import("../../src/engine/index.js");
  const samples = planSamples(3000, 0);
  const colours = samples.map((s) => identityFromId(s.id).hair.colour);
  const drawnCounts = (indices: number[]): Map<string, number> => {
    const counts = new Map<string, number>();
    for (const i of indices) counts.set(colours[i]!, (counts.get(colours[i]!) ?? 0) + 1);
    return counts;
  };
  const inData = drawnCounts(colours.map((_, i) => i));
  assert.equal(inData.size, Object.keys(HAIR_COLOURS).length, "all colours occur in 3,000 samples");
  assert.ok(inData.get("black")! > 3 * inData.get("pink")!, "as the data falls, pink is rare");
  const weights = hairColourBalancedWeights(samples);
  const g = new Generator().manualSeed(7);
  const draws = 15_000;
  const drawn = drawnCounts([...(multinomial(weights, draws, { replacement: true, generator: g }).data() as BigInt64Array)].map(Number));
  weights.dispose();
  // 1,000 expected per colour (15 colours); a binomial's standard deviation is ~31, so ±150 cannot fail by chance.
  const expected = draws / Object.keys(HAIR_COLOURS).length;
  for (const colour of Object.keys(HAIR_COLOURS)) {
    const n = drawn.get(colour) ?? 0;
    assert.ok(Math.abs(n - expected) < 150, `${colour} drawn ${n} times of ${draws} (expected ~${expected})`);
  }
});

test("hdb miniworld build: bad flags fail with messages naming the flag and the value, writing nothing", () => {
  const out = path.join(work, "cli-out");
  const workDir = path.join(work, "cli-work");
  const cases: [string[], RegExp][] = [
    [["--vae-steps", "0"], /^hdb: --vae-steps must be a positive integer, got '0'$/m],
    [["--until", "nope"], /^hdb: --until must be one of vae, diffusion, diffusion-2, diffusion-3, diffusion-4, vae-decoder, export, metrics, got 'nope'$/m],
    [["--conditioning-steps", "0.5"], /^hdb: --conditioning-steps must be a positive integer, got '0\.5'$/m],
    [["--balance-steps", "0"], /^hdb: --balance-steps must be a positive integer, got '0'$/m],
    [["--batch-size", "2.5"], /^hdb: --batch-size must be a positive integer, got '2\.5'$/m],
    [["--diffusion-steps", "many"], /^hdb: --diffusion-steps must be a positive integer, got 'many'$/m],
    [["--vae-steps"], /--vae-steps/],
    [["--device", "tpu"], /^hdb: --device tpu: this libtorch has (no CUDA device|CUDA devices cuda:0 … cuda:\d+); use cpu/m],
    [["--device", "cuda:7"], /^hdb: --device cuda:7: this libtorch has (no CUDA device|CUDA devices cuda:0 … cuda:\d+); use cpu/m],
  ];
  for (const [flags, message] of cases) {
    const run = spawnSync(process.execPath, [path.join(root, "dist/src/cli/hdb.js"), "miniworld", "build", "--out", out, "--work", workDir, "--threads", "1", ...flags],
      { encoding: "utf8", timeout: 60_000 });
    assert.equal(run.status, 1, `${flags.join(" ")}: exit ${run.status}\n${run.stderr}`);
    assert.match(run.stderr, message, flags.join(" "));
    assert.ok(!existsSync(out) && !existsSync(workDir), `${flags.join(" ")}: nothing may be written`);
  }
});

test("a work folder serves the same recipe, or one whose last (constant-rate) phase is longer", async () => {
  const { sameRecipe } = await import("../../src/miniworld/base-model/recipe.js");
  const recipe = (conditioning: number, colourBalance: number, more: Parameters<typeof baseModelRecipe>[0] = {}): ReturnType<typeof baseModelRecipe> =>
    baseModelRecipe({ continuation: { steps: 100 }, ...more, conditioning: { steps: conditioning, ...more.conditioning }, colourBalance: { steps: colourBalance } });
  const recorded = recipe(100, 100);
  assert.ok(sameRecipe(recorded, recipe(100, 100)));
  assert.ok(sameRecipe(recorded, recipe(100, 250)), "more phase-4 steps extend the run");
  assert.ok(!sameRecipe(recorded, recipe(100, 50)), "fewer phase-4 steps cannot be undone");
  assert.ok(!sameRecipe(recorded, recipe(250, 100)), "phase 4 starts from phase 3's end");
  assert.ok(!sameRecipe(recorded, recipe(100, 100, { continuation: { steps: 250 } })), "phase 3 starts from phase 2's end");
  assert.ok(!sameRecipe(recorded, recipe(100, 250, { conditioning: { learningRate: 1e-3 } })));
  assert.ok(!sameRecipe(recorded, recipe(100, 100, { vae: { steps: 999 } })));
  // A work folder made before phase 4 existed ends at phase 3: phase 3 may grow and phase 4 follows it.
  const { colourBalance: _, ...olderRecipe } = recorded;
  assert.ok(sameRecipe(olderRecipe, recipe(100, 100)));
  assert.ok(sameRecipe(olderRecipe, recipe(250, 100)), "more phase-3 steps extend the run");
  assert.ok(!sameRecipe(olderRecipe, recipe(50, 100)), "fewer phase-3 steps cannot be undone");
  assert.ok(!sameRecipe(olderRecipe, recipe(100, 100, { vae: { steps: 999 } })));
});

test("phase 3's weights give the steps near pure noise the weight of the middle ones (in x₀ terms), capped at γ", async () => {
  const { diffusionPhases } = await import("../../src/miniworld/base-model/train-diffusion.js");
  const { snrWeights } = await import("../../src/training/index.js");
  const phaseLossWeights = (phase: { weighting: Parameters<typeof snrWeights>[2] }, scheduler: Parameters<typeof snrWeights>[0], t: Parameters<typeof snrWeights>[1]) => snrWeights(scheduler, t, phase.weighting);
  const { MINIWORLD_NOISE_SCHEDULE } = await import("../../src/miniworld/base-model/config.js");
  const { computeSnr, schedulerFromConfig } = await import("../../src/models/schedulers/index.js");
  const { tensor } = await import("../../src/engine/index.js");
  const noise = schedulerFromConfig({ _class_name: "DDPMScheduler", ...MINIWORLD_NOISE_SCHEDULE }, "DDPMScheduler");
  const [phase1, phase2, phase3, phase4] = diffusionPhases(baseModelRecipe(), work);
  // Phase 4 is phase 3 with balanced sampling, continuing from it.
  assert.deepEqual({ ...phase4, name: "diffusion-3", sampling: "uniform", continueFrom: phase3.continueFrom, steps: phase3.steps }, phase3);
  assert.equal(phase4.sampling, "hair-colour-balanced");
  assert.equal(phase4.continueFrom, path.join(work, "diffusion-3"));
  const timesteps = tensor([999, 600, 300, 50, 0], { dtype: "int64" });
  const snr = computeSnr(noise, timesteps).data() as Float32Array;
  assert.equal(phaseLossWeights(phase1, noise, timesteps), null);
  // In x₀ terms (ε-MSE = SNR · x₀-MSE): min-SNR gives min(SNR, γ), phase 3 min(max(SNR, 1), γ).
  const x0Weights = (phase: typeof phase2): number[] => [...(phaseLossWeights(phase, noise, timesteps)!.data() as Float32Array)].map((w, i) => w * snr[i]!);
  assert.equal(phase3.weighting.kind, "truncated-min-snr");
  const gamma = phase3.weighting.kind === "truncated-min-snr" ? phase3.weighting.gamma : NaN;
  const expected2 = [...snr].map((s) => Math.min(s, gamma));
  const expected3 = [...snr].map((s) => Math.min(Math.max(s, 1), gamma));
  x0Weights(phase2).forEach((w, i) => assert.ok(Math.abs(w - expected2[i]!) < 1e-5 * Math.max(1, expected2[i]!), `min-SNR at ${i}: ${w} vs ${expected2[i]}`));
  x0Weights(phase3).forEach((w, i) => assert.ok(Math.abs(w - expected3[i]!) < 1e-5 * Math.max(1, expected3[i]!), `phase 3 at ${i}: ${w} vs ${expected3[i]}`));
  assert.ok(snr[0]! < 0.01, `SNR at t = 999 is ${snr[0]}`);
  assert.ok(Math.abs(x0Weights(phase3)[0]! - 1) < 1e-5, "near pure noise phase 3 weighs x₀'s error by 1 (min-SNR by SNR ≈ 0.005)");
  noise.dispose();
});
