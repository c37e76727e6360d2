/**
 * Making each person's adapter file for a method (HyperDreamBooth §5: every method personalises from the same one
 * photo), with the seconds it took per person, into the evaluation's cache (cache.ts). People whose file is already
 * recorded are skipped, so a killed run loses at most the person in flight.
 *
 * Seconds per person are wall seconds with the models already loaded (loading is paid once per run, not per person),
 * one person at a time, as a user personalising one person waits:
 *   - Personalizer methods (ours and its ablations): the Personalizer's own total (encode, predict, merge, fine-tune,
 *     save), with its phases;
 *   - DreamBooth: one identity per batch on the training loop, from the loop's start (or the previous person's end) to
 *     the person's file written; no checkpoints, so a person cut off by a kill starts again from step 0 and the time
 *     recorded is always that of one whole run. Batching many identities per forward pass (as the studies do) would
 *     flatter DreamBooth's time per person.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import { getNumThreads } from "../../engine/index.js";
import { readManifest } from "../../dreambooth/manifest.js";
import { trainDreamBooth } from "../../dreambooth/trainer.js";
import { Personalizer } from "../../personalize/index.js";
import type { ProgressReporter } from "../../util/progress.js";
import type { EvalCache, MethodFileRecord } from "./cache.js";
import type { MethodSpec } from "./methods.js";

export interface ProductionContext {
  cache: EvalCache;
  modelDir: string;
  /** The HyperNetwork folder (methods that use it). */
  hypernetwork: string | null;
  progress?: ProgressReporter;
  log: (line: string) => void;
}

/** A person's file as the generation uses it. */
export interface MethodFile {
  path: string;
  kind: "lidb" | "lora";
  seconds: number;
  phases: Record<string, number>;
}

/**
 * Every person's file of `spec` (by identity), made where the cache has none. `photos` are the reference photos'
 * files, in the order of `identities`. Returns the files and how many were made in this call.
 */
export async function produceMethodFiles(spec: MethodSpec, key: string, identities: readonly number[], photos: readonly string[], context: ProductionContext):
  Promise<{ files: Map<number, MethodFile>; made: number }> {
  const { cache, log } = context;
  const files = new Map<number, MethodFile>();
  const pending: number[] = [];
  for (const id of identities) {
    const record = cache.readMethodFile(key, id);
    if (record) files.set(id, { path: record.path, kind: record.kind, seconds: record.seconds, phases: record.phases });
    else pending.push(id);
  }
  const photoOf = (id: number): string => photos[identities.indexOf(id)]!;
  const label = `${spec.name} files`;
  const report = (done: number): void => context.progress?.({ label, done: identities.length - pending.length + done, total: identities.length, start: identities.length - pending.length });
  if (pending.length === 0) return { files, made: 0 };
  mkdirSync(cache.methodDir(key), { recursive: true });
  log(`${spec.name}: personalising ${pending.length} of ${identities.length} identities (${identities.length - pending.length} cached)`);
  report(0);
  const record = (id: number, file: string, kind: "lidb" | "lora", seconds: number, phases: Record<string, number>): void => {
    const entry: Omit<MethodFileRecord, "format"> = {
      method: spec.name, methodKey: key, identity: id, file: path.relative(cache.methodDir(key), file), kind, seconds, phases,
      threads: getNumThreads(), date: new Date().toISOString(),
    };
    cache.writeMethodFile(entry);
    files.set(id, { path: file, kind, seconds, phases });
  };

  const recipe = spec.recipe;
  if (recipe.kind === "personalize") {
    if (recipe.settings.hyper !== false && context.hypernetwork === null) throw new Error(`method ${spec.name} needs a HyperNetwork`);
    const personalizer = await Personalizer.open({
      model: context.modelDir, settings: recipe.settings, log,
      ...(recipe.settings.hyper !== false && context.hypernetwork !== null ? { hypernetwork: context.hypernetwork } : {}),
    });
    try {
      for (const [k, id] of pending.entries()) {
        const kind = personalizer.settings.hyper ? "lidb" : "lora";
        const result = await personalizer.personalize([photoOf(id)], cache.methodFile(key, id, kind));
        const { total, ...phases } = result.times;
        record(id, result.file, kind, total, phases);
        report(k + 1);
      }
    } finally {
      personalizer.dispose();
    }
  } else if (recipe.kind === "dreambooth") {
    const t = recipe.training;
    const runDir = path.join(cache.methodDir(key), "run");
    let mark = 0;
    let done = 0;
    await trainDreamBooth({
      adapter: "lidb", pretrainedModel: context.modelDir, outputDir: runDir,
      identities: pending.map((id) => ({ id: String(id), images: [photoOf(id)] })),
      maxTrainSteps: t.steps, learningRate: t.learningRate, lidbA: t.lidbA, lidbB: t.lidbB, rank: t.rank, seed: t.seed,
      identitiesPerBatch: 1, checkpointingSteps: 0, resumeFromCheckpoint: true, validationSteps: 0,
    }, {
      log,
      // The loop's first report comes once the models are loaded: the first person's clock starts there.
      progress: () => {
        if (mark === 0) mark = performance.now();
      },
      onIdentityDone: (entry) => {
        const now = performance.now();
        record(Number(entry.id), path.resolve(runDir, entry.file), "lidb", (now - mark) / 1000, { training: entry.seconds });
        mark = now;
        report(++done);
      },
    });
    // An identity an earlier run finished (in its manifest) but whose record a kill prevented, in the moment between
    // the two writes: the run's own training seconds are all there is of its time.
    const manifest = readManifest(runDir);
    for (const id of pending.filter((id) => !files.has(id))) {
      const entry = manifest?.identities.find((e) => e.id === String(id));
      if (entry === undefined) throw new Error(`${runDir}: DreamBooth did not finish identity ${id}; delete ${runDir} and run again`);
      record(id, path.resolve(runDir, entry.file), "lidb", entry.seconds, { training: entry.seconds });
    }
  } else {
    throw new Error(`method ${spec.name} makes no files`);
  }
  return { files, made: pending.length };
}
