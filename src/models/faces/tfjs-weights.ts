/**
 * TF.js layers-format weights (`<name>-weights_manifest.json` + its `.bin` shards), as the npm package
 * @vladmandic/face-api ships them, read into engine tensors without TF.js.
 *
 * The manifest (TF.js' `WeightsManifestConfig`, tfjs-core io/types.ts) is a list of groups, each naming its
 * shard files (`paths`, concatenated in order) and its weights (`name`, `shape`, `dtype`, optional
 * `quantization`). Weights are laid one after another in the concatenated bytes. A quantised weight holds one
 * uint8 (or uint16) per value and is dequantised as TF.js' io/io_utils.ts `getWeights` does:
 * value = q · scale + min, computed in float64 and stored as float32 (int32 weights: rounded). Unquantised
 * weights are little-endian float32 or int32.
 *
 * Dequantising on every start would redo the same work, so the result is cached as one safetensors file per
 * model (tensors under the manifest's names, in TF.js' layouts: convolutions HWIO, depthwise HWC1, dense
 * [in, out]), named after the sha256 of the manifest and shards: a changed package never reads a stale cache,
 * and the file is written atomically (saveSafetensors writes a temporary file and renames it).
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { z } from "zod";
import { fromBytes } from "../../engine/creation.js";
import { tidy } from "../../engine/lifetime.js";
import { loadSafetensors, saveSafetensors } from "../../engine/safetensors/index.js";
import type { Tensor } from "../../engine/tensor.js";
import { readJsonFile } from "../../util/json.js";

const quantizationSchema = z.object({
  dtype: z.enum(["uint8", "uint16"]),
  scale: z.number(),
  min: z.number(),
});
const weightSchema = z.object({
  name: z.string().min(1),
  shape: z.array(z.number().int().nonnegative()),
  dtype: z.enum(["float32", "int32"]),
  quantization: quantizationSchema.optional(),
});
const manifestSchema = z.array(z.object({ paths: z.array(z.string().min(1)).min(1), weights: z.array(weightSchema) })).min(1);

/** One weight as the manifest describes it. */
export type TfjsWeightSpec = z.infer<typeof weightSchema>;

/** The face-api models this project reads. */
export const FACE_API_MODELS = ["face_recognition_model", "face_landmark_68_model", "ssd_mobilenetv1_model", "tiny_face_detector_model"] as const;
export type FaceApiModelName = (typeof FACE_API_MODELS)[number];

/** A model's dequantised weights by manifest name, and where they came from. */
export interface TfjsWeights {
  readonly model: string;
  /** The manifest file (named in every error). */
  readonly source: string;
  readonly tensors: Map<string, Tensor>;
}

/** The `model/` folder of the installed @vladmandic/face-api package. */
export function faceApiModelDir(): string {
  const require = createRequire(import.meta.url);
  let packageJson: string;
  try {
    packageJson = require.resolve("@vladmandic/face-api/package.json");
  } catch {
    throw new Error("the face models come from the npm package @vladmandic/face-api, which is not installed (npm install @vladmandic/face-api)");
  }
  return join(dirname(packageJson), "model");
}

/** Where dequantised weights are cached: $HDB_FACE_CACHE, else $XDG_CACHE_HOME/hyperdreambooth/face-api, else ~/.cache/…. */
export function faceWeightCacheDir(): string {
  const set = (name: string): string | undefined => (process.env[name] ? process.env[name] : undefined);
  return set("HDB_FACE_CACHE") ?? join(set("XDG_CACHE_HOME") ?? join(homedir(), ".cache"), "hyperdreambooth", "face-api");
}

/** Reads and checks a TF.js weights manifest. */
export function readTfjsManifest(manifestFile: string): z.infer<typeof manifestSchema> {
  const parsed = manifestSchema.safeParse(readJsonFile(manifestFile, "TF.js weights manifest"));
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`${manifestFile}: not a TF.js weights manifest this reader understands: at ${issue.path.join(".") || "(top)"}: ${issue.message}`);
  }
  return parsed.data;
}

/** Dequantises a manifest's weights from its shards (no cache): TF.js' getWeights, on the engine. */
export function decodeTfjsWeights(manifestFile: string): Map<string, Tensor> {
  const manifest = readTfjsManifest(manifestFile);
  const folder = dirname(manifestFile);
  const tensors = new Map<string, Tensor>();
  for (const group of manifest) {
    const bytes = Buffer.concat(group.paths.map((p) => {
      const file = join(folder, p);
      if (!existsSync(file)) throw new Error(`${manifestFile} names shard ${p}, but ${file} does not exist`);
      return readFileSync(file);
    }));
    let offset = 0;
    for (const spec of group.weights) {
      if (tensors.has(spec.name)) throw new Error(`${manifestFile}: weight ${spec.name} appears twice`);
      const count = spec.shape.reduce((a, b) => a * b, 1);
      const width = spec.quantization ? (spec.quantization.dtype === "uint8" ? 1 : 2) : 4;
      const end = offset + count * width;
      if (end > bytes.length) {
        throw new Error(`${manifestFile}: weight ${spec.name} [${spec.shape.join(", ")}] needs bytes ${offset}..${end}, but the shards hold ${bytes.length}`);
      }
      const slice = new Uint8Array(bytes.buffer, bytes.byteOffset + offset, end - offset).slice();
      tensors.set(spec.name, decodeWeight(spec, slice));
      offset = end;
    }
    if (offset !== bytes.length) {
      throw new Error(`${manifestFile}: the weights of shards ${group.paths.join(", ")} take ${offset} bytes, but the shards hold ${bytes.length}`);
    }
  }
  return tensors;
}

function decodeWeight(spec: TfjsWeightSpec, bytes: Uint8Array): Tensor {
  const q = spec.quantization;
  if (!q) return fromBytes(bytes, spec.dtype, spec.shape);
  return tidy(() => {
    const raw = fromBytes(bytes, q.dtype === "uint8" ? "uint8" : "int16", spec.shape);
    // uint16 arrives as int16 bits: add 65536 to the negative ones.
    const wide = q.dtype === "uint8" ? raw.to("float64") : raw.to("float64").add(raw.lt(0).to("float64").mul(65536));
    const value = wide.mul(q.scale).add(q.min);
    return spec.dtype === "int32" ? value.round().to("int32") : value.to("float32");
  });
}

/** sha256 of the manifest and its shards, the cache's key. */
function sourceHash(manifestFile: string): string {
  const hash = createHash("sha256").update(readFileSync(manifestFile));
  for (const group of readTfjsManifest(manifestFile)) for (const p of group.paths) hash.update(readFileSync(join(dirname(manifestFile), p)));
  return hash.digest("hex");
}

/**
 * A face-api model's weights: from the safetensors cache when it holds this exact manifest and shards, else
 * dequantised from them and cached. `modelDir` defaults to the installed package's model/ folder.
 */
export function loadFaceApiWeights(model: FaceApiModelName, options: { modelDir?: string; cacheDir?: string } = {}): TfjsWeights {
  const modelDir = options.modelDir ?? faceApiModelDir();
  const manifestFile = join(modelDir, `${model}-weights_manifest.json`);
  if (!existsSync(manifestFile)) throw new Error(`no weights manifest for ${model}: ${manifestFile} does not exist`);
  const hash = sourceHash(manifestFile);
  const cacheDir = options.cacheDir ?? faceWeightCacheDir();
  const cacheFile = join(cacheDir, `${model}-${hash.slice(0, 16)}.safetensors`);
  if (existsSync(cacheFile)) {
    const loaded = loadSafetensors(cacheFile, { finite: true });
    if (loaded.metadata["hdb.source_sha256"] === hash) return { model, source: manifestFile, tensors: loaded.tensors };
    for (const t of loaded.tensors.values()) t.dispose();
  }
  const tensors = decodeTfjsWeights(manifestFile);
  mkdirSync(cacheDir, { recursive: true });
  saveSafetensors(cacheFile, tensors, { "hdb.format": "face-api-weights", "hdb.model": model, "hdb.source_sha256": hash });
  return { model, source: manifestFile, tensors };
}

/** A weight by manifest name with the shape the network needs; the error names the manifest, key and shapes. */
export function weight(weights: TfjsWeights, name: string, shape: readonly number[]): Tensor {
  const t = weights.tensors.get(name);
  if (!t) throw new Error(`${weights.source}: weight ${name} is missing (the ${weights.model} network needs it, shape [${shape.join(", ")}])`);
  const found = t.shape;
  if (found.length !== shape.length || found.some((d, i) => shape[i] !== -1 && d !== shape[i])) {
    throw new Error(`${weights.source}: weight ${name} has shape [${found.join(", ")}], the ${weights.model} network needs [${shape.map((d) => (d === -1 ? "?" : d)).join(", ")}]`);
  }
  return t;
}
