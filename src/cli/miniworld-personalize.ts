/**
 * `hdb miniworld personalize`: the personalisation study in the mini-world (src/evaluation/personalize-in-world.ts):
 * rank-relaxed fast fine-tuning vs Only Hyper, No Hyper, DreamBooth and the base model on held-out identities, with
 * the time per identity and the bar, into reports/miniworld/personalize/.
 */
import path from "node:path";
import { getNumThreads, setNumThreads } from "../engine/index.js";
import { PromptFidelityNetwork } from "../evaluation/fidelity-network.js";
import { IdentityNetwork } from "../evaluation/identity-network.js";
import { evaluatePersonalizationInWorld } from "../evaluation/personalize-in-world.js";
import { bundledMiniworldDir } from "../miniworld/base-model/recipe.js";
import { splitIds } from "../miniworld/splits.js";
import { DREAMBOOTH_STUDY_LIDB as T } from "../evaluation/dreambooth-in-world.js";
import { defineCommand, parseFlags } from "../util/flags.js";
import { formatDuration, progressBars } from "../util/progress.js";
import { provenance } from "../util/provenance.js";
import { DREAMBOOTH_PROMPTS } from "./miniworld-evaluate.js";

/** The study's sizes: 30 identities reported, 8 others for tuning (held-out ids after the reported ones). */
export const PERSONALIZE_STUDY = Object.freeze({
  identities: 30, seeds: 2, steps: 40, tuningIdentities: 8, tuningOffset: 100, ranks: [1, 4, 8], learningRates: [1e-3, 3e-3, 1e-2, 3e-2],
  dreamboothSteps: [T.steps, 1000], probeSteps: 50, inferenceSteps: 25, guidance: 5, referenceNuisanceSeed: 1,
});

export const MINIWORLD_PERSONALIZE_SPEC = defineCommand({
  name: "miniworld personalize",
  summary: "the personalisation study: rank-relaxed fast fine-tuning vs its ablations, DreamBooth and the base model, with times",
  usage: "[flags]",
  details: `Needs the bundled HyperNetwork (hdb miniworld hypernetwork). Chooses the fine-tuning's rank and learning rate on
${PERSONALIZE_STUDY.tuningIdentities} held-out identities (ranks ${PERSONALIZE_STUDY.ranks.join(", ")} × rates ${PERSONALIZE_STUDY.learningRates.join(", ")}), then measures
${PERSONALIZE_STUDY.identities} other held-out identities × the DreamBooth study's prompts × ${PERSONALIZE_STUDY.seeds} seeds: ours (${PERSONALIZE_STUDY.steps} steps), Only Hyper,
No Hyper, LiDB DreamBooth at ${PERSONALIZE_STUDY.dreamboothSteps.join(" and ")} steps, the base model; and the seconds per identity.
Killed, the same command resumes the DreamBooth runs (personalisations are redone: seconds each).`,
  flags: {
    hypernetwork: { type: "string", value: "<folder>", description: "the HyperNetwork", defaultText: "models/miniworld/hypernetwork" },
    report: { type: "string", value: "<folder>", description: "where report.md, report.json, the contact sheet and the files go", default: path.join("reports", "miniworld", "personalize") },
    identities: { type: "integer", min: 2, default: PERSONALIZE_STUDY.identities, description: "held-out identities reported" },
    "tuning-identities": { type: "integer", min: 1, default: PERSONALIZE_STUDY.tuningIdentities, description: "held-out identities the rank and rate are chosen on" },
    steps: { type: "integer", min: 1, default: PERSONALIZE_STUDY.steps, description: "fine-tuning steps of ours and No Hyper" },
    threads: { type: "integer", min: 1, description: "CPU threads", defaultText: "libtorch's" },
  },
  examples: ["hdb miniworld personalize --threads 2", "hdb miniworld personalize --identities 4 --tuning-identities 2 --report /tmp/p"],
});

export async function runMiniworldPersonalize(argv: string[]): Promise<void> {
  const { values } = parseFlags(MINIWORLD_PERSONALIZE_SPEC, argv);
  if (values.threads !== undefined) setNumThreads(values.threads);
  const P = PERSONALIZE_STUDY;
  const bundled = bundledMiniworldDir();
  const hypernetwork = path.resolve(values.hypernetwork ?? path.join(bundled, "hypernetwork"));
  const identityNetwork = IdentityNetwork.load(path.join(bundled, "metrics", "identity"));
  const fidelityNetwork = PromptFidelityNetwork.load(path.join(bundled, "metrics", "fidelity"));
  const started = Date.now();
  const command = ["hdb", "miniworld", "personalize", ...argv];
  const heldOut = splitIds("held-out", P.tuningOffset + values["tuning-identities"]);
  try {
    const report = await evaluatePersonalizationInWorld({
      modelDir: path.join(bundled, "base"), hypernetwork, identityNetwork, fidelityNetwork, outDir: path.resolve(values.report),
      identities: heldOut.slice(0, values.identities), prompts: DREAMBOOTH_PROMPTS, seeds: Array.from({ length: P.seeds }, (_, i) => i),
      generation: { steps: P.inferenceSteps, guidance: P.guidance }, referenceNuisanceSeed: P.referenceNuisanceSeed,
      settings: { steps: values.steps },
      tuning: { identities: heldOut.slice(P.tuningOffset), ranks: P.ranks, learningRates: P.learningRates, seeds: [0] },
      dreambooth: { steps: P.dreamboothSteps, probeSteps: P.probeSteps, learningRate: T.learningRate, lidbA: T.lidbA, lidbB: T.lidbB, rank: T.rank, seed: T.seed, identitiesPerBatch: 16 },
      progress: progressBars(), log: (line) => void process.stderr.write(`${line}\n`),
      provenance: provenance({ command, threads: getNumThreads(), measured: [path.join(bundled, "base"), hypernetwork] }),
    });
    const o = report.study.overall.identity;
    process.stdout.write(`done in ${formatDuration((Date.now() - started) / 1000)}: identity ${Object.entries(o).map(([k, v]) => `${k} ${v.mean.toFixed(3)}`).join(", ")}; ` +
      `ours ${report.seconds["ours.total"]!.toFixed(2)} s per identity; bar met: ${report.bar.met} → ${path.join(values.report, "report.md")}\n`);
  } finally {
    identityNetwork.dispose();
    fidelityNetwork.dispose();
  }
}
