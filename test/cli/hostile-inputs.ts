// What the bad-input and fuzz tests share: a real LiDB file for the tiny SD1 pipeline to mutate, and a snapshot of
// a folder's bytes to show that a refused command changed nothing.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describeBaseModel, injectLidb, saveLidbFile } from "../../src/adapters/index.js";
import { Generator, randn, tidy } from "../../src/engine/index.js";
import { StableDiffusionPipeline } from "../../src/pipeline/stable-diffusion.js";

export const sd1 = fileURLToPath(new URL("../../../test/fixtures/generated/tiny_sd/sd1", import.meta.url));

/** A LiDB file with random factors (a 16, b 8, basis seed 5; factor seed 6) for the tiny SD1 pipeline. */
export async function writeTinyLidb(file: string): Promise<void> {
  const pipeline = await StableDiffusionPipeline.fromPretrained(sd1);
  const models = { unet: pipeline.unet, textEncoder: pipeline.textEncoder };
  const lidb = injectLidb(models, { a: 16, b: 8, seed: 5 });
  const generator = new Generator("cpu", 6);
  tidy(() => lidb.setFactors({ aTrain: randn([56, 16, 1], { generator }).mul(0.5), bTrain: randn([56, 1, 8], { generator }).mul(0.5) }));
  saveLidbFile(file, lidb, { baseModel: describeBaseModel(models, "tiny/sd1"), identifier: "sks" });
  lidb.dispose();
  pipeline.dispose();
}

/** The bytes of every file under `dir` (base64 by path). */
export function snapshot(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const file = path.join(entry.parentPath, entry.name);
    if (entry.isFile()) files.set(file, readFileSync(file).toString("base64"));
  }
  return files;
}
