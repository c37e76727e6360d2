/**
 * DINOv2 (the DINO role: a self-supervised ViT whose features describe identity and layout rather than text):
 * transformers 5.23's `Dinov2Model` (modeling_dinov2.py) with the same operations in the same order, so outputs
 * match transformers' in fp32 (test/models/dinov2.test.ts measures them).
 *
 * Pixels → patches (a strided convolution with bias) → optional mask tokens → CLS token prepended → learned
 * position embeddings, resampled bicubically to the input's grid (transformers' interpolate_pos_encoding, in
 * float32, always on: the released models are trained at 518 and run at 224) → embedding dropout → N layers of
 * x + LayerScale(attention(norm1(x))), then x + LayerScale(mlp(norm2(x))) (drop path is the identity at
 * inference) → final layernorm. pooler_output is the normed CLS token.
 *
 * Parameter names are those of the released checkpoints (facebook/dinov2-*) and of what transformers 5 saves
 * (it maps them to its own q_proj/k_proj/v_proj/o_proj and gate/up/down modules when loading, and back when
 * saving): "embeddings.cls_token", "embeddings.mask_token", "embeddings.position_embeddings",
 * "embeddings.patch_embeddings.projection.weight", "encoder.layer.0.norm1.weight",
 * "encoder.layer.0.attention.attention.query.weight", "encoder.layer.0.attention.output.dense.weight",
 * "encoder.layer.0.layer_scale1.lambda1", "encoder.layer.0.mlp.fc1.weight" (SwiGLU: "mlp.weights_in.weight",
 * "mlp.weights_out.weight"), "layernorm.weight".
 */
import { join } from "node:path";
import { randn, zeros } from "../../engine/creation.js";
import { cat, dropout, linear } from "../../engine/functional.js";
import { Conv2d, LayerNorm, Linear, Module, ModuleList, type Parameter } from "../../engine/nn/index.js";
import type { Tensor } from "../../engine/tensor.js";
import { clipActivation } from "../clip/text-config.js";
import type { ModelPlacement } from "../clip/text-encoder.js";
import { checkGrid } from "../clip/vision-encoder.js";
import { readComponentConfig } from "../loading/config.js";
import { resolveComponentFolder, type ResolveOptions } from "../loading/resolve.js";
import { loadPretrainedWeights } from "../loading/weights.js";
import { interpolatePositionTable, maskPatchTokens, ViTSelfAttention } from "../vit/vit.js";
import { pair, parseDinov2Config, type Dinov2Config } from "./config.js";

/** The patch projection (transformers' Dinov2PatchEmbeddings). */
export class Dinov2PatchEmbeddings extends Module {
  readonly projection: Conv2d;
  readonly patchSize: [number, number];
  readonly numPatches: number;

  constructor(config: Dinov2Config, placement: ModelPlacement = {}) {
    super();
    const [ih, iw] = pair(config.image_size);
    this.patchSize = pair(config.patch_size);
    this.numPatches = Math.floor(iw / this.patchSize[1]) * Math.floor(ih / this.patchSize[0]);
    this.projection = this.registerModule("projection", new Conv2d(config.num_channels, config.hidden_size, this.patchSize, {
      stride: this.patchSize, ...placement,
    }));
  }

  /** [B, C, H, W] → [B, patches, hidden_size]. */
  forward(pixelValues: Tensor): Tensor {
    using input = pixelValues.to(this.projection.weight.dtype);
    using projected = this.projection.forward(input);
    using flat = projected.flatten(2);
    return flat.transpose(1, 2);
  }
}

/** CLS token, mask token, patch embeddings and interpolated position embeddings (transformers' Dinov2Embeddings). */
export class Dinov2Embeddings extends Module {
  readonly clsToken: Parameter;
  readonly maskToken: Parameter | null;
  readonly patchEmbeddings: Dinov2PatchEmbeddings;
  readonly positionEmbeddings: Parameter;
  readonly dropoutProb: number;

  constructor(config: Dinov2Config, placement: ModelPlacement = {}) {
    super();
    const dim = config.hidden_size;
    using cls = zeros([1, 1, dim], placement);
    this.clsToken = this.registerParameter("cls_token", cls);
    using mask = zeros([1, dim], placement);
    this.maskToken = config.use_mask_token ? this.registerParameter("mask_token", mask) : null;
    this.patchEmbeddings = this.registerModule("patch_embeddings", new Dinov2PatchEmbeddings(config, placement));
    using positions = randn([1, this.patchEmbeddings.numPatches + 1, dim], placement);
    this.positionEmbeddings = this.registerParameter("position_embeddings", positions);
    this.dropoutProb = config.hidden_dropout_prob;
  }

  /**
   * [B, C, H, W] pixels → [B, 1 + patches, hidden_size]. `boolMaskedPos` [B, patches] (true = replace the patch
   * by mask_token) is for masked-image pre-training inputs.
   */
  forward(pixelValues: Tensor, boolMaskedPos?: Tensor): Tensor {
    const [batch, , height, width] = pixelValues.shape as [number, number, number, number];
    let patches = this.patchEmbeddings.forward(pixelValues);
    if (boolMaskedPos !== undefined) {
      using unmasked = patches;
      patches = this.maskPatches(unmasked, boolMaskedPos);
    }
    using patchTokens = patches;
    using cls = this.clsToken.expand(batch, -1, -1);
    using embeddings = cat([cls, patchTokens], 1);
    using positions = this.interpolatePosEncoding(patchTokens.size(1), height, width);
    using withPositions = embeddings.add(positions);
    return dropout(withPositions, this.dropoutProb, this.training);
  }

  private maskPatches(patches: Tensor, boolMaskedPos: Tensor): Tensor {
    return maskPatchTokens(patches, boolMaskedPos, this.maskToken, "Dinov2Model", "the config has use_mask_token false");
  }

  /**
   * transformers' interpolate_pos_encoding: the table itself when the input has the trained number of patches
   * and is square; otherwise the trained grid resampled bicubically (align_corners false) to the input's grid in
   * float32, then cast back, the CLS position kept.
   */
  interpolatePosEncoding(numPatches: number, height: number, width: number): Tensor {
    return interpolatePositionTable(this.positionEmbeddings, this.patchEmbeddings.patchSize, numPatches, height, width, { inFloat32: true });
  }
}

/** Query, key and value projections and the attention itself: transformers 4's Dinov2SelfAttention is ViT's. */
export class Dinov2SelfAttention extends ViTSelfAttention {}

/** The output projection (transformers 4's Dinov2SelfOutput: "dense"). */
export class Dinov2SelfOutput extends Module {
  readonly dense: Linear;

  constructor(config: Dinov2Config, placement: ModelPlacement = {}) {
    super();
    this.dense = this.registerModule("dense", new Linear(config.hidden_size, config.hidden_size, placement));
  }

  forward(hiddenStates: Tensor): Tensor {
    return this.dense.forward(hiddenStates);
  }
}

/** attention.attention (q, k, v) then attention.output (dense): transformers 4's Dinov2Attention. */
export class Dinov2Attention extends Module {
  readonly attention: Dinov2SelfAttention;
  readonly output: Dinov2SelfOutput;

  constructor(config: Dinov2Config, placement: ModelPlacement = {}) {
    super();
    this.attention = this.registerModule("attention", new Dinov2SelfAttention(config, placement));
    this.output = this.registerModule("output", new Dinov2SelfOutput(config, placement));
  }

  forward(hiddenStates: Tensor): Tensor {
    using attended = this.attention.forward(hiddenStates);
    return this.output.forward(attended);
  }
}

/** x · lambda1 (transformers' Dinov2LayerScale). */
export class Dinov2LayerScale extends Module {
  readonly lambda1: Parameter;

  constructor(config: Dinov2Config, placement: ModelPlacement = {}) {
    super();
    using base = zeros([config.hidden_size], placement);
    using initial = base.add(config.layerscale_value);
    this.lambda1 = this.registerParameter("lambda1", initial);
  }

  forward(hiddenState: Tensor): Tensor {
    return hiddenState.mul(this.lambda1);
  }
}

/** fc1 → activation → fc2 (transformers' Dinov2MLP). */
export class Dinov2MLP extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  readonly activation: (x: Tensor) => Tensor;

  constructor(config: Dinov2Config, placement: ModelPlacement = {}) {
    super();
    const hidden = Math.trunc(config.hidden_size * config.mlp_ratio);
    this.activation = clipActivation(config.hidden_act);
    this.fc1 = this.registerModule("fc1", new Linear(config.hidden_size, hidden, placement));
    this.fc2 = this.registerModule("fc2", new Linear(hidden, config.hidden_size, placement));
  }

  forward(hiddenStates: Tensor): Tensor {
    using expanded = this.fc1.forward(hiddenStates);
    using activated = this.activation(expanded);
    return this.fc2.forward(activated);
  }
}

/**
 * down(silu(gate(x)) · up(x)) with the checkpoint's fused weights_in = [gate; up] and weights_out = down.
 * transformers 5 splits weights_in into gate_proj and up_proj when loading and runs them as two linears; the
 * halves are used the same way here (views of weights_in, not one wide matmul), so the sums match.
 */
export class Dinov2SwiGLUFFN extends Module {
  readonly weightsIn: Linear;
  readonly weightsOut: Linear;
  readonly hiddenFeatures: number;

  constructor(config: Dinov2Config, placement: ModelPlacement = {}) {
    super();
    const width = Math.trunc(config.hidden_size * config.mlp_ratio);
    this.hiddenFeatures = Math.floor((Math.trunc((width * 2) / 3) + 7) / 8) * 8;
    this.weightsIn = this.registerModule("weights_in", new Linear(config.hidden_size, 2 * this.hiddenFeatures, placement));
    this.weightsOut = this.registerModule("weights_out", new Linear(this.hiddenFeatures, config.hidden_size, placement));
  }

  forward(hiddenStates: Tensor): Tensor {
    const h = this.hiddenFeatures;
    const { weight, bias } = this.weightsIn;
    using gateWeight = weight.narrow(0, 0, h);
    using upWeight = weight.narrow(0, h, h);
    using gateBias = bias!.narrow(0, 0, h);
    using upBias = bias!.narrow(0, h, h);
    using gate = linear(hiddenStates, gateWeight, gateBias);
    using activated = gate.silu();
    using up = linear(hiddenStates, upWeight, upBias);
    using gated = activated.mul(up);
    return this.weightsOut.forward(gated);
  }
}

/** One pre-norm block with LayerScale (transformers' Dinov2Layer, the original's Block). */
export class Dinov2Layer extends Module {
  readonly norm1: LayerNorm;
  readonly attention: Dinov2Attention;
  readonly layerScale1: Dinov2LayerScale;
  readonly norm2: LayerNorm;
  readonly mlp: Dinov2MLP | Dinov2SwiGLUFFN;
  readonly layerScale2: Dinov2LayerScale;
  readonly dropPathRate: number;

  constructor(config: Dinov2Config, placement: ModelPlacement = {}) {
    super();
    const normOptions = { eps: config.layer_norm_eps, ...placement };
    this.norm1 = this.registerModule("norm1", new LayerNorm(config.hidden_size, normOptions));
    this.attention = this.registerModule("attention", new Dinov2Attention(config, placement));
    this.layerScale1 = this.registerModule("layer_scale1", new Dinov2LayerScale(config, placement));
    this.norm2 = this.registerModule("norm2", new LayerNorm(config.hidden_size, normOptions));
    this.mlp = this.registerModule("mlp", config.use_swiglu_ffn ? new Dinov2SwiGLUFFN(config, placement) : new Dinov2MLP(config, placement));
    this.layerScale2 = this.registerModule("layer_scale2", new Dinov2LayerScale(config, placement));
    this.dropPathRate = config.drop_path_rate;
  }

  forward(hiddenStates: Tensor): Tensor {
    if (this.training && this.dropPathRate > 0) {
      throw new Error(`Dinov2Layer: drop path (drop_path_rate ${this.dropPathRate}) in training mode is not implemented; DINOv2 runs frozen here (call eval())`);
    }
    using normed1 = this.norm1.forward(hiddenStates);
    using attended = this.attention.forward(normed1);
    using scaled1 = this.layerScale1.forward(attended);
    using afterAttention = scaled1.add(hiddenStates);
    using normed2 = this.norm2.forward(afterAttention);
    using fed = this.mlp.forward(normed2);
    using scaled2 = this.layerScale2.forward(fed);
    return scaled2.add(afterAttention);
  }
}

/** The stack of layers (transformers' Dinov2Encoder: "encoder.layer.N"). */
export class Dinov2Encoder extends Module {
  readonly layer: ModuleList<Dinov2Layer>;

  constructor(config: Dinov2Config, placement: ModelPlacement = {}) {
    super();
    this.layer = this.registerModule("layer", new ModuleList(Array.from({ length: config.num_hidden_layers }, () => new Dinov2Layer(config, placement))));
  }

  /** Every layer's output in order when `keepAll`, else only the last (the others freed as soon as they are used). */
  forward(embeddings: Tensor, keepAll = false): Tensor[] {
    const outputs: Tensor[] = [];
    let hidden = embeddings;
    for (const layer of this.layer) {
      const next = layer.forward(hidden);
      if (!keepAll && hidden !== embeddings) hidden.dispose();
      hidden = next;
      if (keepAll) outputs.push(next);
    }
    if (!keepAll) outputs.push(hidden);
    return outputs;
  }
}

export interface Dinov2ForwardOptions {
  /** [B, patches] booleans: patches replaced by mask_token (masked-image pre-training inputs). */
  boolMaskedPos?: Tensor;
  /** Also return `hiddenStates`: the embeddings and every layer's output (before the final layernorm). */
  outputHiddenStates?: boolean;
}

export interface Dinov2ModelOutput {
  /** [B, 1 + patches, hidden_size]: the last layer's output through the final layernorm. */
  lastHiddenState: Tensor;
  /** [B, hidden_size]: lastHiddenState's CLS token (transformers' pooler_output). */
  pooledOutput: Tensor;
  /** num_hidden_layers + 1 tensors [B, 1 + patches, hidden_size], when asked for. */
  hiddenStates?: Tensor[];
}

export interface Dinov2FromPretrainedOptions extends ModelPlacement, ResolveOptions {}

/** transformers' Dinov2Model: embeddings, encoder ("encoder.layer.N"), final layernorm. */
export class Dinov2Model extends Module {
  readonly embeddings: Dinov2Embeddings;
  readonly encoder: Dinov2Encoder;
  readonly layernorm: LayerNorm;

  constructor(readonly config: Dinov2Config, placement: ModelPlacement = {}) {
    super();
    this.embeddings = this.registerModule("embeddings", new Dinov2Embeddings(config, placement));
    this.encoder = this.registerModule("encoder", new Dinov2Encoder(config, placement));
    this.layernorm = this.registerModule("layernorm", new LayerNorm(config.hidden_size, { eps: config.layer_norm_eps, ...placement }));
  }

  /** float [B, num_channels, H, W] pixels (BitImageProcessor's pixel_values), any size of at least one patch. */
  forward(pixelValues: Tensor, options: Dinov2ForwardOptions = {}): Dinov2ModelOutput {
    const channels = this.config.num_channels;
    if (pixelValues.ndim !== 4 || pixelValues.size(1) !== channels) {
      throw new RangeError(`Dinov2Model: pixel values must be [batch, ${channels}, height, width] (num_channels ${channels}), got shape [${pixelValues.shape.join(", ")}]`);
    }
    if (!["float32", "float16", "bfloat16", "float64"].includes(pixelValues.dtype)) {
      throw new TypeError(`Dinov2Model: pixel values must be a floating-point tensor (an image processor's output), got ${pixelValues.dtype}`);
    }
    checkGrid(pixelValues, pair(this.config.patch_size), "Dinov2Model");
    const embeddings = this.embeddings.forward(pixelValues, options.boolMaskedPos);
    const keepAll = options.outputHiddenStates ?? false;
    const layerOutputs = this.encoder.forward(embeddings, keepAll);
    const last = layerOutputs.at(-1)!;
    const lastHiddenState = this.layernorm.forward(last);
    const pooledOutput = lastHiddenState.select(1, 0);
    if (keepAll) return { lastHiddenState, pooledOutput, hiddenStates: [embeddings, ...layerOutputs] };
    embeddings.dispose();
    last.dispose();
    return { lastHiddenState, pooledOutput };
  }

  /**
   * transformers' `Dinov2Model.from_pretrained(id_or_path, subfolder=...)`: a folder, a cached or downloaded hub
   * repository (src/models/loading/resolve.ts) or its `subfolder`; one safetensors file, a variant or shards. In
   * eval mode, fp32 unless `dtype` says otherwise.
   */
  static async fromPretrained(idOrPath: string, options: Dinov2FromPretrainedOptions = {}): Promise<Dinov2Model> {
    return Dinov2Model.fromFolder(await resolveComponentFolder(idOrPath, "Dinov2Model", options), options);
  }

  /** `fromPretrained` for a component folder already on disk (synchronous). */
  static fromFolder(componentDir: string, options: Dinov2FromPretrainedOptions = {}): Dinov2Model {
    const config = parseDinov2Config(readComponentConfig(componentDir), join(componentDir, "config.json"));
    const placement: ModelPlacement = { dtype: options.dtype ?? "float32", ...(options.device === undefined ? {} : { device: options.device }) };
    const model = new Dinov2Model(config, placement);
    try {
      loadPretrainedWeights(model, componentDir, { ...placement, ...(options.variant === undefined ? {} : { variant: options.variant }) });
    } catch (error) {
      model.dispose();
      throw error;
    }
    return model.eval();
  }
}
