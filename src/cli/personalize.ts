/**
 * `hdb personalize` (HyperDreamBooth §4.3: src/personalize/): a face photo → <out>/person.lidb.safetensors (the
 * HyperNetwork's prediction plus the rank-relaxed LoRA, one file for `hdb generate --lidb`), its exact export as
 * one standard LoRA in both layouts, and personalize.json (settings, the time of each phase, file sizes, provenance).
 */
import { existsSync, mkdirSync, statSync } from "node:fs";
import path from "node:path";
import { getNumThreads, setNumThreads } from "../engine/index.js";
import { FaceAnalyzer, preprocessFacePhoto } from "../faces/index.js";
import { personalizeSettings, Personalizer } from "../personalize/index.js";
import { savePng } from "../pipeline/images.js";
import { writeJsonAtomic } from "../util/atomic.js";
import { defineCommand, parseFlags } from "../util/flags.js";
import { progressBars } from "../util/progress.js";
import { provenance } from "../util/provenance.js";

const DEFAULT_MODEL = path.join("models", "miniworld", "base");
const DEFAULT_HYPERNETWORK = path.join("models", "miniworld", "hypernetwork");
/** The library's defaults (src/personalize/config.ts), so the CLI and the library cannot drift apart. */
const DEFAULTS = personalizeSettings();
/** What a run writes into --out: an earlier person's results are not replaced without --force. */
const RESULTS = ["person.lidb.safetensors", "person.lora.safetensors", "pytorch_lora_weights.safetensors", "person.kohya.safetensors", "personalize.json"];
/** Below this training resolution the model is the mini-world's (or a toy): its photos are renders, already aligned crops. */
const FACE_CROP_MIN_RESOLUTION = 256;

export const PERSONALIZE_SPEC = defineCommand({
  name: "personalize",
  summary: "one face photo → a personalised model in seconds: the HyperNetwork's LiDB prediction + rank-relaxed fast fine-tuning",
  usage: "--image <photo> --out <folder> [flags]",
  details: `Writes <out>/person.lidb.safetensors (use it with hdb generate --lidb), <out>/pytorch_lora_weights.safetensors
(diffusers) and <out>/person.kohya.safetensors (A1111/kohya): the same ΔW as one standard LoRA of rank 1 + r, exactly;
and <out>/personalize.json with the time of each phase. Ablations (paper §5): --no-hyper fine-tunes from zero (the
result is then a LoRA file, person.lora.safetensors), --only-hyper skips the fine-tuning, --iterations k sets the
HyperNetwork's refinement rounds.
Raw photos (phone photos, group photos, any EXIF orientation) are fine: each is turned upright, its largest face (or
--face n, counted from 0 left to right as hdb faces detect numbers them) found, aligned by the eyes and mouth and cut
in the CelebA-HQ framing at the model's resolution (src/faces/); the crops used are kept in <out>/faces/.
--face-crop auto does this for models of 256 px and more, and leaves the mini-world's renders as they are.`,
  flags: {
    image: { type: "string", multiple: true, value: "<photo>", description: "the face photo (repeat for more photos of the person; the first feeds the HyperNetwork)" },
    out: { type: "string", value: "<folder>", description: "the result folder (required)" },
    model: { type: "string", value: "<folder|id>", default: DEFAULT_MODEL, description: "the base model" },
    hypernetwork: { type: "string", value: "<folder>", default: DEFAULT_HYPERNETWORK, description: "the trained HyperNetwork for that model" },
    steps: { type: "integer", min: 0, default: DEFAULTS.steps, description: "rank-relaxed fine-tuning steps" },
    rank: { type: "integer", min: 1, default: DEFAULTS.rank, description: "rank r of the relaxed LoRA" },
    lr: { type: "number", above: 0, default: DEFAULTS.learningRate, value: "<lr>", description: "the fine-tuning's learning rate" },
    iterations: { type: "integer", min: 1, description: "the HyperNetwork's refinement rounds k", defaultText: "the network's" },
    "no-hyper": { type: "boolean", description: "ablation: no prediction, the LoRA trains from zero" },
    "only-hyper": { type: "boolean", description: "ablation: the prediction alone (same as --steps 0)" },
    "face-crop": { type: "string", choices: ["auto", "celeba-hq", "none"], default: "auto", description: "align and crop the face of each photo (auto: for models of 256 px and more)" },
    face: { type: "integer", min: 0, value: "<n>", description: "which face of each photo, counted from 0 left to right", defaultText: "the largest" },
    seed: { type: "integer", min: 0, default: 0, description: "the LoRA's initialisation and the fine-tuning's draws" },
    prompt: { type: "string", value: "<text>", default: "a [V] face", description: "the fine-tuning prompt; [V] is the identifier" },
    json: { type: "boolean", description: "print the summary (times, sizes, files) as JSON" },
    force: { type: "boolean", description: "replace the results already in --out" },
    device: { type: "string", value: "<device>", default: "cpu", description: "cpu, cuda:0, …" },
    threads: { type: "integer", min: 1, description: "CPU threads", defaultText: "the free cores" },
  },
  examples: [
    "hdb personalize --image samples/face.png --out out/me",
    "hdb personalize --model runwayml/stable-diffusion-v1-5 --hypernetwork hyper/ --image phone-photo.jpg --out out/me",
    "hdb generate --model models/miniworld/base --lidb out/me/person.lidb.safetensors --prompt \"a sks face as a pencil sketch\" --out me.png",
    "hdb personalize --image face.png --out out/no-hyper --no-hyper --steps 40",
  ],
});

export async function runPersonalize(argv: string[]): Promise<void> {
  const { values } = parseFlags(PERSONALIZE_SPEC, argv);
  if (values.image.length === 0) throw new Error("--image is required (a face photo)");
  if (!values.out) throw new Error("--out is required (the result folder)");
  for (const image of values.image) if (!existsSync(image)) throw new Error(`--image: no such file '${image}'`);
  if (existsSync(values.out) && !statSync(values.out).isDirectory()) throw new Error(`--out ${values.out} is a file; give the result folder`);
  const existing = RESULTS.filter((name) => existsSync(path.join(values.out!, name)));
  if (existing.length > 0 && !values.force) throw new Error(`--out ${values.out} already holds results (${existing.join(", ")}): pass --force to replace them, or choose another folder`);
  if (values["no-hyper"] && values["only-hyper"]) throw new Error("--no-hyper and --only-hyper exclude each other (the one trains without the prediction, the other uses nothing else)");
  const hyper = !values["no-hyper"];
  if (hyper && !existsSync(path.join(values.hypernetwork, "config.json"))) {
    throw new Error(`--hypernetwork: ${values.hypernetwork} holds no trained HyperNetwork (config.json)${values.hypernetwork === DEFAULT_HYPERNETWORK ? "; make it with hdb miniworld hypernetwork" : ""}, or use --no-hyper`);
  }
  if (values.threads !== undefined) setNumThreads(values.threads);
  const steps = values["only-hyper"] ? 0 : values.steps;
  const log = values.json ? () => {} : (line: string) => void process.stderr.write(`${line}\n`);
  const personalizer = await Personalizer.open({
    model: values.model, ...(hyper ? { hypernetwork: values.hypernetwork } : {}), device: values.device, log,
    settings: { steps, rank: values.rank, learningRate: values.lr, hyper, seed: values.seed, prompt: values.prompt, ...(values.iterations === undefined ? {} : { rounds: values.iterations }) },
  });
  try {
    mkdirSync(values.out, { recursive: true });
    const resolution = personalizer.session.resolution;
    const framing = values["face-crop"] === "auto" ? (resolution < FACE_CROP_MIN_RESOLUTION ? "none" : "celeba-hq") : values["face-crop"];
    if (framing === "none" && values.face !== undefined) {
      throw new Error(`--face ${values.face} picks a face to crop, but the photos are taken as they are (--face-crop ${values["face-crop"]}${values["face-crop"] === "auto" ? `: the model trains at ${resolution} px` : ""}); give --face-crop celeba-hq`);
    }
    const faceCrops = framing === "celeba-hq" ? await cropFaces(values.image, path.join(values.out, "faces"), resolution, values.face, log) : [];
    const photos = framing === "celeba-hq" ? faceCrops.map((c) => c.crop) : values.image;
    const file = path.join(values.out, hyper ? "person.lidb.safetensors" : "person.lora.safetensors");
    const result = await personalizer.personalize(photos, file, {
      exports: { diffusers: path.join(values.out, "pytorch_lora_weights.safetensors"), kohya: path.join(values.out, "person.kohya.safetensors") },
      ...(values.json ? {} : { hooks: { progress: progressBars() } }),
    });
    const summary = {
      file: result.file, kind: result.kind, bytes: result.bytes, identifier: personalizer.config.identifier,
      exports: result.exports, times: { load: personalizer.loadSeconds, ...result.times }, finalLoss: result.losses.at(-1) ?? null, settings: result.settings,
      faceCrop: { framing, resolution, crops: faceCrops },
      provenance: provenance({ command: ["hdb", "personalize", ...argv], threads: getNumThreads(), measured: [values.model, ...(hyper ? [values.hypernetwork] : []), ...values.image] }),
    };
    writeJsonAtomic(path.join(values.out, "personalize.json"), summary);
    if (values.json) {
      process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
      return;
    }
    const t = result.times;
    const phases = hyper ? `encode ${t.encode.toFixed(2)} s, predict ${t.predict.toFixed(2)} s, merge ${t.merge.toFixed(2)} s, ` : "";
    process.stdout.write(`${result.file} (${(result.bytes / 1024).toFixed(0)} KB; "${personalizer.config.identifier}" is the person)\n`);
    for (const e of result.exports) process.stdout.write(`${e.file} (${e.format} LoRA, ${(e.bytes / 1024).toFixed(0)} KB)\n`);
    process.stdout.write(`personalised in ${t.total.toFixed(2)} s on ${getNumThreads()} threads: ${phases}fine-tune ${t.fineTune.toFixed(2)} s (${result.settings.steps} steps), ` +
      `save ${t.save.toFixed(2)} s, export ${t.export.toFixed(2)} s; models loaded in ${personalizer.loadSeconds.toFixed(2)} s\n`);
  } finally {
    personalizer.dispose();
  }
}

/** Each photo's aligned face crop at the model's resolution, written to `dir` as PNG; what was cut, per photo. */
async function cropFaces(photos: readonly string[], dir: string, size: number, face: number | undefined, log: (line: string) => void):
  Promise<{ photo: string; crop: string; face: number; faces: number; box: { x: number; y: number; width: number; height: number } }[]> {
  mkdirSync(dir, { recursive: true });
  const analyzer = new FaceAnalyzer();
  try {
    const crops = [];
    for (const [i, photo] of photos.entries()) {
      const result = await preprocessFacePhoto(photo, analyzer, { size, ...(face === undefined ? {} : { face }) });
      const crop = path.join(dir, `${i}-${path.basename(photo, path.extname(photo))}.png`);
      try {
        await savePng(crop, { width: size, height: size, data: result.pixels.contiguous().bytes() });
      } finally {
        result.pixels.dispose();
      }
      const f = result.face!;
      log(`${photo}: face #${f.index} of ${f.found} aligned and cropped to ${size} px → ${crop}`);
      crops.push({ photo, crop, face: f.index, faces: f.found, box: { x: Math.round(f.box.x), y: Math.round(f.box.y), width: Math.round(f.box.width), height: Math.round(f.box.height) } });
    }
    return crops;
  } finally {
    analyzer.dispose();
  }
}
