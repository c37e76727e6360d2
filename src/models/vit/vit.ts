/**
 * A plain ViT, the network of the DINO metric (HyperDreamBooth §5, after DreamBooth: facebook/dino-vits16, the
 * CLS token of the last hidden state): transformers 5.23's `ViTModel` (modeling_vit.py) with the same operations
 * in the same order, so outputs match transformers' in fp32 (test/models/vit.test.ts measures them).
 *
 * Pixels → patches (a strided convolution with bias) → optional mask tokens → CLS token prepended → learned
 * position embeddings (the trained table, or, with interpolatePosEncoding, resampled bicubically to the input's
 * grid) → embedding dropout → N layers of x + attention(layernorm_before(x)), then x + mlp(layernorm_after(x)) →
 * final layernorm → optional pooler (dense + tanh on the CLS token; dino-vits16 has none).
 *
 * Parameter names are those of the released checkpoints and of what transformers 5 saves (it maps them to its own
 * layers.N.attention.q_proj / mlp.fc1 modules when loading, and back when saving): "embeddings.cls_token",
 * "embeddings.position_embeddings", "embeddings.patch_embeddings.projection.weight",
 * "encoder.layer.0.attention.attention.query.weight", "encoder.layer.0.attention.output.dense.weight",
 * "encoder.layer.0.intermediate.dense.weight", "encoder.layer.0.output.dense.weight",
 * "encoder.layer.0.layernorm_before.weight", "encoder.layer.0.layernorm_after.weight", "layernorm.weight",
 * "pooler.dense.weight" (when present).
 */
import { join } from "node:path";
import { randn, zeros } from "../../engine/creation.js";
import { cat, dropout, interpolate, scaledDotProductAttention } from "../../engine/functional.js";
import { Conv2d, LayerNorm, Linear, Module, ModuleList, type Parameter } from "../../engine/nn/index.js";
import { readSafetensorsHeader } from "../../engine/safetensors/index.js";
import type { Tensor } from "../../engine/tensor.js";
import { clipActivation } from "../clip/text-config.js";
import { inverseSqrt, type ModelPlacement } from "../clip/text-encoder.js";
import { checkGrid } from "../clip/vision-encoder.js";
import { readComponentConfig } from "../loading/config.js";
import { ModelLoadingError } from "../loading/errors.js";
import { resolveComponentFolder, type ResolveOptions } from "../loading/resolve.js";
import { findWeightFiles, loadPretrainedWeights } from "../loading/weights.js";
import { pair, parseViTConfig, type ViTConfig } from "./config.js";

/** The patch projection (transformers' ViTPatchEmbeddings). */
export class ViTPatchEmbeddings extends Module {
  readonly projection: Conv2d;
  readonly patchSize: [number, number];
  readonly numPatches: number;

  constructor(config: ViTConfig, placement: ModelPlacement = {}) {
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
    using projected = this.projection.forward(pixelValues);
    using flat = projected.flatten(2);
    return flat.transpose(1, 2);
  }
}

/** CLS token, optional mask token, patch embeddings and position embeddings (transformers' ViTEmbeddings). */
export class ViTEmbeddings extends Module {
  readonly clsToken: Parameter;
  readonly maskToken: Parameter | null;
  readonly patchEmbeddings: ViTPatchEmbeddings;
  readonly positionEmbeddings: Parameter;
  readonly imageSize: [number, number];
  readonly dropoutProb: number;

  constructor(config: ViTConfig, placement: ModelPlacement = {}, useMaskToken = false) {
    super();
    const dim = config.hidden_size;
    using cls = randn([1, 1, dim], placement);
    this.clsToken = this.registerParameter("cls_token", cls);
    using mask = zeros([1, 1, dim], placement);
    this.maskToken = useMaskToken ? this.registerParameter("mask_token", mask) : null;
    this.patchEmbeddings = this.registerModule("patch_embeddings", new ViTPatchEmbeddings(config, placement));
    using positions = randn([1, this.patchEmbeddings.numPatches + 1, dim], placement);
    this.positionEmbeddings = this.registerParameter("position_embeddings", positions);
    this.imageSize = pair(config.image_size);
    this.dropoutProb = config.hidden_dropout_prob;
  }

  /**
   * [B, C, H, W] pixels → [B, 1 + patches, hidden_size]. Without `interpolatePosEncoding` the input must have the
   * trained size (transformers' error otherwise). `boolMaskedPos` [B, patches] (true = replace the patch by
   * mask_token) needs a model built with a mask token.
   */
  forward(pixelValues: Tensor, interpolatePosEncoding = false, boolMaskedPos?: Tensor): Tensor {
    const [batch, , height, width] = pixelValues.shape as [number, number, number, number];
    if (!interpolatePosEncoding && (height !== this.imageSize[0] || width !== this.imageSize[1])) {
      throw new RangeError(
        `ViTModel: input image size (${height}*${width}) doesn't match model (${this.imageSize[0]}*${this.imageSize[1]}); ` +
          "resize it (ViTImageProcessor) or pass interpolatePosEncoding: true",
      );
    }
    let patches = this.patchEmbeddings.forward(pixelValues);
    if (boolMaskedPos !== undefined) {
      using unmasked = patches;
      patches = this.maskPatches(unmasked, boolMaskedPos);
    }
    using patchTokens = patches;
    using cls = this.clsToken.expand(batch, -1, -1);
    using embeddings = cat([cls, patchTokens], 1);
    using positions = interpolatePosEncoding ? this.interpolatePosEncoding(patchTokens.size(1), height, width) : this.positionEmbeddings.alias();
    using withPositions = embeddings.add(positions);
    return dropout(withPositions, this.dropoutProb, this.training);
  }

  private maskPatches(patches: Tensor, boolMaskedPos: Tensor): Tensor {
    return maskPatchTokens(patches, boolMaskedPos, this.maskToken, "ViTModel", "build the model with useMaskToken");
  }

  /**
   * transformers' interpolate_pos_encoding: the table itself when the input has the trained number of patches and
   * is square; otherwise the trained grid resampled bicubically (align_corners false, in the table's dtype) to the
   * input's grid, the CLS position kept.
   */
  interpolatePosEncoding(numPatches: number, height: number, width: number): Tensor {
    return interpolatePositionTable(this.positionEmbeddings, this.patchEmbeddings.patchSize, numPatches, height, width, { inFloat32: false });
  }
}

/**
 * embeddings · (1 − mask) + mask_token · mask, as transformers' ViT and DINOv2 compute it. `owner` names the model
 * in errors, `hint` says how to get a mask token.
 */
export function maskPatchTokens(patches: Tensor, boolMaskedPos: Tensor, maskToken: Tensor | null, owner: string, hint: string): Tensor {
  const [batch, seqLen] = patches.shape as [number, number, number];
  if (maskToken === null) throw new RangeError(`${owner}: boolMaskedPos needs a mask_token (${hint})`);
  if (boolMaskedPos.ndim !== 2 || boolMaskedPos.size(0) !== batch || boolMaskedPos.size(1) !== seqLen) {
    throw new RangeError(`${owner}: boolMaskedPos must have shape [${batch}, ${seqLen}] (batch, patches), got [${boolMaskedPos.shape.join(", ")}]`);
  }
  using maskTokens = maskToken.expand(batch, seqLen, -1);
  using column = boolMaskedPos.unsqueeze(-1);
  using mask = column.to({ dtype: maskTokens.dtype, device: maskTokens.device });
  using keep = mask.rsub(1);
  using kept = patches.mul(keep);
  using replaced = maskTokens.mul(mask);
  return kept.add(replaced);
}

/**
 * transformers' interpolate_pos_encoding for the ViT family: the table itself when the input has the trained number
 * of patches and is square; otherwise the trained grid resampled bicubically (align_corners false) to the input's
 * grid, the CLS position kept. ViT resamples in the table's dtype; DINOv2 in float32, then casts back (`inFloat32`).
 */
export function interpolatePositionTable(table: Tensor, patchSize: readonly [number, number], numPatches: number, height: number, width: number,
  options: { inFloat32: boolean }): Tensor {
  const numPositions = table.size(1) - 1;
  if (numPatches === numPositions && height === width) return table.alias();
  const dim = table.size(2);
  const [ph, pw] = patchSize;
  const side = Math.trunc(Math.sqrt(numPositions));
  using classPosition = table.slice(1, 0, 1);
  using patchPositions = table.slice(1, 1);
  using grid = patchPositions.reshape(1, side, side, dim);
  using channelsFirst = grid.permute(0, 3, 1, 2);
  using source = options.inFloat32 ? channelsFirst.to("float32") : channelsFirst.alias();
  using resized = interpolate(source, { size: [Math.floor(height / ph), Math.floor(width / pw)], mode: "bicubic", alignCorners: false });
  using cast = options.inFloat32 ? resized.to(table.dtype) : resized.alias();
  using channelsLast = cast.permute(0, 2, 3, 1);
  using sequence = channelsLast.view(1, -1, dim);
  return cat([classPosition, sequence], 1);
}

/** What the ViT family's self-attention reads of its config (ViTConfig and Dinov2Config both have it). */
export type SelfAttentionConfig = Pick<ViTConfig, "hidden_size" | "num_attention_heads" | "qkv_bias" | "attention_probs_dropout_prob">;

/**
 * Query, key and value projections and the attention itself (transformers 4's ViTSelfAttention, which its
 * Dinov2SelfAttention copies: DINOv2 uses this class too).
 */
export class ViTSelfAttention extends Module {
  readonly query: Linear;
  readonly key: Linear;
  readonly value: Linear;
  readonly headDim: number;
  /** head_dim ** -0.5, correctly rounded as Python computes it (see inverseSqrt). */
  readonly scale: number;
  readonly dropoutProb: number;

  constructor(config: SelfAttentionConfig, placement: ModelPlacement = {}) {
    super();
    const dim = config.hidden_size;
    this.headDim = Math.floor(dim / config.num_attention_heads);
    this.scale = inverseSqrt(this.headDim);
    this.dropoutProb = config.attention_probs_dropout_prob;
    const options = { bias: config.qkv_bias, ...placement };
    this.query = this.registerModule("query", new Linear(dim, dim, options));
    this.key = this.registerModule("key", new Linear(dim, dim, options));
    this.value = this.registerModule("value", new Linear(dim, dim, options));
  }

  /** [B, T, D] → [B, T, D] (heads merged, before the output projection); every token attends to every token. */
  forward(hiddenStates: Tensor): Tensor {
    const [batch, time] = hiddenStates.shape as [number, number, number];
    const heads = (projection: Linear): Tensor => {
      using projected = projection.forward(hiddenStates);
      using split = projected.view(batch, time, -1, this.headDim);
      return split.transpose(1, 2);
    };
    using q = heads(this.query);
    using k = heads(this.key);
    using v = heads(this.value);
    using attended = scaledDotProductAttention(q, k, v, { dropoutP: this.training ? this.dropoutProb : 0.0, scale: this.scale });
    using transposed = attended.transpose(1, 2);
    using contiguous = transposed.contiguous();
    return contiguous.reshape(batch, time, -1);
  }
}

/** A dense layer under the checkpoint's "dense" name (ViTSelfOutput, ViTOutput); dropout in training mode. */
export class ViTDense extends Module {
  readonly dense: Linear;
  readonly dropoutProb: number;

  constructor(inFeatures: number, outFeatures: number, dropoutProb: number, placement: ModelPlacement = {}) {
    super();
    this.dense = this.registerModule("dense", new Linear(inFeatures, outFeatures, placement));
    this.dropoutProb = dropoutProb;
  }

  forward(hiddenStates: Tensor): Tensor {
    using projected = this.dense.forward(hiddenStates);
    return dropout(projected, this.dropoutProb, this.training);
  }
}

/** attention.attention (q, k, v) then attention.output (dense): transformers 4's ViTAttention. */
export class ViTAttention extends Module {
  readonly attention: ViTSelfAttention;
  readonly output: ViTDense;

  constructor(config: ViTConfig, placement: ModelPlacement = {}) {
    super();
    this.attention = this.registerModule("attention", new ViTSelfAttention(config, placement));
    this.output = this.registerModule("output", new ViTDense(config.hidden_size, config.hidden_size, config.hidden_dropout_prob, placement));
  }

  forward(hiddenStates: Tensor): Tensor {
    using attended = this.attention.forward(hiddenStates);
    return this.output.forward(attended);
  }
}

/** intermediate.dense → activation (transformers 4's ViTIntermediate). */
export class ViTIntermediate extends Module {
  readonly dense: Linear;
  readonly activation: (x: Tensor) => Tensor;

  constructor(config: ViTConfig, placement: ModelPlacement = {}) {
    super();
    this.dense = this.registerModule("dense", new Linear(config.hidden_size, config.intermediate_size, placement));
    this.activation = clipActivation(config.hidden_act);
  }

  forward(hiddenStates: Tensor): Tensor {
    using expanded = this.dense.forward(hiddenStates);
    return this.activation(expanded);
  }
}

/** One pre-norm block (transformers' ViTLayer). */
export class ViTLayer extends Module {
  readonly attention: ViTAttention;
  readonly intermediate: ViTIntermediate;
  readonly output: ViTDense;
  readonly layernormBefore: LayerNorm;
  readonly layernormAfter: LayerNorm;

  constructor(config: ViTConfig, placement: ModelPlacement = {}) {
    super();
    const normOptions = { eps: config.layer_norm_eps, ...placement };
    this.attention = this.registerModule("attention", new ViTAttention(config, placement));
    this.intermediate = this.registerModule("intermediate", new ViTIntermediate(config, placement));
    this.output = this.registerModule("output", new ViTDense(config.intermediate_size, config.hidden_size, config.hidden_dropout_prob, placement));
    this.layernormBefore = this.registerModule("layernorm_before", new LayerNorm(config.hidden_size, normOptions));
    this.layernormAfter = this.registerModule("layernorm_after", new LayerNorm(config.hidden_size, normOptions));
  }

  forward(hiddenStates: Tensor): Tensor {
    using normedBefore = this.layernormBefore.forward(hiddenStates);
    using attended = this.attention.forward(normedBefore);
    using afterAttention = attended.add(hiddenStates);
    using normedAfter = this.layernormAfter.forward(afterAttention);
    using expanded = this.intermediate.forward(normedAfter);
    using fed = this.output.forward(expanded);
    return fed.add(afterAttention);
  }
}

/** The stack of layers ("encoder.layer.N"). */
export class ViTEncoder extends Module {
  readonly layer: ModuleList<ViTLayer>;

  constructor(config: ViTConfig, placement: ModelPlacement = {}) {
    super();
    this.layer = this.registerModule("layer", new ModuleList(Array.from({ length: config.num_hidden_layers }, () => new ViTLayer(config, placement))));
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

/** dense + activation on the CLS token (transformers' ViTPooler). */
export class ViTPooler extends Module {
  readonly dense: Linear;
  readonly activation: (x: Tensor) => Tensor;

  constructor(config: ViTConfig, placement: ModelPlacement = {}) {
    super();
    this.dense = this.registerModule("dense", new Linear(config.hidden_size, config.pooler_output_size, placement));
    const act = config.pooler_act;
    this.activation = act === "tanh" ? (x) => x.tanh() : clipActivation(act);
  }

  forward(lastHiddenState: Tensor): Tensor {
    using first = lastHiddenState.select(1, 0);
    using pooled = this.dense.forward(first);
    return this.activation(pooled);
  }
}

export interface ViTModelOptions {
  /** Build the pooler (transformers' add_pooling_layer; default true, as transformers). */
  addPoolingLayer?: boolean;
  /** Build a mask token (transformers' use_mask_token; default false). */
  useMaskToken?: boolean;
}

export interface ViTForwardOptions {
  /** Resample the position embeddings to the input's size (transformers' interpolate_pos_encoding). */
  interpolatePosEncoding?: boolean;
  /** [B, patches] booleans: patches replaced by mask_token. */
  boolMaskedPos?: Tensor;
  /** Also return `hiddenStates`: the embeddings and every layer's output (before the final layernorm). */
  outputHiddenStates?: boolean;
}

export interface ViTModelOutput {
  /** [B, 1 + patches, hidden_size]: the last layer's output through the final layernorm. */
  lastHiddenState: Tensor;
  /** [B, pooler_output_size]: the pooler's output, null for a model without pooler (dino-vits16). */
  pooledOutput: Tensor | null;
  /** num_hidden_layers + 1 tensors [B, 1 + patches, hidden_size], when asked for. */
  hiddenStates?: Tensor[];
}

export interface ViTFromPretrainedOptions extends ModelPlacement, ResolveOptions {}

/** transformers' ViTModel: embeddings, encoder ("encoder.layer.N"), final layernorm, optional pooler. */
export class ViTModel extends Module {
  readonly embeddings: ViTEmbeddings;
  readonly encoder: ViTEncoder;
  readonly layernorm: LayerNorm;
  readonly pooler: ViTPooler | null;

  constructor(readonly config: ViTConfig, placement: ModelPlacement = {}, options: ViTModelOptions = {}) {
    super();
    this.embeddings = this.registerModule("embeddings", new ViTEmbeddings(config, placement, options.useMaskToken ?? false));
    this.encoder = this.registerModule("encoder", new ViTEncoder(config, placement));
    this.layernorm = this.registerModule("layernorm", new LayerNorm(config.hidden_size, { eps: config.layer_norm_eps, ...placement }));
    this.pooler = (options.addPoolingLayer ?? true) ? this.registerModule("pooler", new ViTPooler(config, placement)) : null;
  }

  /** float [B, num_channels, H, W] pixels (ViTImageProcessor's pixel_values). */
  forward(pixelValues: Tensor, options: ViTForwardOptions = {}): ViTModelOutput {
    const channels = this.config.num_channels;
    if (pixelValues.ndim !== 4 || pixelValues.size(1) !== channels) {
      throw new RangeError(`ViTModel: pixel values must be [batch, ${channels}, height, width] (num_channels ${channels}), got shape [${pixelValues.shape.join(", ")}]`);
    }
    if (!["float32", "float16", "bfloat16", "float64"].includes(pixelValues.dtype)) {
      throw new TypeError(`ViTModel: pixel values must be a floating-point tensor (an image processor's output), got ${pixelValues.dtype}`);
    }
    const interpolatePositions = options.interpolatePosEncoding ?? false;
    if (interpolatePositions) checkGrid(pixelValues, pair(this.config.patch_size), "ViTModel");
    using input = pixelValues.to(this.embeddings.patchEmbeddings.projection.weight.dtype);
    const embeddings = this.embeddings.forward(input, interpolatePositions, options.boolMaskedPos);
    const keepAll = options.outputHiddenStates ?? false;
    const layerOutputs = this.encoder.forward(embeddings, keepAll);
    const last = layerOutputs.at(-1)!;
    const lastHiddenState = this.layernorm.forward(last);
    const pooledOutput = this.pooler ? this.pooler.forward(lastHiddenState) : null;
    if (keepAll) return { lastHiddenState, pooledOutput, hiddenStates: [embeddings, ...layerOutputs] };
    embeddings.dispose();
    last.dispose();
    return { lastHiddenState, pooledOutput };
  }

  /**
   * transformers' `ViTModel.from_pretrained(id_or_path, subfolder=...)`: a folder, a cached or downloaded hub
   * repository (src/models/loading/resolve.ts) or its `subfolder`; one safetensors file, a variant or shards. The
   * pooler and the mask token are built when the checkpoint holds them (facebook/dino-vits16 has neither). In eval
   * mode, fp32 unless `dtype` says otherwise.
   */
  static async fromPretrained(idOrPath: string, options: ViTFromPretrainedOptions = {}): Promise<ViTModel> {
    return ViTModel.fromFolder(await resolveComponentFolder(idOrPath, "ViTModel", options), options);
  }

  /** `fromPretrained` for a component folder already on disk (synchronous). */
  static fromFolder(componentDir: string, options: ViTFromPretrainedOptions = {}): ViTModel {
    const config = parseViTConfig(readComponentConfig(componentDir), join(componentDir, "config.json"));
    const found = findWeightFiles(componentDir, options.variant);
    const keys = new Set(found.weightMap ? found.weightMap.keys() : readSafetensorsHeader(found.files[0]!).entries.keys());
    if (!keys.has("embeddings.cls_token") && keys.has("vit.embeddings.cls_token")) {
      throw new ModelLoadingError(`${componentDir}: the checkpoint's keys start with "vit." (a ViT with a task head, e.g. ViTForImageClassification); only ViTModel checkpoints such as facebook/dino-vits16 are loaded`);
    }
    const placement: ModelPlacement = { dtype: options.dtype ?? "float32", ...(options.device === undefined ? {} : { device: options.device }) };
    const model = new ViTModel(config, placement, { addPoolingLayer: keys.has("pooler.dense.weight"), useMaskToken: keys.has("embeddings.mask_token") });
    try {
      loadPretrainedWeights(model, componentDir, { ...placement, ...(options.variant === undefined ? {} : { variant: options.variant }) });
    } catch (error) {
      model.dispose();
      throw error;
    }
    return model.eval();
  }
}
