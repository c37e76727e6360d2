/**
 * Downloading the files a pipeline needs from the Hugging Face hub into the hub cache, so that later runs find
 * them offline (the layout of hub-cache.ts, the same that huggingface_hub and diffusers use).
 *
 * `downloadPipeline` decides what to fetch (files.ts's selection over the repository's file list, for the
 * chosen variant) and where it goes; `huggingFaceHubClient` is the thin wrapper over @huggingface/hub that
 * does the network calls, pinned to one commit so that every file lands in the same snapshot folder (the
 * library's per-file download alone would file each under that file's own last commit).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { readJsonObject } from "./config.js";
import { ModelLoadingError } from "./errors.js";
import { selectPipelineFiles, shardsOfIndex } from "./files.js";
import { isCommitHash, repoFolderName } from "./hub-cache.js";
import { parseModelIndex } from "./model-index.js";

/** The three hub operations a download needs. */
export interface HubClient {
  /** The commit hash a revision (branch, tag or hash) points to. */
  resolveCommit(repoId: string, revision: string): Promise<string>;
  /** Every file path of the repository at `commit` ("unet/config.json", ...). */
  listFiles(repoId: string, commit: string): Promise<string[]>;
  /** Puts `path` at `commit` into `<cacheDir>/models--org--name/snapshots/<commit>/<path>`; returns that path. */
  downloadFile(repoId: string, path: string, commit: string, cacheDir: string): Promise<string>;
}

export interface HubClientOptions {
  /** A token for gated or private repositories ($HF_TOKEN by default). */
  accessToken?: string;
  /** The hub's address ($HF_ENDPOINT, else https://huggingface.co). */
  hubUrl?: string;
}

/** The HubClient over @huggingface/hub (loaded only when a download happens). */
export function huggingFaceHubClient(options: HubClientOptions = {}): HubClient {
  const accessToken = options.accessToken ?? (process.env.HF_TOKEN || undefined);
  const hubUrl = options.hubUrl ?? (process.env.HF_ENDPOINT || undefined);
  const common = { ...(accessToken === undefined ? {} : { accessToken }), ...(hubUrl === undefined ? {} : { hubUrl }) };
  const hub = (): Promise<typeof import("@huggingface/hub")> => import("@huggingface/hub");
  return {
    async resolveCommit(repoId, revision) {
      const info = await (await hub()).modelInfo({ ...common, name: repoId, revision, additionalFields: ["sha"] });
      return info.sha;
    },
    async listFiles(repoId, commit) {
      const paths: string[] = [];
      for await (const entry of (await hub()).listFiles({ ...common, repo: { type: "model", name: repoId }, recursive: true, revision: commit })) {
        if (entry.type === "file") paths.push(entry.path);
      }
      return paths;
    },
    async downloadFile(repoId, path, commit, cacheDir) {
      return (await hub()).downloadFileToCacheDir({ ...common, repo: { type: "model", name: repoId }, path, revision: commit, cacheDir });
    },
  };
}

export interface DownloadOptions {
  /** Branch, tag or commit ("main" by default). */
  revision?: string;
  /** Weights variant ("fp16"); components without it get their plain weights. */
  variant?: string;
  /** The hub cache to write into (hubCacheDir() by default, chosen by the caller). */
  cacheDir: string;
  /** Fetch only the component in this folder of the repository ("image_encoder"), as resolve.ts's subfolder. */
  subfolder?: string;
  client?: HubClient;
}

export interface DownloadResult {
  /** The snapshot folder holding the pipeline (or the component). */
  path: string;
  commit: string;
  /** The repository paths fetched (or already cached). */
  files: string[];
}

/**
 * Fetches what a pipeline repository (or a single-component one, without model_index.json) needs for loading
 * into the hub cache, and records `refs/<revision>` so that later runs resolve it offline.
 */
export async function downloadPipeline(repoId: string, options: DownloadOptions): Promise<DownloadResult> {
  const client = options.client ?? huggingFaceHubClient();
  const revision = options.revision ?? "main";
  const commit = await client.resolveCommit(repoId, revision);
  if (!isCommitHash(commit)) throw new ModelLoadingError(`the hub answered ${JSON.stringify(commit)} for the commit of ${repoId}@${revision}`);
  const available = await client.listFiles(repoId, commit);
  const fetch = (path: string): Promise<string> => client.downloadFile(repoId, path, commit, options.cacheDir);
  let modelIndex;
  if (options.subfolder !== undefined) {
    // One component: model_index.json (if any) does not decide what it needs.
  } else if (available.includes("model_index.json")) {
    const local = await fetch("model_index.json");
    modelIndex = parseModelIndex(readJsonObject(local, "pipeline index"), `${repoId}@${commit}`);
  } else if (!available.includes("config.json")) {
    throw new ModelLoadingError(`${repoId}@${revision} is neither a diffusers pipeline (no model_index.json) nor a model (no config.json); it has ${available.length} files`);
  }
  const selection = selectPipelineFiles(available, modelIndex, {
    ...(options.variant === undefined ? {} : { variant: options.variant }), ...(options.subfolder === undefined ? {} : { subfolder: options.subfolder }),
  });
  if (selection.missing.length > 0) {
    throw new ModelLoadingError(`${repoId}@${revision} (commit ${commit}) lacks files needed for loading: ${selection.missing.join("; ")}`);
  }
  const fetched = new Set<string>();
  const fetchAll = async (paths: string[]): Promise<void> => {
    const todo = paths.filter((path) => !fetched.has(path));
    for (const path of todo) fetched.add(path);
    await inBatches(todo, 4, fetch);
  };
  await fetchAll(selection.files);
  // Shards named by an index that the file-name pattern did not catch.
  const snapshot = join(options.cacheDir, repoFolderName(repoId), "snapshots", commit);
  const shards = selection.files
    .filter((path) => path.includes(".safetensors.index.") && path.endsWith(".json"))
    .flatMap((index) => shardsOfIndex(join(snapshot, index)).map((shard) => join(dirname(index), shard).replace(/^\.\//, "")));
  const unknown = shards.filter((shard) => !available.includes(shard));
  if (unknown.length > 0) throw new ModelLoadingError(`${repoId}@${commit}: a shard index names files the repository lacks: ${unknown.join(", ")}`);
  await fetchAll(shards);
  if (revision !== commit) {
    const ref = join(options.cacheDir, repoFolderName(repoId), "refs", ...revision.split("/"));
    mkdirSync(dirname(ref), { recursive: true });
    writeFileSync(ref, commit);
  }
  return { path: snapshot, commit, files: [...fetched] };
}

async function inBatches<T>(items: T[], size: number, run: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(run));
}
