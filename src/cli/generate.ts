/**
 * `hdb generate`: txt2img from a Stable Diffusion folder, Hugging Face cache snapshot or model id, optionally
 * with LiDB and LoRA files applied (src/adapters/apply.ts). Flags: GENERATE_SPEC below (`hdb generate --help`).
 * Every write is atomic.
 */
import { existsSync, mkdirSync, statSync } from "node:fs";
import { freemem } from "node:os";
import path from "node:path";
import { setNumThreads, torchSeed, type DType } from "../engine/index.js";
import { applyAdapterFiles, parseWeightedFile, type WeightedFile } from "../adapters/apply.js";
import { savePng } from "../pipeline/images.js";
import { NonFiniteLatentsError, StableDiffusionPipeline, type GenerationSize } from "../pipeline/stable-diffusion.js";
import { writeJsonAtomic } from "../util/atomic.js";
import { defineCommand, parseFlags } from "../util/flags.js";
import { Progress } from "../util/progress.js";

const DTYPES: readonly DType[] = ["float32", "float16", "bfloat16"];

export const GENERATE_SPEC = defineCommand({
  name: "generate",
  summary: "text-to-image with Stable Diffusion 1.x/2.x, optionally with LiDB/LoRA adapters",
  usage: "--model <folder|id> --prompt \"...\" --out <file.png|folder> [flags]",
  details: `One image and a .png path: that file. Otherwise the folder gets 0.png, 1.png, ... and generation.json (the
parameters and seed, to reproduce the images). --seed S reproduces diffusers' torch.Generator("cpu").manual_seed(S).`,
  flags: {
    model: { type: "string", value: "<folder|id>", description: "a diffusers folder, Hugging Face cache snapshot or model id (required)" },
    prompt: { type: "string", value: "<text>", description: "the prompt (required)" },
    "negative-prompt": { type: "string", value: "<text>", description: "what to steer away from", defaultText: "none" },
    out: { type: "string", value: "<file.png|folder>", description: "a .png file for one image, else a folder (required)" },
    steps: { type: "integer", min: 1, default: 30, description: "denoising steps" },
    guidance: { type: "number", min: 0, max: 100, value: "<scale>", description: "classifier-free guidance scale (off at ≤ 1)", defaultText: "7.5" },
    scheduler: { type: "string", value: "<name>", description: "ddim, pndm, euler, euler_a, dpm++2m, …", defaultText: "the model folder's" },
    karras: { type: "boolean", description: "Karras sigmas for the Euler/DPM schedulers" },
    seed: { type: "seed", description: "seed of the initial noise, as torch.manual_seed takes it: an integer in [-2^63, 2^64 − 1]", defaultText: "random, printed and recorded" },
    width: { type: "integer", min: 8, value: "<px>", description: "image width", defaultText: "the model's" },
    height: { type: "integer", min: 8, value: "<px>", description: "image height", defaultText: "the model's" },
    batch: { type: "integer", min: 1, default: 1, description: "images per prompt" },
    "clip-skip": { type: "integer", min: 0, description: "text encoder layers to skip from the end", defaultText: "0" },
    device: { type: "string", value: "<device>", default: "cpu", description: "cpu, cuda:0, …" },
    dtype: { type: "string", choices: DTYPES, default: "float32", description: "the models' dtype" },
    variant: { type: "string", value: "<name>", description: "weights variant to load, e.g. fp16", defaultText: "none" },
    "allow-download": { type: "boolean", description: "download a model id from the Hugging Face Hub when it is not cached" },
    lidb: { type: "string", multiple: true, value: "<file>[:weight]", description: "apply a LiDB file, scaled by its weight (1 if not given)" },
    lora: { type: "string", multiple: true, value: "<file>[:weight]", description: "apply a LoRA file, diffusers or kohya layout, scaled by its weight (1 if not given)" },
    threads: { type: "integer", min: 1, description: "CPU threads", defaultText: "the free cores" },
    "max-memory": { type: "number", above: 0, value: "<GiB>", description: "memory generation may take: sizes and batch are checked against an estimate first", defaultText: "the free memory on cpu; unchecked elsewhere" },
  },
  examples: [
    "hdb generate --model models/miniworld/base --prompt \"a face as a pencil sketch\" --seed 0 --out face.png",
    "hdb generate --model <folder> --lidb out/0.lidb.safetensors --prompt \"a sks face\" --batch 4 --out faces/",
  ],
});

export async function runGenerate(argv: string[]): Promise<void> {
  const { values } = parseFlags(GENERATE_SPEC, argv);
  if (!values.model) throw new Error("--model is required (a diffusers folder, a Hugging Face cache path or a model id)");
  if (values.prompt === undefined) throw new Error("--prompt is required");
  if (!values.out) throw new Error("--out is required (a .png file or a folder)");
  if (values.threads !== undefined) setNumThreads(values.threads);
  const dtype = values.dtype as DType;
  // The seed the generator is given and what is recorded: a negative seed is PyTorch's, modulo 2^64.
  const seed = values.seed === undefined ? undefined : torchSeed(values.seed);
  const { steps, batch } = values;
  const guidance = values.guidance ?? 7.5;
  const lidbFiles = values.lidb.map((text) => parseWeightedFile(text, "lidb"));
  const loraFiles = values.lora.map((text) => parseWeightedFile(text, "lora"));
  const out = values.out;
  const single = batch === 1 && out.toLowerCase().endsWith(".png");
  if (single && existsSync(out) && statSync(out).isDirectory()) throw new Error(`--out ${out} is a folder; give a .png file, or a folder name without .png for a batch`);
  if (!single && existsSync(out) && !statSync(out).isDirectory()) throw new Error(`--out ${out} is a file; a batch goes into a folder (or write a .png path for one image)`);

  const pipeline = await StableDiffusionPipeline.fromPretrained(values.model, {
    dtype, device: values.device, variant: values.variant, allowDownload: values["allow-download"] ?? false,
  });
  checkMemory(pipeline, { width: values.width, height: values.height, images: batch, guidanceScale: guidance }, values.device, values["max-memory"]);
  const oversize = sizeWarning(pipeline, values.width, values.height);
  if (oversize) process.stderr.write(`warning: ${oversize}\n`);
  const adapters = applyAdapterFiles({ unet: pipeline.unet, textEncoder: pipeline.textEncoder }, { lidb: lidbFiles, lora: loraFiles });
  for (const warning of adapters.warnings) process.stderr.write(`warning: ${warning}\n`);
  // PNDM runs one step more than asked (its warm-up), so the bar takes its total from the first report.
  let progress: Progress | undefined;
  let result;
  try {
    result = pipeline.generate({
      prompt: values.prompt, negativePrompt: values["negative-prompt"], steps, guidanceScale: guidance,
      scheduler: values.scheduler, karrasSigmas: values.karras ?? false, seed, width: values.width,
      height: values.height, imagesPerPrompt: batch, clipSkip: values["clip-skip"],
      onStep: (_step, total, timestep) => {
        progress ??= new Progress({ label: "denoising", total });
        progress.tick(1, `t=${timestep}`);
      },
      onWarning: (message) => process.stderr.write(`warning: ${message}\n`),
    });
  } catch (error) {
    if (error instanceof NonFiniteLatentsError) throw new Error(`${error.message}: nothing was written; ${likelyCauses(guidance, lidbFiles, loraFiles, values.model)}`);
    throw error;
  }
  const files: string[] = [];
  if (single) {
    mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
    await savePng(out, result.rgb[0]!);
    files.push(out);
  } else {
    mkdirSync(out, { recursive: true });
    for (const [i, image] of result.rgb.entries()) {
      const file = path.join(out, `${i}.png`);
      await savePng(file, image);
      files.push(file);
    }
    const record = {
      model: values.model, prompt: values.prompt, negativePrompt: values["negative-prompt"] ?? null, steps,
      guidance, scheduler: values.scheduler ?? "(folder's)", karras: values.karras ?? false,
      seed: result.seed.toString(), ...(values.seed !== undefined && values.seed !== seed ? { seedGiven: values.seed.toString() } : {}),
      width: result.rgb[0]!.width, height: result.rgb[0]!.height, batch, dtype,
      device: values.device, lidb: lidbFiles, lora: loraFiles, files: files.map((f) => path.basename(f)),
    };
    writeJsonAtomic(path.join(out, "generation.json"), record);
  }
  result.images.dispose();
  result.latents.dispose();
  adapters.dispose();
  pipeline.dispose();
  const given = values.seed !== undefined && values.seed !== seed ? ` (--seed ${values.seed}, as torch.manual_seed takes it)` : "";
  console.log(`seed ${result.seed}${given}: wrote ${files.join(", ")}`);
}

/** Bytes as GiB with two decimals. */
const gib = (bytes: number): string => (bytes / 2 ** 30).toFixed(2);

/**
 * Refuses a size and batch whose estimated activation memory (StableDiffusionPipeline.estimateMemory) exceeds the
 * limit, before any denoising: without it `--batch 100000` was killed for memory after a minute. The limit is
 * --max-memory, else on the CPU the memory free now; other devices are checked only against --max-memory (libtorch
 * reports their use, not their size). Time is not estimated: a size that fits but is far beyond the model's (one
 * side of 100,000 px) still runs, slowly, as in diffusers, after a warning with its area ratio (sizeWarning).
 */
function checkMemory(pipeline: StableDiffusionPipeline, size: GenerationSize, device: string, maxMemoryGib: number | undefined): void {
  const limit = maxMemoryGib !== undefined ? maxMemoryGib * 2 ** 30 : device === "cpu" ? freemem() : undefined;
  if (limit === undefined) return;
  const estimate = pipeline.estimateMemory(size);
  if (estimate <= limit) return;
  const factor = pipeline.vaeScaleFactor;
  const [h, w] = (pipeline.unet.sampleSize ?? [64, 64]).map((n) => n * factor);
  const asked = `${size.width ?? w}×${size.height ?? h} px × ${size.images ?? 1} image${size.images === 1 ? "" : "s"}`;
  const against = maxMemoryGib !== undefined ? `--max-memory ${maxMemoryGib} GiB` : `the ${gib(limit)} GiB free now`;
  throw new Error(`${asked} needs about ${gib(estimate)} GiB for generation (an estimate), more than ${against}: ` +
    "lower --width/--height/--batch, or raise --max-memory (GiB) to try anyway");
}

/**
 * A size far beyond the model's (one side of 100,000 px) fits in memory, since attention runs in tiles, but each
 * step costs at least its area ratio more: said before the first step (which the bar's ETA waits for), with the
 * ratio, so a hostile or mistyped size is not a silent hang.
 */
export function sizeWarning(pipeline: StableDiffusionPipeline, width: number | undefined, height: number | undefined): string | null {
  const factor = pipeline.vaeScaleFactor;
  const [h, w] = (pipeline.unet.sampleSize ?? [64, 64]).map((n) => n * factor) as [number, number];
  const ratio = ((width ?? w) * (height ?? h)) / (w * h);
  if (ratio <= 16) return null;
  return `${width ?? w}×${height ?? h} px is ${ratio.toFixed(0)}× the pixels of the model's ${w}×${h}: ` +
    `each denoising step takes at least ${ratio.toFixed(0)}× as long (attention grows faster); the bar gives the ETA after the first step (Ctrl-C stops it, nothing is written)`;
}

/** What most often makes latents non-finite, from what this run applied, most suspicious first. */
function likelyCauses(guidance: number, lidb: readonly WeightedFile[], lora: readonly WeightedFile[], model: string): string {
  const adapters = [...lidb.map((f) => ({ ...f, flag: "--lidb" })), ...lora.map((f) => ({ ...f, flag: "--lora" }))];
  const causes = [
    ...adapters.filter((f) => Math.abs(f.weight) > 2).map((f) => `the weight ${f.weight} of ${f.flag} ${f.path}`),
    ...(guidance > 20 ? [`the guidance scale ${guidance}`] : []),
    ...adapters.filter((f) => Math.abs(f.weight) <= 2).map((f) => `the values in ${f.flag} ${f.path} (hdb inspect shows its training)`),
    ...(guidance <= 20 ? [`the guidance scale ${guidance}`] : []),
    `the weights of ${model} (--dtype float16 overflows where float32 does not)`,
  ];
  return `likely causes: ${causes.join("; ")}`;
}
