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
import { trainDreamBooth } from "../dreambooth/trainer.js";
import { renderFace } from "../miniworld/render.js";
import { savePng, type RgbImage } from "../pipeline/images.js";
import { writeFileAtomic } from "../util/atomic.js";
import type { Provenance } from "../util/provenance.js";
import type { ConfidenceInterval } from "./metrics.js";
import { runPersonalisationStudy, type StudyRow, type WorldStudySettings } from "./personalisation-study.js";

/**
 * The DreamBooth study's LiDB training (`hdb miniworld dreambooth`'s defaults): what every mini-world report means by
 * "per-identity LiDB DreamBooth". The mini model's narrowest adapted layers are 32 wide: a, b ≤ 32 (src/dreambooth/config.ts).
 */
export const DREAMBOOTH_STUDY_LIDB = Object.freeze({ steps: 300, learningRate: 1e-2, lidbA: 32, lidbB: 16, rank: 1, seed: 0 });

export interface DreamBoothEvaluationOptions extends WorldStudySettings {
  /** LiDB training (src/dreambooth): steps, learning rate, a, b, identities trained together. */
  training: { steps: number; learningRate: number; lidbA: number; lidbB: number; identitiesPerBatch: number; seed: number; adamEpsilon?: number };
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
  const started = performance.now();
  const t = options.training;
  const run = await trainDreamBooth({
    adapter: "lidb", pretrainedModel: options.modelDir, outputDir: path.join(options.outDir, "lidb"),
    identities: identities.map((id) => ({ id: String(id), images: [path.join(options.outDir, "references", `${id}.png`)] })),
    maxTrainSteps: t.steps, learningRate: t.learningRate, lidbA: t.lidbA, lidbB: t.lidbB, identitiesPerBatch: t.identitiesPerBatch,
    ...(t.adamEpsilon === undefined ? {} : { adamEpsilon: t.adamEpsilon }), seed: t.seed, checkpointingSteps: 50, resumeFromCheckpoint: true, validationSteps: 0,
  }, { ...(options.progress === undefined ? {} : { progress: options.progress }), log });
  const trainingSeconds = (performance.now() - started) / 1000;

  // 3. Generate and measure (personalisation-study.ts): the base model and the identities' LiDB files.
  const files = new Map(identities.map((id) => {
    const entry = run.manifest.identities.find((e) => e.id === String(id));
    if (!entry) throw new Error(`LiDB training did not produce identity ${id} (see ${path.join(options.outDir, "lidb", "manifest.json")})`);
    return [id, path.join(options.outDir, "lidb", entry.file)] as const;
  }));
  const study = await runPersonalisationStudy({
    modelDir: options.modelDir, identityNetwork: options.identityNetwork, fidelityNetwork: options.fidelityNetwork, identities, references,
    prompts, seeds, generation: options.generation, methods: [{ name: "base", files: null }, { name: "lidb", files }],
    contactSheet: path.join(options.outDir, "contact-sheet.png"), ...(options.progress ? { log } : {}),
  });
  const pick = (row: Omit<StudyRow, "prompt" | "expectedStyle">): Omit<PromptRow, "prompt" | "expectedStyle"> => ({
    identity: { base: row.identity["base"]!, lidb: row.identity["lidb"]!, world: row.identity["world"]! },
    styleAccuracy: { base: row.styleAccuracy["base"]!, lidb: row.styleAccuracy["lidb"]! },
  });
  const report: DreamBoothReport = {
    identities: [...identities], seeds: [...seeds], training: t, generation: options.generation,
    rows: study.rows.map((row) => ({ prompt: row.prompt, expectedStyle: row.expectedStyle, ...pick(row) })),
    overall: pick(study.overall),
    trainingSeconds, evaluationSeconds: study.seconds,
    ...(options.provenance === undefined ? {} : { provenance: options.provenance }),
  };
  writeFileAtomic(path.join(options.outDir, "report.json"), `${JSON.stringify(report, null, 2)}\n`);
  writeFileAtomic(path.join(options.outDir, "report.md"), reportMarkdown(report));
  return report;
}

const ci = (c: ConfidenceInterval, digits = 3): string => `${c.mean.toFixed(digits)} ± ${c.halfWidth.toFixed(digits)}`;

export function reportMarkdown(report: DreamBoothReport): string {
  const n = report.identities.length;
  const line = (name: string, r: Omit<PromptRow, "prompt" | "expectedStyle">): string =>
    `| ${name} | ${ci(r.identity.base)} | ${ci(r.identity.lidb)} | ${ci(r.identity.world)} | ${ci(r.styleAccuracy.base, 2)} | ${ci(r.styleAccuracy.lidb, 2)} |`;
  return `# DreamBooth (LiDB) in the mini-world

${n} held-out identities × ${report.rows.length} prompts × ${report.seeds.length} seeds; one reference photo per identity.
LiDB: ${report.training.steps} steps, lr ${report.training.learningRate}, a = ${report.training.lidbA}, b = ${report.training.lidbB}, rank 1${report.training.adamEpsilon === undefined ? "" : `, AdamW ε ${report.training.adamEpsilon}`}.
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
