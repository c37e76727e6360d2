/**
 * The last stage of `hdb miniworld build`: the world's metric networks (src/evaluation/), trained with their
 * defaults into <out>/metrics/identity and <out>/metrics/fidelity, then checked on held-out identities (the
 * issue's bars: identity ROC-AUC ≥ 0.99 plain and ≥ 0.95 across styles; style accuracy ≥ 95 % on renders),
 * the numbers written to <out>/metrics/evaluation.json. A network already saved with the same training
 * settings is not trained again; one killed mid-training resumes from its own checkpoints.
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { evaluateFidelityNetwork, evaluateIdentityNetwork, type FidelityEvaluation, type IdentityEvaluation } from "../../evaluation/evaluate.js";
import { PromptFidelityNetwork } from "../../evaluation/fidelity-network.js";
import { IdentityNetwork } from "../../evaluation/identity-network.js";
import { FIDELITY_TRAINING_DEFAULTS, trainFidelityNetwork } from "../../evaluation/training/fidelity.js";
import { IDENTITY_TRAINING_DEFAULTS, trainIdentityNetwork } from "../../evaluation/training/identity.js";
import { writeJsonAtomic } from "../../util/atomic.js";
import type { ProgressReporter } from "../../util/progress.js";
import { splitIds } from "../splits.js";

export interface MetricsStageOptions {
  outDir: string;
  workDir: string;
  threads: number;
  /** Told each network's training steps (the CLI draws bars from it). */
  progress?: ProgressReporter;
  log?: (line: string) => void;
}

export interface MetricsStageResult {
  identity: { trainingSeconds: number; renderSeconds: number; finalLoss: number | null; evaluation: IdentityEvaluation };
  fidelity: { trainingSeconds: number; renderSeconds: number; finalLoss: number | null; evaluation: FidelityEvaluation };
}

/** Whether `<dir>/config.json` records a training with exactly these settings (ignoring threads, checkpoints). */
function alreadyTrained(dir: string, defaults: Record<string, unknown>): boolean {
  const file = path.join(dir, "config.json");
  if (!existsSync(file)) return false;
  const training = (JSON.parse(readFileSync(file, "utf8")) as { training?: Record<string, unknown> }).training ?? {};
  return Object.entries(defaults).every(([key, value]) => key === "threads" || key === "checkpointEvery" || key === "network" ||
    JSON.stringify(training[key]) === JSON.stringify(value));
}

const HELD_OUT_IDENTITIES = 200;

export async function trainMetricNetworks(options: MetricsStageOptions): Promise<MetricsStageResult> {
  const log = options.log ?? (() => {});
  const common = { threads: options.threads, log, ...(options.progress === undefined ? {} : { progress: options.progress }) };
  const identityDir = path.join(options.outDir, "metrics", "identity");
  const fidelityDir = path.join(options.outDir, "metrics", "fidelity");
  const heldOut = splitIds("held-out", HELD_OUT_IDENTITIES);
  const none = { trainingSeconds: 0, renderSeconds: 0, finalLoss: null };

  let identityRun: Omit<MetricsStageResult["identity"], "evaluation"> = none;
  if (!alreadyTrained(identityDir, { ...IDENTITY_TRAINING_DEFAULTS })) {
    const workDir = path.join(options.workDir, "metrics", "identity");
    const run = await trainIdentityNetwork({ ...common, outDir: identityDir, workDir });
    identityRun = { trainingSeconds: run.trainingSeconds, renderSeconds: run.renderSeconds, finalLoss: run.losses.at(-1) ?? null };
    rmSync(workDir, { recursive: true, force: true }); // the ~200 MB image cache
  } else log(`metrics: ${identityDir} already holds the identity network trained with these settings`);
  let fidelityRun: Omit<MetricsStageResult["fidelity"], "evaluation"> = none;
  if (!alreadyTrained(fidelityDir, { ...FIDELITY_TRAINING_DEFAULTS })) {
    const workDir = path.join(options.workDir, "metrics", "fidelity");
    const run = await trainFidelityNetwork({ ...common, outDir: fidelityDir, workDir });
    fidelityRun = { trainingSeconds: run.trainingSeconds, renderSeconds: run.renderSeconds, finalLoss: run.losses.at(-1) ?? null };
    rmSync(workDir, { recursive: true, force: true });
  } else log(`metrics: ${fidelityDir} already holds the fidelity network trained with these settings`);

  const identityNetwork = IdentityNetwork.load(identityDir);
  const fidelityNetwork = PromptFidelityNetwork.load(fidelityDir);
  try {
    const result: MetricsStageResult = {
      identity: { ...identityRun, evaluation: await evaluateIdentityNetwork(identityNetwork, { identities: heldOut, log }) },
      fidelity: { ...fidelityRun, evaluation: await evaluateFidelityNetwork(fidelityNetwork, { identities: heldOut, log }) },
    };
    writeJsonAtomic(path.join(options.outDir, "metrics", "evaluation.json"), result);
    const e = result.identity.evaluation;
    const f = result.fidelity.evaluation;
    log(`metrics: identity ROC-AUC ${e.plainAuc.toFixed(4)} plain, ${e.crossStyleAuc.toFixed(4)} across styles; ` +
      `style accuracy ${(100 * f.styleAccuracy).toFixed(1)}%, hair colour ${(100 * f.hairColourAccuracy).toFixed(1)}% (held-out renders)`);
    return result;
  } finally {
    identityNetwork.dispose();
    fidelityNetwork.dispose();
  }
}
