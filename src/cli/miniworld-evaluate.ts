/**
 * Measuring the mini-world model with the world's metric networks (src/evaluation/): `hdb miniworld quality`
 * (the base model's bars: style fidelity, hair-colour words, "a face" looks like the world → quality.json) and
 * `hdb miniworld dreambooth` (LiDB on held-out identities, one photo each → report.md, report.json,
 * contact-sheet.png; resumable). Flags: MINIWORLD_QUALITY_SPEC and MINIWORLD_DREAMBOOTH_SPEC below.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import { buildInfo, getNumThreads, setNumThreads } from "../engine/index.js";
import { evaluateBaseModelQuality } from "../evaluation/base-model-quality.js";
import { DREAMBOOTH_STUDY_LIDB, evaluateDreamBoothInWorld } from "../evaluation/dreambooth-in-world.js";
import { PromptFidelityNetwork } from "../evaluation/fidelity-network.js";
import { IdentityNetwork } from "../evaluation/identity-network.js";
import { writeFileAtomic } from "../util/atomic.js";
import { bundledMiniworldDir } from "../miniworld/base-model/recipe.js";
import { splitIds } from "../miniworld/splits.js";
import type { StyleName } from "../miniworld/styles.js";
import { StableDiffusionPipeline } from "../pipeline/stable-diffusion.js";
import { defineCommand, parseFlags } from "../util/flags.js";
import { provenance, recordedPath, repositoryRoot, type Provenance } from "../util/provenance.js";
import { Progress, progressBars } from "../util/progress.js";

/** The DreamBooth table's prompts: plain, two media, an accessory, a scene and a transformation. */
export const DREAMBOOTH_PROMPTS: readonly (readonly StyleName[])[] = [
  [], ["pencil-sketch"], ["pop-art"], ["wearing-sunglasses"], ["on-the-beach"], ["as-a-zombie"],
];

/** The flags both measurements share. */
const COMMON = {
  model: { type: "string", value: "<folder>", description: "the diffusers model to measure", defaultText: "models/miniworld/base" },
  metrics: { type: "string", value: "<folder>", description: "the metric networks: identity/ and fidelity/", defaultText: "models/miniworld/metrics" },
  steps: { type: "integer", min: 1, default: 25, description: "DPM-Solver++ steps per generated image" },
  guidance: { type: "number", min: 0, default: 5, value: "<scale>", description: "classifier-free guidance scale" },
  seed: { type: "integer", min: 0, default: 0, description: "the first generation seed" },
  threads: { type: "integer", min: 1, description: "CPU threads", defaultText: "libtorch's" },
} as const;

export const MINIWORLD_QUALITY_SPEC = defineCommand({
  name: "miniworld quality",
  summary: "the base model's quality bars (style fidelity, hair-colour words), judged by the metric networks",
  usage: "[flags]",
  details: "Writes quality.json (per style, per hair colour, the plain-face rate and the nearest-render similarity).",
  flags: {
    ...COMMON,
    out: { type: "string", value: "<folder>", description: "where quality.json goes", default: path.join("reports", "miniworld") },
    "images-per-prompt": { type: "integer", min: 1, default: 8, description: "images per style / hair-colour prompt" },
  },
  examples: ["hdb miniworld quality", "hdb miniworld quality --model out/base --images-per-prompt 2 --out /tmp/quality"],
});

export const MINIWORLD_DREAMBOOTH_SPEC = defineCommand({
  name: "miniworld dreambooth",
  summary: "LiDB on held-out identities (one photo each): identity similarity and style accuracy, base vs LiDB",
  usage: "[flags]",
  details: "Writes report.md, report.json, contact-sheet.png and lidb/<id>.lidb.safetensors; run again, it resumes.",
  flags: {
    ...COMMON,
    out: { type: "string", value: "<folder>", description: "where the report and the LiDB files go", default: path.join("reports", "miniworld", "dreambooth") },
    identities: { type: "integer", min: 1, max: 1000, default: 20, description: "held-out identities to personalise" },
    seeds: { type: "integer", min: 1, default: 2, description: "generation seeds per identity and prompt, counting up from --seed" },
    "train-steps": { type: "integer", min: 1, default: DREAMBOOTH_STUDY_LIDB.steps, description: "LiDB training steps per identity" },
    "learning-rate": { type: "number", above: 0, default: DREAMBOOTH_STUDY_LIDB.learningRate, value: "<lr>", description: "LiDB training's learning rate" },
    "adam-epsilon": { type: "number", above: 0, value: "<ε>", description: "LiDB training's AdamW ε", defaultText: "the trainer's, 1e-8" },
    "identities-per-batch": { type: "integer", min: 1, default: 4, description: "identities trained together" },
  },
  examples: ["hdb miniworld dreambooth", "hdb miniworld dreambooth --identities 2 --seeds 1 --train-steps 20 --out /tmp/db"],
});

function loadCommon(values: { model?: string | undefined; metrics?: string | undefined; threads?: number | undefined }): { model: string; metrics: string; identity: IdentityNetwork; fidelity: PromptFidelityNetwork } {
  if (values.threads !== undefined) setNumThreads(values.threads);
  const model = path.resolve(values.model ?? path.join(bundledMiniworldDir(), "base"));
  const metrics = path.resolve(values.metrics ?? path.join(bundledMiniworldDir(), "metrics"));
  return { model, metrics, identity: IdentityNetwork.load(path.join(metrics, "identity")), fidelity: PromptFidelityNetwork.load(path.join(metrics, "fidelity")) };
}

/** The report's provenance: this command as typed, the threads, and the sha256 of the model and metric networks. */
function reportProvenance(command: string, argv: string[], model: string, metrics: string): Provenance {
  return provenance({ command: ["hdb", "miniworld", command, ...argv], threads: getNumThreads(), measured: [model, metrics], versions: { torch: buildInfo().torchVersion } });
}

export async function runMiniworldQuality(argv: string[]): Promise<void> {
  const { values } = parseFlags(MINIWORLD_QUALITY_SPEC, argv);
  const { model, metrics, identity, fidelity } = loadCommon(values);
  const record = reportProvenance("quality", argv, model, metrics);
  const out = path.resolve(values.out);
  const pipeline = await StableDiffusionPipeline.fromPretrained(model);
  let progress: Progress | null = null;
  const started = performance.now();
  const report = await evaluateBaseModelQuality({
    pipeline, identityNetwork: identity, fidelityNetwork: fidelity,
    imagesPerPrompt: values["images-per-prompt"], seed: values.seed, steps: values.steps, guidance: values.guidance,
    onPrompt: (done, total, prompt) => {
      progress ??= new Progress({ label: "quality", total });
      progress.tick(1, prompt);
    },
  });
  mkdirSync(out, { recursive: true });
  const seconds = (performance.now() - started) / 1000;
  const where = recordedPath(model, repositoryRoot(process.cwd()));
  writeFileAtomic(path.join(out, "quality.json"), `${JSON.stringify({ model: where, seconds, ...report, provenance: record }, null, 2)}\n`);
  process.stdout.write(`style fidelity ${(100 * report.styleAccuracy).toFixed(1)}% of ${report.styleImages} images (bar 80%), ` +
    `hair colour ${(100 * report.hairColourAccuracy).toFixed(1)}% of ${report.hairColourImages} (bar 80%), ` +
    `"a face" read as a plain photo ${(100 * report.plainFaceRate).toFixed(1)}%, nearest-render similarity ` +
    `${report.nearestRealSimilarity.generated.toFixed(3)} (real renders ${report.nearestRealSimilarity.realRenders.toFixed(3)}); ` +
    `${seconds.toFixed(0)} s → ${path.join(out, "quality.json")}\n`);
}

export async function runMiniworldDreamBooth(argv: string[]): Promise<void> {
  const { values } = parseFlags(MINIWORLD_DREAMBOOTH_SPEC, argv);
  const { model, metrics, identity, fidelity } = loadCommon(values);
  const record = reportProvenance("dreambooth", argv, model, metrics);
  const out = path.resolve(values.out);
  const { identities, seeds: seedCount, seed: firstSeed } = values;
  const report = await evaluateDreamBoothInWorld({
    modelDir: model, identityNetwork: identity, fidelityNetwork: fidelity, outDir: out,
    identities: splitIds("held-out", identities), prompts: DREAMBOOTH_PROMPTS,
    seeds: Array.from({ length: seedCount }, (_, i) => firstSeed + i),
    training: {
      steps: values["train-steps"], learningRate: values["learning-rate"],
      lidbA: DREAMBOOTH_STUDY_LIDB.lidbA, lidbB: DREAMBOOTH_STUDY_LIDB.lidbB,
      identitiesPerBatch: values["identities-per-batch"],
      ...(values["adam-epsilon"] === undefined ? {} : { adamEpsilon: values["adam-epsilon"] }),
      seed: DREAMBOOTH_STUDY_LIDB.seed,
    },
    generation: {
      steps: values.steps, guidance: values.guidance,
    },
    referenceNuisanceSeed: 1, progress: progressBars(), log: (line) => void process.stderr.write(`${line}\n`), provenance: record,
  });
  const o = report.overall;
  process.stdout.write(`identity similarity: base ${o.identity.base.mean.toFixed(3)} ± ${o.identity.base.halfWidth.toFixed(3)} → LiDB ` +
    `${o.identity.lidb.mean.toFixed(3)} ± ${o.identity.lidb.halfWidth.toFixed(3)} (world renders ${o.identity.world.mean.toFixed(3)}); ` +
    `style accuracy base ${(100 * o.styleAccuracy.base.mean).toFixed(1)}% → LiDB ${(100 * o.styleAccuracy.lidb.mean).toFixed(1)}% → ${path.join(out, "report.md")}\n`);
}
