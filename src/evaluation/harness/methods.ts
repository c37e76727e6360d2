/**
 * The evaluation's methods (HyperDreamBooth §5, Table 1 and the ablations of Tables 2–4), by name: how each one makes a
 * person's adapter file from their one reference photo. The ablations are not other code but settings of the one
 * Personalizer (src/personalize/config.ts), so a method here is a name, a line for the report and a recipe:
 *
 *   ours            the HyperNetwork's prediction + the rank-relaxed fast fine-tuning (§4.3)
 *   only-hyper      the prediction alone (0 fine-tuning steps)
 *   no-hyper        the same fine-tuning from zero (no prediction)
 *   k1              ours with the HyperNetwork read at 1 refinement round (k = 1 instead of its s)
 *   dreambooth      per-person LiDB DreamBooth (§4.1) for many steps (the paper's 1,000)
 *   dreambooth-agg-400, dreambooth-agg-40
 *                   Table 2's "aggressive" DreamBooth: the same LiDB DreamBooth for 400 or 40 steps at a higher
 *                   learning rate (can DreamBooth simply be run faster?)
 *   lora            DreamBooth-LoRA: No Hyper at many more steps (the paper's LoRA baseline)
 *   base            the base model itself (the identifier means nothing to it): the floor
 *   world           the world's own render of the person in the prompted style: the ceiling
 *
 * A method's key is its name and a hash of everything its files depend on (its recipe, the base model's and the
 * HyperNetwork's bytes): the evaluation's cache (cache.ts) files results under it, so changing a setting makes new
 * entries and never mixes them with old ones, and adding a method leaves every other key, and its entries, as it was.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { personalizeSettings, type PersonalizeSettingsInput } from "../../personalize/index.js";
import { readJsonObject } from "../../util/json.js";
import { sha256File } from "../../util/provenance.js";

export const METHOD_NAMES = ["ours", "only-hyper", "no-hyper", "k1", "dreambooth", "dreambooth-agg-400", "dreambooth-agg-40", "lora", "base", "world"] as const;
export type MethodName = (typeof METHOD_NAMES)[number];

/** The LiDB DreamBooth of the `dreambooth` method (per person, one photo; the weight set's settings by default). */
export interface DreamBoothRecipe {
  steps: number;
  learningRate: number;
  lidbA: number;
  lidbB: number;
  rank: number;
  seed: number;
}

/** What the registry's methods are made from; `methodRegistry` turns it into one recipe per method. */
export interface MethodSettings {
  /** Ours' fine-tuning (steps, rank, learning rate, seed); No Hyper and k = 1 share it. Paper: 40 steps. */
  personalize: { steps: number; rank: number; learningRate: number; seed: number };
  /** dreambooth-agg-400 and -40: `dreambooth` at this (higher) learning rate for 400 and 40 steps. */
  aggressiveLearningRate: number;
  /** lora: No Hyper at this many steps (the paper's LoRA DreamBooth baseline: hundreds of steps). */
  loraSteps: number;
  dreambooth: DreamBoothRecipe;
}

export type MethodRecipe =
  | { kind: "personalize"; settings: PersonalizeSettingsInput }
  | { kind: "dreambooth"; training: DreamBoothRecipe }
  | { kind: "base" }
  | { kind: "world"; nuisanceSeedOffset: number };

export interface MethodSpec {
  name: MethodName;
  /** One line: what the method is, with its numbers (the report's legend). */
  description: string;
  recipe: MethodRecipe;
}

/** The nuisance seed of the world's render for generation seed s (the personalisation study's: 1000 + s). */
export const WORLD_NUISANCE_OFFSET = 1000;

/** Every method's recipe from the settings, by name. */
export function methodRegistry(settings: MethodSettings): Map<MethodName, MethodSpec> {
  const p = settings.personalize;
  const fineTune = { steps: p.steps, rank: p.rank, learningRate: p.learningRate, seed: p.seed };
  const d = settings.dreambooth;
  const specs: MethodSpec[] = [
    { name: "ours", description: `HyperNetwork prediction + rank-${p.rank} fast fine-tuning, ${p.steps} steps at lr ${p.learningRate}`, recipe: { kind: "personalize", settings: { ...fineTune, hyper: true } } },
    { name: "only-hyper", description: "the HyperNetwork's prediction alone (no fine-tuning)", recipe: { kind: "personalize", settings: { ...fineTune, steps: 0, hyper: true } } },
    { name: "no-hyper", description: `rank-${p.rank} fine-tuning from zero, ${p.steps} steps at lr ${p.learningRate} (no prediction)`, recipe: { kind: "personalize", settings: { ...fineTune, hyper: false } } },
    { name: "k1", description: `ours with 1 refinement round of the HyperNetwork (k = 1)`, recipe: { kind: "personalize", settings: { ...fineTune, hyper: true, rounds: 1 } } },
    {
      name: "dreambooth", description: `LiDB DreamBooth per person, ${d.steps} steps at lr ${d.learningRate} (a = ${d.lidbA}, b = ${d.lidbB}, rank ${d.rank})`,
      recipe: { kind: "dreambooth", training: { ...d } },
    },
    ...([400, 40] as const).map((steps): MethodSpec => ({
      name: `dreambooth-agg-${steps}`,
      description: `aggressive LiDB DreamBooth (Table 2): ${steps} steps at lr ${settings.aggressiveLearningRate} (a = ${d.lidbA}, b = ${d.lidbB}, rank ${d.rank})`,
      recipe: { kind: "dreambooth", training: { ...d, steps, learningRate: settings.aggressiveLearningRate } },
    })),
    {
      name: "lora", description: `DreamBooth-LoRA: rank-${p.rank} LoRA from zero, ${settings.loraSteps} steps at lr ${p.learningRate}`,
      recipe: { kind: "personalize", settings: { ...fineTune, steps: settings.loraSteps, hyper: false } },
    },
    { name: "base", description: "the base model (no personalisation): the floor", recipe: { kind: "base" } },
    { name: "world", description: "the world's own render of the person in the prompted style: the ceiling", recipe: { kind: "world", nuisanceSeedOffset: WORLD_NUISANCE_OFFSET } },
  ];
  return new Map(specs.map((s) => [s.name, s]));
}

/** "ours,dreambooth" → the names, checked: an unknown name is refused with the valid ones; duplicates too. */
export function parseMethodList(text: string): MethodName[] {
  const names = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (names.length === 0) throw new Error(`--methods lists no method; valid: ${METHOD_NAMES.join(", ")}`);
  for (const name of names) {
    if (!(METHOD_NAMES as readonly string[]).includes(name)) throw new Error(`--methods: unknown method '${name}'; valid: ${METHOD_NAMES.join(", ")}`);
  }
  const repeated = names.find((name, i) => names.indexOf(name) !== i);
  if (repeated !== undefined) throw new Error(`--methods lists '${repeated}' twice`);
  return names as MethodName[];
}

/** Whether the method's files come from the HyperNetwork (its bytes are then part of the method's key). */
export function usesHyperNetwork(spec: MethodSpec): boolean {
  return spec.recipe.kind === "personalize" && spec.recipe.settings.hyper !== false;
}

/** JSON with object keys sorted at every level: the same value always hashes the same. */
export function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    return `{${Object.keys(value).sort().filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${stableJson((value as Record<string, unknown>)[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/** The first `length` hex digits of sha256(text). */
export function shortHash(text: string, length = 10): string {
  return createHash("sha256").update(text).digest("hex").slice(0, length);
}

/**
 * sha256 of a file or folder's content: every file's bytes with its path relative to the folder (so the same model
 * copied elsewhere has the same digest, and any changed byte another one).
 */
export function contentDigest(target: string): string {
  const hash = createHash("sha256");
  const files = statSync(target).isDirectory()
    ? readdirSync(target, { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && !e.name.startsWith("."))
      .map((e) => path.join(e.parentPath, e.name)).sort()
    : [target];
  for (const file of files) hash.update(`${path.relative(target, file)}\0${sha256File(file)}\n`);
  return hash.digest("hex");
}

/**
 * The HyperNetwork folder's digest, with that of the image encoder its config.json references (a local folder is
 * resolved against the HyperNetwork's; a hub id is taken as its name).
 */
export function hyperNetworkDigest(dir: string): string {
  const config = readJsonObject(path.join(dir, "config.json"), "HyperNetwork config");
  const encoder = typeof config["encoder"] === "string" ? config["encoder"] : "";
  const local = encoder === "" ? null : path.resolve(dir, encoder);
  const encoderDigest = local !== null && existsSync(local) ? contentDigest(local) : encoder;
  return shortHash(`${contentDigest(dir)}\n${encoderDigest}`, 64);
}

/**
 * The method's cache key, "<name>-<10 hex digits>", from its recipe (a Personalizer's settings with every default
 * filled in, so that a changed default changes the key) and the digests of what it reads (the base model, the
 * HyperNetwork, and the reference photos: `photos` names how they were made).
 */
export function methodKey(spec: MethodSpec, digests: { model: string; hypernetwork: string | null; photos: string }): string {
  const personalises = spec.recipe.kind === "personalize" || spec.recipe.kind === "dreambooth";
  const reads = spec.recipe.kind === "world" ? {} : {
    model: digests.model, ...(usesHyperNetwork(spec) ? { hypernetwork: digests.hypernetwork } : {}), ...(personalises ? { photos: digests.photos } : {}),
  };
  const recipe = spec.recipe.kind === "personalize" ? { kind: "personalize", settings: personalizeSettings(spec.recipe.settings, `method ${spec.name}`) } : spec.recipe;
  return `${spec.name}-${shortHash(stableJson({ name: spec.name, recipe, reads }))}`;
}
