/**
 * The HyperNetwork's folder, and its predictions as LiDB files.
 *
 *     <dir>/config.json          HyperNetworkConfig (sizes, rounds, the encoder's id or path: referenced, not
 *                                copied, prior-art mistake 4)
 *     <dir>/model.safetensors    the decoder's weights (float32 or float16)
 *     <dir>/lidb_space.json      the LiDB space it predicts into: target layers with their shapes, a, b, r,
 *                                basis seed and checksum, base model; every prediction's LiDB file carries it
 *
 * A prediction is written with writeLidbFile (src/adapters/lidb/file.ts) from that space and the predicted
 * factors: the same ~100 KB file per-identity DreamBooth writes, applied by `hdb generate --lidb`.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { loadSafetensors, saveSafetensors, tidy, type Tensor } from "../engine/index.js";
import { writeLidbFile, type LidbBaseModel, type LidbFileInfo } from "../adapters/lidb/file.js";
import type { TargetShape } from "../adapters/targets.js";
import type { LoraLayerWeights } from "../adapters/lora/config.js";
import { writeDirectoryAtomic, writeJsonAtomic } from "../util/atomic.js";
import { readJsonObject } from "../util/json.js";
import { hyperNetworkConfig } from "./config.js";
import { HyperNetwork } from "./hypernetwork.js";

/** What a LiDB file of this space needs besides its factors (taken from a LiDB file of the weight set). */
export interface LidbSpace {
  targets: TargetShape[];
  a: number;
  b: number;
  rank: number;
  seed: string;
  basisChecksum: string;
  baseModel: LidbBaseModel;
  weightsHash: string | null;
  identifier: string | null;
}

/** The space of an existing LiDB file (its header). */
export function lidbSpaceOf(info: LidbFileInfo): LidbSpace {
  const { targetsHash: _targets, weightsHash, ...baseModel } = info.baseModel;
  return {
    targets: info.targets, a: info.dims.a, b: info.dims.b, rank: info.dims.rank, seed: info.seed, basisChecksum: info.basisChecksum,
    baseModel, weightsHash, identifier: info.identifier,
  };
}

/**
 * How the folder names its encoder: a hub id as it is; a local folder relative to the HyperNetwork's own folder
 * ("../encoder"), so that the pair can be moved or bundled together (resolved back on load).
 */
function portableEncoder(encoder: string, dir: string): string {
  if (!existsSync(encoder)) return encoder;
  const relative = path.relative(path.resolve(dir), path.resolve(encoder)).split(path.sep).join("/");
  return relative.startsWith("../") ? relative : `./${relative}`;
}

/** Writes the folder atomically. */
export function saveHyperNetwork(dir: string, network: HyperNetwork, space: LidbSpace, options: { dtype?: "float32" | "float16"; training?: Record<string, unknown> } = {}): void {
  writeDirectoryAtomic(dir, (temporary) => {
    writeJsonAtomic(path.join(temporary, "config.json"), {
      ...network.config, encoder: portableEncoder(network.config.encoder, dir), ...(options.training ? { training: options.training } : {}),
    });
    writeJsonAtomic(path.join(temporary, "lidb_space.json"), space);
    tidy(() => {
      const weights = new Map([...network.stateDict()].map(([key, t]) => [key, options.dtype === "float16" ? t.half() : t] as const));
      saveSafetensors(path.join(temporary, "model.safetensors"), weights, { format: "pt" });
    });
  });
}

/** Loads a saved HyperNetwork (float32) and its LiDB space; errors name the file. */
export function loadHyperNetwork(dir: string): { network: HyperNetwork; space: LidbSpace } {
  const configFile = path.join(dir, "config.json");
  const { training: _training, ...raw } = readJsonObject(configFile, "HyperNetwork config");
  const config = hyperNetworkConfig(raw, configFile);
  if (/^\.\.?[\\/]/.test(config.encoder)) config.encoder = path.resolve(dir, config.encoder);
  const space = JSON.parse(readFileSync(path.join(dir, "lidb_space.json"), "utf8")) as LidbSpace;
  if (space.targets.length !== config.layers.length || space.targets.some((target, i) => target.name !== config.layers[i])) {
    throw new Error(`${dir}: lidb_space.json's ${space.targets.length} target layers differ from config.json's ${config.layers.length} layers`);
  }
  const network = new HyperNetwork(config);
  const { tensors } = loadSafetensors(path.join(dir, "model.safetensors"));
  try {
    network.loadStateDict(new Map([...tensors].map(([key, t]) => [key, t.dtype === "float32" ? t : t.float()] as const)));
  } catch (error) {
    network.dispose();
    throw new Error(`${path.join(dir, "model.safetensors")}: ${(error as Error).message}`);
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
  return { network, space };
}

/**
 * Writes one photo's predicted factors, aTrain (L, a, r) and bTrain (L, r, b), as a LiDB file of the space; returns its
 * bytes. `extra.relaxed` adds a rank-relaxed part (src/personalize/: a version 2 file); `extra.identifier` replaces
 * the space's.
 */
export function writePrediction(file: string, space: LidbSpace, factors: { aTrain: Tensor; bTrain: Tensor }, training: Record<string, unknown>,
  extra: { identifier?: string; relaxed?: Map<string, LoraLayerWeights> } = {}): number {
  const identifier = extra.identifier ?? space.identifier;
  return writeLidbFile(file, {
    factors, targets: space.targets, dims: { a: space.a, b: space.b, rank: space.rank }, seed: space.seed, basisChecksum: space.basisChecksum,
    baseModel: space.baseModel, weightsHash: space.weightsHash, ...(identifier === null ? {} : { identifier }), training,
    ...(extra.relaxed ? { relaxed: extra.relaxed } : {}),
  });
}
