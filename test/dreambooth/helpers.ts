// Shared pieces of the DreamBooth training tests: the tiny SD1 pipeline, synthetic face photos and a small
// training config (LiDB a = b = 16 so that the tiny model's 32-wide layers have no null space, see the report
// in training.test.ts).
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { IdentitySpec, TrainingConfigInput } from "../../src/dreambooth/config.js";
import { savePng } from "../../src/pipeline/images.js";

export const generated = fileURLToPath(new URL("../../../test/fixtures/generated/", import.meta.url));
export const tinySd1 = path.join(generated, "tiny_sd", "sd1");

export function temporaryDir(prefix: string): string {
  return mkdtempSync(path.join(tmpdir(), `hdb-${prefix}-`));
}

/**
 * Writes `count` 32×32 synthetic "face" photos of identity `k` into `dir`: a skin-coloured ellipse with two
 * dark eyes and a mouth on a background, the hue, face width and eye spacing depending on k, and each photo
 * of the identity shifted a little (so several photos differ like several shots of one person).
 */
export async function writeFacePhotos(dir: string, k: number, count = 1): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const size = 32;
  const files: string[] = [];
  for (let shot = 0; shot < count; shot++) {
    const data = new Uint8Array(size * size * 3);
    const cx = 16 + (shot % 2) - 0.5;
    const cy = 16 + (shot % 3) - 1;
    const width = 8 + (k % 3);
    const eyeGap = 3 + (k % 2);
    const background = [(40 * k) % 200 + 30, 90, 200 - ((30 * k) % 150)];
    const skin = [225 - 10 * (k % 4), 180 - 12 * (k % 3), 150 - 15 * (k % 5)];
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const inFace = ((x - cx) / width) ** 2 + ((y - cy) / 11) ** 2 < 1;
        const eye = Math.abs(y - (cy - 3)) < 1.5 && (Math.abs(x - (cx - eyeGap)) < 1.5 || Math.abs(x - (cx + eyeGap)) < 1.5);
        const mouth = Math.abs(y - (cy + 5)) < 1 && Math.abs(x - cx) < 3;
        const colour = eye || mouth ? [30, 20, 20] : inFace ? skin : background;
        data.set(colour.map((c) => Math.max(0, Math.min(255, Math.round(c!)))), (y * size + x) * 3);
      }
    }
    const file = path.join(dir, `photo-${shot}.png`);
    await savePng(file, { width: size, height: size, data });
    files.push(file);
  }
  return files;
}

/** Identities id0, id1, … with their photos in sub-folders of `root`. */
export async function writeIdentities(root: string, count: number, photos = 1): Promise<IdentitySpec[]> {
  const identities: IdentitySpec[] = [];
  for (let k = 0; k < count; k++) identities.push({ id: `id${k}`, images: await writeFacePhotos(path.join(root, `id${k}`), k, photos) });
  return identities;
}

/** A small LiDB config on the tiny pipeline; tests override what they exercise. */
export function tinyConfig(outputDir: string, identities: IdentitySpec[], overrides: Partial<TrainingConfigInput> = {}): TrainingConfigInput {
  return {
    pretrainedModel: tinySd1, outputDir, identities, lidbA: 16, lidbB: 16, learningRate: 1e-2, maxTrainSteps: 10,
    checkpointingSteps: 0, seed: 0, ...overrides,
  };
}
