/**
 * The HyperNetwork in the mini-world (HyperDreamBooth §5's "Only Hyper" and its ablations): for held-out
 * identities, one reference photo each, the LiDB weights predicted in one forward pass are compared with the
 * base model and with per-identity LiDB DreamBooth (the same settings as the weight set the network learned
 * from), on the personalisation study's grid (personalisation-study.ts). Variants (several networks, or one
 * network at 1 round instead of s) are methods of the same study. Also:
 *   - the weight-space error of each prediction: ‖C(θ̂) − C(θ_DreamBooth)‖² / ‖C(θ_DreamBooth)‖² with
 *     C = A_train·B_train per layer (the gauge-free space the network's weight loss uses);
 *   - the prediction time per photo (encoder + network, batch 1, on this machine's threads);
 *   - the bar: Only-Hyper identity similarity above the base model's (95 % CIs apart) and at least half of
 *     DreamBooth's, with style accuracy within 10 points of DreamBooth's.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import { tidy } from "../engine/index.js";
import { loadLidbFile } from "../adapters/lidb/file.js";
import { runHasBegun } from "../dreambooth/manifest.js";
import { trainDreamBooth } from "../dreambooth/trainer.js";
import { VisionFeatureEncoder } from "../hypernetwork/encoder.js";
import { loadHyperNetwork } from "../hypernetwork/file.js";
import { predictLidbFiles } from "../hypernetwork/predict.js";
import { writeFileAtomic } from "../util/atomic.js";
import type { Provenance } from "../util/provenance.js";
import { meanConfidenceInterval, type ConfidenceInterval } from "./metrics.js";
import { renderReferences, runPersonalisationStudy, type StudyResult, type WorldStudySettings } from "./personalisation-study.js";

/** One HyperNetwork method: a trained network folder, read at `rounds` refinement rounds (default its own). */
export interface HyperVariant {
  name: string;
  dir: string;
  rounds?: number;
}

export interface HyperNetworkEvaluationOptions extends WorldStudySettings {
  /** The DreamBooth comparison's LiDB training (the weight set's settings). */
  dreambooth: { steps: number; learningRate: number; lidbA: number; lidbB: number; rank: number; seed: number; identitiesPerBatch: number };
  variants: readonly HyperVariant[];
}

export interface HyperNetworkReport {
  identities: number[];
  seeds: number[];
  generation: HyperNetworkEvaluationOptions["generation"];
  dreambooth: HyperNetworkEvaluationOptions["dreambooth"];
  variants: HyperVariant[];
  study: StudyResult;
  /** Per variant: the relative gauge-free weight error against DreamBooth's factors, over identities. */
  weightError: Record<string, ConfidenceInterval>;
  /** Per variant: seconds per photo of prediction (encoder + network), batch 1, loading excluded. */
  secondsPerPhoto: Record<string, number>;
  /** Per variant: whether it meets the bar, with the numbers it was judged on. */
  bar: Record<string, { identityAboveBase: boolean; atLeastHalfOfDreamBooth: boolean; styleWithin10Points: boolean; met: boolean }>;
  /** DreamBooth's wall seconds for the identities, or null when an earlier run trained (some of) them. */
  trainingSeconds: number | null;
  provenance?: Provenance;
}

export async function evaluateHyperNetworkInWorld(options: HyperNetworkEvaluationOptions): Promise<HyperNetworkReport> {
  const log = options.log ?? (() => {});
  const { identities } = options;
  const { images: references, files: photos } = await renderReferences(identities, path.join(options.outDir, "references"), options.referenceNuisanceSeed);

  // Per-identity DreamBooth, resumable.
  const started = performance.now();
  const d = options.dreambooth;
  // Its time is known only for a run made here from the start (a rerun finds it done, or resumes it).
  const dreamboothDir = path.join(options.outDir, "dreambooth");
  const fresh = !runHasBegun(dreamboothDir);
  const run = await trainDreamBooth({
    adapter: "lidb", pretrainedModel: options.modelDir, outputDir: dreamboothDir,
    identities: identities.map((id, k) => ({ id: String(id), images: [photos[k]!] })),
    maxTrainSteps: d.steps, learningRate: d.learningRate, lidbA: d.lidbA, lidbB: d.lidbB, rank: d.rank, seed: d.seed,
    identitiesPerBatch: d.identitiesPerBatch, checkpointingSteps: 50, resumeFromCheckpoint: true, validationSteps: 0,
  }, { ...(options.progress ? { progress: options.progress } : {}), log });
  const trainingSeconds = fresh ? (performance.now() - started) / 1000 : null;
  const dreamboothFiles = new Map(identities.map((id) => [id, path.join(dreamboothDir, `${id}.lidb.safetensors`)] as const));
  if (run.manifest.identities.length < identities.length) throw new Error(`DreamBooth finished ${run.manifest.identities.length} of ${identities.length} identities`);

  // Predictions, timed, and their weight error.
  const variantFiles = new Map<string, Map<number, string>>();
  const weightError: Record<string, ConfidenceInterval> = {};
  const secondsPerPhoto: Record<string, number> = {};
  for (const variant of options.variants) {
    const { network, space } = loadHyperNetwork(variant.dir);
    const encoder = await VisionFeatureEncoder.fromPretrained(network.config.encoder, { layer: network.config.encoder_layer, batchSize: 1 });
    try {
      const dir = path.join(options.outDir, variant.name);
      mkdirSync(dir, { recursive: true });
      const files = identities.map((id) => path.join(dir, `${id}.lidb.safetensors`));
      const t0 = performance.now();
      await predictLidbFiles(network, space, encoder, photos, files, { batchSize: 1, ...(variant.rounds === undefined ? {} : { rounds: variant.rounds }) });
      secondsPerPhoto[variant.name] = (performance.now() - t0) / 1000 / identities.length;
      variantFiles.set(variant.name, new Map(identities.map((id, k) => [id, files[k]!] as const)));
      weightError[variant.name] = meanConfidenceInterval(identities.map((id, k) => relativeCoreError(files[k]!, dreamboothFiles.get(id)!)));
    } finally {
      encoder.dispose();
      network.dispose();
    }
    log(`${variant.name}: ${secondsPerPhoto[variant.name]!.toFixed(3)} s per photo, weight error ${weightError[variant.name]!.mean.toFixed(3)}`);
  }

  const study = await runPersonalisationStudy({
    modelDir: options.modelDir, identityNetwork: options.identityNetwork, fidelityNetwork: options.fidelityNetwork, identities, references,
    prompts: options.prompts, seeds: options.seeds, generation: options.generation,
    methods: [
      ...options.variants.map((v) => ({ name: v.name, files: variantFiles.get(v.name)! })),
      { name: "dreambooth", files: dreamboothFiles }, { name: "base", files: null },
    ],
    contactSheet: path.join(options.outDir, "contact-sheet.png"), ...(options.progress ? { log } : {}),
  });
  const o = study.overall;
  const bar = Object.fromEntries(options.variants.map((v) => {
    const hyper = o.identity[v.name]!;
    const base = o.identity["base"]!;
    const identityAboveBase = hyper.mean - hyper.halfWidth > base.mean + base.halfWidth;
    const atLeastHalfOfDreamBooth = hyper.mean >= 0.5 * o.identity["dreambooth"]!.mean;
    const styleWithin10Points = o.styleAccuracy[v.name]!.mean >= o.styleAccuracy["dreambooth"]!.mean - 0.1;
    return [v.name, { identityAboveBase, atLeastHalfOfDreamBooth, styleWithin10Points, met: identityAboveBase && atLeastHalfOfDreamBooth && styleWithin10Points }];
  }));
  const report: HyperNetworkReport = {
    identities: [...identities], seeds: [...options.seeds], generation: options.generation, dreambooth: d, variants: [...options.variants],
    study, weightError, secondsPerPhoto, bar, trainingSeconds, ...(options.provenance ? { provenance: options.provenance } : {}),
  };
  writeFileAtomic(path.join(options.outDir, "report.json"), `${JSON.stringify(report, null, 2)}\n`);
  writeFileAtomic(path.join(options.outDir, "report.md"), hyperNetworkMarkdown(report));
  return report;
}

/** ‖C(a) − C(b)‖² / ‖C(b)‖² over all layers, C = A_train·B_train per layer, for two LiDB files of one space. */
export function relativeCoreError(predicted: string, target: string): number {
  const a = loadLidbFile(predicted).factors;
  const b = loadLidbFile(target).factors;
  try {
    return tidy(() => {
      const ca = a.aTrain.matmul(a.bTrain);
      const cb = b.aTrain.matmul(b.bTrain);
      return ca.sub(cb).square().sum().item() / cb.square().sum().item();
    });
  } finally {
    for (const t of [a.aTrain, a.bTrain, b.aTrain, b.bTrain]) t.dispose();
  }
}

const ci = (c: ConfidenceInterval | undefined, digits = 3): string => (c ? `${c.mean.toFixed(digits)} ± ${c.halfWidth.toFixed(digits)}` : "–");

export function hyperNetworkMarkdown(report: HyperNetworkReport): string {
  const methods = [...report.variants.map((v) => v.name), "dreambooth", "base"];
  const header = `| prompt | ${methods.map((m) => `identity ${m}`).join(" | ")} | identity world | ${methods.map((m) => `style ${m}`).join(" | ")} |`;
  const rule = `|---|${methods.map(() => "---").join("|")}|---|${methods.map(() => "---").join("|")}|`;
  const line = (name: string, row: { identity: Record<string, ConfidenceInterval>; styleAccuracy: Record<string, ConfidenceInterval> }): string =>
    `| ${name} | ${methods.map((m) => ci(row.identity[m])).join(" | ")} | ${ci(row.identity["world"])} | ${methods.map((m) => ci(row.styleAccuracy[m], 2)).join(" | ")} |`;
  const d = report.dreambooth;
  return `# The HyperNetwork in the mini-world ("Only Hyper", §5)

${report.identities.length} held-out identities × ${report.study.rows.length} prompts × ${report.seeds.length} seeds; one reference photo per identity.
Methods: ${report.variants.map((v) => `**${v.name}** (${v.dir}${v.rounds === undefined ? "" : `, ${v.rounds} round${v.rounds === 1 ? "" : "s"}`})`).join(", ")};
**dreambooth**: per-identity LiDB DreamBooth, ${d.steps} steps, lr ${d.learningRate}, a = ${d.lidbA}, b = ${d.lidbB}, rank ${d.rank} (${report.trainingSeconds === null ? "trained by an earlier run of this study" : `${report.trainingSeconds.toFixed(0)} s for these identities`});
**base**: the base model. Sampling: DPM-Solver++ 2M, ${report.generation.steps} steps, guidance ${report.generation.guidance}. Means with 95 % CIs.

${header}
${rule}
${report.study.rows.map((r) => line(`\`${r.prompt}\``, r)).join("\n")}
${line("**all**", report.study.overall)}

| method | weight error vs DreamBooth (relative, A·B per layer) | seconds per photo | bar: above base | ≥ ½ DreamBooth | style within 10 pts | met |
|---|---|---|---|---|---|---|
${report.variants.map((v) => {
    const b = report.bar[v.name]!;
    return `| ${v.name} | ${ci(report.weightError[v.name])} | ${report.secondsPerPhoto[v.name]!.toFixed(3)} | ${b.identityAboveBase} | ${b.atLeastHalfOfDreamBooth} | ${b.styleWithin10Points} | **${b.met}** |`;
  }).join("\n")}

Contact sheet: contact-sheet.png (one row per identity: the reference, then ${report.variants[0]?.name ?? "the first method"}'s image of each prompt, seed ${report.seeds[0]}).
`;
}
