/**
 * Finding a model on disk from what a user typed, as diffusers' `from_pretrained` does:
 *
 *  1. an existing folder: a diffusers pipeline (has model_index.json), a component folder (has config.json,
 *     scheduler_config.json or tokenizer files), or a cached repository folder (`.../models--org--name`,
 *     resolved through refs/<revision>);
 *  2. a repository id ("org/name"): its snapshot in the hub cache for the revision ("main" by default, or a
 *     branch, tag or commit hash), if that snapshot holds every file loading needs;
 *  3. otherwise, when `allowDownload` is set and HF_HUB_OFFLINE is not, the needed files are downloaded into
 *     the cache (download.ts); else one error listing the missing files and every place looked.
 *
 * With `subfolder` (transformers' `from_pretrained(..., subfolder=...)`), the folder or repository holds the
 * component one level down ("image_encoder" of a diffusers pipeline, "models/image_encoder" of h94/IP-Adapter):
 * that folder is inspected, and only its files are needed or downloaded.
 */
import { existsSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { describeFolder, isDirectory, isFile } from "./config.js";
import { downloadPipeline, type HubClient } from "./download.js";
import { ModelLoadingError } from "./errors.js";
import { missingLocalFiles, PREPROCESSOR_CONFIG, TOKENIZER_FILES } from "./files.js";
import { cachedRepoOf, findSnapshot, hubCacheDir, hubOffline, isRepoId, repoFolderName, type Environment } from "./hub-cache.js";
import { readModelIndex, type ModelIndex } from "./model-index.js";

export interface ResolveOptions {
  /** Branch, tag or commit hash ("main" by default) for repository ids and cached repository folders. */
  revision?: string;
  /** Weights variant ("fp16"): decides which weight files must be present (or are downloaded). */
  variant?: string;
  /** Download missing files from the hub (off by default); HF_HUB_OFFLINE=1 forbids it regardless. */
  allowDownload?: boolean;
  /** The hub cache folder (default: hubCacheDir(env)). */
  cacheDir?: string;
  /** Environment variables to read (process.env by default). */
  env?: Environment;
  /** The hub client for downloads (huggingFaceHubClient() by default). */
  client?: HubClient;
  /** The component's folder inside the folder or repository ("image_encoder"); see the file comment. */
  subfolder?: string;
}

export interface ResolvedModel {
  /** The folder to load from: a pipeline root or a component folder. */
  path: string;
  /** A pipeline (model_index.json, with its parsed index) or a single component. */
  kind: "pipeline" | "component";
  modelIndex?: ModelIndex;
  /** A local folder as given, a hub cache snapshot, or a snapshot just downloaded. */
  source: "local" | "cache" | "download";
  repoId?: string;
  commit?: string;
}

/** Resolves `idOrPath` to a local folder; see the file comment for the order. */
export async function resolvePretrained(idOrPath: string, options: ResolveOptions = {}): Promise<ResolvedModel> {
  checkSubfolder(options.subfolder);
  const local = resolveLocal(idOrPath, options);
  if (local.resolved) return local.resolved;
  const looked = local.looked;
  const env = options.env ?? process.env;
  const cacheDir = options.cacheDir ?? hubCacheDir(env);
  const revision = options.revision ?? "main";
  if (!isRepoId(idOrPath)) {
    throw new ModelLoadingError(`cannot find the model ${JSON.stringify(idOrPath)}: ${looked.join("; ")}; it is not a repository id ("org/name") either`);
  }
  const repoFolder = join(cacheDir, repoFolderName(idOrPath));
  const cached = fromSnapshot(repoFolder, idOrPath, revision, options);
  if (cached.resolved) return cached.resolved;
  looked.push(...cached.looked);
  const missing = cached.missing ?? ["model_index.json (or config.json for a single model)", "and the files it lists"];
  const offline = hubOffline(env);
  if (options.allowDownload && !offline) {
    let downloaded;
    try {
      downloaded = await downloadPipeline(idOrPath, {
        revision, cacheDir, ...(options.variant === undefined ? {} : { variant: options.variant }), ...(options.client ? { client: options.client } : {}),
        ...(options.subfolder === undefined ? {} : { subfolder: options.subfolder }),
      });
    } catch (error) {
      if (error instanceof ModelLoadingError) throw error;
      throw new ModelLoadingError(
        `downloading ${idOrPath}@${revision} into ${cacheDir} failed: ${(error as Error).message}\n${whereLooked(missing, looked)}`,
        { cause: error },
      );
    }
    const after = inspectFolder(withSubfolder(downloaded.path, options), options);
    if (after.missing.length > 0) {
      throw new ModelLoadingError(`downloaded ${idOrPath}@${revision} into ${downloaded.path}, but it still lacks: ${after.missing.join("; ")}`);
    }
    return { ...after.resolved, source: "download", repoId: idOrPath, commit: downloaded.commit };
  }
  const why = offline ? "HF_HUB_OFFLINE is set" : "downloading is off (pass allowDownload: true to fetch them into the cache)";
  throw new ModelLoadingError(
    `${idOrPath} (revision ${revision}${options.variant === undefined ? "" : `, variant ${options.variant}`}) is not available offline, and ${why}.\n${whereLooked(missing, looked)}`,
  );
}

function whereLooked(missing: string[], looked: string[]): string {
  return `  missing: ${missing.join("; ")}\n  looked in:\n${looked.map((place) => `    ${place}`).join("\n")}`;
}

interface Attempt {
  resolved?: ResolvedModel;
  looked: string[];
  missing?: string[];
}

/** Step 1: `path` as an existing folder. A folder that is there but incomplete is an error at once. */
function resolveLocal(path: string, options: ResolveOptions): Attempt {
  const absolute = resolve(path);
  if (!existsSync(absolute)) return { looked: [`${absolute} (no such folder)`] };
  if (!isDirectory(absolute)) throw new ModelLoadingError(`${absolute} is a file; pass the pipeline or component folder that holds it`);
  const cachedRepo = cachedRepoOf(absolute);
  if (cachedRepo && cachedRepo.repoFolder === absolute) {
    const attempt = fromSnapshot(absolute, cachedRepo.repoId, options.revision ?? "main", options);
    if (attempt.resolved) return attempt;
    throw new ModelLoadingError(`${absolute} is a hub cache folder without a complete snapshot for revision ${options.revision ?? "main"}: ${[...attempt.looked, ...(attempt.missing ?? []).map((m) => `missing ${m}`)].join("; ")}`);
  }
  if (options.subfolder !== undefined && !isDirectory(withSubfolder(absolute, options))) {
    throw new ModelLoadingError(`${absolute} has no subfolder "${options.subfolder}"; it holds: ${describeFolder(absolute)}`);
  }
  const inspected = inspectFolder(withSubfolder(absolute, options), options);
  if (inspected.missing.length > 0) {
    throw new ModelLoadingError(`${absolute} is incomplete: missing ${inspected.missing.join("; ")}`);
  }
  const snapshotOf = cachedRepo ? { repoId: cachedRepo.repoId } : {};
  return { resolved: { ...inspected.resolved, ...snapshotOf }, looked: [] };
}

/** Step 2: a cached repository's snapshot for `revision`, if complete. */
function fromSnapshot(repoFolder: string, repoId: string, revision: string, options: ResolveOptions): Attempt {
  const snapshot = findSnapshot(repoFolder, revision);
  if (snapshot.path === undefined) return { looked: snapshot.looked };
  const { resolved, missing } = inspectFolder(withSubfolder(snapshot.path, options), options, true);
  if (missing.length > 0) {
    return { looked: [...snapshot.looked, `${snapshot.path} (revision ${revision}: incomplete)`], missing };
  }
  return { resolved: { ...resolved, source: "cache", repoId, ...(snapshot.commit === undefined ? {} : { commit: snapshot.commit }) }, looked: snapshot.looked };
}

/** The folder a component lives in: `root`, or `root/<subfolder>`. */
function withSubfolder(root: string, options: ResolveOptions): string {
  return options.subfolder === undefined ? root : join(root, options.subfolder);
}

/** A subfolder must stay inside the folder or repository: relative, without "..". */
function checkSubfolder(subfolder: string | undefined): void {
  if (subfolder === undefined) return;
  if (subfolder === "" || isAbsolute(subfolder) || subfolder.split(/[\\/]/).some((part) => part === ".." || part === "")) {
    throw new ModelLoadingError(`subfolder must be a relative folder inside the model ("image_encoder"), got ${JSON.stringify(subfolder)}`);
  }
}

/** What kind of folder `dir` is and what it lacks; `lenient`: a folder with nothing recognisable just lacks model_index.json. */
function inspectFolder(dir: string, options: ResolveOptions, lenient = false): { resolved: ResolvedModel; missing: string[] } {
  const variant = options.variant === undefined ? {} : { variant: options.variant };
  if (isFile(join(dir, "model_index.json"))) {
    const modelIndex = readModelIndex(dir);
    return { resolved: { path: dir, kind: "pipeline", modelIndex, source: "local" }, missing: missingLocalFiles(dir, modelIndex, variant) };
  }
  const component: ResolvedModel = { path: dir, kind: "component", source: "local" };
  if (isFile(join(dir, "config.json"))) return { resolved: component, missing: missingLocalFiles(dir, undefined, variant) };
  const otherFiles = ["scheduler_config.json", PREPROCESSOR_CONFIG, ...TOKENIZER_FILES];
  if (otherFiles.some((name) => isFile(join(dir, name)))) {
    return { resolved: component, missing: [] };
  }
  if (lenient) {
    const where = options.subfolder === undefined ? "" : `${options.subfolder}/`;
    return { resolved: component, missing: [where === "" ? "model_index.json (or config.json for a single model)" : `${where}config.json (or ${where}${PREPROCESSOR_CONFIG})`] };
  }
  throw new ModelLoadingError(
    `${dir} is neither a diffusers pipeline (no model_index.json) nor a component folder (no config.json, scheduler_config.json, ${PREPROCESSOR_CONFIG} or tokenizer files); it holds: ${describeFolder(dir)}`,
  );
}

/**
 * The folder of one model component named by a folder path or a repository id (with `subfolder` for one inside a
 * pipeline or a repository), resolved as `resolvePretrained` resolves it: what transformers' model and image
 * processor `from_pretrained(id_or_path, subfolder=...)` take. A diffusers pipeline root is refused with the
 * subfolders it has; `what` names the component in that message ("CLIPVisionModel").
 */
export async function resolveComponentFolder(idOrPath: string, what: string, options: ResolveOptions = {}): Promise<string> {
  const resolved = await resolvePretrained(idOrPath, options);
  if (resolved.kind === "pipeline") {
    const names = [...(resolved.modelIndex?.components ?? []).map((c) => c.name), ...(resolved.modelIndex?.skipped ?? []).map((s) => s.name)];
    throw new ModelLoadingError(
      `${resolved.path} is a diffusers pipeline, not a ${what} folder: pass the subfolder that holds it (subfolder: "image_encoder"); the pipeline has ${names.join(", ") || "no components"}`,
    );
  }
  return resolved.path;
}
