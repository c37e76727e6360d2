/**
 * The VAE posterior (mean and standard deviation) of every training image, computed once with the trained
 * encoder and cached as `<workDir>/diffusion/posteriors-<count>-<seed>.safetensors`. The diffusion stage
 * samples latents from it every step; the decoder fine-tuning stage (the encoder frozen) decodes such samples.
 */
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { arange, cat, keep, loadSafetensors, noGrad, saveSafetensors, tidy, type Tensor } from "../../engine/index.js";
import { AutoencoderKL } from "../../models/vae/index.js";
import { imageBatch } from "../../pipeline/images.js";

export interface Posteriors {
  /** (N, 4, 16, 16) each. */
  mean: Tensor;
  std: Tensor;
  scalingFactor: number;
}

/** Encodes on `device` (default the CPU); the posteriors are returned and cached on the CPU either way. */
export function loadPosteriors(vaeDir: string, images: Tensor, workDir: string, seed: number, log: (line: string) => void = () => {}, device = "cpu"): Posteriors {
  const vae = AutoencoderKL.fromPretrained(vaeDir, { device });
  const scalingFactor = vae.scalingFactor;
  const count = images.shape[0]!;
  const file = path.join(workDir, "diffusion", `posteriors-${count}-${seed}.safetensors`);
  try {
    if (existsSync(file)) {
      const { tensors } = loadSafetensors(file);
      const mean = tensors.get("mean");
      const std = tensors.get("std");
      if (!mean || !std || mean.shape[0] !== count) throw new Error(`${file} does not hold ${count} posteriors (keys mean, std): delete it to encode again`);
      return { mean: keep(mean), std: keep(std), scalingFactor };
    }
    log(`encoding ${count} images with the trained VAE`);
    const means: Tensor[] = [];
    const stds: Tensor[] = [];
    noGrad(() => {
      for (let start = 0; start < count; start += 256) {
        tidy(() => {
          const posterior = vae.encode(imageBatch(images, arange(start, Math.min(start + 256, count))).to(device));
          means.push(keep(posterior.mean.contiguous().to("cpu")));
          stds.push(keep(posterior.std.contiguous().to("cpu")));
        });
      }
    });
    const mean = keep(catAll(means));
    const std = keep(catAll(stds));
    mkdirSync(path.dirname(file), { recursive: true });
    saveSafetensors(file, { mean, std });
    return { mean, std, scalingFactor };
  } finally {
    vae.dispose();
  }
}

function catAll(parts: Tensor[]): Tensor {
  const out = tidy(() => cat(parts, 0));
  for (const p of parts) p.dispose();
  return out;
}
