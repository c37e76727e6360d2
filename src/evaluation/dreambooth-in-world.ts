/**
 * "DreamBooth works in this world": LiDB training (HyperDreamBooth §4.1) on held-out identities of the
 * mini-world, one reference photo each, measured with the world's metric networks in the roles of the paper's
 * Table 1 (identity network ≈ Face Rec, prompt-fidelity network ≈ CLIP-T).
 *
 * For every identity, prompt and seed, three images are compared with the identity's reference photo:
 *   base    the base model with the same prompt ("a sks face …": the identifier means nothing to it yet),
 *   lidb    the base model with the identity's trained LiDB file,
 *   world   the world's own render of that identity in that style (the ceiling a perfect model would reach).
 * Identity similarity = cosine of identity embeddings (generated vs reference); style accuracy = whether the
 * fidelity network names the prompted style ("photo" for the plain prompt). Means over identities × seeds
 * with Student-t 95% confidence intervals, per prompt and overall, go to report.json and report.md, with a
 * contact sheet (reference, then the LiDB images of every prompt, one row per identity).
 */
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { cat, noGrad, tidy, type Tensor } from "../engine/index.js";
import { applyLidbFile } from "../adapters/lidb/file.js";
import { trainDreamBooth } from "../dreambooth/trainer.js";
import { identifierPrompt } from "../miniworld/captions.js";
import { renderFace } from "../miniworld/render.js";
import type { StyleName } from "../miniworld/styles.js";
import { imageGrid, imagesToTensor, savePng, type RgbImage } from "../pipeline/images.js";
import { StableDiffusionPipeline } from "../pipeline/stable-diffusion.js";
import { writeFileAtomic } from "../util/atomic.js";
import type { Provenance } from "../util/provenance.js";
import type { ProgressReporter } from "../util/progress.js";
import { PHOTO_LABEL, styleFollowsPrompt, type PromptFidelityNetwork } from "./fidelity-network.js";
import type { IdentityNetwork } from "./identity-network.js";
import { meanConfidenceInterval, type ConfidenceInterval } from "./metrics.js";

export interface DreamBoothEvaluationOptions {
  /** The base model (diffusers folder). */
  modelDir: string;
  identityNetwork: IdentityNetwork;
  fidelityNetwork: PromptFidelityNetwork;
  outDir: string;
  /** Held-out identity ids. */
  identities: readonly number[];
  /** One style list per prompt ([] = "a sks face"). */
  prompts: readonly (readonly StyleName[])[];
  seeds: readonly number[];
  /** LiDB training (src/dreambooth): steps, learning rate, a, b, identities trained together. */
  training: { steps: number; learningRate: number; lidbA: number; lidbB: number; identitiesPerBatch: number; seed: number };
  generation: { steps: number; guidance: number };
  /** Nuisance seed of each identity's reference photo. */
  referenceNuisanceSeed: number;
  /** Told the LiDB training's steps (the CLI draws a bar from it); when set, each evaluated identity is logged. */
  progress?: ProgressReporter;
  log?: (line: string) => void;
  /** Where the report came from (src/util/provenance.ts), recorded in report.json. */
  provenance?: Provenance;
}

export interface PromptRow {
  prompt: string;
  expectedStyle: string;
  identity: { base: ConfidenceInterval; lidb: ConfidenceInterval; world: ConfidenceInterval };
  styleAccuracy: { base: ConfidenceInterval; lidb: ConfidenceInterval };
}

export interface DreamBoothReport {
  identities: number[];
  seeds: number[];
  training: DreamBoothEvaluationOptions["training"];
  generation: DreamBoothEvaluationOptions["generation"];
  rows: PromptRow[];
  overall: Omit<PromptRow, "prompt" | "expectedStyle">;
  trainingSeconds: number;
  evaluationSeconds: number;
  provenance?: Provenance;
}

/** Cosine similarity of each row of `a` with the matching row of `b` (both unit-length embeddings). */
function rowCosines(a: Tensor, b: Tensor): number[] {
  return noGrad(() => tidy(() => Array.from(a.mul(b).sum(1).data() as Float32Array)));
}

export async function evaluateDreamBoothInWorld(options: DreamBoothEvaluationOptions): Promise<DreamBoothReport> {
  const log = options.log ?? (() => {});
  const { identities, prompts, seeds } = options;
  mkdirSync(path.join(options.outDir, "references"), { recursive: true });

  // 1. One reference photo per identity.
  const references: RgbImage[] = [];
  for (const id of identities) {
    const image = await renderFace(id, { nuisanceSeed: options.referenceNuisanceSeed });
    const file = path.join(options.outDir, "references", `${id}.png`);
    if (!existsSync(file)) await savePng(file, image);
    references.push(image);
  }

  // 2. LiDB training, resumable (finished identities are skipped).
  let started = performance.now();
  const t = options.training;
  const run = await trainDreamBooth({
    adapter: "lidb", pretrainedModel: options.modelDir, outputDir: path.join(options.outDir, "lidb"),
    identities: identities.map((id) => ({ id: String(id), images: [path.join(options.outDir, "references", `${id}.png`)] })),
    maxTrainSteps: t.steps, learningRate: t.learningRate, lidbA: t.lidbA, lidbB: t.lidbB, identitiesPerBatch: t.identitiesPerBatch,
    seed: t.seed, checkpointingSteps: 50, resumeFromCheckpoint: true, validationSteps: 0,
  }, { ...(options.progress === undefined ? {} : { progress: options.progress }), log });
  const trainingSeconds = (performance.now() - started) / 1000;
  started = performance.now();

  // 3. Generate and measure.
  const pipeline = await StableDiffusionPipeline.fromPretrained(options.modelDir);
  const models = { unet: pipeline.unet, textEncoder: pipeline.textEncoder };
  const referenceEmbeddings = noGrad(() => options.identityNetwork.embed(imagesToTensor(references)));
  const generate = (prompt: string): { images: Tensor; rgb: RgbImage[] } => {
    const batches = seeds.map((seed) => pipeline.generate({ prompt, seed, steps: options.generation.steps, guidanceScale: options.generation.guidance, scheduler: "dpm++2m" }));
    const images = tidy(() => cat(batches.map((b) => b.images), 0));
    for (const b of batches) { b.images.dispose(); b.latents.dispose(); }
    return { images, rgb: batches.map((b) => b.rgb[0]!) };
  };
  const perPrompt = prompts.map(() => ({ base: [] as number[], lidb: [] as number[], world: [] as number[], baseStyle: [] as number[], lidbStyle: [] as number[] }));
  const sheet: RgbImage[] = [];
  const expected = prompts.map((styles) => styles.length === 0 ? PHOTO_LABEL : styles[0]!);
  const texts = prompts.map((styles) => identifierPrompt("sks", styles));

  // The base model's images do not depend on the identity: generate them once per prompt and seed.
  const baseImages = texts.map((text) => generate(text));
  const baseEmbeddings = baseImages.map((b) => noGrad(() => options.identityNetwork.embed(b.images)));
  const baseStyles = baseImages.map((b) => options.fidelityNetwork.classify(b.images).styles);

  for (const [k, id] of identities.entries()) {
    const entry = run.manifest.identities.find((e) => e.id === String(id));
    if (!entry) throw new Error(`LiDB training did not produce identity ${id} (see ${path.join(options.outDir, "lidb", "manifest.json")})`);
    const applied = applyLidbFile(models, path.join(options.outDir, "lidb", entry.file));
    const reference = tidy(() => referenceEmbeddings.narrow(0, k, 1).expand(seeds.length, -1).contiguous());
    sheet.push(references[k]!);
    try {
      for (const [p, styles] of prompts.entries()) {
        const generated = generate(texts[p]!);
        const embedding = noGrad(() => options.identityNetwork.embed(generated.images));
        const worldRenders = await Promise.all(seeds.map((seed) => renderFace(id, { nuisanceSeed: 1000 + seed, style: styles })));
        const worldEmbedding = noGrad(() => tidy(() => options.identityNetwork.embed(imagesToTensor(worldRenders))));
        const rows = perPrompt[p]!;
        rows.lidb.push(...rowCosines(embedding, reference));
        rows.base.push(...rowCosines(baseEmbeddings[p]!, reference));
        rows.world.push(...rowCosines(worldEmbedding, reference));
        rows.lidbStyle.push(...options.fidelityNetwork.classify(generated.images).styles.map((s) => Number(styleFollowsPrompt(s, expected[p]!))));
        rows.baseStyle.push(...baseStyles[p]!.map((s) => Number(styleFollowsPrompt(s, expected[p]!))));
        sheet.push(generated.rgb[0]!);
        for (const x of [generated.images, embedding, worldEmbedding]) x.dispose();
      }
    } finally {
      applied.adapters.dispose();
      reference.dispose();
    }
    if (options.progress) log(`evaluated identity ${id} (${k + 1}/${identities.length})`);
  }
  for (const b of baseImages) b.images.dispose();
  for (const e of baseEmbeddings) e.dispose();
  referenceEmbeddings.dispose();

  const interval = (values: number[]): ConfidenceInterval => meanConfidenceInterval(values);
  const rows: PromptRow[] = prompts.map((_, p) => {
    const r = perPrompt[p]!;
    return {
      prompt: texts[p]!, expectedStyle: expected[p]!,
      identity: { base: interval(r.base), lidb: interval(r.lidb), world: interval(r.world) },
      styleAccuracy: { base: interval(r.baseStyle), lidb: interval(r.lidbStyle) },
    };
  });
  const all = (key: keyof (typeof perPrompt)[number]): number[] => perPrompt.flatMap((r) => r[key]);
  const report: DreamBoothReport = {
    identities: [...identities], seeds: [...seeds], training: t, generation: options.generation, rows,
    overall: {
      identity: { base: interval(all("base")), lidb: interval(all("lidb")), world: interval(all("world")) },
      styleAccuracy: { base: interval(all("baseStyle")), lidb: interval(all("lidbStyle")) },
    },
    trainingSeconds, evaluationSeconds: (performance.now() - started) / 1000,
    ...(options.provenance === undefined ? {} : { provenance: options.provenance }),
  };
  await savePng(path.join(options.outDir, "contact-sheet.png"), imageGrid(sheet, 1 + prompts.length));
  writeFileAtomic(path.join(options.outDir, "report.json"), `${JSON.stringify(report, null, 2)}\n`);
  writeFileAtomic(path.join(options.outDir, "report.md"), reportMarkdown(report));
  pipeline.dispose();
  return report;
}

const ci = (c: ConfidenceInterval, digits = 3): string => `${c.mean.toFixed(digits)} ± ${c.halfWidth.toFixed(digits)}`;

export function reportMarkdown(report: DreamBoothReport): string {
  const n = report.identities.length;
  const line = (name: string, r: Omit<PromptRow, "prompt" | "expectedStyle">): string =>
    `| ${name} | ${ci(r.identity.base)} | ${ci(r.identity.lidb)} | ${ci(r.identity.world)} | ${ci(r.styleAccuracy.base, 2)} | ${ci(r.styleAccuracy.lidb, 2)} |`;
  return `# DreamBooth (LiDB) in the mini-world

${n} held-out identities × ${report.rows.length} prompts × ${report.seeds.length} seeds; one reference photo per identity.
LiDB: ${report.training.steps} steps, lr ${report.training.learningRate}, a = ${report.training.lidbA}, b = ${report.training.lidbB}, rank 1.
Sampling: DPM-Solver++ 2M, ${report.generation.steps} steps, guidance ${report.generation.guidance}.
Means with 95% confidence intervals (Student t). Identity: cosine similarity of identity embeddings with the
reference photo (identity network, the paper's Face Rec); style: the prompt-fidelity network names the prompted
style (the paper's CLIP-T role). "world" is the world's own render of the identity in that style (the ceiling).

| prompt | identity base | identity LiDB | identity world | style acc. base | style acc. LiDB |
|---|---|---|---|---|---|
${report.rows.map((r) => line(`\`${r.prompt}\``, r)).join("\n")}
${line("**all**", report.overall)}

Training ${report.trainingSeconds.toFixed(0)} s, evaluation ${report.evaluationSeconds.toFixed(0)} s. Contact sheet: contact-sheet.png
(one row per identity: the reference, then the LiDB images of each prompt, seed ${report.seeds[0]}).
`;
}
