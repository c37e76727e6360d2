/**
 * `hdb miniworld lidb-set`: the hypernetwork's training set in the mini-world (src/miniworld/hypernetwork/
 * weight-set.ts). Flags: MINIWORLD_LIDB_SET_SPEC below. Shows progress with an ETA; killed, the same command
 * resumes; a larger --count with the same settings extends the set.
 *
 * `hdb miniworld encoder`: the hypernetwork's image encoder, a small CLIP ViT pretrained contrastively on
 * captioned renders of pretraining identities (src/miniworld/hypernetwork/encoder.ts). Flags:
 * MINIWORLD_ENCODER_SPEC below; killed, the same command resumes.
 *
 * `hdb miniworld hypernetwork`: the bundled HyperNetwork's recipe (src/miniworld/hypernetwork/recipe.ts): both
 * variants trained, measured against DreamBooth and the base model, the better one bundled.
 */
import path from "node:path";
import { getNumThreads, setNumThreads } from "../engine/index.js";
import { bundledMiniworldDir } from "../miniworld/base-model/recipe.js";
import { ENCODER_TRAINING_DEFAULTS as E, ENCODER_VISION_CONFIG as V, trainEncoder } from "../miniworld/hypernetwork/encoder.js";
import { buildWeightSet, WEIGHT_SET_TRAINING as T } from "../miniworld/hypernetwork/weight-set.js";
import { buildHyperNetwork, HYPERNETWORK_RECIPE as H, HYPERNETWORK_VARIANTS } from "../miniworld/hypernetwork/recipe.js";
import { PromptFidelityNetwork } from "../evaluation/fidelity-network.js";
import { IdentityNetwork } from "../evaluation/identity-network.js";
import { DREAMBOOTH_PROMPTS } from "./miniworld-evaluate.js";
import { defineCommand, parseFlags } from "../util/flags.js";
import { formatDuration, progressBars } from "../util/progress.js";

export const MINIWORLD_LIDB_SET_SPEC = defineCommand({
  name: "miniworld lidb-set",
  summary: "pre-optimised LiDB weights for the hypernetwork split: one photo and one DreamBooth-trained LiDB file per identity",
  usage: "--out <folder> [flags]",
  details: `Identities 50000, 50001, … (the hypernetwork split), one photo each (nuisance seed ${T.photoNuisanceSeed}), LiDB trained as in
hdb miniworld dreambooth: ${T.steps} steps, lr ${T.learningRate}, a = ${T.lidbA}, b = ${T.lidbB}, rank ${T.rank}. Writes photos/, lidb/ (manifest.json
and one .lidb.safetensors per identity) and weight-set.json (settings, command, commit, model hash). Killed, the
same command resumes; a larger --count extends the set.`,
  flags: {
    out: { type: "string", value: "<folder>", description: "where photos/, lidb/ and weight-set.json go (required)" },
    count: { type: "integer", min: 1, max: 10_000, default: 1000, description: "identities of the hypernetwork split" },
    model: { type: "string", value: "<folder>", description: "the base model", defaultText: "models/miniworld/base" },
    "identities-per-batch": { type: "integer", min: 1, default: 16, description: "identities trained together on one forward/backward" },
    "checkpoint-every": { type: "integer", min: 1, default: 50, description: "steps between each in-flight identity's checkpoints" },
    threads: { type: "integer", min: 1, description: "CPU threads", defaultText: "libtorch's" },
  },
  examples: ["hdb miniworld lidb-set --out data/miniworld-lidb-set --count 1000", "hdb miniworld lidb-set --out /tmp/set --count 4 --threads 1"],
});

export async function runMiniworldLidbSet(argv: string[]): Promise<void> {
  const { values } = parseFlags(MINIWORLD_LIDB_SET_SPEC, argv);
  if (!values.out) throw new Error("--out is required (the folder for photos/, lidb/ and weight-set.json)");
  if (values.threads !== undefined) setNumThreads(values.threads);
  const started = Date.now();
  const { record, stopped } = await buildWeightSet({
    modelDir: path.resolve(values.model ?? path.join(bundledMiniworldDir(), "base")), outDir: path.resolve(values.out), count: values.count,
    identitiesPerBatch: values["identities-per-batch"], checkpointEvery: values["checkpoint-every"], threads: getNumThreads(),
    command: ["hdb", "miniworld", "lidb-set", ...argv], progress: progressBars(), log: (line) => void process.stderr.write(`${line}\n`),
  });
  process.stdout.write(`${stopped ? "stopped" : "done"} in ${formatDuration((Date.now() - started) / 1000)}: ${record.finished}/${values.count} identities → ${path.join(values.out, "lidb")}\n`);
}

export const MINIWORLD_ENCODER_SPEC = defineCommand({
  name: "miniworld encoder",
  summary: "the hypernetwork's image encoder: a small CLIP ViT pretrained image-to-caption (CLIP's loss) on renders of pretraining identities",
  usage: "--out <folder> [flags]",
  details: `CLIPVisionModelWithProjection (64 px, patch ${V.patch_size}, width ${V.hidden_size}, ${V.num_hidden_layers} layers, projection ${V.projection_dim}) and a CLIP text tower
on the world's tokenizer, trained with CLIP's symmetric contrastive loss and learned temperature on the base
model's captioned renders (pretraining identities only). Writes the image tower as a transformers folder
(config.json, model.safetensors, preprocessor_config.json) and training.json: settings, losses, seconds,
provenance, and the held-out checks (identity ROC-AUC of 50 identities × 2 photos, caption retrieval among 256)
for the trained encoder and for the same architecture untrained. Killed, the same command resumes.`,
  flags: {
    out: { type: "string", value: "<folder>", description: "the image encoder's folder (required), e.g. models/miniworld/encoder" },
    work: { type: "string", value: "<folder>", description: "cached renders, checkpoints and the JSONL log", default: path.join("build", "miniworld-encoder-work") },
    steps: { type: "integer", min: 1, default: E.steps, description: "optimiser steps" },
    "batch-size": { type: "integer", min: 2, default: E.batchSize, description: "image–caption pairs per step (the contrastive batch)" },
    "dataset-size": { type: "integer", min: 2, max: 50_000, default: E.datasetSize, description: "captioned renders (pretraining identities 0 … N−1)" },
    "captions-per-image": { type: "integer", min: 1, default: E.captionsPerImage, description: "captions per render: the base model's, then more drawn alike" },
    "learning-rate": { type: "number", above: 0, default: E.learningRate, description: "AdamW's peak learning rate (warmup, then cosine decay)" },
    "warmup-steps": { type: "integer", min: 0, default: E.warmupSteps, description: "linear warmup steps" },
    "checkpoint-every": { type: "integer", min: 1, default: E.checkpointEvery, description: "steps between checkpoints" },
    seed: { type: "integer", min: 0, default: E.seed, description: "data plan, initialisation and per-step draws" },
    threads: { type: "integer", min: 1, description: "CPU threads", defaultText: "libtorch's" },
  },
  examples: ["hdb miniworld encoder --out models/miniworld/encoder --threads 1", "hdb miniworld encoder --out /tmp/encoder --work /tmp/encoder-work --steps 30 --dataset-size 512"],
});

export async function runMiniworldEncoder(argv: string[]): Promise<void> {
  const { values } = parseFlags(MINIWORLD_ENCODER_SPEC, argv);
  if (!values.out) throw new Error("--out is required (the image encoder's folder)");
  if (values["batch-size"] > values["dataset-size"]) {
    throw new Error(`--batch-size ${values["batch-size"]} must be at most --dataset-size ${values["dataset-size"]} (a batch holds distinct renders)`);
  }
  if (values.threads !== undefined) setNumThreads(values.threads);
  const started = Date.now();
  const { finished, record } = await trainEncoder({
    outDir: path.resolve(values.out), workDir: path.resolve(values.work), steps: values.steps, batchSize: values["batch-size"],
    datasetSize: values["dataset-size"], captionsPerImage: values["captions-per-image"], learningRate: values["learning-rate"], warmupSteps: values["warmup-steps"],
    checkpointEvery: values["checkpoint-every"], seed: values.seed, threads: getNumThreads(),
    command: ["hdb", "miniworld", "encoder", ...argv], progress: progressBars(), log: (line) => void process.stderr.write(`${line}\n`),
  });
  const took = formatDuration((Date.now() - started) / 1000);
  if (!finished || record === null) {
    process.stdout.write(`stopped after ${took}; the same command resumes\n`);
    return;
  }
  const { trained, untrained } = record.evaluation;
  const f = (x: number): string => x.toFixed(3);
  process.stdout.write(`done in ${took}: held-out identity AUC ${f(trained.identityAuc)} (untrained ${f(untrained.identityAuc)}), ` +
    `caption retrieval ${f(trained.imageToCaption)} (untrained ${f(untrained.imageToCaption)}) → ${values.out}\n`);
}

export const MINIWORLD_HYPERNETWORK_SPEC = defineCommand({
  name: "miniworld hypernetwork",
  summary: "the bundled HyperNetwork: train its loss variants, measure them against DreamBooth, bundle the best",
  usage: "[flags]",
  details: `Needs the weight set (hdb miniworld lidb-set) and the encoder (hdb miniworld encoder). Trains the variants at equal
steps (${H.steps} of ${H.batchSize} photos): ${Object.entries(HYPERNETWORK_VARIANTS).map(([name, v]) => `${name}, ${v.about}`).join("; ")}.
Measures them and the first one's 1-round reading on ${H.evaluation.identities} held-out identities × the DreamBooth
study's prompts × ${H.evaluation.seeds} seeds against per-identity DreamBooth and the base model, writes the report and bundles the
variant with the higher identity similarity, with recipe.json (which, why, provenance). Killed, the same command resumes.`,
  flags: {
    "weight-set": { type: "string", value: "<folder>", description: "the weight set's DreamBooth folder", default: path.join("data", "miniworld-lidb-set", "lidb") },
    encoder: { type: "string", value: "<folder>", description: "the frozen image encoder", defaultText: "models/miniworld/encoder" },
    out: { type: "string", value: "<folder>", description: "where the chosen network is bundled", defaultText: "models/miniworld/hypernetwork" },
    report: { type: "string", value: "<folder>", description: "where report.md, report.json and the contact sheet go", default: path.join("reports", "miniworld", "hypernetwork") },
    work: { type: "string", value: "<folder>", description: "checkpoints, both networks, predictions, the DreamBooth comparison", default: path.join("build", "miniworld-hypernetwork-work") },
    steps: { type: "integer", min: 1, description: "training steps of each variant", defaultText: String(H.steps) },
    variants: { type: "string", value: "<a,b,…>", description: `which variants to train and compare (${Object.keys(HYPERNETWORK_VARIANTS).join(", ")})`, defaultText: "all" },
    identities: { type: "integer", min: 2, description: "held-out identities measured", defaultText: String(H.evaluation.identities) },
    threads: { type: "integer", min: 1, description: "CPU threads", defaultText: "libtorch's" },
  },
  examples: ["hdb miniworld hypernetwork --threads 2", "hdb miniworld hypernetwork --steps 200 --identities 4 --out /tmp/hn --report /tmp/hn-report"],
});

export async function runMiniworldHypernetwork(argv: string[]): Promise<void> {
  const { values } = parseFlags(MINIWORLD_HYPERNETWORK_SPEC, argv);
  if (values.threads !== undefined) setNumThreads(values.threads);
  const bundled = bundledMiniworldDir();
  const identityNetwork = IdentityNetwork.load(path.join(bundled, "metrics", "identity"));
  const fidelityNetwork = PromptFidelityNetwork.load(path.join(bundled, "metrics", "fidelity"));
  const started = Date.now();
  try {
    const { report, chosen } = await buildHyperNetwork({
      modelDir: path.join(bundled, "base"), weightSet: path.resolve(values["weight-set"]), encoder: path.resolve(values.encoder ?? path.join(bundled, "encoder")),
      workDir: path.resolve(values.work), outDir: path.resolve(values.out ?? path.join(bundled, "hypernetwork")), reportDir: path.resolve(values.report),
      identityNetwork, fidelityNetwork, prompts: DREAMBOOTH_PROMPTS, command: ["hdb", "miniworld", "hypernetwork", ...argv],
      ...(values.variants === undefined ? {} : { variants: values.variants.split(",").map((v) => v.trim()) }),
      overrides: { ...(values.steps === undefined ? {} : { steps: values.steps }), ...(values.identities === undefined ? {} : { identities: values.identities }) },
      progress: progressBars(), log: (line) => void process.stderr.write(`${line}\n`),
    });
    const o = report.study.overall.identity;
    process.stdout.write(`done in ${formatDuration((Date.now() - started) / 1000)}: identity similarity ${Object.entries(o).map(([k, v]) => `${k} ${v.mean.toFixed(3)}`).join(", ")}; ` +
      `bundled ${chosen} (bar met: ${report.bar[chosen]!.met}) → ${path.join(values.report, "report.md")}\n`);
  } finally {
    identityNetwork.dispose();
    fidelityNetwork.dispose();
  }
}
