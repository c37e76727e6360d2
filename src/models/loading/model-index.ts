/**
 * A diffusers pipeline folder's `model_index.json`: which components the pipeline has, and which library
 * class each is. Example (runwayml/stable-diffusion-v1-5):
 *
 *     { "_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.6.0",
 *       "unet": ["diffusers", "UNet2DConditionModel"], "text_encoder": ["transformers", "CLIPTextModel"],
 *       "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"], "requires_safety_checker": true, ... }
 *
 * Keys starting with "_" are metadata, `[library, class]` pairs are components (`[null, null]`: left out when
 * saved), anything else is a pipeline option (`requires_safety_checker`). Components this port does not run
 * are errors naming them, except the safety checker, its feature extractor and an image encoder, which
 * Stable Diffusion does not need to make images: they are skipped with a note.
 */
import { join } from "node:path";
import { SCHEDULER_CLASS_NAMES, type SchedulerClassName } from "../schedulers/config.js";
import { readJsonObject, type JsonRecord } from "./config.js";
import { ModelLoadingError } from "./errors.js";

/** What a component's folder holds, which decides the files it needs. */
export type ComponentKind = "model" | "tokenizer" | "scheduler";

/** The classes this port can load, by library, with the kind of folder each has. */
export const SUPPORTED_COMPONENT_CLASSES: Readonly<Record<string, Readonly<Record<string, ComponentKind>>>> = {
  diffusers: {
    UNet2DConditionModel: "model",
    AutoencoderKL: "model",
    ...Object.fromEntries(SCHEDULER_CLASS_NAMES.map((name: SchedulerClassName) => [name, "scheduler" as const])),
  },
  transformers: {
    CLIPTextModel: "model",
    CLIPTokenizer: "tokenizer",
    // transformers 5 makes CLIPTokenizerFast the same class, reading the same files.
    CLIPTokenizerFast: "tokenizer",
  },
};

/** Components that Stable Diffusion does not need to generate images; skipped with a note when present. */
export const IGNORED_COMPONENTS: Readonly<Record<string, string>> = {
  safety_checker: "the NSFW safety checker is not run",
  feature_extractor: "it only prepares images for the safety checker",
  image_encoder: "txt2img does not use it (CLIPVisionModelWithProjection.fromPretrained(path, { subfolder: \"image_encoder\" }) loads it)",
};

export interface PipelineComponent {
  /** The component's name, which is also its folder ("unet", "text_encoder", ...). */
  name: string;
  library: string;
  className: string;
  kind: ComponentKind;
}

export interface ModelIndex {
  /** The folder model_index.json was read from. */
  root: string;
  /** The pipeline class ("StableDiffusionPipeline"). */
  className: string | undefined;
  diffusersVersion: string | undefined;
  /** The components to load, in the file's order. */
  components: PipelineComponent[];
  /** Components in the file that are skipped (null entries and IGNORED_COMPONENTS), with why. */
  skipped: { name: string; reason: string }[];
  /** Non-component entries such as `requires_safety_checker`. */
  options: JsonRecord;
}

/** Reads and checks `<root>/model_index.json`. */
export function readModelIndex(root: string): ModelIndex {
  return parseModelIndex(readJsonObject(join(root, "model_index.json"), "pipeline index"), root);
}

/** Checks a parsed model_index.json; `root` names it in errors. Unsupported classes are one error naming them all. */
export function parseModelIndex(json: JsonRecord, root: string): ModelIndex {
  const source = join(root, "model_index.json");
  const components: PipelineComponent[] = [];
  const skipped: { name: string; reason: string }[] = [];
  const options: JsonRecord = {};
  const unsupported: string[] = [];
  for (const [name, value] of Object.entries(json)) {
    if (name.startsWith("_")) continue;
    if (!Array.isArray(value)) {
      options[name] = value;
      continue;
    }
    if (value.length !== 2 || !value.every((part) => part === null || typeof part === "string")) {
      throw new ModelLoadingError(`${source}: component "${name}" must be [library, class], found ${JSON.stringify(value)}`);
    }
    const [library, className] = value as [string | null, string | null];
    if (library === null || className === null) {
      skipped.push({ name, reason: "null in model_index.json (not saved with the pipeline)" });
      continue;
    }
    const ignoredBecause = IGNORED_COMPONENTS[name];
    if (ignoredBecause !== undefined) {
      skipped.push({ name, reason: `${library}.${className} is skipped: ${ignoredBecause}` });
      continue;
    }
    const kind = SUPPORTED_COMPONENT_CLASSES[library]?.[className];
    if (kind === undefined) {
      unsupported.push(`"${name}": ${library}.${className}`);
      continue;
    }
    components.push({ name, library, className, kind });
  }
  if (unsupported.length > 0) {
    const supported = Object.entries(SUPPORTED_COMPONENT_CLASSES)
      .map(([library, classes]) => `${library}: ${Object.keys(classes).join(", ")}`).join("; ");
    throw new ModelLoadingError(`${source}: unsupported component class${unsupported.length > 1 ? "es" : ""} ${unsupported.join(", ")} (supported: ${supported})`);
  }
  const text = (key: string): string | undefined => (typeof json[key] === "string" ? (json[key] as string) : undefined);
  return { root, className: text("_class_name"), diffusersVersion: text("_diffusers_version"), components, skipped, options };
}

/** The component called `name`, or an error listing the pipeline's components. */
export function pipelineComponent(index: ModelIndex, name: string): PipelineComponent {
  const found = index.components.find((component) => component.name === name);
  if (!found) {
    throw new ModelLoadingError(`${join(index.root, "model_index.json")} has no component "${name}" (it has: ${index.components.map((c) => c.name).join(", ") || "none"})`);
  }
  return found;
}
