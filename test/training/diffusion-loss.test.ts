// The one diffusion loss (src/training/diffusion-loss.ts): per-group losses with prior preservation, the sum's
// gradient equal to each group's own, the ε/v targets, and the SNR weightings on known values.
import assert from "node:assert/strict";
import { test } from "node:test";
import { arange, Generator, randn, tensor, tidy } from "../../src/engine/index.js";
import { computeSnr, minSnrWeights, schedulerFromConfig, type DDPMScheduler } from "../../src/models/schedulers/index.js";
import { diffusionLoss, diffusionTarget, snrWeights } from "../../src/training/index.js";

test("per-group losses: each identity's block, instance then class samples; sums give solo gradients", () => {
  tidy(() => {
    const scheduler = schedulerFromConfig({ beta_schedule: "scaled_linear", beta_start: 0.00085, beta_end: 0.012 }, "DDPMScheduler");
    const g = new Generator("cpu", 1);
    // 2 identities × (2 instance + 2 class) samples.
    const prediction = randn([8, 4, 2, 2], { generator: g }).requiresGrad_(true);
    const target = randn([8, 4, 2, 2], { generator: g });
    const timesteps = arange(8, undefined, 1, { dtype: "int64" }).mul(100);
    const options = { scheduler, groups: 2, prior: { weight: 0.5 } };
    const losses = diffusionLoss(prediction, target, timesteps, options);
    const perSample = prediction.sub(target).square().mean([1, 2, 3]);
    const expected = (k: number): number => (perSample.index(4 * k).item() + perSample.index(4 * k + 1).item()) / 2 +
      0.5 * (perSample.index(4 * k + 2).item() + perSample.index(4 * k + 3).item()) / 2;
    for (const k of [0, 1]) assert.ok(Math.abs(losses.total.index(k).item() - expected(k)) < 1e-6);
    // The sum's gradient on identity 1's samples is identity 1's own loss's gradient: no 1/N factor.
    losses.total.sum().backward();
    const alone = prediction.detach().narrow(0, 4, 4).requiresGrad_(true);
    diffusionLoss(alone, target.narrow(0, 4, 4), timesteps.narrow(0, 4, 4), { ...options, groups: 1 }).total.sum().backward();
    assert.ok(prediction.grad!.narrow(0, 4, 4).sub(alone.grad!).abs().max().item() < 1e-7);
    // min-SNR weights: min(SNR, γ)/SNR for ε: 1 where SNR ≤ γ (late timesteps), γ/SNR below 1 where it is higher.
    const weights = minSnrWeights(scheduler, tensor(BigInt64Array.from([10n, 999n]), { dtype: "int64" }), 5).data() as Float32Array;
    assert.ok(weights[0]! < 1 && weights[0]! > 0);
    assert.equal(weights[1], 1);
    scheduler.dispose();
  });
});

test("one group without prior preservation is the plain MSE; weights multiply each sample's error", () => {
  tidy(() => {
    const scheduler = schedulerFromConfig({ beta_schedule: "scaled_linear", beta_start: 0.00085, beta_end: 0.012 }, "DDPMScheduler") as DDPMScheduler;
    const g = new Generator("cpu", 2);
    const prediction = randn([4, 4, 2, 2], { generator: g });
    const target = randn([4, 4, 2, 2], { generator: g });
    const timesteps = tensor(BigInt64Array.from([0n, 300n, 600n, 999n]), { dtype: "int64" });
    const plain = diffusionLoss(prediction, target, timesteps, { scheduler });
    assert.ok(Math.abs(plain.total.item() - prediction.sub(target).square().mean().item()) < 1e-6);
    const snr = computeSnr(scheduler, timesteps).data() as Float32Array;
    const perSample = prediction.sub(target).square().mean([1, 2, 3]).data() as Float32Array;
    // Truncated min-SNR (ε): clamp(SNR, 1, γ)/SNR; min-SNR: min(SNR, γ)/SNR.
    for (const [kind, weight] of [["min-snr", (s: number) => Math.min(s, 5) / s], ["truncated-min-snr", (s: number) => Math.min(Math.max(s, 1), 5) / s]] as const) {
      const loss = diffusionLoss(prediction, target, timesteps, { scheduler, weighting: { kind, gamma: 5 } }).total.item();
      const expected = [...perSample].reduce((sum, e, i) => sum + e * weight(snr[i]!), 0) / 4;
      assert.ok(Math.abs(loss - expected) < 1e-5 * expected, `${kind}: ${loss} vs ${expected}`);
    }
    assert.throws(() => diffusionLoss(prediction, target, timesteps, { scheduler, groups: 3 }), /3 group\(s\) × 1 \(instance\) need a multiple of 3 samples/);
    assert.equal(snrWeights(scheduler, timesteps, { kind: "none" }), null);
  });
});

test("the target is ε for epsilon prediction and v = √ᾱ ε − √(1−ᾱ) x₀ for v-prediction", () => {
  tidy(() => {
    const g = new Generator("cpu", 3);
    const latents = randn([2, 4, 2, 2], { generator: g });
    const noise = randn([2, 4, 2, 2], { generator: g });
    const timesteps = tensor(BigInt64Array.from([100n, 800n]), { dtype: "int64" });
    const epsilon = schedulerFromConfig({ prediction_type: "epsilon" }, "DDPMScheduler") as DDPMScheduler;
    assert.equal(diffusionTarget(epsilon, latents, noise, timesteps).sub(noise).abs().max().item(), 0);
    const v = schedulerFromConfig({ prediction_type: "v_prediction" }, "DDPMScheduler") as DDPMScheduler;
    const alpha = v.alphasCumprod.index(timesteps).view(2, 1, 1, 1);
    const expected = alpha.sqrt().mul(noise).sub(alpha.rsub(1).sqrt().mul(latents));
    assert.ok(diffusionTarget(v, latents, noise, timesteps).sub(expected).abs().max().item() < 1e-6);
    const sample = schedulerFromConfig({ prediction_type: "sample" }, "DDPMScheduler") as DDPMScheduler;
    assert.throws(() => diffusionTarget(sample, latents, noise, timesteps), /supports prediction_type "epsilon" and "v_prediction", the scheduler has "sample"/);
    assert.throws(() => snrWeights(v, timesteps, { kind: "truncated-min-snr", gamma: 5 }), /defined for epsilon prediction/);
  });
});
