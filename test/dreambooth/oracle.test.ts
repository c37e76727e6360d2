// One DreamBooth-LoRA training step against diffusers/peft (test/oracle/fixtures_lidb_training.py): on the
// same tiny pipeline, LoRA weights, latents, noise, timesteps and prompts, our trainer gives diffusers' loss,
// the same gradients for every LoRA factor of the UNet and the text encoder (trained jointly), and the same
// factors after gradient clipping and one AdamW step. Cases: SD1 (epsilon) with prior preservation and
// min-SNR weighting; SD2 (v-prediction) with two instance photos and min-SNR weighting.
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { loadSafetensors, noGrad, type Tensor } from "../../src/engine/index.js";
import { resolveConfig } from "../../src/dreambooth/config.js";
import { DreamBoothTrainer } from "../../src/dreambooth/trainer.js";
import { generated, temporaryDir, writeFacePhotos } from "./helpers.js";

interface CaseSettings {
  pipeline: string; rank: number; batch: number; prior: boolean; prior_loss_weight: number; snr_gamma: number;
  instance_prompt: string; class_prompt: string; rows: number[]; learning_rate: number; weight_decay: number; max_grad_norm: number;
}

const fixture = loadSafetensors(path.join(generated, "lidb_training", "training_step.safetensors"));
const cases = JSON.parse(fixture.metadata["cases"]!) as Record<string, CaseSettings>;
const get = (key: string): Tensor => {
  const value = fixture.tensors.get(key);
  if (!value) throw new Error(`the oracle fixture has no ${key}`);
  return value;
};

/** max |a - b| / max |b|: the error relative to the reference's scale. */
function relativeError(a: Tensor, b: Tensor): number {
  return noGrad(() => {
    using difference = a.sub(b).abs().max();
    using scale = b.abs().max();
    return difference.item() / Math.max(scale.item(), 1e-30);
  });
}

for (const [name, settings] of Object.entries(cases)) {
  test(`one DreamBooth-LoRA step equals diffusers/peft: ${name}`, async (t) => {
    const root = temporaryDir("train-oracle");
    const photos = await writeFacePhotos(path.join(root, "me"), 0);
    await writeFacePhotos(path.join(root, "class"), 1);
    const config = resolveConfig({
      adapter: "lora", pretrainedModel: path.join(generated, "tiny_sd", settings.pipeline), outputDir: path.join(root, "out"),
      identities: [{ id: "me", images: photos }], rank: settings.rank, trainBatchSize: settings.batch,
      withPriorPreservation: settings.prior, classDataDir: path.join(root, "class"), numClassImages: 1,
      priorLossWeight: settings.prior_loss_weight, snrGamma: settings.snr_gamma, instancePrompt: settings.instance_prompt.replace("sks", "[V]"),
      classPrompt: settings.class_prompt, learningRate: settings.learning_rate, adamWeightDecay: settings.weight_decay,
      maxGradNorm: settings.max_grad_norm,
    });
    const trainer = await DreamBoothTrainer.open(config);
    try {
      assert.deepEqual(trainer.promptIds.toArray(), get(`${name}.input_ids`).toArray(), "the tokenised prompts");
      const run = await trainer.startIdentity(config.identities[0]!);
      const ours = [...run.factors.keys()].sort();
      const theirs = [...fixture.tensors.keys()].filter((k) => k.startsWith(`${name}.init.`)).map((k) => k.slice(`${name}.init.`.length)).sort();
      assert.deepEqual(ours, theirs, "the same LoRA layers and factors as peft");
      noGrad(() => {
        for (const [key, factor] of run.factors) factor.copy_(get(`${name}.init.${key}`));
      });
      const [loss] = trainer.batchLosses([run.factors], [{
        latents: get(`${name}.latents`).clone(), noise: get(`${name}.noise`).clone(), timesteps: get(`${name}.timesteps`).clone(), promptRows: settings.rows,
      }], true);
      const expectedLoss = get(`${name}.loss`).item();
      let gradientError = 0;
      for (const [key, factor] of run.factors) {
        using grad = factor.grad!;
        gradientError = Math.max(gradientError, relativeError(grad, get(`${name}.grad.${key}`)));
      }
      run.update(config.maxGradNorm);
      let updateError = 0;
      for (const [key, factor] of run.factors) updateError = Math.max(updateError, noGrad(() => {
        using difference = factor.sub(get(`${name}.updated.${key}`)).abs().max();
        return difference.item();
      }));
      t.diagnostic(`loss ${loss} vs diffusers ${expectedLoss} (rel ${(Math.abs(loss! - expectedLoss) / expectedLoss).toExponential(2)}); ` +
        `worst gradient error ${gradientError.toExponential(2)} (relative to each gradient's max); worst factor error after the step ${updateError.toExponential(2)}`);
      assert.ok(Math.abs(loss! - expectedLoss) <= 1e-5 * expectedLoss, `loss ${loss} vs ${expectedLoss}`);
      assert.ok(gradientError <= 1e-4, `gradients differ from peft's by ${gradientError} (relative)`);
      // Adam's first step moves each element by about lr · g / |g|, so an element whose gradient is near zero turns
      // a rounding-level difference into a visible one: the bound is 1% of the learning rate.
      assert.ok(updateError <= 1e-2 * settings.learning_rate, `factors after the AdamW step differ by ${updateError}`);
    } finally {
      trainer.dispose();
    }
  });
}
