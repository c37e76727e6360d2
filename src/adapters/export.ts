/**
 * Exporting a LiDB file (paper §4.1) as a standard rank-r LoRA that any SD tool loads.
 *
 * ΔW = A_aux·A_train·B_train·B_aux is exactly a rank-r LoRA with
 *
 *     lora_B / lora_up   = A_aux · A_train      (n×r)
 *     lora_A / lora_down = B_train · B_aux      (r×m)          alpha = r (scaling 1)
 *
 * computed in float32 from the bases rebuilt from the file's seed and target list: no SVD, no approximation,
 * and no base model needed (its folder only serves to check compatibility). The rebuilt bases' checksum must
 * equal the file's, so an export can never silently use other bases than training did (prior-art mistake 1).
 */
import { cat, noGrad, tensor, tidy } from "../engine/index.js";
import { AuxBasisChecksum, buildAuxBases } from "./lidb/aux-bases.js";
import { disposeLidbFile, loadLidbFile, type LidbFile } from "./lidb/file.js";
import type { LoraLayerWeights } from "./lora/config.js";
import { disposeLayer, writeLoraFile, type LoraFormat } from "./lora/file.js";

/**
 * The exact LoRA factors of a LiDB file, by layer name (float32 CPU tensors the caller frees). Throws if the
 * rebuilt bases do not match the file's checksum. A rank-relaxed part (paper §4.3) is stacked along the rank:
 *
 *     lora_B = [A_aux·A_train | s·up_relaxed]      lora_A = [B_train·B_aux ; down_relaxed]      alpha = rank + r
 *
 * with s = the relaxed part's alpha / r folded into its up factor, so ΔW = ΔW_LiDB + ΔW_relaxed exactly: one
 * standard LoRA of rank lidb.rank + r, no SVD (prior-art mistake 5).
 */
export function lidbToLoraLayers(file: LidbFile): Map<string, LoraLayerWeights> {
  const { info, factors } = file;
  const checksum = new AuxBasisChecksum();
  const layers = new Map<string, LoraLayerWeights>();
  try {
    info.targets.forEach((target, i) => {
      const bases = buildAuxBases(info.seed, target, info.dims);
      checksum.update(bases);
      const weights = noGrad(() => tidy(() => {
        const aAux = tensor(bases.aAux, { shape: [target.outFeatures, info.dims.a] });
        const bAux = tensor(bases.bAux, { shape: [info.dims.b, target.inFeatures] });
        const aTrain = factors.aTrain.select(0, i).float().cpu();
        const bTrain = factors.bTrain.select(0, i).float().cpu();
        const up = aAux.matmul(aTrain);
        const down = bTrain.matmul(bAux);
        const relaxed = file.relaxed?.get(target.name);
        if (!relaxed) return { up, down };
        const rank = relaxed.down.size(0);
        const scaling = (relaxed.alpha ?? rank) / rank;
        return { up: cat([up, scaling === 1 ? relaxed.up.float() : relaxed.up.float().mul(scaling)], 1), down: cat([down, relaxed.down.float()], 0) };
      }));
      layers.set(target.name, { ...weights, alpha: weights.down.size(0) });
    });
    const rebuilt = checksum.digest();
    if (rebuilt !== info.basisChecksum) {
      throw new Error(`the aux bases rebuilt from seed ${info.seed} have checksum ${rebuilt}, the LiDB file expects ${info.basisChecksum}: refusing to export with other bases than training used`);
    }
    return layers;
  } catch (error) {
    for (const w of layers.values()) disposeLayer(w);
    throw error;
  }
}

export interface ExportOptions {
  format: LoraFormat;
  /** Stored dtype (default float32). */
  dtype?: "float32" | "float16";
}

/** Reads a LiDB file and writes it as a LoRA file of the given layout; returns the output's tensor count. */
export function exportLidbFile(lidbPath: string, outPath: string, options: ExportOptions): number {
  const file = loadLidbFile(lidbPath);
  try {
    const layers = lidbToLoraLayers(file);
    try {
      const { info } = file;
      return writeLoraFile(outPath, layers, {
        format: options.format, ...(options.dtype === undefined ? {} : { dtype: options.dtype }), baseModel: info.baseModel,
        title: info.identifier === null ? "LiDB" : `LiDB ${info.identifier}`,
        ...(info.identifier === null ? {} : { triggerPhrase: info.identifier }),
        metadata: {
          "hdb.exported_from": "lidb", "hdb.lidb_basis_sha256": info.basisChecksum,
          "hdb.base_model": info.baseModel.id, "hdb.lidb_rank": String(info.dims.rank),
          ...(info.relaxed ? { "hdb.relaxed_rank": String(info.relaxed.rank) } : {}),
        },
      });
    } finally {
      for (const w of layers.values()) disposeLayer(w);
    }
  } finally {
    disposeLidbFile(file);
  }
}
