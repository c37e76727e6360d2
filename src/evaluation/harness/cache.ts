/**
 * The evaluation's cache (HyperDreamBooth §5's tables, made resumable): every person's method file and every
 * (method, identity, prompt, seed) image with its scores lives under `<out>/cache/`, keyed so that a killed run resumes
 * where it stopped and a run with one more method reuses every entry of the others:
 *
 *   methods/<method key>/<id>.{lidb,lora}.safetensors   a person's file (Personalizer or DreamBooth)
 *   methods/<method key>/<id>.json                      its record: the file, the seconds it took, the phases
 *   images/<method key>-<images key>/<id>/<prompt>-s<seed>.png    the generated (or rendered) image
 *   images/<method key>-<images key>/<id>/<prompt>-s<seed>.json   its entry: the key fields and the scores
 *
 * The method key (methods.ts) hashes the method's recipe and the models it reads; the images key hashes how images are
 * made (sampler, steps, guidance, identifier); `<prompt>` is a slug of the prompt and a hash of its text. Each record is
 * written atomically (src/util/atomic.ts) after what it describes, so a record present means its file or image is
 * whole: a kill leaves a finished entry or none. Records are read back with zod schemas; one that does not parse, or
 * whose key fields differ from the ones asked for, or whose file is gone, counts as absent and is made again. An entry
 * whose scores came from other metric networks keeps its image and is rescored (the `scoring` fingerprint).
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { z } from "zod";
import { removeStaleTemporaries, writeFileAtomic, writeJsonAtomic } from "../../util/atomic.js";
import { shortHash } from "./methods.js";

export const METHOD_FILE_FORMAT = "hdb-eval-method-file/1";
export const ENTRY_FORMAT = "hdb-eval-entry/1";

const methodFileSchema = z.object({
  format: z.literal(METHOD_FILE_FORMAT),
  method: z.string(),
  methodKey: z.string(),
  identity: z.number().int(),
  /** The adapter file, relative to the method's folder. */
  file: z.string(),
  kind: z.enum(["lidb", "lora"]),
  /** Seconds it took to make this person's file, the models already loaded (see production.ts). */
  seconds: z.number().nonnegative(),
  /** Seconds per phase, where the method has phases (encode, predict, merge, fineTune, save). */
  phases: z.record(z.string(), z.number()).default({}),
  threads: z.number().int().positive(),
  date: z.string(),
});
export type MethodFileRecord = z.output<typeof methodFileSchema>;

export const scoresSchema = z.object({
  /** Cosine of identity embeddings, image vs reference photo (the Face Rec role). */
  identity: z.number(),
  /** Cosine of the image–image encoder's features, image vs reference photo (the DINO / CLIP-I roles). */
  imageSimilarity: z.number(),
  /** 1 when the prompt-fidelity network names the prompted style (the CLIP-T role), else 0. */
  style: z.union([z.literal(0), z.literal(1)]),
  predictedStyle: z.string(),
});
export type EntryScores = z.output<typeof scoresSchema>;

const entrySchema = z.object({
  format: z.literal(ENTRY_FORMAT),
  method: z.string(),
  methodKey: z.string(),
  imagesKey: z.string(),
  identity: z.number().int(),
  prompt: z.string(),
  seed: z.number().int(),
  /** The PNG, relative to the entry's folder. */
  image: z.string(),
  /** The metric networks and reference photos the scores came from. */
  scoring: z.string(),
  scores: scoresSchema,
  /** Seconds to make the image (generation or rendering). */
  seconds: z.number().nonnegative(),
});
export type CacheEntry = z.output<typeof entrySchema>;

/** What one image is: the method (by key), how images are made, the person, the prompt and the seed. */
export interface EntryKey {
  method: string;
  methodKey: string;
  imagesKey: string;
  identity: number;
  prompt: string;
  seed: number;
}

/** The prompt as a file name: its words (up to 40 characters), then a hash of the whole text. */
export function promptSlug(prompt: string): string {
  const words = prompt.replaceAll("[V]", "V").toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(0, 40);
  return `${words}-${shortHash(prompt, 8)}`;
}

/** Parses a record with its schema, or null (missing, not JSON, not the shape): the caller makes it again. */
function readRecord<S extends z.ZodType>(file: string, schema: S): z.output<S> | null {
  if (!existsSync(file)) return null;
  try {
    const parsed = schema.safeParse(JSON.parse(readFileSync(file, "utf8")));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

export class EvalCache {
  /** Folders whose temporaries of killed writers were already cleared in this process. */
  readonly #swept = new Set<string>();

  /** `root` is `<out>/cache`. */
  constructor(readonly root: string) {}

  methodDir(methodKey: string): string {
    return path.join(this.root, "methods", methodKey);
  }

  /** Where a person's adapter file goes (the Personalizer's and DreamBooth's naming: `<id>.<kind>.safetensors`). */
  methodFile(methodKey: string, identity: number, kind: "lidb" | "lora"): string {
    return path.join(this.methodDir(methodKey), `${identity}.${kind}.safetensors`);
  }

  /** The record of a person's file, or null when it is absent, unreadable, for another key or its file is gone. */
  readMethodFile(methodKey: string, identity: number): (MethodFileRecord & { path: string }) | null {
    const record = readRecord(path.join(this.methodDir(methodKey), `${identity}.json`), methodFileSchema);
    if (record === null || record.methodKey !== methodKey || record.identity !== identity) return null;
    const file = path.resolve(this.methodDir(methodKey), record.file);
    return existsSync(file) ? { ...record, path: file } : null;
  }

  /** Records a person's file (written after the file itself, atomically). */
  writeMethodFile(record: Omit<MethodFileRecord, "format">): void {
    writeJsonAtomic(path.join(this.methodDir(record.methodKey), `${record.identity}.json`), { format: METHOD_FILE_FORMAT, ...record });
  }

  /** The folder of one person's images of a method, made how `imagesKey` says. */
  entryDir(key: Pick<EntryKey, "methodKey" | "imagesKey" | "identity">): string {
    return path.join(this.root, "images", `${key.methodKey}-${key.imagesKey}`, String(key.identity));
  }

  /** The entry's PNG and JSON paths. */
  entryPaths(key: EntryKey): { png: string; json: string } {
    const base = path.join(this.entryDir(key), `${promptSlug(key.prompt)}-s${key.seed}`);
    return { png: `${base}.png`, json: `${base}.json` };
  }

  /** The cached entry of `key`, or null; one whose PNG is gone or whose key fields differ counts as absent. */
  readEntry(key: EntryKey): CacheEntry | null {
    const { png, json } = this.entryPaths(key);
    const entry = readRecord(json, entrySchema);
    if (entry === null || !existsSync(png)) return null;
    const same = entry.methodKey === key.methodKey && entry.imagesKey === key.imagesKey && entry.identity === key.identity &&
      entry.prompt === key.prompt && entry.seed === key.seed;
    return same ? entry : null;
  }

  /** Writes an entry: the PNG's bytes first (when given: a rescore keeps the image), then the JSON, each atomically. */
  writeEntry(key: EntryKey, png: Uint8Array | null, fields: { scoring: string; scores: EntryScores; seconds: number }): CacheEntry {
    const paths = this.entryPaths(key);
    const dir = path.dirname(paths.png);
    if (!this.#swept.has(dir)) {
      mkdirSync(dir, { recursive: true });
      // A kill mid-write leaves a temporary file beside the entries: cleared once per folder and run.
      removeStaleTemporaries(dir);
      this.#swept.add(dir);
    }
    if (png !== null) writeFileAtomic(paths.png, png);
    const entry: CacheEntry = { format: ENTRY_FORMAT, ...key, image: path.basename(paths.png), ...fields };
    writeJsonAtomic(paths.json, entry);
    return entry;
  }
}
