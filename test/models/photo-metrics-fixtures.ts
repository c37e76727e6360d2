/**
 * Reading the photo-metrics oracle (test/oracle/fixtures_photo_metrics.py) for the ViT and photo-metric tests:
 * meta.json, expected.safetensors, the tiny model folders and the test images.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadSafetensors, type Tensor } from "../../src/engine/index.js";

export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
export const FIXTURES = join(ROOT, "test", "fixtures", "generated", "photo_metrics");

export type Cosines = Record<string, { dino: number; clipI: number; clipT: number }>;
export interface PhotoMetricsMeta {
  prompt: string;
  text_prompt: string;
  images: string[];
  vit_cases: { name: string; folder: string; interpolate: boolean; pooled: boolean; layers: number }[];
  scales: Record<string, number>;
  dino_keys: string[];
  vit_defaults: Record<string, unknown>;
  dino_vits16: { config: Record<string, unknown>; parameters: [string, number[]][]; parameter_count: number };
  clip_text: { prompt: string; text: string; ids: number[] };
  cosines: { transformers: Cosines; torch_aa: Cosines };
}

if (!existsSync(join(FIXTURES, "meta.json"))) {
  throw new Error(`${FIXTURES}/meta.json is missing: run .venv/bin/python test/oracle/generate.py photo_metrics`);
}
export const meta = JSON.parse(readFileSync(join(FIXTURES, "meta.json"), "utf8")) as PhotoMetricsMeta;
export const expected = loadSafetensors(join(FIXTURES, "expected.safetensors")).tensors;

export const modelDir = (folder: string): string => join(FIXTURES, "models", folder);
export const imageFile = (name: string): string => join(FIXTURES, "images", `${name}.png`);
export const processorDir = (name: string): string => join(FIXTURES, "processors", name);

export function ref(key: string): Tensor {
  const t = expected.get(key);
  if (!t) throw new Error(`expected.safetensors has no "${key}"`);
  return t;
}
