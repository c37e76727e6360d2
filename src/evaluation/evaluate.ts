/**
 * Checking the metric networks on held-out identities (ids the networks never saw), on fresh renders.
 *
 * Identity network: for each identity, two plain photos (different nuisance seeds) and one render per style
 * (another nuisance seed each). Scores are embedding cosine similarities.
 *   - plain ROC-AUC: pairs (photo A of i, photo B of j); positive when i = j (N positives, N(N−1) negatives);
 *   - across-styles ROC-AUC: pairs (photo A of i, style-s render of j) over every style s; positive when i = j;
 *     also per style, to show which styles the embedding loses people in.
 * Targets (issue 5): ≥ 0.99 plain, ≥ 0.95 across styles.
 *
 * Prompt fidelity network: `imagesPerClass` renders made for each of the 31 style classes (random held-out
 * identity and nuisance seed), classified against the style each shows (a photo whose nuisance smiles shows
 * "smiling", see visibleStyle); style accuracy overall and per class, hair colour accuracy over the renders whose
 * colour is visible, the most frequent confusions, and how often the prediction follows the request the render
 * was made for (styleFollowsPrompt). Target: ≥ 95 % style accuracy.
 */
import { cat, noGrad, tidy, type Tensor } from "../engine/index.js";
import { imagesToTensor } from "../pipeline/images.js";
import { Random } from "../miniworld/random.js";
import { renderFaces, type RenderRequest } from "../miniworld/render.js";
import { STYLE_NAMES, type StyleName } from "../miniworld/styles.js";
import { styleFollowsPrompt, type PromptFidelityNetwork } from "./fidelity-network.js";
import type { IdentityNetwork } from "./identity-network.js";
import { rocAuc } from "./metrics.js";
import { fidelityExamples } from "./training/fidelity.js";

export interface IdentityEvaluationOptions {
  /** Identities to test on: held-out ids (splitIds("held-out", 200)); at least 2. */
  identities: readonly number[];
  /** Styles of the across-styles test (default: all 30). */
  styles?: readonly StyleName[];
  /** Chooses the nuisance seeds (default 1). */
  seed?: number;
  /** Images rendered and embedded at a time (default 128). */
  batchSize?: number;
  log?: (line: string) => void;
}

export interface IdentityEvaluation {
  identities: number;
  plainAuc: number;
  crossStyleAuc: number;
  perStyleAuc: Record<string, number>;
  /** Mean cosine similarity of same-identity and of different-identity plain pairs. */
  plainPositiveSimilarity: number;
  plainNegativeSimilarity: number;
  seconds: number;
}

/** Renders `requests` and embeds them, `batchSize` at a time: (N, D). */
async function embedRenders(network: IdentityNetwork, requests: readonly RenderRequest[], batchSize: number): Promise<Tensor> {
  const parts: Tensor[] = [];
  try {
    for (let start = 0; start < requests.length; start += batchSize) {
      const images = await renderFaces(requests.slice(start, start + batchSize));
      parts.push(noGrad(() => tidy(() => network.embed(imagesToTensor(images)))));
    }
    return cat(parts);
  } finally {
    for (const part of parts) part.dispose();
  }
}

/** AUC of the (N, N) similarity matrix of queries × candidates, positives on the diagonal. */
function diagonalAuc(similarities: Tensor): { auc: number; positive: number; negative: number } {
  const n = similarities.size(0);
  const scores = similarities.data() as Float32Array;
  const isPositive = new Uint8Array(n * n);
  let positive = 0;
  let negative = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const value = scores[i * n + j]!;
      if (i === j) positive += value;
      else negative += value;
      isPositive[i * n + j] = i === j ? 1 : 0;
    }
  }
  return { auc: rocAuc(scores, Array.from(isPositive, Boolean)), positive: positive / n, negative: negative / (n * (n - 1)) };
}

/** Same-vs-different identity ROC-AUC of an identity network, plain and across styles. */
export async function evaluateIdentityNetwork(network: IdentityNetwork, options: IdentityEvaluationOptions): Promise<IdentityEvaluation> {
  const { identities, styles = STYLE_NAMES, seed = 1, batchSize = 128, log } = options;
  if (identities.length < 2) throw new Error(`evaluateIdentityNetwork needs at least 2 identities, got ${identities.length}`);
  const started = performance.now();
  const draws = identities.map((id) => Random.of("identity-evaluation", seed, id));
  const photosA = identities.map((id, i) => ({ id, nuisanceSeed: draws[i]!.nextUint32() }));
  const photosB = identities.map((id, i) => ({ id, nuisanceSeed: draws[i]!.nextUint32() }));
  const styled = styles.map((style) => identities.map((id, i) => ({ id, nuisanceSeed: draws[i]!.nextUint32(), style })));
  using a = await embedRenders(network, photosA, batchSize);
  using b = await embedRenders(network, photosB, batchSize);
  const plain = tidy(() => diagonalAuc(a.matmul(b.mT())));
  log?.(`identity network: plain ROC-AUC ${plain.auc.toFixed(4)} over ${identities.length} identities`);
  const perStyleAuc: Record<string, number> = {};
  const allScores: number[] = [];
  const allPositive: boolean[] = [];
  for (const [s, requests] of styled.entries()) {
    using embeddings = await embedRenders(network, requests, batchSize);
    const scores = tidy(() => a.matmul(embeddings.mT()).data() as Float32Array);
    const n = identities.length;
    const positive = Array.from({ length: n * n }, (_, k) => Math.floor(k / n) === k % n);
    perStyleAuc[styles[s]!] = rocAuc(scores, positive);
    for (let k = 0; k < scores.length; k++) {
      allScores.push(scores[k]!);
      allPositive.push(positive[k]!);
    }
    log?.(`identity network: ${styles[s]} ROC-AUC ${perStyleAuc[styles[s]!]!.toFixed(4)}`);
  }
  return {
    identities: identities.length,
    plainAuc: plain.auc,
    crossStyleAuc: styles.length > 0 ? rocAuc(allScores, allPositive) : NaN,
    perStyleAuc,
    plainPositiveSimilarity: plain.positive,
    plainNegativeSimilarity: plain.negative,
    seconds: (performance.now() - started) / 1000,
  };
}

export interface FidelityEvaluationOptions {
  /** Identities to render: held-out ids. */
  identities: readonly number[];
  /** Renders per style class (default 20: 620 images). */
  imagesPerClass?: number;
  /** Chooses identities and nuisance seeds (default 1). */
  seed?: number;
  batchSize?: number;
  log?: (line: string) => void;
}

export interface FidelityEvaluation {
  images: number;
  /** Predictions equal to the style each render shows. */
  styleAccuracy: number;
  /** Predictions that follow the request each render was made for (styleFollowsPrompt: a photo may smile). */
  promptAccuracy: number;
  perStyleAccuracy: Record<string, number>;
  /** Renders per shown style (photos whose nuisance shows an expression style count for that style). */
  perStyleCount: Record<string, number>;
  /** Accuracy over the renders whose hair colour is visible, and how many those are. */
  hairColourAccuracy: number;
  hairColourImages: number;
  perHairColourAccuracy: Record<string, number>;
  /** The most frequent style mistakes, most frequent first (at most 10). */
  confusions: { label: string; predicted: string; count: number }[];
  seconds: number;
}

/** Style and hair colour accuracy of a prompt fidelity network on fresh renders. */
export async function evaluateFidelityNetwork(network: PromptFidelityNetwork, options: FidelityEvaluationOptions): Promise<FidelityEvaluation> {
  const { identities, imagesPerClass = 20, seed = 1, batchSize = 128, log } = options;
  const started = performance.now();
  const { styleLabels, hairColourLabels } = network.config;
  const examples = fidelityExamples(imagesPerClass * styleLabels.length, seed, identities, styleLabels, hairColourLabels);
  const styleTally = new Map<string, { right: number; total: number }>(styleLabels.map((label) => [label, { right: 0, total: 0 }]));
  const hairTally = new Map<string, { right: number; total: number }>(hairColourLabels.map((label) => [label, { right: 0, total: 0 }]));
  const confusions = new Map<string, number>();
  let styleRight = 0;
  let promptRight = 0;
  let hairRight = 0;
  let hairTotal = 0;
  for (let start = 0; start < examples.length; start += batchSize) {
    const batch = examples.slice(start, start + batchSize);
    const images = await renderFaces(batch.map((e) => e.request));
    using pixels = imagesToTensor(images);
    const prediction = network.classify(pixels);
    batch.forEach((example, i) => {
      const label = styleLabels[example.style]!;
      const predicted = prediction.styles[i]!;
      if (styleFollowsPrompt(predicted, styleLabels[example.requestedStyle]!)) promptRight += 1;
      const tally = styleTally.get(label)!;
      tally.total += 1;
      if (predicted === label) {
        tally.right += 1;
        styleRight += 1;
      } else {
        const key = `${label}\u0000${predicted}`;
        confusions.set(key, (confusions.get(key) ?? 0) + 1);
      }
      if (example.hairColour >= 0) {
        const colour = hairColourLabels[example.hairColour]!;
        const hair = hairTally.get(colour)!;
        hair.total += 1;
        hairTotal += 1;
        if (prediction.hairColours[i] === colour) {
          hair.right += 1;
          hairRight += 1;
        }
      }
    });
  }
  const rate = (tally: Map<string, { right: number; total: number }>): Record<string, number> =>
    Object.fromEntries([...tally].filter(([, t]) => t.total > 0).map(([label, t]) => [label, t.right / t.total]));
  const result: FidelityEvaluation = {
    images: examples.length,
    styleAccuracy: styleRight / examples.length,
    promptAccuracy: promptRight / examples.length,
    perStyleAccuracy: rate(styleTally),
    perStyleCount: Object.fromEntries([...styleTally].map(([label, t]) => [label, t.total])),
    hairColourAccuracy: hairTotal > 0 ? hairRight / hairTotal : NaN,
    hairColourImages: hairTotal,
    perHairColourAccuracy: rate(hairTally),
    confusions: [...confusions].sort((x, y) => y[1] - x[1]).slice(0, 10).map(([key, count]) => {
      const [label, predicted] = key.split("\u0000") as [string, string];
      return { label, predicted, count };
    }),
    seconds: (performance.now() - started) / 1000,
  };
  log?.(`fidelity network: style accuracy ${(100 * result.styleAccuracy).toFixed(1)} %, hair colour ${(100 * result.hairColourAccuracy).toFixed(1)} %`);
  return result;
}
