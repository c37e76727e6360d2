/**
 * The evaluation harness (HyperDreamBooth §5, Table 1 and its ablations, in the mini-world): methods × held-out
 * identities × prompts × seeds → images and scores, resumable and extendable, into one output folder:
 *
 *   references/nuisance-<n>/<id>.png   each person's one reference photo (what every method personalises from)
 *   cache/                every person's method file and every image with its scores (cache.ts)
 *   results.json          means and 95 % CIs per method and per prompt, seconds per person, every entry (summary.ts)
 *   report.html           plot, tables, image grids, provenance (report-html.ts)
 *   blind.html            the blind side-by-side page (blind-page.ts)
 *   tables.md, tables.json  the paper's Tables 1–3 with paired CIs and each ordering's verdict (paper-tables.ts)
 *
 * For each method in turn: its files for every person (production.ts), then its images, one entry per (identity,
 * prompt, seed), each made only when the cache has none. A killed run rerun with the same settings makes only what is
 * missing; a run with one more method makes only that method's entries; a changed setting makes a new key and new
 * entries beside the old ones. Images are scored by the world's metric networks (scoring.ts).
 */
import path from "node:path";
import sharp from "sharp";
import { noGrad } from "../../engine/index.js";
import { applyAdapterFiles, type AppliedAdapters } from "../../adapters/apply.js";
import { readLidbFileInfo } from "../../adapters/lidb/file.js";
import { renderFace } from "../../miniworld/render.js";
import { StableDiffusionPipeline } from "../../pipeline/stable-diffusion.js";
import type { RgbImage } from "../../pipeline/images.js";
import { loadImage } from "../../pipeline/images.js";
import { writeFileAtomic, writeJsonAtomic } from "../../util/atomic.js";
import type { ProgressReporter } from "../../util/progress.js";
import type { Provenance } from "../../util/provenance.js";
import { PromptFidelityNetwork } from "../fidelity-network.js";
import { IdentityNetwork } from "../identity-network.js";
import { renderReferences } from "../personalisation-study.js";
import { blindPageHtml } from "./blind-page.js";
import { EvalCache, type CacheEntry, type EntryKey } from "./cache.js";
import { contentDigest, hyperNetworkDigest, methodKey, shortHash, stableJson, usesHyperNetwork, type MethodSpec } from "./methods.js";
import { paperTables, paperTablesMarkdown } from "./paper-tables.js";
import { produceMethodFiles, type MethodFile } from "./production.js";
import { withIdentifier, type EvalPrompt } from "./prompts.js";
import { reportHtml } from "./report-html.js";
import { Scorer } from "./scoring.js";
import { summariseResults, type EvalResults, type MethodInfo, type ResultEntry, type RunCounts } from "./summary.js";

export interface EvaluationOptions {
  /** The base model (diffusers folder). */
  modelDir: string;
  /** The HyperNetwork folder (needed by ours, only-hyper and k1). */
  hypernetwork: string | null;
  /** The metric networks' folder: identity/ and fidelity/. */
  metricsDir: string;
  outDir: string;
  methods: readonly MethodSpec[];
  identities: readonly number[];
  prompts: readonly EvalPrompt[];
  seeds: readonly number[];
  /** DPM-Solver++ 2M steps and guidance of every generated image. */
  generation: { steps: number; guidance: number };
  /** Nuisance seed of each identity's reference photo (default 1, the studies'). */
  referenceNuisanceSeed?: number;
  /** The word in "[V]"'s place (default "sks", the HyperNetwork's and DreamBooth's). */
  identifier?: string;
  /** The blind page's shuffle (default 0). */
  shuffleSeed?: number;
  provenance?: Provenance;
  progress?: ProgressReporter;
  log?: (line: string) => void;
  /** Stop after making this many images, leaving the output folder as a kill at that point would (tests). */
  stopAfterImages?: number;
}

export interface EvaluationRun {
  /** False when `stopAfterImages` ended the run early (then no results or pages are written). */
  completed: boolean;
  counts: RunCounts;
  results: EvalResults | null;
  files: { results: string; report: string; blind: string; tables: string };
}

/** tables.md's opening: what was measured, and the command, commit and threads that measured it. */
function tablesHeader(results: EvalResults): string {
  const p = results.provenance;
  return [
    "# HyperDreamBooth's Tables 1–3 in the mini-world",
    "",
    `${results.identities.length} held-out identities × ${results.prompts.length} prompts × ${results.seeds.length} seeds (${results.seeds.join(", ")}), one reference photo per identity; ` +
      `DPM-Solver++ 2M, ${String(results.generation["steps"])} steps, guidance ${String(results.generation["guidance"])}.`,
    ...(p === null ? [] : ["", `Made by \`${p.command}\` at commit ${p.commit ?? "unknown"}${p.dirty ? " (with uncommitted changes)" : ""}, ${p.threads} threads; model hashes in tables.json and results.json.`]),
  ].join("\n");
}

/** Stops the run where `stopAfterImages` says. */
class Stop extends Error {}

/** PNG bytes of an 8-bit RGB image (sharp's encoder, as savePng; written by the cache atomically). */
async function pngBytes(image: RgbImage): Promise<Uint8Array> {
  return new Uint8Array(await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } }).png().toBuffer());
}

export async function runEvaluation(options: EvaluationOptions): Promise<EvaluationRun> {
  const log = options.log ?? (() => {});
  const { identities, prompts, seeds, outDir } = options;
  if (identities.length === 0 || prompts.length === 0 || seeds.length === 0 || options.methods.length === 0) {
    throw new Error("evaluation: give at least one method, identity, prompt and seed");
  }
  const identifier = options.identifier ?? "sks";
  const referenceNuisanceSeed = options.referenceNuisanceSeed ?? 1;
  const files = { results: path.join(outDir, "results.json"), report: path.join(outDir, "report.html"), blind: path.join(outDir, "blind.html"), tables: path.join(outDir, "tables.md") };
  const cache = new EvalCache(path.join(outDir, "cache"));
  const needsHyper = options.methods.some(usesHyperNetwork);
  if (needsHyper && options.hypernetwork === null) throw new Error(`methods ${options.methods.filter(usesHyperNetwork).map((m) => m.name).join(", ")} need a HyperNetwork`);
  // The photo every method personalises from is part of what its files depend on: the world's render with this nuisance.
  const digests = { model: contentDigest(options.modelDir), hypernetwork: needsHyper ? hyperNetworkDigest(options.hypernetwork!) : null, photos: `render-nuisance-${referenceNuisanceSeed}` };
  // How images are made; what they are scored with (a change of networks rescores the cached images, keeps them).
  const imagesKey = shortHash(stableJson({ sampler: "dpm++2m", steps: options.generation.steps, guidance: options.generation.guidance, identifier }));
  const scoring = shortHash(stableJson({ metrics: contentDigest(options.metricsDir), referenceNuisanceSeed }));
  const counts: RunCounts = { filesMade: 0, filesReused: 0, imagesMade: 0, imagesReused: 0, rescored: 0 };

  // One folder per nuisance seed: renderReferences keeps a file already there, which must then be the same photo.
  const refs = await renderReferences(identities, path.join(outDir, "references", `nuisance-${referenceNuisanceSeed}`), referenceNuisanceSeed);
  const identityNetwork = IdentityNetwork.load(path.join(options.metricsDir, "identity"));
  const fidelityNetwork = PromptFidelityNetwork.load(path.join(options.metricsDir, "fidelity"));
  const scorer = new Scorer(identityNetwork, fidelityNetwork, scoring);
  let pipeline: StableDiffusionPipeline | null = null;
  const entries: ResultEntry[] = [];
  const methodInfo: MethodInfo[] = [];
  // Every method's entries and which the cache holds, known before any work: the bar's total and ETA count only
  // the images still to make.
  const plan = options.methods.map((spec) => {
    const key = methodKey(spec, digests);
    const keys = identities.flatMap((identity) => prompts.flatMap((prompt) => seeds.map((seed): EntryKey => ({ method: spec.name, methodKey: key, imagesKey, identity, prompt: prompt.text, seed }))));
    return { spec, key, keys, cached: keys.map((k) => cache.readEntry(k)) };
  });
  const total = plan.reduce((n, p) => n + p.keys.length, 0);
  const cachedAtStart = plan.reduce((n, p) => n + p.cached.filter((c) => c !== null).length, 0);
  log(`${total} images (${options.methods.length} methods × ${identities.length} identities × ${prompts.length} prompts × ${seeds.length} seeds): ` +
    `${cachedAtStart} cached, ${total - cachedAtStart} to make`);
  let done = cachedAtStart;
  try {
    identities.forEach((id, k) => scorer.addReference(id, refs.images[k]!));
    for (const { spec, key, keys, cached } of plan) {
      // Every person's file: made where the cache has no record of it, else read (its time is part of the results
      // even when every image is cached).
      let methodFiles = new Map<number, MethodFile>();
      if (spec.recipe.kind === "personalize" || spec.recipe.kind === "dreambooth") {
        const produced = await produceMethodFiles(spec, key, identities, refs.files, {
          cache, modelDir: options.modelDir, hypernetwork: options.hypernetwork, log, ...(options.progress ? { progress: options.progress } : {}),
        });
        methodFiles = produced.files;
        counts.filesMade += produced.made;
        counts.filesReused += identities.length - produced.made;
      }
      if (cached.includes(null)) {
        log(`${spec.name}: ${cached.filter((c) => c === null).length} of ${keys.length} images to make (${key})`);
        // The bar's rate starts again here: the time spent making this method's files is not image time.
        options.progress?.({ label: "images", done, total, start: done });
      }
      let index = 0;
      for (const [k, identity] of identities.entries()) {
        let applied: AppliedAdapters | null = null;
        try {
          for (const prompt of prompts) {
            for (const seed of seeds) {
              // keys (and so cached) run in this loop's order: identity, prompt, seed.
              const entryKey = keys[index]!;
              let entry: CacheEntry | null = cached[index++]!;
              if (entry !== null && entry.scoring !== scoring) {
                const image = await loadImage(cache.entryPaths(entryKey).png);
                entry = cache.writeEntry(entryKey, null, { scoring, scores: scorer.score(identity, image, prompt.expectedStyle), seconds: entry.seconds });
                counts.rescored++;
              }
              if (entry === null) {
                if (options.stopAfterImages !== undefined && counts.imagesMade >= options.stopAfterImages) throw new Stop();
                const started = performance.now();
                let image: RgbImage;
                if (spec.recipe.kind === "world") {
                  image = await renderFace(identity, { nuisanceSeed: spec.recipe.nuisanceSeedOffset + seed, style: prompt.styles });
                } else {
                  pipeline ??= await StableDiffusionPipeline.fromPretrained(options.modelDir);
                  const file = methodFiles.get(identity);
                  if (applied === null && file !== undefined) {
                    // The prompts' identifier must be the one the file was trained on, or every image misses the person.
                    const trained = file.kind === "lidb" ? readLidbFileInfo(file.path).identifier : null;
                    if (trained !== null && trained !== identifier) {
                      throw new Error(`${file.path} was trained for the identifier '${trained}', but the prompts use '${identifier}'`);
                    }
                    applied = applyAdapterFiles({ unet: pipeline.unet, textEncoder: pipeline.textEncoder }, { [file.kind]: [{ path: file.path, weight: 1 }] });
                  }
                  const result = noGrad(() => pipeline!.generate({
                    prompt: withIdentifier(prompt, identifier), seed, steps: options.generation.steps, guidanceScale: options.generation.guidance, scheduler: "dpm++2m",
                  }));
                  image = result.rgb[0]!;
                  result.images.dispose();
                  result.latents.dispose();
                }
                const seconds = (performance.now() - started) / 1000;
                entry = cache.writeEntry(entryKey, await pngBytes(image), { scoring, scores: scorer.score(identity, image, prompt.expectedStyle), seconds });
                counts.imagesMade++;
                options.progress?.({ label: "images", done: ++done, total, start: cachedAtStart, note: `${spec.name} ${k + 1}/${identities.length}` });
              } else {
                counts.imagesReused++;
              }
              entries.push({
                method: spec.name, identity, prompt: prompt.text, seed, scores: entry.scores,
                image: path.relative(outDir, cache.entryPaths(entryKey).png),
              });
            }
          }
        } finally {
          applied?.dispose();
        }
      }
      methodInfo.push({
        name: spec.name, description: spec.description, key, recipe: spec.recipe,
        timings: identities.flatMap((id) => (methodFiles.has(id) ? [{ seconds: methodFiles.get(id)!.seconds, phases: methodFiles.get(id)!.phases }] : [])),
      });
    }
  } catch (error) {
    if (error instanceof Stop) {
      log(`stopped after ${counts.imagesMade} images, as asked`);
      return { completed: false, counts, results: null, files };
    }
    throw error;
  } finally {
    pipeline?.dispose();
    scorer.dispose();
    identityNetwork.dispose();
    fidelityNetwork.dispose();
  }

  const results = summariseResults({
    identities: [...identities], prompts: [...prompts], seeds: [...seeds], generation: { sampler: "dpm++2m", ...options.generation, identifier },
    references: Object.fromEntries(identities.map((id, k) => [String(id), path.relative(outDir, refs.files[k]!)])),
    entries, counts, provenance: options.provenance ?? null, methodInfo,
  });
  writeJsonAtomic(files.results, results);
  writeFileAtomic(files.report, reportHtml(results, { blindPage: path.basename(files.blind) }));
  writeFileAtomic(files.blind, blindPageHtml(results, outDir, { seed: options.shuffleSeed ?? 0, exclude: ["world"] }));
  const tables = paperTables(results);
  writeJsonAtomic(files.tables.replace(/\.md$/, ".json"), { ...tables, provenance: results.provenance });
  writeFileAtomic(files.tables, paperTablesMarkdown(tables, tablesHeader(results)));
  log(`${counts.imagesMade} images made, ${counts.imagesReused} reused; ${counts.filesMade} person files made, ${counts.filesReused} reused → ${files.report}`);
  return { completed: true, counts, results, files };
}
