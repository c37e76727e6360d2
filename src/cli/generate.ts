/**
 * `hdb generate`: txt2img from a Stable Diffusion folder, Hugging Face cache snapshot or model id, optionally
 * with LiDB and LoRA files applied (src/adapters/apply.ts). Flags: GENERATE_SPEC below (`hdb generate --help`).
 * Every write is atomic.
 */
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { setNumThreads, type DType } from "../engine/index.js";
import { applyAdapterFiles, parseWeightedFile } from "../adapters/apply.js";
import { savePng } from "../pipeline/images.js";
import { StableDiffusionPipeline } from "../pipeline/stable-diffusion.js";
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
    guidance: { type: "number", value: "<scale>", description: "classifier-free guidance scale", defaultText: "7.5" },
    scheduler: { type: "string", value: "<name>", description: "ddim, pndm, euler, euler_a, dpm++2m, …", defaultText: "the model folder's" },
    karras: { type: "boolean", description: "Karras sigmas for the Euler/DPM schedulers" },
    seed: { type: "string", value: "<n>", description: "seed of the initial noise, a non-negative integer", defaultText: "random, printed and recorded" },
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
  const seedText = values.seed;
  if (seedText !== undefined && !/^\d+$/.test(seedText)) throw new Error(`--seed must be a non-negative integer, got '${seedText}'`);
  const seed = seedText === undefined ? undefined : BigInt(seedText);
  const { steps, batch } = values;
  const lidbFiles = values.lidb.map((text) => parseWeightedFile(text, "lidb"));
  const loraFiles = values.lora.map((text) => parseWeightedFile(text, "lora"));

  const pipeline = await StableDiffusionPipeline.fromPretrained(values.model, {
    dtype, device: values.device, variant: values.variant, allowDownload: values["allow-download"] ?? false,
  });
  const adapters = applyAdapterFiles({ unet: pipeline.unet, textEncoder: pipeline.textEncoder }, { lidb: lidbFiles, lora: loraFiles });
  for (const warning of adapters.warnings) process.stderr.write(`warning: ${warning}\n`);
  // PNDM runs one step more than asked (its warm-up), so the bar takes its total from the first report.
  let progress: Progress | undefined;
  const result = pipeline.generate({
    prompt: values.prompt, negativePrompt: values["negative-prompt"], steps, guidanceScale: values.guidance,
    scheduler: values.scheduler, karrasSigmas: values.karras ?? false, seed, width: values.width,
    height: values.height, imagesPerPrompt: batch, clipSkip: values["clip-skip"],
    onStep: (_step, total, timestep) => {
      progress ??= new Progress({ label: "denoising", total });
      progress.tick(1, `t=${timestep}`);
    },
  });
  const out = values.out;
  const single = result.rgb.length === 1 && out.toLowerCase().endsWith(".png");
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
      guidance: values.guidance ?? 7.5, scheduler: values.scheduler ?? "(folder's)", karras: values.karras ?? false,
      seed: result.seed.toString(), width: result.rgb[0]!.width, height: result.rgb[0]!.height, batch, dtype,
      device: values.device, lidb: lidbFiles, lora: loraFiles, files: files.map((f) => path.basename(f)),
    };
    const json = path.join(out, "generation.json");
    writeFileSync(json + ".tmp", JSON.stringify(record, null, 2) + "\n");
    renameSync(json + ".tmp", json);
  }
  result.images.dispose();
  result.latents.dispose();
  adapters.dispose();
  pipeline.dispose();
  console.log(`seed ${result.seed}: wrote ${files.join(", ")}`);
}
