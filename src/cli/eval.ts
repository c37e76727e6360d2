/**
 * `hdb eval`: the evaluation harness (src/evaluation/harness/, HyperDreamBooth §5): methods × held-out identities ×
 * prompts × seeds → images, scores, results.json, report.html and blind.html in --out; killed, the same command
 * resumes, and one more method reuses everything the others made.
 */
import path from "node:path";
import { buildInfo, getNumThreads, setNumThreads } from "../engine/index.js";
import { methodRegistry, METHOD_NAMES, parseMethodList, usesHyperNetwork, type MethodSettings } from "../evaluation/harness/methods.js";
import { promptOfStyles, readPromptFile, type EvalPrompt } from "../evaluation/harness/prompts.js";
import { runEvaluation } from "../evaluation/harness/run.js";
import { formatSummary } from "../evaluation/harness/summary.js";
import { bundledMiniworldDir } from "../miniworld/base-model/recipe.js";
import { DREAMBOOTH_STUDY_LIDB as T } from "../evaluation/dreambooth-in-world.js";
import { PERSONALIZE_STUDY_CHOSEN } from "../evaluation/personalize-in-world.js";
import { splitIds, splitOf, SPLITS } from "../miniworld/splits.js";
import { personalizeSettings } from "../personalize/index.js";
import { defineCommand, parseFlags } from "../util/flags.js";
import { formatDuration, progressBars } from "../util/progress.js";
import { provenance } from "../util/provenance.js";
import { DREAMBOOTH_PROMPTS } from "./miniworld-evaluate.js";

const DEFAULTS = personalizeSettings();

export const EVAL_SPEC = defineCommand({
  name: "eval",
  summary: "the evaluation harness: methods × held-out identities × prompts × seeds → scores with CIs, an HTML report, a blind page",
  usage: "[flags]",
  details: `Methods: ${METHOD_NAMES.join(", ")}.
ours = the HyperNetwork + the fast fine-tuning; only-hyper, no-hyper, k1 = its ablations; dreambooth = LiDB DreamBooth
per person; dreambooth-agg-400 and -40 = that DreamBooth for 400 or 40 steps at --agg-learning-rate (Table 2);
lora = no-hyper at --lora-steps; base = the base model; world = the world's own renders (the ceiling). The fine-tuning's
rank and rate default to those the personalisation study chose (rank ${PERSONALIZE_STUDY_CHOSEN.rank}, lr ${PERSONALIZE_STUDY_CHOSEN.learningRate}).
Writes <out>/results.json, report.html, blind.html, tables.md/.json (the paper's Tables 1-3 with paired CIs and
verdicts) and cache/ (every person's file and every image with its scores, keyed by method + settings hash,
identity, prompt and seed). Killed, the same command resumes; with one more method it makes only that method's images.`,
  flags: {
    methods: { type: "string", value: "<list>", default: "ours,only-hyper,no-hyper,k1,dreambooth,dreambooth-agg-400,dreambooth-agg-40,lora,base,world", description: "comma-separated methods" },
    identities: { type: "string", value: "<n | ids>", default: "30", description: "a count of held-out identities (the first n) or a comma list of held-out ids" },
    prompts: { type: "string", value: "<file>", description: "one prompt per line with [V] (\"a [V] face as a pencil sketch\")", defaultText: "the DreamBooth study's 6 prompts" },
    seeds: { type: "string", value: "<list>", default: "0,1", description: "comma-separated generation seeds" },
    out: { type: "string", value: "<folder>", default: path.join("reports", "miniworld", "eval"), description: "where results, pages and the cache go" },
    model: { type: "string", value: "<folder>", description: "the base model", defaultText: "models/miniworld/base" },
    hypernetwork: { type: "string", value: "<folder>", description: "the HyperNetwork", defaultText: "models/miniworld/hypernetwork" },
    metrics: { type: "string", value: "<folder>", description: "the metric networks: identity/ and fidelity/", defaultText: "models/miniworld/metrics" },
    steps: { type: "integer", min: 1, default: 25, description: "DPM-Solver++ steps per generated image" },
    guidance: { type: "number", min: 0, default: 5, value: "<scale>", description: "classifier-free guidance scale" },
    "finetune-steps": { type: "integer", min: 1, default: DEFAULTS.steps, description: "fine-tuning steps of ours, no-hyper and k1" },
    rank: { type: "integer", min: 1, default: PERSONALIZE_STUDY_CHOSEN.rank, description: "rank of the fine-tuned LoRA" },
    "learning-rate": { type: "number", above: 0, default: PERSONALIZE_STUDY_CHOSEN.learningRate, value: "<lr>", description: "the fine-tuning's learning rate" },
    "agg-learning-rate": { type: "number", above: 0, default: 3 * T.learningRate, value: "<lr>", description: "dreambooth-agg-400 and -40's learning rate (3× dreambooth's)" },
    "lora-steps": { type: "integer", min: 1, default: 400, description: "lora's fine-tuning steps" },
    "dreambooth-steps": { type: "integer", min: 1, default: 1000, description: "dreambooth's LiDB training steps per person" },
    "dreambooth-learning-rate": { type: "number", above: 0, default: T.learningRate, value: "<lr>", description: "dreambooth's learning rate" },
    "shuffle-seed": { type: "integer", min: 0, default: 0, description: "the blind page's shuffle" },
    threads: { type: "integer", min: 1, description: "CPU threads", defaultText: "libtorch's" },
  },
  examples: [
    "hdb eval --methods ours,dreambooth,lora,dreambooth-agg-400,dreambooth-agg-40,no-hyper,only-hyper,k1,base,world --identities 30 --prompts reports/miniworld/paper-tables/prompts.txt --seeds 0,1 --out reports/miniworld/paper-tables",
    "hdb eval --methods ours,base --identities 2 --seeds 0 --steps 2 --finetune-steps 2 --out /tmp/eval",
  ],
});

/**
 * "30" → the first 30 held-out ids; "60000,60005" (or one id, "60005") → those ids, each checked to be held out. A
 * number up to the split's size is a count, a larger one an id: held-out ids start far above it, so none is both.
 */
export function parseIdentities(text: string): number[] {
  const held = SPLITS["held-out"];
  if (/^\s*\d+\s*$/.test(text) && Number(text) <= held.count) {
    const n = Number(text);
    if (n < 1) throw new Error(`--identities: a count must be in [1, ${held.count}] (the held-out split), got ${text.trim()}`);
    return splitIds("held-out", n);
  }
  const ids = text.split(",").map((s) => s.trim()).filter((s) => s !== "").map((s) => {
    if (!/^\d+$/.test(s)) throw new Error(`--identities: '${s}' is not an identity id (give a count, or ids like ${held.first},${held.first + 1})`);
    const id = Number(s);
    if (splitOf(id) !== "held-out") {
      throw new Error(`--identities: ${id} is not a held-out identity (${held.first}–${held.first + held.count - 1}); the others were seen in training`);
    }
    return id;
  });
  if (ids.length === 0) throw new Error("--identities lists no identity");
  const repeated = ids.find((id, i) => ids.indexOf(id) !== i);
  if (repeated !== undefined) throw new Error(`--identities lists ${repeated} twice`);
  return ids;
}

/** "0,1" → [0, 1]: non-negative integers, no repeats. */
export function parseSeeds(text: string): number[] {
  const seeds = text.split(",").map((s) => s.trim()).filter((s) => s !== "").map((s) => {
    const n = Number(s);
    if (!/^\d+$/.test(s) || !Number.isSafeInteger(n)) throw new Error(`--seeds: '${s}' is not a non-negative integer`);
    return n;
  });
  if (seeds.length === 0) throw new Error("--seeds lists no seed");
  const repeated = seeds.find((s, i) => seeds.indexOf(s) !== i);
  if (repeated !== undefined) throw new Error(`--seeds lists ${repeated} twice`);
  return seeds;
}

export async function runEval(argv: string[]): Promise<void> {
  const { values } = parseFlags(EVAL_SPEC, argv);
  // Every input is checked before anything is loaded: a typo costs nothing.
  const names = parseMethodList(values.methods);
  const identities = parseIdentities(values.identities);
  const seeds = parseSeeds(values.seeds);
  const prompts: EvalPrompt[] = values.prompts === undefined ? DREAMBOOTH_PROMPTS.map((styles) => promptOfStyles(styles)) : readPromptFile(values.prompts);
  if (values.threads !== undefined) setNumThreads(values.threads);
  const bundled = bundledMiniworldDir();
  const model = path.resolve(values.model ?? path.join(bundled, "base"));
  const metrics = path.resolve(values.metrics ?? path.join(bundled, "metrics"));
  const settings: MethodSettings = {
    personalize: { steps: values["finetune-steps"], rank: values.rank, learningRate: values["learning-rate"], seed: 0 },
    aggressiveLearningRate: values["agg-learning-rate"], loraSteps: values["lora-steps"],
    dreambooth: { steps: values["dreambooth-steps"], learningRate: values["dreambooth-learning-rate"], lidbA: T.lidbA, lidbB: T.lidbB, rank: T.rank, seed: T.seed },
  };
  const registry = methodRegistry(settings);
  const methods = names.map((name) => registry.get(name)!);
  const needsHyper = methods.some(usesHyperNetwork);
  const hypernetwork = needsHyper ? path.resolve(values.hypernetwork ?? path.join(bundled, "hypernetwork")) : null;
  const started = Date.now();
  const run = await runEvaluation({
    modelDir: model, hypernetwork, metricsDir: metrics, outDir: path.resolve(values.out), methods, identities, prompts, seeds,
    generation: { steps: values.steps, guidance: values.guidance }, shuffleSeed: values["shuffle-seed"],
    progress: progressBars(), log: (line) => void process.stderr.write(`${line}\n`),
    provenance: provenance({
      command: ["hdb", "eval", ...argv], threads: getNumThreads(), versions: { torch: buildInfo().torchVersion },
      measured: [model, metrics, ...(hypernetwork === null ? [] : [hypernetwork])],
    }),
  });
  const c = run.counts;
  const table = run.results!.methods.map((m) => `${m.name} ${formatSummary(m.identity)}`).join(", ");
  process.stdout.write(`done in ${formatDuration((Date.now() - started) / 1000)}: ${c.imagesMade} images made, ${c.imagesReused} reused; ` +
    `${c.filesMade} person files made, ${c.filesReused} reused. Identity: ${table} → ${run.files.report}, ${run.files.tables}\n`);
}
