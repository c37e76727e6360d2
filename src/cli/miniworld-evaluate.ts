/**
 * Measuring the mini-world model with the world's metric networks (src/evaluation/):
 *
 *   hdb miniworld quality [--model models/miniworld/base] [--metrics models/miniworld/metrics] [--out reports/miniworld]
 *       [--images-per-prompt 8] [--steps 25] [--guidance 5] [--seed 0] [--threads N]
 *     The base model's bars: style fidelity, hair-colour words, "a face" looks like the world → quality.json.
 *
 *   hdb miniworld dreambooth [--model ...] [--metrics ...] [--out reports/miniworld/dreambooth] [--identities 20]
 *       [--seeds 2] [--train-steps 300] [--learning-rate 1e-2] [--identities-per-batch 4] [--threads N]
 *     LiDB on held-out identities (one photo each) → report.md, report.json, contact-sheet.png. Resumable.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { setNumThreads } from "../engine/index.js";
import { evaluateBaseModelQuality } from "../evaluation/base-model-quality.js";
import { evaluateDreamBoothInWorld } from "../evaluation/dreambooth-in-world.js";
import { PromptFidelityNetwork } from "../evaluation/fidelity-network.js";
import { IdentityNetwork } from "../evaluation/identity-network.js";
import { writeFileAtomic } from "../lidb/training/manifest.js";
import { bundledMiniworldDir } from "../miniworld/base-model/recipe.js";
import { splitIds } from "../miniworld/splits.js";
import type { StyleName } from "../miniworld/styles.js";
import { StableDiffusionPipeline } from "../pipeline/stable-diffusion.js";
import { Progress } from "./progress.js";

/** The DreamBooth table's prompts: plain, two media, an accessory, a scene and a transformation. */
export const DREAMBOOTH_PROMPTS: readonly (readonly StyleName[])[] = [
  [], ["pencil-sketch"], ["pop-art"], ["wearing-sunglasses"], ["on-the-beach"], ["as-a-zombie"],
];

function number(text: string | undefined, flag: string, fallback: number, check: (n: number) => boolean, what: string): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!check(value)) throw new Error(`--${flag} must be ${what}, got '${text}'`);
  return value;
}
const positive = (n: number): boolean => Number.isInteger(n) && n >= 1;

const COMMON = {
  model: { type: "string" }, metrics: { type: "string" }, out: { type: "string" }, steps: { type: "string" },
  guidance: { type: "string" }, seed: { type: "string" }, threads: { type: "string" },
} as const;

function loadCommon(values: { model?: string | undefined; metrics?: string | undefined; threads?: string | undefined }): { model: string; identity: IdentityNetwork; fidelity: PromptFidelityNetwork } {
  if (values.threads !== undefined) setNumThreads(number(values.threads, "threads", 1, positive, "a positive integer"));
  const model = path.resolve(values.model ?? path.join(bundledMiniworldDir(), "base"));
  const metrics = path.resolve(values.metrics ?? path.join(bundledMiniworldDir(), "metrics"));
  return { model, identity: IdentityNetwork.load(path.join(metrics, "identity")), fidelity: PromptFidelityNetwork.load(path.join(metrics, "fidelity")) };
}

export async function runMiniworldQuality(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { ...COMMON, "images-per-prompt": { type: "string" } } });
  const { model, identity, fidelity } = loadCommon(values);
  const out = path.resolve(values.out ?? path.join("reports", "miniworld"));
  const pipeline = await StableDiffusionPipeline.fromPretrained(model);
  let progress: Progress | null = null;
  const started = performance.now();
  const report = await evaluateBaseModelQuality({
    pipeline, identityNetwork: identity, fidelityNetwork: fidelity,
    imagesPerPrompt: number(values["images-per-prompt"], "images-per-prompt", 8, positive, "a positive integer"),
    seed: number(values.seed, "seed", 0, (n) => Number.isSafeInteger(n) && n >= 0, "an integer ≥ 0"),
    steps: number(values.steps, "steps", 25, positive, "a positive integer"),
    guidance: number(values.guidance, "guidance", 5, (n) => n >= 0, "a number ≥ 0"),
    onPrompt: (done, total, prompt) => {
      progress ??= new Progress({ label: "quality", total });
      progress.tick(1, prompt);
    },
  });
  mkdirSync(out, { recursive: true });
  const seconds = (performance.now() - started) / 1000;
  writeFileAtomic(path.join(out, "quality.json"), `${JSON.stringify({ model, seconds, ...report }, null, 2)}\n`);
  process.stdout.write(`style fidelity ${(100 * report.styleAccuracy).toFixed(1)}% of ${report.styleImages} images (bar 80%), ` +
    `hair colour ${(100 * report.hairColourAccuracy).toFixed(1)}% of ${report.hairColourImages} (bar 80%), ` +
    `"a face" read as a plain photo ${(100 * report.plainFaceRate).toFixed(1)}%, nearest-render similarity ` +
    `${report.nearestRealSimilarity.generated.toFixed(3)} (real renders ${report.nearestRealSimilarity.realRenders.toFixed(3)}); ` +
    `${seconds.toFixed(0)} s → ${path.join(out, "quality.json")}\n`);
}

export async function runMiniworldDreamBooth(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...COMMON, identities: { type: "string" }, seeds: { type: "string" }, "train-steps": { type: "string" },
      "learning-rate": { type: "string" }, "identities-per-batch": { type: "string" },
    },
  });
  const { model, identity, fidelity } = loadCommon(values);
  const out = path.resolve(values.out ?? path.join("reports", "miniworld", "dreambooth"));
  const identities = number(values.identities, "identities", 20, (n) => positive(n) && n <= 1000, "an integer in [1, 1000]");
  const seedCount = number(values.seeds, "seeds", 2, positive, "a positive integer");
  const firstSeed = number(values.seed, "seed", 0, (n) => Number.isSafeInteger(n) && n >= 0, "an integer ≥ 0");
  const report = await evaluateDreamBoothInWorld({
    modelDir: model, identityNetwork: identity, fidelityNetwork: fidelity, outDir: out,
    identities: splitIds("held-out", identities), prompts: DREAMBOOTH_PROMPTS,
    seeds: Array.from({ length: seedCount }, (_, i) => firstSeed + i),
    training: {
      steps: number(values["train-steps"], "train-steps", 300, positive, "a positive integer"),
      learningRate: number(values["learning-rate"], "learning-rate", 1e-2, (n) => n > 0, "a number > 0"),
      // The mini model's narrowest adapted layers are 32 wide: a, b ≤ 32 (src/lidb/training/config.ts).
      lidbA: 32, lidbB: 16,
      identitiesPerBatch: number(values["identities-per-batch"], "identities-per-batch", 4, positive, "a positive integer"),
      seed: 0,
    },
    generation: {
      steps: number(values.steps, "steps", 25, positive, "a positive integer"),
      guidance: number(values.guidance, "guidance", 5, (n) => n >= 0, "a number ≥ 0"),
    },
    referenceNuisanceSeed: 1, progress: true, log: (line) => void process.stderr.write(`${line}\n`),
  });
  const o = report.overall;
  process.stdout.write(`identity similarity: base ${o.identity.base.mean.toFixed(3)} ± ${o.identity.base.halfWidth.toFixed(3)} → LiDB ` +
    `${o.identity.lidb.mean.toFixed(3)} ± ${o.identity.lidb.halfWidth.toFixed(3)} (world renders ${o.identity.world.mean.toFixed(3)}); ` +
    `style accuracy base ${(100 * o.styleAccuracy.base.mean).toFixed(1)}% → LiDB ${(100 * o.styleAccuracy.lidb.mean).toFixed(1)}% → ${path.join(out, "report.md")}\n`);
}
