/**
 * Training the prompt fidelity network (the mini-world's "CLIP-T"): random pretraining identities, each render
 * made for one of the 31 style classes ("photo" or a single style, cycled so the requests are exactly balanced)
 * with a random nuisance seed, and labelled with the style it shows (visibleStyle: a photo whose nuisance smiles
 * shows "smiling"). The loss is the style cross-entropy plus the hair colour cross-entropy, the latter over the
 * renders whose hair colour is visible (no style hiding it, not bald): the others are masked out.
 */
import { crossEntropy, keep, tensor } from "../../engine/index.js";
import { identityFromId } from "../../miniworld/identity.js";
import { Random } from "../../miniworld/random.js";
import type { RenderRequest } from "../../miniworld/render.js";
import { splitIds } from "../../miniworld/splits.js";
import type { StyleName } from "../../miniworld/styles.js";
import {
  DEFAULT_FIDELITY_NETWORK_CONFIG, PHOTO_LABEL, PromptFidelityNetwork, visibleStyle, type PromptFidelityNetworkConfig,
} from "../fidelity-network.js";
import { hairColourVisible } from "./data.js";
import { trainMetricNetwork, type CommonTrainingSettings, type MetricTrainingResult, type TrainingLocations } from "./run.js";

/** The label of a masked-out hair colour (crossEntropy's ignoreIndex). */
const IGNORED = -100;

export interface FidelityTrainingSettings extends CommonTrainingSettings {
  /** Training renders per style class (× 31 in all). */
  imagesPerClass: number;
  /** Probability of mirroring a training image left–right (styles and hair colours have no side). */
  flipProbability: number;
  network: PromptFidelityNetworkConfig;
}

/**
 * Defaults sized for ~10 minutes on one CPU core. Measured on the shared 2-core machine (one libtorch thread):
 * 0.10–0.15 s per step of 64 (0.150 s mean under load), 100 s to render the 18,600 images; 3,500 steps took
 * 525 s, ~12 epochs with random mirroring. Held-out result: 95.6 % style accuracy, 97.3 % prompt accuracy,
 * 95.7 % hair colour accuracy (expressions are the hard classes; every other style is ≥ 92.5 %, most 100 %).
 */
export const FIDELITY_TRAINING_DEFAULTS: Readonly<FidelityTrainingSettings> = Object.freeze({
  steps: 3500,
  batchSize: 64,
  imagesPerClass: 600,
  flipProbability: 0.5,
  learningRate: 2e-3,
  weightDecay: 0.05,
  warmupSteps: 100,
  checkpointEvery: 250,
  threads: 1,
  seed: 0,
  dtype: "float16",
  network: DEFAULT_FIDELITY_NETWORK_CONFIG,
});

export interface FidelityTrainingOptions extends Partial<Omit<FidelityTrainingSettings, "network">>, TrainingLocations {
  /** Architecture fields (or label lists) to change from DEFAULT_FIDELITY_NETWORK_CONFIG. */
  network?: Partial<PromptFidelityNetworkConfig>;
}

/** One labelled render. */
export interface FidelityExample {
  request: RenderRequest;
  /** Index into the style labels of the class the render was made for. */
  requestedStyle: number;
  /** Index into the style labels of the style it shows (see visibleStyle): the target. */
  style: number;
  /** Index into the hair colour labels, or -100 where the colour is not visible. */
  hairColour: number;
}

/**
 * `count` labelled renders: example k is made for style class k mod (number of style labels), with an identity
 * of `ids` and a nuisance seed (both drawn from `seed`). Labels index `styleLabels` / `hairColourLabels`.
 */
export function fidelityExamples(
  count: number, seed: number, ids: readonly number[], styleLabels: readonly string[], hairColourLabels: readonly string[],
): FidelityExample[] {
  if (ids.length === 0) throw new Error("fidelityExamples needs at least one identity");
  const examples: FidelityExample[] = [];
  for (let k = 0; k < count; k++) {
    const random = Random.of("fidelity-network image", seed, k);
    const id = ids[random.int(ids.length)]!;
    const nuisanceSeed = random.nextUint32();
    const requestedStyle = k % styleLabels.length;
    const styleName = styleLabels[requestedStyle] === PHOTO_LABEL ? undefined : (styleLabels[requestedStyle] as StyleName);
    const shown = styleLabels.indexOf(visibleStyle(id, nuisanceSeed, styleName));
    const colour = hairColourLabels.indexOf(identityFromId(id).hair.colour);
    if (colour < 0) throw new Error(`hair colour '${identityFromId(id).hair.colour}' is not among the network's labels`);
    examples.push({
      request: styleName === undefined ? { id, nuisanceSeed } : { id, nuisanceSeed, style: styleName },
      requestedStyle,
      // A label list without the shown expression style keeps the photo's own label.
      style: shown >= 0 ? shown : requestedStyle,
      hairColour: hairColourVisible(id, styleName) ? colour : IGNORED,
    });
  }
  return examples;
}

/** The options filled in from FIDELITY_TRAINING_DEFAULTS. */
export function resolveFidelitySettings(options: Partial<FidelityTrainingOptions>): FidelityTrainingSettings {
  const defaults = FIDELITY_TRAINING_DEFAULTS;
  const network = { ...defaults.network, ...options.network };
  return {
    steps: options.steps ?? defaults.steps, batchSize: options.batchSize ?? defaults.batchSize,
    imagesPerClass: options.imagesPerClass ?? defaults.imagesPerClass, flipProbability: options.flipProbability ?? defaults.flipProbability,
    learningRate: options.learningRate ?? defaults.learningRate,
    weightDecay: options.weightDecay ?? defaults.weightDecay, warmupSteps: options.warmupSteps ?? defaults.warmupSteps,
    checkpointEvery: options.checkpointEvery ?? defaults.checkpointEvery, threads: options.threads ?? defaults.threads,
    seed: options.seed ?? defaults.seed, dtype: options.dtype ?? defaults.dtype,
    network: {
      ...network, blockOutChannels: [...network.blockOutChannels], styleLabels: [...network.styleLabels], hairColourLabels: [...network.hairColourLabels],
    },
  };
}

/** Trains (or resumes) the prompt fidelity network and saves it to `outDir`. */
export async function trainFidelityNetwork(options: FidelityTrainingOptions): Promise<MetricTrainingResult> {
  const settings = resolveFidelitySettings(options);
  const { imagesPerClass, seed } = settings;
  if (!Number.isInteger(imagesPerClass) || imagesPerClass < 1) throw new Error(`imagesPerClass must be a positive integer, got ${imagesPerClass}`);
  const { styleLabels, hairColourLabels } = settings.network;
  const examples = fidelityExamples(imagesPerClass * styleLabels.length, seed, splitIds("pretraining"), styleLabels, hairColourLabels);
  using styleTargets = keep(tensor(BigInt64Array.from(examples, (e) => BigInt(e.style))));
  using hairTargets = keep(tensor(BigInt64Array.from(examples, (e) => BigInt(e.hairColour))));
  // Awaited here: the `using` targets must live until training ends.
  return await trainMetricNetwork({
    label: "fidelity-network", settings: { ...settings }, locations: options, requests: examples.map((e) => e.request),
    flipProbability: settings.flipProbability,
    build: () => ({ network: new PromptFidelityNetwork(settings.network) }),
    loss: (network, images, rows) => {
      const logits = network.forward(images);
      const styleLoss = crossEntropy(logits.style, styleTargets.indexSelect(0, rows));
      // A mean over the renders whose hair colour is visible (0 when none in the batch is).
      const hair = hairTargets.indexSelect(0, rows);
      const visible = hair.ne(IGNORED).sum().item();
      const hairLoss = crossEntropy(logits.hairColour, hair, { reduction: "sum", ignoreIndex: IGNORED }).div(Math.max(1, visible));
      return styleLoss.add(hairLoss);
    },
  });
}
