/**
 * `hdb inspect <file>`: what a LiDB or LoRA file is, for which base model, its sizes, identifier and metadata.
 * Only the header is read (no tensor data), except for a LoRA file's ranks and alphas. Flags: INSPECT_SPEC.
 */
import { statSync } from "node:fs";
import { readSafetensorsHeader } from "../engine/index.js";
import { readLidbFileInfo, readLoraFile, type LidbFileInfo, type LoraFile } from "../adapters/index.js";
import { defineCommand, parseFlags } from "../util/flags.js";

export const INSPECT_SPEC = defineCommand({
  name: "inspect",
  summary: "what a LiDB or LoRA file is: base model, sizes, identifier, metadata",
  usage: "<file.safetensors> [--json]",
  positionals: true,
  flags: {
    json: { type: "boolean", description: "print the facts as JSON" },
  },
  examples: ["hdb inspect out/0.lidb.safetensors", "hdb inspect face.safetensors --json"],
});

export function runInspect(argv: string[]): void {
  const { values, positionals } = parseFlags(INSPECT_SPEC, argv);
  if (positionals.length !== 1) throw new Error("usage: hdb inspect <file.safetensors> [--json]");
  const file = positionals[0]!;
  const bytes = statSync(file).size;
  const header = readSafetensorsHeader(file);
  if (header.metadata["hdb.format"] === "lidb") {
    const info = readLidbFileInfo(file);
    if (values.json) console.log(JSON.stringify({ kind: "lidb", bytes, ...info }, null, 2));
    else printLidb(file, bytes, info);
    return;
  }
  const keys = [...header.entries.keys()];
  const looksLora = keys.some((k) => /\.lora_(A|B|down|up)\.weight$/.test(k));
  if (!looksLora) {
    throw new Error(`${file} is neither a LiDB file nor a LoRA file (${keys.length} tensors, e.g. ${keys.slice(0, 3).join(", ") || "none"})`);
  }
  const lora = readLoraFile(file);
  try {
    const summary = loraSummary(lora);
    if (values.json) console.log(JSON.stringify({ kind: "lora", bytes, ...summary, metadata: lora.metadata }, null, 2));
    else printLora(file, bytes, summary, lora.metadata);
  } finally {
    for (const w of lora.layers.values()) {
      w.down.dispose();
      w.up.dispose();
    }
  }
}

function printLidb(file: string, bytes: number, info: LidbFileInfo): void {
  const { a, b, rank } = info.dims;
  const perComponent = countBy(info.targets.map((t) => t.name.slice(0, t.name.indexOf("."))));
  const perProjection = countBy(info.targets.map((t) => projectionName(t.name)));
  const values = info.targets.length * rank * (a + b);
  const base = info.baseModel;
  const lines = [
    `${file}: a LiDB file (Lightweight DreamBooth weights, HyperDreamBooth §4.1), format version ${info.formatVersion}`,
    `size           ${bytes.toLocaleString("en-US")} bytes`,
    `base model     ${base.id} (${[base.architecture, base.predictionType, base.resolution ? `${base.resolution} px` : undefined].filter(Boolean).join(", ")})`,
    `identifier     ${info.identifier ?? "(none)"}`,
    `targets        ${info.targets.length} layers: ${Object.entries(perComponent).map(([k, n]) => `${k} ${n}`).join(", ")} (${Object.entries(perProjection).map(([k, n]) => `${k} ${n}`).join(", ")})`,
    `factorisation  ΔW = A_aux·A_train·B_train·B_aux with a=${a}, b=${b}, r=${rank}: ${values.toLocaleString("en-US")} trainable values (${info.dtype})`,
    `aux bases      seed ${info.seed}, ${info.basisVersion}, sha256 ${info.basisChecksum}`,
    `base hashes    targets ${base.targetsHash}`,
    `               weights ${base.weightsHash ?? "(not recorded)"}`,
    `training       ${info.training === null ? "(none)" : JSON.stringify(info.training)}`,
    `created        ${info.created ?? "?"} by ${info.software ?? "?"}`,
  ];
  console.log(lines.join("\n"));
}

interface LoraSummary {
  format: string;
  layers: number;
  components: Record<string, number>;
  ranks: number[];
  alphas: (number | null)[];
}

function loraSummary(lora: LoraFile): LoraSummary {
  const names = [...lora.layers.keys()];
  const component = (name: string): string => (name.startsWith("lora_unet_") || name.startsWith("unet.") ? "unet" : "text_encoder");
  return {
    format: lora.format,
    layers: names.length,
    components: countBy(names.map(component)),
    ranks: [...new Set([...lora.layers.values()].map((w) => w.down.size(0)))],
    alphas: [...new Set([...lora.layers.values()].map((w) => w.alpha ?? null))],
  };
}

function printLora(file: string, bytes: number, summary: LoraSummary, metadata: Record<string, string>): void {
  const lines = [
    `${file}: a LoRA file (${summary.format} layout)`,
    `size           ${bytes.toLocaleString("en-US")} bytes`,
    `layers         ${summary.layers}: ${Object.entries(summary.components).map(([k, n]) => `${k} ${n}`).join(", ")}`,
    `rank           ${summary.ranks.join(", ")}; alpha ${summary.alphas.map((a) => a ?? "= rank").join(", ")}`,
  ];
  for (const key of ["modelspec.architecture", "modelspec.title", "modelspec.trigger_phrase", "ss_base_model_version", "hdb.exported_from", "hdb.base_model"]) {
    if (metadata[key] !== undefined) lines.push(`${key.padEnd(14)} ${metadata[key]}`);
  }
  console.log(lines.join("\n"));
}

/** "….attn1.to_out.0" → "to_out.0", "….self_attn.q_proj" → "q_proj". */
function projectionName(layer: string): string {
  const parts = layer.split(".");
  return parts.at(-1) === "0" ? parts.slice(-2).join(".") : parts.at(-1)!;
}

function countBy(items: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[item] = (counts[item] ?? 0) + 1;
  return counts;
}
