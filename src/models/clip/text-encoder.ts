/**
 * CLIP's text tower, Stable Diffusion's text encoder: transformers 5.23's `CLIPTextModel` (and
 * `CLIPTextModelWithProjection`) with the same operations in the same order, so outputs and gradients match.
 *
 * Token ids → token embedding + learned position embedding → N pre-LayerNorm transformer layers (causal
 * multi-head self-attention, then an MLP with quick_gelu for SD1 or gelu for SD2) → final LayerNorm. The pooled
 * output is the final state at the end token. Stable Diffusion conditions its UNet on the whole sequence
 * (`lastHiddenState`), or, with "clip skip", on an earlier layer's output passed through the final LayerNorm.
 *
 * Parameter names are the checkpoint's: "text_model.embeddings.token_embedding.weight",
 * "text_model.encoder.layers.0.self_attn.q_proj.weight", …, "text_model.final_layer_norm.weight", so a
 * pipeline's `text_encoder/` folder and LoRA keys apply unchanged. (transformers 5 saves CLIPTextModel without
 * the "text_model." prefix; `fromPretrained` reads both layouts.)
 */
import { join } from "node:path";
import type { DType } from "../../engine/dtype.js";
import { arange, full } from "../../engine/creation.js";
import { scaledDotProductAttention } from "../../engine/functional.js";
import { Embedding, LayerNorm, Linear, Module, ModuleList, type Buffer } from "../../engine/nn/index.js";
import { readSafetensorsHeader } from "../../engine/safetensors/index.js";
import type { Device, Tensor } from "../../engine/tensor.js";
import { readComponentConfig } from "../loading/config.js";
import { ModelLoadingError } from "../loading/errors.js";
import { findWeightFiles, loadPretrainedWeights } from "../loading/weights.js";
import { clipActivation, parseCLIPTextConfig, type CLIPTextConfig } from "./text-config.js";

/** Where and in which floating-point type a new model's weights live. */
export interface ModelPlacement {
  dtype?: DType;
  device?: Device;
}

/**
 * n ** -0.5 correctly rounded. transformers computes the attention scale as `head_dim ** -0.5` in Python (C's
 * pow), which is correctly rounded for every head size up to 1768; V8's `**` is not (8 ** -0.5 is 1 ulp off),
 * and the scale enters every attention score, so it is computed exactly here: the double nearest 1/sqrt(n) is
 * the candidate whose neighbouring midpoints bracket it, which exact integer arithmetic decides.
 */
export function inverseSqrt(n: number): number {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`inverseSqrt needs a positive integer, got ${n}`);
  const estimate = 1 / Math.sqrt(n);
  for (const candidate of [estimate, adjacentDouble(estimate, -1), adjacentDouble(estimate, 1)]) {
    const below = midpointSquaredTimes(n, adjacentDouble(candidate, -1), candidate);
    const above = midpointSquaredTimes(n, candidate, adjacentDouble(candidate, 1));
    if (below <= 0 && above >= 0) return candidate;
  }
  return estimate;
}

/** The next (+1) or previous (-1) double of a positive finite x. */
function adjacentDouble(x: number, direction: 1 | -1): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  view.setBigUint64(0, view.getBigUint64(0) + BigInt(direction));
  return view.getFloat64(0);
}

/** Sign of ((a + b) / 2)² · n − 1, exactly, for positive normal doubles a and b. */
function midpointSquaredTimes(n: number, a: number, b: number): number {
  const parts = (x: number): [bigint, number] => {
    const view = new DataView(new ArrayBuffer(8));
    view.setFloat64(0, x);
    const bits = view.getBigUint64(0);
    return [(bits & ((1n << 52n) - 1n)) | (1n << 52n), Number(bits >> 52n) - 1075];
  };
  const [ma, ea] = parts(a);
  const [mb, eb] = parts(b);
  const e = Math.min(ea, eb);
  // a + b = sum · 2^e, so ((a + b) / 2)² · n = sum² · n · 2^(2e − 2), compared with 1 = 2^(2 − 2e) · 2^(2e − 2).
  const sum = (ma << BigInt(ea - e)) + (mb << BigInt(eb - e));
  const left = sum * sum * BigInt(n);
  const right = 1n << BigInt(2 - 2 * e);
  return left < right ? -1 : left > right ? 1 : 0;
}

/** Token embedding plus learned absolute position embedding. */
export class CLIPTextEmbeddings extends Module {
  readonly tokenEmbedding: Embedding;
  readonly positionEmbedding: Embedding;
  /**
   * [[0, 1, …, max_position_embeddings - 1]] (int64), a non-persistent buffer as in transformers: not part of
   * the state dict; checkpoints from older transformers that store it have it ignored when loading.
   */
  readonly positionIds: Buffer;

  constructor(config: CLIPTextConfig, placement: ModelPlacement = {}) {
    super();
    this.tokenEmbedding = this.registerModule("token_embedding", new Embedding(config.vocab_size, config.hidden_size, placement));
    this.positionEmbedding = this.registerModule(
      "position_embedding", new Embedding(config.max_position_embeddings, config.hidden_size, placement),
    );
    using positions = arange(config.max_position_embeddings, undefined, 1, { dtype: "int64", device: placement.device ?? "cpu" });
    using row = positions.unsqueeze(0);
    this.positionIds = this.registerBuffer("position_ids", row, { persistent: false });
  }

  /** int [B, T] token ids → [B, T, hidden_size]. */
  forward(inputIds: Tensor): Tensor {
    const seqLength = inputIds.size(-1);
    const maxPositions = this.positionEmbedding.weight.size(0);
    if (seqLength > maxPositions) {
      throw new RangeError(`CLIPTextEmbeddings: sequence length ${seqLength} exceeds max_position_embeddings ${maxPositions}`);
    }
    using positionIds = this.positionIds.slice(1, 0, seqLength);
    using inputsEmbeds = this.tokenEmbedding.forward(inputIds);
    using positionEmbeddings = this.positionEmbedding.forward(positionIds);
    return inputsEmbeds.add(positionEmbeddings);
  }
}

/**
 * What CLIP's transformer layers read from a tower's config: CLIPTextConfig and CLIPVisionConfig both have these
 * fields, so the text and vision towers share CLIPAttention, CLIPMLP, CLIPEncoderLayer and CLIPEncoder, as
 * transformers' modeling_clip.py does.
 */
export type CLIPEncoderConfig = Pick<
  CLIPTextConfig,
  "hidden_size" | "intermediate_size" | "num_hidden_layers" | "num_attention_heads" | "hidden_act" | "layer_norm_eps" | "attention_dropout"
>;

/**
 * Whether a layer's attention is causal: the text tower's is (true, the default), the vision tower's is not
 * (transformers' CLIPAttention has is_causal = False and the text model passes a causal mask).
 */
export interface CLIPLayerOptions {
  causal?: boolean;
}

/** Multi-head self-attention through ATen's scaled_dot_product_attention (transformers' "sdpa" path). */
export class CLIPAttention extends Module {
  readonly kProj: Linear;
  readonly vProj: Linear;
  readonly qProj: Linear;
  readonly outProj: Linear;
  readonly headDim: number;
  /** head_dim ** -0.5, as transformers computes it (correctly rounded; see inverseSqrt). */
  readonly scale: number;
  readonly dropout: number;
  readonly causal: boolean;

  constructor(config: CLIPEncoderConfig, placement: ModelPlacement = {}, options: CLIPLayerOptions = {}) {
    super();
    const dim = config.hidden_size;
    this.causal = options.causal ?? true;
    this.headDim = Math.floor(dim / config.num_attention_heads);
    this.scale = inverseSqrt(this.headDim);
    this.dropout = config.attention_dropout;
    // Registration order k, v, q, out is transformers' (it fixes the parameter order).
    this.kProj = this.registerModule("k_proj", new Linear(dim, dim, placement));
    this.vProj = this.registerModule("v_proj", new Linear(dim, dim, placement));
    this.qProj = this.registerModule("q_proj", new Linear(dim, dim, placement));
    this.outProj = this.registerModule("out_proj", new Linear(dim, dim, placement));
  }

  /**
   * [B, T, D] → [B, T, D]. `mask` is the combined causal-and-padding boolean mask [B, 1, T, T] (true = attend),
   * or null when no token is padded: then the attention is causal through SDPA's `is_causal`, as transformers
   * does when it can skip building the mask. A non-causal layer (the vision tower) with a null mask attends to
   * every position.
   */
  forward(hiddenStates: Tensor, mask: Tensor | null): Tensor {
    const [batch, time] = hiddenStates.shape as [number, number, number];
    using queries = this.qProj.forward(hiddenStates);
    using keys = this.kProj.forward(hiddenStates);
    using values = this.vProj.forward(hiddenStates);
    using queriesView = queries.view(batch, time, -1, this.headDim);
    using keysView = keys.view(batch, time, -1, this.headDim);
    using valuesView = values.view(batch, time, -1, this.headDim);
    using q = queriesView.transpose(1, 2);
    using k = keysView.transpose(1, 2);
    using v = valuesView.transpose(1, 2);
    using attended = scaledDotProductAttention(q, k, v, {
      attnMask: mask,
      dropoutP: this.training ? this.dropout : 0.0,
      isCausal: this.causal && time > 1 && mask === null,
      scale: this.scale,
    });
    using transposed = attended.transpose(1, 2);
    using contiguous = transposed.contiguous();
    using merged = contiguous.reshape(batch, time, -1);
    return this.outProj.forward(merged);
  }
}

/** fc1 → activation → fc2. */
export class CLIPMLP extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  readonly activation: (x: Tensor) => Tensor;

  constructor(config: CLIPEncoderConfig, placement: ModelPlacement = {}) {
    super();
    this.activation = clipActivation(config.hidden_act);
    this.fc1 = this.registerModule("fc1", new Linear(config.hidden_size, config.intermediate_size, placement));
    this.fc2 = this.registerModule("fc2", new Linear(config.intermediate_size, config.hidden_size, placement));
  }

  forward(hiddenStates: Tensor): Tensor {
    using expanded = this.fc1.forward(hiddenStates);
    using activated = this.activation(expanded);
    return this.fc2.forward(activated);
  }
}

/** x + attention(layer_norm1(x)), then + mlp(layer_norm2(·)): a pre-LayerNorm transformer layer. */
export class CLIPEncoderLayer extends Module {
  readonly selfAttn: CLIPAttention;
  readonly layerNorm1: LayerNorm;
  readonly mlp: CLIPMLP;
  readonly layerNorm2: LayerNorm;

  constructor(config: CLIPEncoderConfig, placement: ModelPlacement = {}, options: CLIPLayerOptions = {}) {
    super();
    const normOptions = { eps: config.layer_norm_eps, ...placement };
    this.selfAttn = this.registerModule("self_attn", new CLIPAttention(config, placement, options));
    this.layerNorm1 = this.registerModule("layer_norm1", new LayerNorm(config.hidden_size, normOptions));
    this.mlp = this.registerModule("mlp", new CLIPMLP(config, placement));
    this.layerNorm2 = this.registerModule("layer_norm2", new LayerNorm(config.hidden_size, normOptions));
  }

  forward(hiddenStates: Tensor, mask: Tensor | null): Tensor {
    using normed1 = this.layerNorm1.forward(hiddenStates);
    using attended = this.selfAttn.forward(normed1, mask);
    using afterAttention = hiddenStates.add(attended);
    using normed2 = this.layerNorm2.forward(afterAttention);
    using fed = this.mlp.forward(normed2);
    return afterAttention.add(fed);
  }
}

/** The stack of layers. */
export class CLIPEncoder extends Module {
  readonly layers: ModuleList<CLIPEncoderLayer>;

  constructor(config: CLIPEncoderConfig, placement: ModelPlacement = {}, options: CLIPLayerOptions = {}) {
    super();
    const layers = Array.from({ length: config.num_hidden_layers }, () => new CLIPEncoderLayer(config, placement, options));
    this.layers = this.registerModule("layers", new ModuleList(layers));
  }

  /**
   * Runs the first `layerCount` layers (all by default) and returns each one's output in order; unless
   * `keepAll`, only the last one survives (the others are freed as soon as the next layer has run).
   */
  forward(inputsEmbeds: Tensor, mask: Tensor | null, options: { layerCount?: number; keepAll?: boolean } = {}): Tensor[] {
    const count = options.layerCount ?? this.layers.length;
    const outputs: Tensor[] = [];
    let hidden = inputsEmbeds;
    for (let i = 0; i < count; i++) {
      const next = this.layers.at(i).forward(hidden, mask);
      if (!options.keepAll && hidden !== inputsEmbeds) hidden.dispose();
      hidden = next;
      if (options.keepAll) outputs.push(next);
    }
    if (!options.keepAll && hidden !== inputsEmbeds) outputs.push(hidden);
    return outputs;
  }
}

export interface CLIPTextForwardOptions {
  /** [B, T], 1 (or true) for real tokens and 0 for padding; combined with the causal mask. */
  attentionMask?: Tensor;
  /** Also return `hiddenStates`: the embeddings and every layer's output (before the final LayerNorm). */
  outputHiddenStates?: boolean;
}

export interface CLIPTextModelOutput {
  /** [B, T, hidden_size]: the last layer's output through the final LayerNorm. */
  lastHiddenState: Tensor;
  /** [B, hidden_size]: lastHiddenState at each sequence's end token (see CLIPTextConfig.eos_token_id). */
  pooledOutput: Tensor;
  /** num_hidden_layers + 1 tensors [B, T, hidden_size], when asked for. */
  hiddenStates?: Tensor[];
}

export interface CLIPTextEncodeOptions {
  attentionMask?: Tensor;
  /**
   * Layers to skip from the end: the output of layer num_hidden_layers - clipSkip, through the final
   * LayerNorm (diffusers' `clip_skip`). 0 or undefined: lastHiddenState.
   */
  clipSkip?: number;
}

/**
 * The text tower under the "text_model." prefix (transformers 4's CLIPTextTransformer): embeddings, encoder and
 * final LayerNorm, with the forward pass of transformers 5's CLIPTextModel.
 */
export class CLIPTextTransformer extends Module {
  readonly embeddings: CLIPTextEmbeddings;
  readonly encoder: CLIPEncoder;
  readonly finalLayerNorm: LayerNorm;

  constructor(readonly config: CLIPTextConfig, placement: ModelPlacement = {}) {
    super();
    this.embeddings = this.registerModule("embeddings", new CLIPTextEmbeddings(config, placement));
    this.encoder = this.registerModule("encoder", new CLIPEncoder(config, placement));
    this.finalLayerNorm = this.registerModule(
      "final_layer_norm", new LayerNorm(config.hidden_size, { eps: config.layer_norm_eps, ...placement }),
    );
  }

  forward(inputIds: Tensor, options: CLIPTextForwardOptions = {}): CLIPTextModelOutput {
    using ids = flattenIds(inputIds);
    const embeddings = this.embeddings.forward(ids);
    using mask = causalPaddingMask(options.attentionMask, ids, embeddings.device);
    const layerOutputs = this.encoder.forward(embeddings, mask, { keepAll: options.outputHiddenStates ?? false });
    const last = layerOutputs.at(-1) ?? embeddings;
    const lastHiddenState = this.finalLayerNorm.forward(last);
    const pooledOutput = this.pool(lastHiddenState, ids);
    if (options.outputHiddenStates) return { lastHiddenState, pooledOutput, hiddenStates: [embeddings, ...layerOutputs] };
    for (const tensor of [embeddings, ...layerOutputs]) tensor.dispose();
    return { lastHiddenState, pooledOutput };
  }

  /** hidden_states[-(clipSkip + 1)] through the final LayerNorm; only the layers needed are run. */
  encode(inputIds: Tensor, options: CLIPTextEncodeOptions = {}): Tensor {
    const layerCount = this.encoder.layers.length;
    const clipSkip = options.clipSkip ?? 0;
    if (!Number.isInteger(clipSkip) || clipSkip < 0 || clipSkip > layerCount) {
      throw new RangeError(`clipSkip must be an integer in [0, ${layerCount}] (num_hidden_layers), got ${clipSkip}`);
    }
    using ids = flattenIds(inputIds);
    using embeddings = this.embeddings.forward(ids);
    using mask = causalPaddingMask(options.attentionMask, ids, embeddings.device);
    const outputs = this.encoder.forward(embeddings, mask, { layerCount: layerCount - clipSkip });
    using selected = outputs[0] ?? embeddings.alias();
    return this.finalLayerNorm.forward(selected);
  }

  /**
   * transformers' pooling rule. eos_token_id 2 (legacy configs, all of SD1/SD2): the position of the largest
   * id in each row (argmax takes the first, so with SD1's pad = end token it is the first end token). Any
   * other eos_token_id: the first position holding it (position 0 if none does).
   */
  pool(lastHiddenState: Tensor, inputIds: Tensor): Tensor {
    using ids = inputIds.to({ dtype: "int32", device: lastHiddenState.device });
    let positions: Tensor;
    if (this.config.eos_token_id === 2) {
      positions = ids.argmax(-1);
    } else {
      using isEnd = ids.eq(this.config.eos_token_id);
      using isEndInt = isEnd.to("int32");
      positions = isEndInt.argmax(-1);
    }
    using endPositions = positions;
    using rows = arange(lastHiddenState.size(0), undefined, 1, { dtype: "int64", device: lastHiddenState.device });
    return lastHiddenState.index(rows, endPositions);
  }
}

/** transformers' `input_ids.view(-1, input_shape[-1])`, after checking the ids are integers. */
function flattenIds(inputIds: Tensor): Tensor {
  if (!["int64", "int32", "int16", "int8", "uint8"].includes(inputIds.dtype)) {
    throw new TypeError(`CLIPTextModel: input ids must be an integer tensor (int64), got ${inputIds.dtype}`);
  }
  if (inputIds.ndim === 0) throw new RangeError("CLIPTextModel: input ids must have a sequence dimension, got a scalar");
  return inputIds.view(-1, inputIds.size(-1));
}

/**
 * transformers' create_causal_mask for SDPA: null when the padding mask is absent or all ones (then SDPA's
 * `is_causal` applies), else the boolean [B, 1, T, T] mask `kv ≤ q AND attentionMask[b, kv]`.
 */
function causalPaddingMask(attentionMask: Tensor | undefined, ids: Tensor, device: Device): Tensor | null {
  if (attentionMask === undefined) return null;
  const [batch, time] = ids.shape as [number, number];
  if (attentionMask.ndim !== 2 || attentionMask.size(0) !== batch || attentionMask.size(1) !== time) {
    throw new RangeError(`CLIPTextModel: attentionMask must have shape [${batch}, ${time}] like the input ids, got [${attentionMask.shape.join(", ")}]`);
  }
  using padding = attentionMask.to({ dtype: "bool", device });
  using allTrue = padding.all();
  if (allTrue.item()) return null;
  using positions = arange(time, undefined, 1, { dtype: "int64", device });
  using queryIndex = positions.view(1, 1, time, 1);
  using keyIndex = positions.view(1, 1, 1, time);
  using causal = keyIndex.le(queryIndex);
  using start = full([], true, { dtype: "bool", device });
  using causalMask = start.logicalAnd(causal);
  using paddingRows = padding.view(batch, 1, 1, time);
  return causalMask.logicalAnd(paddingRows);
}

/** How a checkpoint names the text tower's weights: with "text_model." (transformers 4, every SD release) or not. */
function checkpointUsesPrefix(componentDir: string, variant: string | undefined): boolean {
  const found = findWeightFiles(componentDir, variant);
  const keys = found.weightMap ? [...found.weightMap.keys()] : [...readSafetensorsHeader(found.files[0]!).entries.keys()];
  return keys.some((key) => key.startsWith("text_model."));
}

export interface FromPretrainedOptions extends ModelPlacement {
  /** Load `model.<variant>.safetensors` (e.g. "fp16"); the weights are converted to `dtype` (default float32). */
  variant?: string;
}

/** float32 unless asked otherwise, as transformers' from_pretrained. */
function placementOf(options: FromPretrainedOptions): ModelPlacement {
  return { dtype: options.dtype ?? "float32", ...(options.device === undefined ? {} : { device: options.device }) };
}

/**
 * Loads the folder's weights into `module`. A stored position_ids buffer (checkpoints of transformers < 4.31,
 * SD1.5's among them) is ignored, as transformers ignores it: the buffer is always [0, 1, …].
 */
function loadInto(module: Module, componentDir: string, options: FromPretrainedOptions, fullModel = false): void {
  // A full CLIPModel's vision tower, visual projection and logit scale are ignored, as transformers ignores them.
  const full = fullModel ? [/^vision_model\./, /^visual_projection\./, /^logit_scale$/] : [];
  loadPretrainedWeights(module, componentDir, {
    ...placementOf(options),
    ...(options.variant === undefined ? {} : { variant: options.variant }),
    ignoreUnexpected: [/^(text_model\.)?embeddings\.position_ids$/, ...full],
  });
}

/** Whether a parsed config.json is a full CLIPConfig (text and vision towers). */
function isFullClipConfig(raw: Record<string, unknown>): boolean {
  return raw.model_type === "clip" || "text_config" in raw;
}

function readTextConfig(componentDir: string): CLIPTextConfig {
  const raw = readComponentConfig(componentDir);
  if (isFullClipConfig(raw)) {
    throw new ModelLoadingError(
      `${join(componentDir, "config.json")} describes a full CLIPModel (text and vision towers); ` +
        "only text-encoder folders (model_type \"clip_text_model\") are loaded",
    );
  }
  return parseCLIPTextConfig(raw, join(componentDir, "config.json"));
}

/** Stable Diffusion's text encoder: transformers' CLIPTextModel. */
export class CLIPTextModel extends Module {
  readonly textModel: CLIPTextTransformer;

  constructor(readonly config: CLIPTextConfig, placement: ModelPlacement = {}) {
    super();
    this.textModel = this.registerModule("text_model", new CLIPTextTransformer(config, placement));
  }

  /** int [B, T] token ids → last hidden state, pooled output and (if asked) every hidden state. */
  forward(inputIds: Tensor, options: CLIPTextForwardOptions = {}): CLIPTextModelOutput {
    return this.textModel.forward(inputIds, options);
  }

  /** The prompt embedding a Stable Diffusion pipeline conditions on, with optional clip skip. */
  encode(inputIds: Tensor, options: CLIPTextEncodeOptions = {}): Tensor {
    return this.textModel.encode(inputIds, options);
  }

  /**
   * Builds the model from a `text_encoder/` folder (config.json + model.safetensors, a variant, or shards) in
   * eval mode. Keys with or without the "text_model." prefix are read; a stored
   * "embeddings.position_ids" buffer is ignored (it is always [0, 1, …]).
   */
  static fromPretrained(componentDir: string, options: FromPretrainedOptions = {}): CLIPTextModel {
    const model = new CLIPTextModel(readTextConfig(componentDir), placementOf(options));
    const prefixed = checkpointUsesPrefix(componentDir, options.variant);
    loadInto(prefixed ? model : model.textModel, componentDir, options);
    return model.eval();
  }
}

export interface CLIPTextModelWithProjectionOutput {
  /** [B, projection_dim]: text_projection(pooled output). */
  textEmbeds: Tensor;
  lastHiddenState: Tensor;
  hiddenStates?: Tensor[];
}

/** transformers' CLIPTextModelWithProjection: the text tower plus a bias-free projection of the pooled output. */
export class CLIPTextModelWithProjection extends Module {
  readonly textModel: CLIPTextTransformer;
  readonly textProjection: Linear;

  constructor(readonly config: CLIPTextConfig, placement: ModelPlacement = {}) {
    super();
    if (config.projection_dim === null) throw new RangeError("CLIPTextModelWithProjection needs 'projection_dim' in the config, got null");
    this.textModel = this.registerModule("text_model", new CLIPTextTransformer(config, placement));
    this.textProjection = this.registerModule(
      "text_projection", new Linear(config.hidden_size, config.projection_dim, { bias: false, ...placement }),
    );
  }

  forward(inputIds: Tensor, options: CLIPTextForwardOptions = {}): CLIPTextModelWithProjectionOutput {
    const { lastHiddenState, pooledOutput, hiddenStates } = this.textModel.forward(inputIds, options);
    using pooled = pooledOutput;
    const textEmbeds = this.textProjection.forward(pooled);
    return hiddenStates ? { textEmbeds, lastHiddenState, hiddenStates } : { textEmbeds, lastHiddenState };
  }

  /**
   * Builds the model, in eval mode, from a folder saved by transformers' CLIPTextModelWithProjection or from a full
   * CLIPModel folder (openai/clip-vit-large-patch14, as the CLIP-T metric of HyperDreamBooth §5 loads it: its
   * text_config, the text tower and text_projection; the rest ignored, as transformers' from_pretrained does).
   */
  static fromPretrained(componentDir: string, options: FromPretrainedOptions = {}): CLIPTextModelWithProjection {
    const raw = readComponentConfig(componentDir);
    const full = isFullClipConfig(raw);
    const model = new CLIPTextModelWithProjection(parseCLIPTextConfig(raw, join(componentDir, "config.json")), placementOf(options));
    try {
      loadInto(model, componentDir, options, full);
    } catch (error) {
      model.dispose();
      throw error;
    }
    return model.eval();
  }
}
