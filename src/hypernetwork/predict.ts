/**
 * Prediction (HyperDreamBooth §4.2, "Only Hyper"): photos → encoder features → one HyperNetwork forward pass →
 * one LiDB file per photo, in seconds and without any diffusion step. The files are the ones per-identity
 * DreamBooth writes (src/hypernetwork/file.ts), so `hdb generate --lidb` and `hdb export` take them as they are;
 * the rank-relaxed fast fine-tuning (§4.3) starts from them.
 */
import { noGrad, tidy } from "../engine/index.js";
import { writePrediction, type LidbSpace } from "./file.js";
import type { HyperNetwork } from "./hypernetwork.js";
import type { FeatureEncoder } from "./train.js";

export interface Prediction {
  photo: string;
  file: string;
  bytes: number;
}

/** Predicts a LiDB file for each photo (`outFiles[i]` for `photos[i]`), in batches of `batchSize`. */
export async function predictLidbFiles(network: HyperNetwork, space: LidbSpace, encoder: FeatureEncoder, photos: readonly string[], outFiles: readonly string[],
  options: { batchSize?: number; rounds?: number } = {}): Promise<Prediction[]> {
  if (photos.length !== outFiles.length) throw new Error(`predictLidbFiles: ${photos.length} photos but ${outFiles.length} output files`);
  const batchSize = options.batchSize ?? 16;
  const rounds = options.rounds ?? network.config.rounds;
  network.eval();
  const predictions: Prediction[] = [];
  for (let start = 0; start < photos.length; start += batchSize) {
    const batch = photos.slice(start, start + batchSize);
    using features = await encoder.encode(batch);
    noGrad(() => tidy(() => {
      const { aTrain, bTrain } = network.split(network.forward(features, { rounds }).float().cpu());
      for (const [i, photo] of batch.entries()) {
        const file = outFiles[start + i]!;
        const bytes = writePrediction(file, space, { aTrain: aTrain.select(0, i).contiguous(), bTrain: bTrain.select(0, i).contiguous() }, {
          method: "hypernetwork", photo, rounds, encoder: encoder.id,
        });
        predictions.push({ photo, file, bytes });
      }
    }));
  }
  return predictions;
}
