/**
 * The mini-world's prompt fidelity network: the role CLIP-T (image–text agreement) plays in HyperDreamBooth's
 * Table 1. In this world a prompt asks for a style (or none: a photo) and may name a hair colour, so "does the
 * image follow the prompt" becomes two classifications that can be checked exactly against the prompt:
 *
 *   - style: "photo" (no style) or one of the 30 STYLES, for images with at most one style (the style an image
 *     shows: a photo that happens to smile shows "smiling", see visibleStyle and styleFollowsPrompt);
 *   - hair colour: one of HAIR_COLOURS (meaningless where a style hides the colour or the person is bald).
 *
 * (N, 3, 64, 64) images in [-1, 1] go through the shared ConvEncoder (a stride-2 stem, so the convolutions run
 * at 32 × 32 and below: styles and colours are coarse), then SiLU and one linear head per question. The label
 * lists are saved in config.json, so a saved network says what its logits mean.
 */
import { noGrad, tidy, type Tensor } from "../engine/index.js";
import { Linear, Module } from "../engine/nn/index.js";
import { HAIR_COLOURS, WORLD_SEED } from "../miniworld/identity.js";
import { CANONICAL_NUISANCE, nuisanceFor } from "../miniworld/nuisance.js";
import { STYLE_NAMES, STYLES } from "../miniworld/styles.js";
import { ConvEncoder, type ConvEncoderConfig } from "./backbone.js";
import { encoderConfigJson, loadNetworkWeights, NetworkConfigFile, saveNetwork, type WeightsDType } from "./network-files.js";

/** The style label of an image without a style. */
export const PHOTO_LABEL = "photo";
/** "photo", then every style name in catalogue order: 31 classes. */
export const STYLE_LABELS: readonly string[] = Object.freeze([PHOTO_LABEL, ...STYLE_NAMES]);
/** The hair colour names of identity.ts, in its order: 15 classes. */
export const HAIR_COLOUR_LABELS: readonly string[] = Object.freeze(Object.keys(HAIR_COLOURS));

export interface PromptFidelityNetworkConfig extends ConvEncoderConfig {
  styleLabels: string[];
  hairColourLabels: string[];
}

/**
 * The defaults: 64 × 64 input, a stride-2 stem, four blocks of 16–128 channels (32² → 4²), 128 features;
 * ~0.6 M parameters, ~2 ms per image for a training step on one CPU core.
 */
export const DEFAULT_FIDELITY_NETWORK_CONFIG: Readonly<PromptFidelityNetworkConfig> = Object.freeze({
  sampleSize: 64,
  inChannels: 3,
  blockOutChannels: [16, 32, 64, 128],
  layersPerBlock: 1,
  normNumGroups: 8,
  stemStride: 2,
  featureDim: 128,
  styleLabels: [...STYLE_LABELS],
  hairColourLabels: [...HAIR_COLOUR_LABELS],
});

const CLASS_NAME = "PromptFidelityNetwork";

/** Expression → the expression style that forces it ("smile" → "smiling"), read from the catalogue. */
const EXPRESSION_STYLES: ReadonlyMap<string, string> = new Map(STYLES.filter((s) => s.kind === "expression" && s.nuisance)
  .map((s) => [s.nuisance!(CANONICAL_NUISANCE).expression, s.name] as const));

/**
 * The style label an image of identity `id` with `nuisanceSeed` and at most one `style` shows. Expression styles
 * only set the nuisance's expression, so a plain photo whose nuisance smiles is the very picture "smiling" asks
 * for (its caption says "smiling" too): it shows "smiling". Any other photo shows "photo".
 */
export function visibleStyle(id: number, nuisanceSeed: number | undefined, style?: string, worldSeed = WORLD_SEED): string {
  if (style !== undefined) return style;
  return EXPRESSION_STYLES.get(nuisanceFor(id, nuisanceSeed, worldSeed).expression) ?? PHOTO_LABEL;
}

/**
 * Whether an image classified as `predicted` follows a prompt that asked for `requested` (a style name, or
 * "photo" for none): the style itself, or, for a photo, an expression style too (photos smile, frown and look
 * surprised as often as the world's nuisance makes them: 30 %, 8 %, 10 %).
 */
export function styleFollowsPrompt(predicted: string, requested: string): boolean {
  if (predicted === requested) return true;
  return requested === PHOTO_LABEL && [...EXPRESSION_STYLES.values()].includes(predicted);
}

export interface FidelityLogits {
  /** (N, styles) */
  style: Tensor;
  /** (N, hair colours) */
  hairColour: Tensor;
}

export interface FidelityPrediction {
  /** The most likely style label of each image ("photo" for none). */
  styles: string[];
  /** Its softmax probability. */
  styleConfidence: number[];
  hairColours: string[];
  hairColourConfidence: number[];
}

export class PromptFidelityNetwork extends Module {
  readonly encoder: ConvEncoder;
  readonly styleHead: Linear;
  readonly hairColourHead: Linear;

  constructor(readonly config: PromptFidelityNetworkConfig = structuredClone(DEFAULT_FIDELITY_NETWORK_CONFIG) as PromptFidelityNetworkConfig) {
    super();
    for (const [key, labels] of [["style_labels", config.styleLabels], ["hair_colour_labels", config.hairColourLabels]] as const) {
      if (labels.length === 0 || new Set(labels).size !== labels.length) throw new Error(`${key} must be a non-empty list of distinct labels`);
    }
    this.encoder = this.registerModule("encoder", new ConvEncoder(config));
    this.styleHead = this.registerModule("style_head", new Linear(config.featureDim, config.styleLabels.length));
    this.hairColourHead = this.registerModule("hair_colour_head", new Linear(config.featureDim, config.hairColourLabels.length));
  }

  /** (N, 3, S, S) images in [-1, 1] → style and hair colour logits. */
  forward(images: Tensor): FidelityLogits {
    using features = this.encoder.forward(images);
    using activated = features.silu();
    return { style: this.styleHead.forward(activated), hairColour: this.hairColourHead.forward(activated) };
  }

  /** The predicted labels (and their probabilities), without autograd. */
  classify(images: Tensor): FidelityPrediction {
    return noGrad(() => tidy(() => {
      const logits = this.forward(images);
      const best = (values: Tensor, labels: readonly string[]): { labels: string[]; confidence: number[] } => {
        const { values: top, indices } = values.softmax(-1).maxAlong(-1);
        const chosen = Array.from(indices.data() as BigInt64Array, (i) => labels[Number(i)]!);
        return { labels: chosen, confidence: Array.from(top.data() as Float32Array) };
      };
      const style = best(logits.style, this.config.styleLabels);
      const hair = best(logits.hairColour, this.config.hairColourLabels);
      return { styles: style.labels, styleConfidence: style.confidence, hairColours: hair.labels, hairColourConfidence: hair.confidence };
    }));
  }

  /** Writes `<dir>/config.json` (with the label lists) and `<dir>/model.safetensors`, atomically. */
  save(dir: string, options: { dtype?: WeightsDType; training?: Record<string, unknown> } = {}): void {
    const config: Record<string, unknown> = {
      _class_name: CLASS_NAME, ...encoderConfigJson(this.config),
      style_labels: [...this.config.styleLabels], hair_colour_labels: [...this.config.hairColourLabels],
    };
    if (options.training) config["training"] = options.training;
    saveNetwork(dir, this, config, options.dtype);
  }

  /** A network saved by `save` (float16 or float32 weights), in float32 and eval mode. */
  static load(dir: string): PromptFidelityNetwork {
    const file = NetworkConfigFile.read(dir, CLASS_NAME);
    const config = { ...file.encoder(), styleLabels: file.labels("style_labels"), hairColourLabels: file.labels("hair_colour_labels") };
    const network = file.build(() => new PromptFidelityNetwork(config));
    try {
      loadNetworkWeights(dir, network);
    } catch (error) {
      network.dispose();
      throw error;
    }
    return network.eval();
  }
}
