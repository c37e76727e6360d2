/**
 * `hdb export <lidb>`: writes a LiDB file as a standard rank-r LoRA (src/adapters/export.ts): the exact products with
 * the aux bases, which are rebuilt from the file's seed and target list, so no model is needed. With --model,
 * the file is first checked against that model's UNet and text encoder (layer names and weight shapes, from
 * their configs; no weights are loaded) and any mismatch is an error. Flags: EXPORT_SPEC (`hdb export --help`).
 */
import { existsSync, statSync } from "node:fs";
import path from "node:path";
import { checkLidbCompatibility, exportLidbFile, LORA_FORMATS, readLidbFileInfo, type AdaptedModels, type LoraFormat } from "../adapters/index.js";
import { parseCLIPTextConfig } from "../models/clip/text-config.js";
import { CLIPTextModel } from "../models/clip/text-encoder.js";
import { readComponentConfig } from "../models/loading/config.js";
import { resolvePretrained } from "../models/loading/resolve.js";
import { UNet2DConditionModel } from "../models/unet/index.js";
import { defineCommand, parseFlags } from "../util/flags.js";

export const EXPORT_SPEC = defineCommand({
  name: "export",
  summary: "a LiDB file as a standard LoRA file (diffusers or kohya keys; exact, rank r)",
  usage: "<lidb.safetensors> --format diffusers|kohya --out <file.safetensors> [flags]",
  positionals: true,
  flags: {
    format: { type: "string", choices: LORA_FORMATS, description: "the LoRA layout: diffusers/peft or kohya (required)" },
    out: { type: "string", value: "<file.safetensors>", description: "the LoRA file to write (required)" },
    dtype: { type: "string", choices: ["float32", "float16"], default: "float32", description: "the LoRA's dtype" },
    model: { type: "string", value: "<folder|id>", description: "check the file against this model's UNet and text encoder first", defaultText: "no check" },
    "allow-download": { type: "boolean", description: "download --model from the Hugging Face Hub when it is not cached" },
    force: { type: "boolean", description: "replace --out when it exists (never the input file itself)" },
  },
  examples: [
    "hdb export out/0.lidb.safetensors --format kohya --out face.safetensors",
    "hdb export out/0.lidb.safetensors --format diffusers --dtype float16 --model models/miniworld/base --out face.safetensors --force",
  ],
});

export async function runExport(argv: string[]): Promise<void> {
  const { values, positionals } = parseFlags(EXPORT_SPEC, argv);
  if (positionals.length !== 1) throw new Error("usage: hdb export <lidb.safetensors> --format diffusers|kohya --out <file.safetensors>");
  const format = values.format as LoraFormat | undefined;
  if (format === undefined) throw new Error(`--format must be one of ${LORA_FORMATS.join(", ")}, got '${values.format ?? ""}'`);
  if (!values.out) throw new Error("--out is required (the LoRA file to write)");
  const dtype = values.dtype as "float32" | "float16";
  const lidb = positionals[0]!;
  checkOutput(lidb, values.out, values.force ?? false);
  const info = readLidbFileInfo(lidb);
  if (values.model) {
    const models = await modelStructure(values.model, values["allow-download"] ?? false);
    try {
      const { errors } = checkLidbCompatibility(info, models);
      if (errors.length > 0) throw new Error(`${lidb} does not fit ${values.model}: ${errors.join("; ")}`);
    } finally {
      models.unet?.dispose();
      models.textEncoder?.dispose();
    }
  }
  const count = exportLidbFile(lidb, values.out, { format, dtype });
  console.log(`wrote ${path.resolve(values.out)}: a ${format} LoRA of rank ${info.dims.rank} on ${info.targets.length} layers (${count} tensors, ${dtype})`);
}

/**
 * Refuses an output that would lose something: the input itself (by path, or by inode through a link), a folder,
 * or an existing file without --force. Checked before anything is read, so a refusal costs nothing.
 */
function checkOutput(input: string, out: string, force: boolean): void {
  const existing = existsSync(out) ? statSync(out) : null;
  const inputStat = existsSync(input) ? statSync(input) : null;
  const sameFile = path.resolve(input) === path.resolve(out) ||
    (existing !== null && inputStat !== null && existing.dev === inputStat.dev && existing.ino === inputStat.ino);
  if (sameFile) throw new Error(`--out ${out} is the input file ${input}: the LoRA would replace the LiDB it is made from; choose another --out`);
  if (existing?.isDirectory()) throw new Error(`--out ${out} is a folder; give the LoRA file's path (e.g. ${path.join(out, "lora.safetensors")})`);
  if (existing !== null && !force) throw new Error(`--out ${out} exists: pass --force to replace it, or choose another path`);
}

/** A pipeline's UNet and text encoder built from their configs on the meta device: names and shapes only. */
async function modelStructure(model: string, allowDownload: boolean): Promise<AdaptedModels> {
  const resolved = await resolvePretrained(model, { allowDownload });
  const dir = (name: string): string => path.join(resolved.path, name);
  const unet = new UNet2DConditionModel(readComponentConfig(dir("unet")), { device: "meta" });
  const textEncoder = new CLIPTextModel(parseCLIPTextConfig(readComponentConfig(dir("text_encoder")), dir("text_encoder/config.json")), { device: "meta" });
  return { unet, textEncoder };
}
