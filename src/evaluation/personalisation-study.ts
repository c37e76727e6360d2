/**
 * The measurement every personalisation study in the mini-world shares (the roles of the paper's Table 1 and
 * §5's ablations): for held-out identities, prompts and seeds, the images of each METHOD are compared with the
 * identity's reference photo by the world's metric networks:
 *
 *   identity similarity  cosine of identity embeddings, generated vs reference (the paper's Face Rec role)
 *   style accuracy       whether the prompt-fidelity network names the prompted style (the CLIP-T role)
 *
 * A method is an adapter file per identity (a LiDB file, DreamBooth-trained or predicted by the HyperNetwork, with
 * or without its rank-relaxed part; or a LoRA file: personalisation without the HyperNetwork) or the base model
 * itself (no file: the identifier means nothing to it). "world" is the world's own render of the identity in
 * that style, the ceiling a perfect model would reach. Means over identities × seeds with Student-t 95 %
 * confidence intervals, per prompt and overall, and a contact sheet (the reference, then the first method
 * with a file, one image per prompt, one row per identity).
 */
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { cat, noGrad, readSafetensorsHeader, tidy, type Tensor } from "../engine/index.js";
import { applyAdapterFiles } from "../adapters/apply.js";
import { LIDB_FORMAT } from "../adapters/lidb/file.js";
import { identifierPrompt } from "../miniworld/captions.js";
import { renderFace } from "../miniworld/render.js";
import type { StyleName } from "../miniworld/styles.js";
import { imageGrid, imagesToTensor, savePng, type RgbImage } from "../pipeline/images.js";
import { StableDiffusionPipeline } from "../pipeline/stable-diffusion.js";
import { PHOTO_LABEL, styleFollowsPrompt, type PromptFidelityNetwork } from "./fidelity-network.js";
import type { IdentityNetwork } from "./identity-network.js";
import { meanConfidenceInterval, type ConfidenceInterval } from "./metrics.js";
import type { Provenance } from "../util/provenance.js";
import type { ProgressReporter } from "../util/progress.js";

export interface StudyMethod {
  /** The method's key in the report ("base", "lidb", "hyper"). */
  name: string;
  /** The LiDB or LoRA file of each identity (by id), or null for the base model. */
  files: ReadonlyMap<number, string> | null;
}

/** What every study of held-out identities in the mini-world is given (the DreamBooth and HyperNetwork studies). */
export interface WorldStudySettings {
  /** The base model (diffusers folder). */
  modelDir: string;
  identityNetwork: IdentityNetwork;
  fidelityNetwork: PromptFidelityNetwork;
  outDir: string;
  /** Held-out identity ids. */
  identities: readonly number[];
  /** One style list per prompt ([] = "a sks face"). */
  prompts: readonly (readonly StyleName[])[];
  seeds: readonly number[];
  generation: { steps: number; guidance: number };
  /** Nuisance seed of each identity's reference photo. */
  referenceNuisanceSeed: number;
  /** Told the training's steps (the CLI draws a bar from it); when set, each evaluated identity is logged. */
  progress?: ProgressReporter;
  log?: (line: string) => void;
  /** Where the report came from (src/util/provenance.ts), recorded in report.json. */
  provenance?: Provenance;
}

export interface StudyOptions {
  /** The base model (diffusers folder). */
  modelDir: string;
  identityNetwork: IdentityNetwork;
  fidelityNetwork: PromptFidelityNetwork;
  /** Held-out identity ids, and each one's reference photo (what every method personalised from). */
  identities: readonly number[];
  references: readonly RgbImage[];
  /** One style list per prompt ([] = "a sks face"). */
  prompts: readonly (readonly StyleName[])[];
  seeds: readonly number[];
  generation: { steps: number; guidance: number };
  methods: readonly StudyMethod[];
  /** Where the contact sheet goes, if anywhere. */
  contactSheet?: string;
  log?: (line: string) => void;
}

export interface StudyRow {
  prompt: string;
  expectedStyle: string;
  /** By method name, and "world". */
  identity: Record<string, ConfidenceInterval>;
  /** By method name. */
  styleAccuracy: Record<string, ConfidenceInterval>;
}

export interface StudyResult {
  rows: StudyRow[];
  overall: Omit<StudyRow, "prompt" | "expectedStyle">;
  seconds: number;
}

/**
 * Each identity's reference photo (the one photo every method personalises from), rendered with
 * `nuisanceSeed` into `dir/<id>.png` (kept when already there): the images and their files.
 */
export async function renderReferences(identities: readonly number[], dir: string, nuisanceSeed: number): Promise<{ images: RgbImage[]; files: string[] }> {
  mkdirSync(dir, { recursive: true });
  const images: RgbImage[] = [];
  const files: string[] = [];
  for (const id of identities) {
    const image = await renderFace(id, { nuisanceSeed });
    const file = path.join(dir, `${id}.png`);
    if (!existsSync(file)) await savePng(file, image);
    images.push(image);
    files.push(file);
  }
  return { images, files };
}

/** Cosine similarity of each row of `a` with the matching row of `b` (both unit-length embeddings). */
function rowCosines(a: Tensor, b: Tensor): number[] {
  return noGrad(() => tidy(() => Array.from(a.mul(b).sum(1).data() as Float32Array)));
}

export async function runPersonalisationStudy(options: StudyOptions): Promise<StudyResult> {
  const started = performance.now();
  const { identities, prompts, seeds, methods } = options;
  if (options.references.length !== identities.length) throw new Error(`the study has ${identities.length} identities but ${options.references.length} reference photos`);
  for (const method of methods) {
    const missing = method.files === null ? [] : identities.filter((id) => !method.files!.has(id));
    if (missing.length > 0) throw new Error(`method '${method.name}' has no LiDB file for identities ${missing.slice(0, 5).join(", ")}${missing.length > 5 ? ", …" : ""}`);
  }
  const pipeline = await StableDiffusionPipeline.fromPretrained(options.modelDir);
  const models = { unet: pipeline.unet, textEncoder: pipeline.textEncoder };
  const texts = prompts.map((styles) => identifierPrompt("sks", styles));
  const expected = prompts.map((styles) => (styles.length === 0 ? PHOTO_LABEL : styles[0]!));
  const generate = (prompt: string): { images: Tensor; rgb: RgbImage[] } => {
    const batches = seeds.map((seed) => pipeline.generate({ prompt, seed, steps: options.generation.steps, guidanceScale: options.generation.guidance, scheduler: "dpm++2m" }));
    const images = tidy(() => cat(batches.map((b) => b.images), 0));
    for (const b of batches) {
      b.images.dispose();
      b.latents.dispose();
    }
    return { images, rgb: batches.map((b) => b.rgb[0]!) };
  };
  type Scores = { identity: number[]; style: number[] };
  const emptyScores = (): Scores => ({ identity: [], style: [] });
  const scores = prompts.map(() => new Map<string, Scores>([...methods.map((m): [string, Scores] => [m.name, emptyScores()]), ["world", emptyScores()]]));
  const sheetMethod = methods.find((m) => m.files !== null);
  const sheet: RgbImage[] = [];
  const referenceEmbeddings = noGrad(() => options.identityNetwork.embed(imagesToTensor([...options.references])));
  try {
    /** Scores one method's images (or the world's renders) of prompt p against identity k's reference. */
    const score = (p: number, name: string, images: Tensor, k: number, withStyle: boolean): void => {
      const embedding = noGrad(() => options.identityNetwork.embed(images));
      const reference = tidy(() => referenceEmbeddings.narrow(0, k, 1).expand(seeds.length, -1).contiguous());
      const entry = scores[p]!.get(name)!;
      entry.identity.push(...rowCosines(embedding, reference));
      if (withStyle) entry.style.push(...options.fidelityNetwork.classify(images).styles.map((s) => Number(styleFollowsPrompt(s, expected[p]!))));
      embedding.dispose();
      reference.dispose();
    };
    // The base model's images do not depend on the identity: generated once per prompt and seed.
    const base = methods.some((m) => m.files === null) ? texts.map((text) => generate(text)) : null;
    try {
      for (const [k, id] of identities.entries()) {
        sheet.push(options.references[k]!);
        for (const [p, styles] of prompts.entries()) {
          const renders = await Promise.all(seeds.map((seed) => renderFace(id, { nuisanceSeed: 1000 + seed, style: styles })));
          const world = tidy(() => imagesToTensor(renders));
          score(p, "world", world, k, false);
          world.dispose();
        }
        for (const method of methods) {
          if (method.files === null) {
            for (const p of prompts.keys()) score(p, method.name, base![p]!.images, k, true);
            continue;
          }
          const file = method.files.get(id)!;
          const lidb = readSafetensorsHeader(file).metadata["hdb.format"] === LIDB_FORMAT;
          const applied = applyAdapterFiles(models, { [lidb ? "lidb" : "lora"]: [{ path: file, weight: 1 }] });
          try {
            for (const p of prompts.keys()) {
              const generated = generate(texts[p]!);
              score(p, method.name, generated.images, k, true);
              if (method === sheetMethod) sheet.push(generated.rgb[0]!);
              generated.images.dispose();
            }
          } finally {
            applied.dispose();
          }
        }
        options.log?.(`evaluated identity ${id} (${k + 1}/${identities.length})`);
      }
    } finally {
      for (const b of base ?? []) b.images.dispose();
    }
  } finally {
    referenceEmbeddings.dispose();
    pipeline.dispose();
  }
  if (options.contactSheet && sheetMethod) await savePng(options.contactSheet, imageGrid(sheet, 1 + prompts.length));

  const intervals = (pick: (s: Scores) => number[], names: string[], perPrompt: Map<string, Scores>[]): Record<string, ConfidenceInterval> =>
    Object.fromEntries(names.map((name) => [name, meanConfidenceInterval(perPrompt.flatMap((m) => pick(m.get(name)!)))]));
  const methodNames = methods.map((m) => m.name);
  const rows: StudyRow[] = prompts.map((_, p) => ({
    prompt: texts[p]!, expectedStyle: expected[p]!,
    identity: intervals((s) => s.identity, [...methodNames, "world"], [scores[p]!]),
    styleAccuracy: intervals((s) => s.style, methodNames, [scores[p]!]),
  }));
  return {
    rows,
    overall: { identity: intervals((s) => s.identity, [...methodNames, "world"], scores), styleAccuracy: intervals((s) => s.style, methodNames, scores) },
    seconds: (performance.now() - started) / 1000,
  };
}
