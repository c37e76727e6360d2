/**
 * Reading the image-encoder oracle (test/oracle/fixtures_vision.py) for the CLIP vision and DINOv2 tests:
 * meta.json, expected.safetensors, comparisons that report the measured error, and the image-processor check
 * against transformers' PIL processors.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import { loadSafetensors, tensor, tidy, type Tensor } from "../../src/engine/index.js";
import { resizedSize, type CLIPImageProcessor } from "../../src/models/clip/image-processor.js";

export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
export const FIXTURES = join(ROOT, "test", "fixtures", "generated", "vision");

/** fp32 parity bar with transformers (the 1e-5). */
export const BAR = 1e-5;

export interface Tree { config: Record<string, unknown>; parameters: [string, number[]][]; parameter_count: number }
export interface VisionMeta {
  cases: { name: string; folder: string; interpolate: boolean; layers: number; projection: boolean }[];
  dino_cases: { name: string; folder: string; masked: boolean; layers: number }[];
  scales: Record<string, number>;
  shards: string[];
  clip_defaults: Record<string, unknown>;
  dino_defaults: Record<string, unknown>;
  trees: Record<"vit_l14" | "vit_h14" | "dinov2_base" | "dinov2_giant", Tree>;
  processors: { images: string[]; configs: string[]; std: Record<string, number[]> };
}

if (!existsSync(join(FIXTURES, "meta.json"))) {
  throw new Error(`${FIXTURES}/meta.json is missing: run .venv/bin/python test/oracle/generate.py vision`);
}
export const meta = JSON.parse(readFileSync(join(FIXTURES, "meta.json"), "utf8")) as VisionMeta;
export const expected = loadSafetensors(join(FIXTURES, "expected.safetensors")).tensors;

export const modelDir = (folder: string): string => join(FIXTURES, "models", folder);
export const processorDir = (name: string): string => join(FIXTURES, "processors", name);

export function ref(key: string): Tensor {
  const t = expected.get(key);
  if (!t) throw new Error(`expected.safetensors has no "${key}"`);
  return t;
}

export function maxAbsDiff(a: Tensor, b: Tensor): number {
  assert.deepEqual(a.shape, b.shape, "shapes differ");
  return tidy(() => a.float().sub(b.float()).abs().max().item());
}

/** Compares, reports the measured error, and returns it. */
export function check(t: TestContext, label: string, actual: Tensor, reference: Tensor, bar = BAR): number {
  const error = maxAbsDiff(actual, reference);
  t.diagnostic(`${label}: max abs error ${error.toExponential(2)}`);
  assert.ok(error <= bar, `${label}: max abs error ${error} exceeds ${bar}`);
  return error;
}

/**
 * How far a processor's pixel values are from transformers' (PIL) and from the same pipeline with torch's
 * antialiased uint8 bicubic resize, for every test image: the largest difference in 8-bit levels (|Δ| · std ·
 * 255, rounded) and the share of values that differ at all. Asserts ≤ `maxLevels` levels from PIL, ≤ `maxShare`
 * of the values differing, and equality (≤ 1e-6) with the torch-resized pipeline; returns the worst levels.
 */
export function checkProcessor(t: TestContext, name: string, processor: CLIPImageProcessor, maxLevels: number, maxShare: number): number {
  let worst = 0;
  for (const image of meta.processors.images) {
    tidy(() => {
      const ours = processor.preprocess(ref(`image/${image}`));
      const pil = ref(`proc/${name}/${image}/transformers`);
      const torchResized = ref(`proc/${name}/${image}/torch_aa`);
      assert.deepEqual(ours.shape, pil.shape, `${name}/${image}: shape`);
      const std = tensor(meta.processors.std[name]!, { dtype: "float32" }).view(1, 3, 1, 1);
      const delta = ours.sub(pil).abs();
      const levels = Math.round(delta.mul(std).mul(255).max().item());
      const share = delta.gt(1e-6).float().mean().item();
      const exact = maxAbsDiff(ours, torchResized);
      t.diagnostic(`${name}/${image}: vs PIL ≤ ${levels} levels of 8 bits, ${(share * 100).toFixed(3)}% of values differ; vs torch's uint8 antialiased bicubic: ${exact.toExponential(2)}`);
      assert.ok(exact <= 1e-6, `${name}/${image}: differs from the torch-resized pipeline by ${exact}`);
      assert.ok(levels <= maxLevels, `${name}/${image}: ${levels} levels from PIL exceed ${maxLevels}`);
      assert.ok(share <= maxShare, `${name}/${image}: ${share} of the values differ from PIL (more than ${maxShare})`);
      const [height, width] = ref(`image/${image}`).shape as [number, number, number];
      const [resizedHeight, resizedWidth] = resizedSize(height, width, processor.config.size);
      if (resizedHeight === height && resizedWidth === width) {
        assert.equal(maxAbsDiff(ours, pil), 0, `${name}/${image}: no resampling, so transformers' arithmetic exactly`);
        t.diagnostic(`${name}/${image}: already at the resize size: identical to transformers`);
      }
      worst = Math.max(worst, levels);
    });
  }
  return worst;
}
