/**
 * `hdb generate`: txt2img from a Stable Diffusion folder, Hugging Face cache snapshot or model id.
 *
 *   hdb generate --model <folder|id> --prompt "..." [--negative-prompt "..."] [--steps 30] [--guidance 7.5]
 *     [--scheduler euler_a] [--karras] [--seed 42] [--width 512 --height 512] [--batch 1] [--clip-skip N]
 *     [--device cpu|cuda:0] [--dtype float32|float16|bfloat16] [--variant fp16] [--allow-download]
 *     [--lidb <file>[:weight]]... [--lora <file>[:weight]]... --out <file.png | folder>
 *
 * --lidb / --lora (repeatable) apply LiDB files and LoRA files (diffusers or kohya layout) to the UNet and text
 * encoder, each scaled by its weight (default 1), before generating (src/lidb/apply.ts).
 *
 * One image and a .png path: that file. Otherwise the folder gets 0.png, 1.png, ... and generation.json
 * (the parameters and seed, to reproduce the images). Every write is atomic.
 */
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import type { DType } from "../engine/index.js";
import { applyAdapterFiles, parseWeightedFile } from "../lidb/apply.js";
import { savePng } from "../pipeline/images.js";
import { StableDiffusionPipeline } from "../pipeline/stable-diffusion.js";
import { Progress } from "./progress.js";

const DTYPES: readonly DType[] = ["float32", "float16", "bfloat16"];

function integer(name: string, value: string | undefined, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min}, got '${value}'`);
  return n;
}

function number(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new Error(`--${name} must be a number, got '${value}'`);
  return n;
}

export async function runGenerate(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: "string" }, prompt: { type: "string" }, "negative-prompt": { type: "string" },
      steps: { type: "string" }, guidance: { type: "string" }, scheduler: { type: "string" }, karras: { type: "boolean" },
      seed: { type: "string" }, width: { type: "string" }, height: { type: "string" }, batch: { type: "string" },
      "clip-skip": { type: "string" }, device: { type: "string" }, dtype: { type: "string" }, variant: { type: "string" },
      "allow-download": { type: "boolean" }, out: { type: "string" },
      lidb: { type: "string", multiple: true }, lora: { type: "string", multiple: true },
    },
  });
  if (!values.model) throw new Error("--model is required (a diffusers folder, a Hugging Face cache path or a model id)");
  if (values.prompt === undefined) throw new Error("--prompt is required");
  if (!values.out) throw new Error("--out is required (a .png file or a folder)");
  const dtype = (values.dtype ?? "float32") as DType;
  if (!DTYPES.includes(dtype)) throw new Error(`--dtype must be one of ${DTYPES.join(", ")}, got '${values.dtype}'`);
  const seedText = values.seed;
  if (seedText !== undefined && !/^\d+$/.test(seedText)) throw new Error(`--seed must be a non-negative integer, got '${seedText}'`);
  const seed = seedText === undefined ? undefined : BigInt(seedText);
  const steps = integer("steps", values.steps, 1) ?? 30;
  const batch = integer("batch", values.batch, 1) ?? 1;
  const lidbFiles = (values.lidb ?? []).map((text) => parseWeightedFile(text, "lidb"));
  const loraFiles = (values.lora ?? []).map((text) => parseWeightedFile(text, "lora"));

  const pipeline = await StableDiffusionPipeline.fromPretrained(values.model, {
    dtype, device: values.device ?? "cpu", variant: values.variant, allowDownload: values["allow-download"] ?? false,
  });
  const adapters = applyAdapterFiles({ unet: pipeline.unet, textEncoder: pipeline.textEncoder }, { lidb: lidbFiles, lora: loraFiles });
  for (const warning of adapters.warnings) process.stderr.write(`warning: ${warning}\n`);
  // PNDM runs one step more than asked (its warm-up), so the bar takes its total from the first report.
  let progress: Progress | undefined;
  const result = pipeline.generate({
    prompt: values.prompt, negativePrompt: values["negative-prompt"], steps, guidanceScale: number("guidance", values.guidance),
    scheduler: values.scheduler, karrasSigmas: values.karras ?? false, seed, width: integer("width", values.width, 8),
    height: integer("height", values.height, 8), imagesPerPrompt: batch, clipSkip: integer("clip-skip", values["clip-skip"], 0),
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
      guidance: number("guidance", values.guidance) ?? 7.5, scheduler: values.scheduler ?? "(folder's)", karras: values.karras ?? false,
      seed: result.seed.toString(), width: result.rgb[0]!.width, height: result.rgb[0]!.height, batch, dtype,
      device: values.device ?? "cpu", lidb: lidbFiles, lora: loraFiles, files: files.map((f) => path.basename(f)),
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
