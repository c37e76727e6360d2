/**
 * The run manifest: `<outputDir>/manifest.json`, the record of a training run and of every identity it has
 * finished (its photos, adapter file, final loss, steps, seed). It is rewritten atomically (src/util/atomic.ts:
 * temporary file, fsync, rename) after each identity, so a crash or kill leaves either the old or the new list, never a torn
 * file: a resumed run skips the finished identities and loses at most the ones in flight (which restart from
 * their last checkpoint, or from scratch when they had none).
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { writeFileAtomic } from "../util/atomic.js";

/**
 * Version 2: identities in flight checkpoint in the training loop's layout and draw from per-step seeds. A
 * version-1 manifest is read (its finished identities are kept); what it had in flight is refused by name.
 */
export const MANIFEST_FORMAT = "hdb-dreambooth-run/2";
const EARLIER_FORMATS = new Set(["hdb-dreambooth-run/1"]);
export const MANIFEST_FILE = "manifest.json";

export interface ManifestEntry {
  id: string;
  /** The identity's photos. */
  images: string[];
  /** The adapter file, relative to the output folder. */
  file: string;
  /** Mean training loss over the identity's last steps (up to 10). */
  finalLoss: number;
  steps: number;
  seed: number;
  /** Seconds of the training steps the identity took part in, over every run (resumes included). */
  seconds: number;
}

export interface RunManifest {
  format: string;
  /** The settings that must match for a resume (see config.runFingerprint). */
  settings: Record<string, unknown>;
  identities: ManifestEntry[];
}

/** Reads the manifest in `dir`, or null when there is none. */
export function readManifest(dir: string): RunManifest | null {
  const file = path.join(dir, MANIFEST_FILE);
  if (!existsSync(file)) return null;
  const parsed = JSON.parse(readFileSync(file, "utf8")) as RunManifest;
  if (EARLIER_FORMATS.has(parsed.format)) parsed.format = MANIFEST_FORMAT;
  if (parsed.format !== MANIFEST_FORMAT) throw new Error(`${file} is not a training manifest (format ${String(parsed.format)})`);
  return parsed;
}

/**
 * Whether a run in `dir` has begun: a manifest (identities finished) or checkpoints (identities in flight). A run
 * that has not begun is timed whole by whoever starts it; one that has would be timed only for what is left.
 */
export function runHasBegun(dir: string): boolean {
  return existsSync(path.join(dir, MANIFEST_FILE)) || existsSync(path.join(dir, "checkpoints"));
}

/** Writes the manifest atomically. */
export function writeManifest(dir: string, manifest: RunManifest): void {
  mkdirSync(dir, { recursive: true });
  writeFileAtomic(path.join(dir, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + "\n");
}
