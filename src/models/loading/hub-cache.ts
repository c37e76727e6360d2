/**
 * The Hugging Face hub cache, as huggingface_hub lays it out (and diffusers/transformers read it):
 *
 *     <cache>/models--<org>--<name>/
 *         refs/main                    the commit hash the branch "main" pointed to when downloaded
 *         snapshots/<commit>/unet/...  the repository's files at that commit (symlinks into blobs/)
 *         blobs/<hash>                 file contents
 *
 * The cache folder is, as in huggingface_hub: $HF_HUB_CACHE, else $HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub,
 * else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub.
 */
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { isDirectory } from "./config.js";

/** Environment variables as huggingface_hub reads them (tests pass their own). */
export type Environment = Readonly<Record<string, string | undefined>>;

/** The hub cache folder that huggingface_hub would use under `env`. */
export function hubCacheDir(env: Environment = process.env): string {
  const set = (name: string): string | undefined => (env[name] ? env[name] : undefined);
  const hfHome = set("HF_HOME") ?? join(set("XDG_CACHE_HOME") ?? join(homedir(), ".cache"), "huggingface");
  return set("HF_HUB_CACHE") ?? set("HUGGINGFACE_HUB_CACHE") ?? join(hfHome, "hub");
}

/** Whether downloads are forbidden: HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is 1/on/yes/true. */
export function hubOffline(env: Environment = process.env): boolean {
  return ["HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"].some((name) => ["1", "ON", "YES", "TRUE"].includes((env[name] ?? "").toUpperCase()));
}

/** A repository id as the hub allows them: "name" or "org/name" of letters, digits, "-", "_", "." (no "--" or "..", not starting or ending with "-" or "."). */
export function isRepoId(text: string): boolean {
  return /^(?:[\w.-]+\/)?[\w.-]+$/.test(text) && !text.includes("--") && !text.includes("..") && !/(^|\/)[.-]|[.-](\/|$)/.test(text);
}

/** "org/name" → "models--org--name". */
export function repoFolderName(repoId: string): string {
  return `models--${repoId.split("/").join("--")}`;
}

/** A git commit hash (what snapshot folders are named by). */
export function isCommitHash(revision: string): boolean {
  return /^[0-9a-f]{40}$/.test(revision);
}

export interface CachedSnapshot {
  /** The snapshot folder, when the revision resolved to one that exists. */
  path?: string;
  commit?: string;
  /** Each place looked, with what was found there (for error messages). */
  looked: string[];
}

/**
 * The snapshot folder of `revision` (a branch or tag through refs/<revision>, or a commit hash) in a cached
 * repository folder (`<cache>/models--org--name`).
 */
export function findSnapshot(repoFolder: string, revision: string): CachedSnapshot {
  const looked: string[] = [];
  if (!isDirectory(repoFolder)) {
    looked.push(`${repoFolder} (no such folder)`);
    return { looked };
  }
  let commit: string | undefined;
  if (isCommitHash(revision)) {
    commit = revision;
  } else {
    const ref = join(repoFolder, "refs", ...revision.split("/"));
    try {
      commit = readFileSync(ref, "utf8").trim();
    } catch {
      looked.push(`${ref} (no such ref: revision "${revision}" was never downloaded)`);
      return { looked };
    }
    if (!isCommitHash(commit)) {
      looked.push(`${ref} (holds ${JSON.stringify(commit.slice(0, 60))}, not a commit hash)`);
      return { looked };
    }
  }
  const snapshot = join(repoFolder, "snapshots", commit);
  if (!isDirectory(snapshot)) {
    looked.push(`${snapshot} (no such snapshot)`);
    return { commit, looked };
  }
  return { path: snapshot, commit, looked };
}

/**
 * If `path` is inside a cached repository folder (`.../models--org--name[/...]`), that folder and the repo
 * id; otherwise undefined.
 */
export function cachedRepoOf(path: string): { repoFolder: string; repoId: string } | undefined {
  const parts = path.split(/[\\/]/);
  const at = parts.findIndex((part) => /^models--.+/.test(part));
  if (at < 0) return undefined;
  return { repoFolder: parts.slice(0, at + 1).join("/") || "/", repoId: parts[at]!.slice("models--".length).split("--").join("/") };
}
