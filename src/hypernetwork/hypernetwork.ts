/**
 * HyperNetwork (HyperDreamBooth §4.2): image features f of one face photo → the LiDB factors of every adapted
 * layer, in one forward pass with s rounds of iterative refinement:
 *
 *     θ_0 = the LiDB initialisation (A_train = 0, B_train = its per-layer init; see below)
 *     token_l = W_in · θ_{k-1,l} + e_l                         one weight token per layer l (176 for SD1.5)
 *     h = TransformerDecoder(tokens; f)                        self-attention over the layers, cross-attention to f
 *     Δθ_l = (W_head · LayerNorm(h_l)) ⊙ g_l + c_l             shared head, per-layer gain g_l and offset c_l
 *     θ_k = θ_{k-1} + Δθ                                       k = 1 … s
 *
 * θ_l holds layer l's A_train (a×r) then B_train (r×b), flattened: exactly the LiDB file's per-layer factors
 * (src/adapters/lidb/file.ts), so a prediction saves as a ~100 KB LiDB file and is applied by the existing
 * batched per-sample adapter path.
 *
 * Choices, and why:
 * - θ_0 is the LiDB initialisation, not zero. The paper initialises the weight tokens to zero; here the tokens
 *   start from what per-identity DreamBooth starts from (A_train = 0 and the deterministic B_train init of each
 *   layer, from the basis seed and the layer's name), so the rounds only learn the identity's change and a
 *   prediction is in the same gauge as the pre-optimised factors it is compared with.
 * - One head shared by all layers, with a learned per-layer gain, instead of 176 heads: every token already
 *   carries its layer's embedding through the decoder, the factors of every layer have the same shape, and a
 *   shared head is 176× smaller (the bundle stays a few MB). The per-layer gain and offset let layers differ in
 *   scale and hold what all identities share (a layer's mean change): the shared head alone, mapping L tokens
 *   through one matrix, learned that part slowly (measured on the tiny test set: relative weight error 0.88
 *   after 60 steps without the offset, where predicting the mean change alone gives 0.20).
 * - The head starts small, not zero (config.head_init_std): see config.ts and prior-art mistake 2.
 * - The decoder layers are diffusers' BasicTransformerBlock (pre-LayerNorm self-attention, cross-attention to
 *   the encoder's tokens, GELU feed-forward), the same code the UNet runs.
 */
import { cat, noGrad, tensor, tidy, zeros, type Tensor } from "../engine/index.js";
import { Buffer, init, LayerNorm, Linear, Module, ModuleList, Parameter } from "../engine/nn/index.js";
import { lidbBTrainInit } from "../adapters/lidb/model.js";
import { BasicTransformerBlock } from "../models/blocks/transformer.js";
import { valuesPerLayer, type HyperNetworkConfig } from "./config.js";

/** Predicted LiDB factors for a batch of photos: aTrain (B, L, a, r) and bTrain (B, L, r, b). */
export interface PredictedFactors {
  aTrain: Tensor;
  bTrain: Tensor;
}

export class HyperNetwork extends Module {
  readonly featureNorm: LayerNorm;
  readonly inputProjection: Linear;
  /** e_l: one learned embedding per layer (L, hidden). */
  readonly layerEmbedding: Parameter;
  readonly decoder: ModuleList<BasicTransformerBlock>;
  readonly outputNorm: LayerNorm;
  readonly head: Linear;
  /** g_l: per-layer gain on the head's output (L, values per layer), starting at 1. */
  readonly outputGain: Parameter;
  /** c_l: per-layer offset of each round's step (L, values per layer), starting at 0. */
  readonly outputOffset: Parameter;
  /** θ_0 (L, values per layer): A_train = 0, B_train = the LiDB init of each layer. Moved with the module, not saved. */
  readonly initial: Buffer;

  constructor(readonly config: HyperNetworkConfig) {
    super();
    const layers = config.layers.length;
    const values = valuesPerLayer(config);
    const d = config.hidden_size;
    this.featureNorm = this.registerModule("feature_norm", new LayerNorm(config.encoder_hidden_size));
    this.inputProjection = this.registerModule("input_projection", new Linear(values, d));
    this.layerEmbedding = this.registerParameter("layer_embedding", noGrad(() => init.normal_(Parameter.empty([layers, d]), 0, 0.02)));
    this.decoder = this.registerModule("decoder", new ModuleList(Array.from({ length: config.num_layers }, () => new BasicTransformerBlock({
      dim: d, numAttentionHeads: config.num_heads, attentionHeadDim: config.head_dim, crossAttentionDim: config.encoder_hidden_size, activationFn: "gelu",
    }))));
    this.outputNorm = this.registerModule("output_norm", new LayerNorm(d));
    this.head = this.registerModule("head", new Linear(d, values));
    noGrad(() => {
      init.normal_(this.head.weight, 0, config.head_init_std);
      init.zeros_(this.head.bias!);
    });
    this.outputGain = this.registerParameter("output_gain", noGrad(() => init.ones_(Parameter.empty([layers, values]))));
    this.outputOffset = this.registerParameter("output_offset", noGrad(() => init.zeros_(Parameter.empty([layers, values]))));
    const dims = { a: config.lidb_a, b: config.lidb_b, rank: config.lidb_rank };
    using initial = tidy(() => cat(config.layers.map((name) => cat([zeros([dims.a * dims.rank]), tensor(lidbBTrainInit(config.lidb_seed, name, dims))]).unsqueeze(0))));
    this.initial = this.registerBuffer("initial", initial, { persistent: false });
  }

  /** The layers' count L and the values per layer. */
  get shape(): { layers: number; values: number } {
    return { layers: this.config.layers.length, values: valuesPerLayer(this.config) };
  }

  /**
   * θ_s for a batch: `features` (B, T, encoder_hidden_size) are the encoder's tokens of each photo. Returns
   * the flattened factors (B, L, values) after `rounds` rounds (default config.rounds).
   */
  forward(features: Tensor, options: { rounds?: number } = {}): Tensor {
    return this.refine(features, options.rounds ?? this.config.rounds).at(-1)!;
  }

  /** θ_1 … θ_s (each (B, L, values)). */
  refine(features: Tensor, rounds: number): Tensor[] {
    if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`HyperNetwork: rounds must be a positive integer, got ${rounds}`);
    const [batch, , width] = features.shape;
    if (features.ndim !== 3 || width !== this.config.encoder_hidden_size) {
      throw new Error(`HyperNetwork: features must be (B, T, ${this.config.encoder_hidden_size}), got [${features.shape.join(", ")}]`);
    }
    const { layers, values } = this.shape;
    return tidy(() => {
      const thetas: Tensor[] = [];
      const context = this.featureNorm.forward(features);
      let theta = this.initial.to({ dtype: features.dtype }).unsqueeze(0).expand(batch!, layers, values);
      for (let k = 0; k < rounds; k++) {
        let hidden = this.inputProjection.forward(theta).add(this.layerEmbedding);
        for (const block of this.decoder) hidden = block.forward(hidden, { encoderHiddenStates: context });
        const delta = this.head.forward(this.outputNorm.forward(hidden)).mul(this.outputGain).add(this.outputOffset);
        theta = theta.add(delta);
        thetas.push(theta);
      }
      return thetas;
    });
  }

  /** Flattened factors (B, L, values) → aTrain (B, L, a, r) and bTrain (B, L, r, b), as views. */
  split(theta: Tensor): PredictedFactors {
    const { lidb_a: a, lidb_b: b, lidb_rank: r } = this.config;
    const [batch, layers] = theta.shape;
    return {
      aTrain: theta.narrow(2, 0, a * r).reshape(batch!, layers!, a, r),
      bTrain: theta.narrow(2, a * r, r * b).reshape(batch!, layers!, r, b),
    };
  }
}
