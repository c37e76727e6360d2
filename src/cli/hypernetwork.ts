/**
 * `hdb train-hypernet` (HyperDreamBooth §4.2, phase 1: src/hypernetwork/train.ts) and `hdb predict` (one photo,
 * or a folder of photos, → LiDB files: src/hypernetwork/predict.ts). Flags: the specs below (`--help`).
 */
import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { getNumThreads, setNumThreads } from "../engine/index.js";
import { VisionFeatureEncoder } from "../hypernetwork/encoder.js";
import { loadHyperNetwork } from "../hypernetwork/file.js";
import { predictLidbFiles } from "../hypernetwork/predict.js";
import { trainHyperNetwork } from "../hypernetwork/train.js";
import { launchIfRequested } from "../training/launch.js";
import { defineCommand, parseFlags } from "../util/flags.js";
import { formatDuration, progressBars } from "../util/progress.js";

const IMAGE = /\.(png|jpe?g|webp|bmp|tiff?)$/i;

export const TRAIN_HYPERNET_SPEC = defineCommand({
  name: "train-hypernet",
  summary: "train the HyperNetwork: photos and their pre-optimised LiDB files → a network that predicts LiDB weights from one photo",
  usage: "--weight-set <dreambooth run folder> --encoder <id|folder> --output-dir <folder> [flags]",
  details: `The weight set is a DreamBooth run's output folder (manifest.json, one photo and one LiDB file per identity), e.g.
hdb miniworld lidb-set's lidb/. Loss per photo: the DreamBooth loss with the predicted weights + β · the relative error of
A_train·B_train per layer (--weight-loss; 0 trains on the diffusion loss alone). Writes <out>/hypernetwork/ (config.json,
model.safetensors, lidb_space.json), train-log.jsonl, losses.html and validation/step-<n>.png. Killed, the same command resumes.
Data parallel: --nproc N runs N processes on this machine, or launch with torchrun --no-python --nproc-per-node N (RANK,
WORLD_SIZE, MASTER_ADDR, MASTER_PORT): each takes batch-size/N photos of every step; --threads is then per process.`,
  flags: {
    "weight-set": { type: "string", value: "<folder>", description: "the DreamBooth run with the photos and LiDB files (required)" },
    encoder: { type: "string", value: "<id|folder>", description: "the frozen image encoder: CLIP vision or DINOv2, a folder or hub id (required)" },
    "encoder-layer": { type: "integer", max: -1, default: -2, description: "which hidden state of the encoder: -1 the last, -2 the one before" },
    "output-dir": { type: "string", value: "<folder>", description: "where hypernetwork/, the log, the loss page and validation/ go (required)" },
    steps: { type: "integer", min: 1, default: 4000, description: "optimisation steps" },
    "batch-size": { type: "integer", min: 1, default: 16, description: "photos per step" },
    "learning-rate": { type: "number", above: 0, default: 1e-3, value: "<lr>", description: "AdamW's peak learning rate (cosine decay)" },
    "weight-decay": { type: "number", min: 0, default: 1e-2, description: "AdamW's weight decay" },
    "warmup-steps": { type: "integer", min: 0, default: 100, description: "linear warmup steps" },
    "weight-loss": { type: "number", min: 0, default: 1, value: "<β>", description: "β, the weight of the gauge-free weight loss (0: diffusion loss only)" },
    target: { type: "string", choices: ["noise", "teacher"], default: "noise", description: "the diffusion term's target: the drawn noise (the paper's), or the prediction with the identity's pre-optimised weights (distillation)" },
    rounds: { type: "integer", min: 1, default: 4, description: "refinement rounds s" },
    "hidden-size": { type: "integer", min: 8, default: 256, description: "the decoder's token width" },
    "num-layers": { type: "integer", min: 1, default: 2, description: "the decoder's transformer layers" },
    identities: { type: "integer", min: 1, description: "use only the first N identities of the weight set", defaultText: "all" },
    "checkpoint-every": { type: "integer", min: 1, default: 250, description: "steps between checkpoints (and loss-page updates)" },
    "validation-photos": { type: "string", value: "<folder>", description: "photos of people outside the weight set, for the validation sheets" },
    "validation-every": { type: "integer", min: 1, default: 500, description: "steps between validation sheets" },
    seed: { type: "integer", min: 0, default: 0, description: "initialisation and per-step draws" },
    nproc: { type: "integer", min: 1, default: 1, description: "data-parallel processes on this machine (c10d: Gloo on CPU, NCCL on CUDA)" },
    threads: { type: "integer", min: 1, description: "CPU threads (per process)", defaultText: "libtorch's" },
  },
  examples: [
    "hdb train-hypernet --nproc 2 --weight-set data/miniworld-lidb-set/lidb --encoder models/miniworld/encoder --output-dir out/hypernet",
    "hdb train-hypernet --weight-set data/miniworld-lidb-set/lidb --encoder models/miniworld/encoder --output-dir out/hypernet",
    "hdb train-hypernet --weight-set out/set --encoder openai/clip-vit-large-patch14 --output-dir out/hn --weight-loss 0",
  ],
});

export const PREDICT_SPEC = defineCommand({
  name: "predict",
  summary: "one face photo (or a folder of photos) → a ~100 KB LiDB file each, from a trained HyperNetwork, without any training",
  usage: "--hypernetwork <folder> (--image <photo> --out <file.lidb.safetensors> | --images <folder> --out-dir <folder>) [flags]",
  details: `The LiDB files are the ones hdb train-lidb writes: hdb generate --lidb <file> draws the person, hdb export turns them into
standard LoRA files. The encoder is the one the HyperNetwork's config.json names (a folder relative to it, or a hub id).`,
  flags: {
    hypernetwork: { type: "string", value: "<folder>", description: "a trained HyperNetwork folder (required)" },
    image: { type: "string", value: "<photo>", description: "one photo" },
    out: { type: "string", value: "<file>", description: "the LiDB file for --image" },
    images: { type: "string", value: "<folder>", description: "a folder of photos, one LiDB file each" },
    "out-dir": { type: "string", value: "<folder>", description: "where --images' files go: <photo name>.lidb.safetensors" },
    rounds: { type: "integer", min: 1, description: "refinement rounds", defaultText: "the network's" },
    threads: { type: "integer", min: 1, description: "CPU threads", defaultText: "libtorch's" },
  },
  examples: [
    "hdb predict --hypernetwork models/miniworld/hypernetwork --image face.png --out face.lidb.safetensors",
    "hdb predict --hypernetwork out/hn/hypernetwork --images photos/ --out-dir lidb/",
  ],
});

function photosIn(dir: string): string[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`no such folder '${dir}'`);
  const files = readdirSync(dir).filter((name) => IMAGE.test(name)).sort().map((name) => path.join(dir, name));
  if (files.length === 0) throw new Error(`${dir} holds no photos (.png, .jpg, .webp, .bmp, .tif)`);
  return files;
}

export async function runTrainHypernet(argv: string[]): Promise<void> {
  const { values } = parseFlags(TRAIN_HYPERNET_SPEC, argv);
  for (const flag of ["weight-set", "encoder", "output-dir"] as const) if (!values[flag]) throw new Error(`--${flag} is required`);
  if (values["batch-size"] % values.nproc !== 0) throw new Error(`--batch-size ${values["batch-size"]} does not split into --nproc ${values.nproc} equal shards`);
  // --nproc N: this process only launches the N ranks (the same command with torchrun's environment) and waits.
  if (await launchIfRequested()) return;
  const ranked = process.env["WORLD_SIZE"] !== undefined && Number(process.env["WORLD_SIZE"]) > 1;
  if (values.threads !== undefined) setNumThreads(values.threads);
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  const encoder = await VisionFeatureEncoder.fromPretrained(values.encoder!, { layer: values["encoder-layer"] });
  const started = Date.now();
  try {
    const validationPhotos = values["validation-photos"] === undefined ? null : photosIn(values["validation-photos"]).slice(0, 8);
    const result = await trainHyperNetwork({
      weightSet: values["weight-set"]!, outputDir: values["output-dir"]!, encoder,
      network: { hidden_size: values["hidden-size"], num_layers: values["num-layers"], rounds: values.rounds, encoder_layer: values["encoder-layer"] },
      settings: {
        steps: values.steps, batchSize: values["batch-size"], learningRate: values["learning-rate"], weightDecay: values["weight-decay"],
        warmupSteps: values["warmup-steps"], weightLoss: values["weight-loss"], checkpointEvery: values["checkpoint-every"], seed: values.seed,
        target: values.target as "noise" | "teacher",
        ...(values.identities === undefined ? {} : { identities: values.identities }),
      },
      ...(validationPhotos ? {
        validation: {
          photos: validationPhotos, every: values["validation-every"],
          prompts: ["a [V] face", "a [V] face as a pencil sketch", "a [V] face wearing sunglasses", "a [V] face as a zombie"],
        },
      } : {}),
      hooks: { progress: progressBars(), log },
      ...(ranked ? { distributed: "environment" as const } : {}),
    });
    if (ranked && process.env["RANK"] !== "0") return;
    process.stdout.write(`${result.finished ? "done" : "stopped"} in ${formatDuration((Date.now() - started) / 1000)} on ${getNumThreads()} threads → ${result.dir}\n`);
  } finally {
    encoder.dispose();
  }
}

export async function runPredict(argv: string[]): Promise<void> {
  const { values } = parseFlags(PREDICT_SPEC, argv);
  if (!values.hypernetwork) throw new Error("--hypernetwork is required (a trained HyperNetwork folder)");
  if ((values.image === undefined) === (values.images === undefined)) throw new Error("give either --image <photo> with --out, or --images <folder> with --out-dir");
  if (values.image !== undefined && !values.out) throw new Error("--image needs --out <file.lidb.safetensors>");
  if (values.images !== undefined && !values["out-dir"]) throw new Error("--images needs --out-dir <folder>");
  if (values.image !== undefined && !existsSync(values.image)) throw new Error(`--image: no such file '${values.image}'`);
  if (values.threads !== undefined) setNumThreads(values.threads);
  const photos = values.image !== undefined ? [values.image] : photosIn(values.images!);
  const outFiles = values.image !== undefined ? [values.out!]
    : photos.map((photo) => path.join(values["out-dir"]!, `${path.basename(photo, path.extname(photo))}.lidb.safetensors`));
  if (values["out-dir"]) mkdirSync(values["out-dir"], { recursive: true });
  const started = performance.now();
  const { network, space } = loadHyperNetwork(values.hypernetwork);
  const encoder = await VisionFeatureEncoder.fromPretrained(network.config.encoder, { layer: network.config.encoder_layer });
  try {
    const predictions = await predictLidbFiles(network, space, encoder, photos, outFiles, values.rounds === undefined ? {} : { rounds: values.rounds });
    const seconds = (performance.now() - started) / 1000;
    for (const p of predictions) process.stdout.write(`${p.photo} → ${p.file} (${(p.bytes / 1024).toFixed(0)} KB)\n`);
    process.stdout.write(`${predictions.length} prediction${predictions.length === 1 ? "" : "s"} in ${seconds.toFixed(2)} s (loading included)\n`);
  } finally {
    encoder.dispose();
    network.dispose();
  }
}
