/**
 * The mini-world's face recognition network: the role the "Face Rec" metric (a face recognition network's
 * embedding similarity) plays in HyperDreamBooth's Table 1, for 64 × 64 mini-world faces.
 *
 * IdentityNetwork maps (N, 3, 64, 64) images in [-1, 1] to (N, D) L2-normalised embeddings: two pictures of
 * one person have a high cosine similarity, pictures of two people a low one, whatever the pose, light,
 * expression or style (styles are nuisance for identity; a pencil sketch of someone is still them).
 *
 * It is trained as a classifier over training identities with CosineMarginHead (an additive cosine margin
 * softmax, "CosFace" / AM-softmax: logits s·(cos θ_j − m·[j = label])): the margin m makes the class regions
 * compact, so the embedding generalises to people it never saw, where the head's classes mean nothing. The head
 * is only for training: `save` writes the embedding network alone and `load` needs nothing else.
 */
import { arange, crossEntropy, randn, where, type Tensor } from "../engine/index.js";
import { Module, Parameter } from "../engine/nn/index.js";
import { ConvEncoder, type ConvEncoderConfig } from "./backbone.js";
import { encoderConfigJson, loadNetworkWeights, NetworkConfigFile, saveNetwork, type WeightsDType } from "./network-files.js";

/** featureDim is the embedding size. */
export type IdentityNetworkConfig = ConvEncoderConfig;

/**
 * The defaults: 64 × 64 input, a stride-2 stem, four blocks of 32–256 channels (32² → 4²), one ResnetBlock2D
 * each, 128-d embeddings; ~1.9 M parameters, ~6 ms per image for a training step on one CPU core.
 */
export const DEFAULT_IDENTITY_NETWORK_CONFIG: Readonly<IdentityNetworkConfig> = Object.freeze({
  sampleSize: 64,
  inChannels: 3,
  blockOutChannels: [32, 64, 128, 256],
  layersPerBlock: 1,
  normNumGroups: 8,
  stemStride: 2,
  featureDim: 128,
});

const CLASS_NAME = "IdentityNetwork";

/** x / max(‖x‖₂, 1e-12) along the last dim (torch.nn.functional.normalize). */
export function l2Normalize(x: Tensor): Tensor {
  using norm = x.norm(2, -1, true);
  using clamped = norm.clamp(1e-12);
  return x.div(clamped);
}

export class IdentityNetwork extends Module {
  readonly encoder: ConvEncoder;

  constructor(readonly config: IdentityNetworkConfig = { ...DEFAULT_IDENTITY_NETWORK_CONFIG }) {
    super();
    this.encoder = this.registerModule("encoder", new ConvEncoder(config));
  }

  get embeddingDim(): number {
    return this.config.featureDim;
  }

  /** (N, 3, S, S) images in [-1, 1] → (N, D) unit-length identity embeddings. */
  embed(images: Tensor): Tensor {
    using features = this.encoder.forward(images);
    return l2Normalize(features);
  }

  forward(images: Tensor): Tensor {
    return this.embed(images);
  }

  /** Writes `<dir>/config.json` and `<dir>/model.safetensors` (the embedding network only), atomically. */
  save(dir: string, options: { dtype?: WeightsDType; training?: Record<string, unknown> } = {}): void {
    const config: Record<string, unknown> = { _class_name: CLASS_NAME, ...encoderConfigJson(this.config) };
    if (options.training) config["training"] = options.training;
    saveNetwork(dir, this, config, options.dtype);
  }

  /** A network saved by `save` (float16 or float32 weights), in float32 and eval mode. */
  static load(dir: string): IdentityNetwork {
    const file = NetworkConfigFile.read(dir, CLASS_NAME);
    const network = file.build(() => new IdentityNetwork(file.encoder()));
    try {
      loadNetworkWeights(dir, network);
    } catch (error) {
      network.dispose();
      throw error;
    }
    return network.eval();
  }
}

export interface CosineMarginOptions {
  /** s: the logits' scale (the softmax temperature's inverse); 30 as in CosFace. */
  scale?: number;
  /** m: subtracted from the true class's cosine; 0.35 as in CosFace. */
  margin?: number;
}

/**
 * The training head: one unit-length weight vector per training identity; logits are scaled cosines between
 * embeddings and those vectors, with the margin taken off the true class's cosine.
 */
export class CosineMarginHead extends Module {
  /** (classes, D): a direction per training identity (normalised in use, so its length is free). */
  readonly weight: Parameter;
  readonly scale: number;
  readonly margin: number;

  constructor(readonly embeddingDim: number, readonly classes: number, options: CosineMarginOptions = {}) {
    super();
    this.scale = options.scale ?? 30;
    this.margin = options.margin ?? 0.35;
    if (!(this.scale > 0)) throw new RangeError(`CosineMarginHead: scale must be > 0, got ${this.scale}`);
    if (!(this.margin >= 0 && this.margin < 1)) throw new RangeError(`CosineMarginHead: margin must be in [0, 1), got ${this.margin}`);
    // Random directions from the default generator (seed it first for reproducible runs), short as in
    // insightface's arcface_torch (normal, std 0.01): AdamW's steps of ~lr per element then turn them quickly.
    using initial = randn([classes, embeddingDim]).mul(0.01);
    this.weight = this.registerParameter("weight", new Parameter(initial));
  }

  /** (N, D) unit embeddings → (N, classes) cosines to each identity's direction. */
  cosines(embeddings: Tensor): Tensor {
    using directions = l2Normalize(this.weight);
    using transposed = directions.mT();
    return embeddings.matmul(transposed);
  }

  /** Margin softmax cross-entropy of (N, D) unit embeddings against (N,) int64 identity labels. */
  loss(embeddings: Tensor, labels: Tensor): Tensor {
    using cosines = this.cosines(embeddings);
    using classes = arange(0, this.classes, 1, { device: cosines.device });
    using columns = classes.unsqueeze(0);
    using rows = labels.unsqueeze(1);
    using isTrue = rows.eq(columns);
    using withMargin = cosines.sub(this.margin);
    using adjusted = where(isTrue, withMargin, cosines);
    using logits = adjusted.mul(this.scale);
    return crossEntropy(logits, labels);
  }
}
