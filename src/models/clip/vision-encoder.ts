/**
 * CLIP's vision tower, the paper's image encoder (a CLIP ViT-H/14; ViT-L/14 works the same): transformers 5.23's
 * `CLIPVisionModel` and `CLIPVisionModelWithProjection` (modeling_clip.py) with the same operations in the same
 * order, so outputs match transformers' in fp32 (test/models/clip-vision-encoder.test.ts measures them).
 *
 * Pixels [B, C, H, W] → patches by a bias-free strided convolution → class embedding prepended → learned position
 * embedding (bicubically interpolated for other input sizes when asked, as transformers'
 * interpolate_pos_encoding) → pre_layrnorm (sic, transformers' name) → N pre-LayerNorm transformer layers, the
 * text tower's CLIPEncoder without the causal mask → last hidden state. The pooled output is post_layernorm of the
 * class token; CLIPVisionModelWithProjection adds `visual_projection` (bias-free) of it: `image_embeds`.
 *
 * Parameter names are those of real checkpoints: "vision_model.embeddings.class_embedding",
 * "vision_model.encoder.layers.0.self_attn.q_proj.weight", …, "vision_model.post_layernorm.weight",
 * "visual_projection.weight". `fromPretrained` reads every layout these come in: transformers 5's
 * CLIPVisionModel (saved without "vision_model."), transformers 4's and CLIPVisionModelWithProjection's (with
 * it), and a full CLIPModel checkpoint (openai/clip-vit-large-patch14, laion/CLIP-ViT-H-14-laion2B-s32B-b79K:
 * its text tower, text_projection and logit_scale are ignored, as transformers ignores them).
 */
import { join } from "node:path";
import { arange, randn } from "../../engine/creation.js";
import { cat, interpolate } from "../../engine/functional.js";
import { Conv2d, Embedding, LayerNorm, Linear, Module, type Buffer, type Parameter } from "../../engine/nn/index.js";
import { readSafetensorsHeader } from "../../engine/safetensors/index.js";
import type { Tensor } from "../../engine/tensor.js";
import { readComponentConfig } from "../loading/config.js";
import { ModelLoadingError } from "../loading/errors.js";
import { resolveComponentFolder, type ResolveOptions } from "../loading/resolve.js";
import { findWeightFiles, loadPretrainedWeights } from "../loading/weights.js";
import { CLIPEncoder, type ModelPlacement } from "./text-encoder.js";
import { parseCLIPVisionConfig, type CLIPVisionConfig } from "./vision-config.js";

/** Class embedding, patch embedding and learned position embedding (transformers' CLIPVisionEmbeddings). */
export class CLIPVisionEmbeddings extends Module {
  readonly classEmbedding: Parameter;
  readonly patchEmbedding: Conv2d;
  readonly positionEmbedding: Embedding;
  /** [[0, 1, …, num_patches]] (int64), non-persistent as in transformers (a stored copy is ignored on load). */
  readonly positionIds: Buffer;
  readonly imageSize: number;
  readonly patchSize: number;

  constructor(config: CLIPVisionConfig, placement: ModelPlacement = {}) {
    super();
    const dim = config.hidden_size;
    this.imageSize = config.image_size;
    this.patchSize = config.patch_size;
    using classEmbedding = randn([dim], placement);
    this.classEmbedding = this.registerParameter("class_embedding", classEmbedding);
    this.patchEmbedding = this.registerModule("patch_embedding", new Conv2d(config.num_channels, dim, config.patch_size, {
      stride: config.patch_size, bias: false, ...placement,
    }));
    const numPositions = Math.floor(config.image_size / config.patch_size) ** 2 + 1;
    this.positionEmbedding = this.registerModule("position_embedding", new Embedding(numPositions, dim, placement));
    using positions = arange(numPositions, undefined, 1, { dtype: "int64", device: placement.device ?? "cpu" });
    using row = positions.unsqueeze(0);
    this.positionIds = this.registerBuffer("position_ids", row, { persistent: false });
  }

  /** [B, C, H, W] pixels → [B, 1 + patches, hidden_size]. */
  forward(pixelValues: Tensor, interpolatePosEncoding = false): Tensor {
    const [batch, , height, width] = pixelValues.shape as [number, number, number, number];
    if (!interpolatePosEncoding && (height !== this.imageSize || width !== this.imageSize)) {
      throw new RangeError(
        `CLIPVisionModel: input image size (${height}*${width}) doesn't match model (${this.imageSize}*${this.imageSize}); ` +
          "resize it (CLIPImageProcessor) or pass interpolatePosEncoding: true",
      );
    }
    using input = pixelValues.to(this.patchEmbedding.weight.dtype);
    using patchEmbeds = this.patchEmbedding.forward(input);
    using flat = patchEmbeds.flatten(2);
    using patches = flat.transpose(1, 2);
    using classEmbeds = this.classEmbedding.expand(batch, 1, -1);
    using embeddings = cat([classEmbeds, patches], 1);
    using positions = interpolatePosEncoding
      ? this.interpolatePosEncoding(patches.size(1), height, width)
      : this.positionEmbedding.forward(this.positionIds);
    return embeddings.add(positions);
  }

  /**
   * transformers' interpolate_pos_encoding: the trained grid of patch positions resampled bicubically
   * (align_corners false) to the input's grid, the class position kept; the table itself when the input has the
   * trained number of patches and is square.
   */
  interpolatePosEncoding(numPatches: number, height: number, width: number): Tensor {
    const weight = this.positionEmbedding.weight;
    const numPositions = weight.size(0) - 1;
    if (numPatches === numPositions && height === width) return this.positionEmbedding.forward(this.positionIds);
    const dim = weight.size(1);
    const side = Math.trunc(Math.sqrt(numPositions));
    using table = weight.unsqueeze(0);
    using classPosition = table.slice(1, 0, 1);
    using patchPositions = table.slice(1, 1);
    using grid = patchPositions.reshape(1, side, side, dim);
    using channelsFirst = grid.permute(0, 3, 1, 2);
    const size: [number, number] = [Math.floor(height / this.patchSize), Math.floor(width / this.patchSize)];
    using resized = interpolate(channelsFirst, { size, mode: "bicubic", alignCorners: false });
    using channelsLast = resized.permute(0, 2, 3, 1);
    using sequence = channelsLast.view(1, -1, dim);
    return cat([classPosition, sequence], 1);
  }
}

export interface CLIPVisionForwardOptions {
  /** Resample the position embeddings to the input's size (transformers' interpolate_pos_encoding). */
  interpolatePosEncoding?: boolean;
  /** Also return `hiddenStates`: the encoder's input (after pre_layrnorm) and every layer's output. */
  outputHiddenStates?: boolean;
}

export interface CLIPVisionModelOutput {
  /** [B, 1 + patches, hidden_size]: the last layer's output (no final LayerNorm, as in transformers). */
  lastHiddenState: Tensor;
  /** [B, hidden_size]: post_layernorm of the class token of lastHiddenState (transformers' pooler_output). */
  pooledOutput: Tensor;
  /** num_hidden_layers + 1 tensors [B, 1 + patches, hidden_size], when asked for; the last is lastHiddenState. */
  hiddenStates?: Tensor[];
}

/** The vision tower under the "vision_model." prefix (transformers 4's CLIPVisionTransformer). */
export class CLIPVisionTransformer extends Module {
  readonly embeddings: CLIPVisionEmbeddings;
  readonly preLayrnorm: LayerNorm;
  readonly encoder: CLIPEncoder;
  readonly postLayernorm: LayerNorm;

  constructor(readonly config: CLIPVisionConfig, placement: ModelPlacement = {}) {
    super();
    const normOptions = { eps: config.layer_norm_eps, ...placement };
    this.embeddings = this.registerModule("embeddings", new CLIPVisionEmbeddings(config, placement));
    this.preLayrnorm = this.registerModule("pre_layrnorm", new LayerNorm(config.hidden_size, normOptions));
    this.encoder = this.registerModule("encoder", new CLIPEncoder(config, placement, { causal: false }));
    this.postLayernorm = this.registerModule("post_layernorm", new LayerNorm(config.hidden_size, normOptions));
  }

  forward(pixelValues: Tensor, options: CLIPVisionForwardOptions = {}): CLIPVisionModelOutput {
    checkPixels(pixelValues, this.config);
    const interpolatePositions = options.interpolatePosEncoding ?? false;
    if (interpolatePositions) checkGrid(pixelValues, this.config.patch_size, "CLIPVisionModel");
    using embeddings = this.embeddings.forward(pixelValues, interpolatePositions);
    const normed = this.preLayrnorm.forward(embeddings);
    const keepAll = options.outputHiddenStates ?? false;
    const layerOutputs = this.encoder.forward(normed, null, { keepAll });
    const last = layerOutputs.at(-1)!;
    using classToken = last.select(1, 0);
    const pooledOutput = this.postLayernorm.forward(classToken);
    if (keepAll) return { lastHiddenState: last.alias(), pooledOutput, hiddenStates: [normed, ...layerOutputs] };
    normed.dispose();
    return { lastHiddenState: last, pooledOutput };
  }
}

export interface CLIPVisionFromPretrainedOptions extends ModelPlacement, ResolveOptions {}

/** transformers' CLIPVisionModel: the vision tower; outputs the last hidden state and the pooled class token. */
export class CLIPVisionModel extends Module {
  readonly visionModel: CLIPVisionTransformer;

  constructor(readonly config: CLIPVisionConfig, placement: ModelPlacement = {}) {
    super();
    this.visionModel = this.registerModule("vision_model", new CLIPVisionTransformer(config, placement));
  }

  /** float [B, num_channels, H, W] pixels (CLIPImageProcessor's pixel_values) → the tower's outputs. */
  forward(pixelValues: Tensor, options: CLIPVisionForwardOptions = {}): CLIPVisionModelOutput {
    return this.visionModel.forward(pixelValues, options);
  }

  /**
   * transformers' `CLIPVisionModel.from_pretrained(id_or_path, subfolder=...)`: a folder, a cached or downloaded
   * hub repository (src/models/loading/resolve.ts), its `subfolder` ("image_encoder" of a diffusers pipeline);
   * a CLIPVisionConfig or a full CLIPConfig; one safetensors file, a variant or shards. In eval mode, fp32
   * unless `dtype` says otherwise.
   */
  static async fromPretrained(idOrPath: string, options: CLIPVisionFromPretrainedOptions = {}): Promise<CLIPVisionModel> {
    return CLIPVisionModel.fromFolder(await resolveComponentFolder(idOrPath, "CLIPVisionModel", options), options);
  }

  /** `fromPretrained` for a component folder already on disk (synchronous, like CLIPTextModel.fromPretrained). */
  static fromFolder(componentDir: string, options: CLIPVisionFromPretrainedOptions = {}): CLIPVisionModel {
    const model = new CLIPVisionModel(readVisionConfig(componentDir), placementOf(options));
    return loadVisionWeights(model, componentDir, options);
  }
}

export interface CLIPVisionModelWithProjectionOutput extends CLIPVisionModelOutput {
  /** [B, projection_dim]: visual_projection(pooledOutput), transformers' image_embeds. */
  imageEmbeds: Tensor;
}

/** transformers' CLIPVisionModelWithProjection: the vision tower plus a bias-free projection of the pooled output. */
export class CLIPVisionModelWithProjection extends Module {
  readonly visionModel: CLIPVisionTransformer;
  readonly visualProjection: Linear;

  constructor(readonly config: CLIPVisionConfig, placement: ModelPlacement = {}) {
    super();
    this.visionModel = this.registerModule("vision_model", new CLIPVisionTransformer(config, placement));
    this.visualProjection = this.registerModule(
      "visual_projection", new Linear(config.hidden_size, config.projection_dim, { bias: false, ...placement }),
    );
  }

  /** Pixels → image_embeds, with the tower's last hidden state, pooled output and (if asked) hidden states. */
  forward(pixelValues: Tensor, options: CLIPVisionForwardOptions = {}): CLIPVisionModelWithProjectionOutput {
    const output = this.visionModel.forward(pixelValues, options);
    return { imageEmbeds: this.visualProjection.forward(output.pooledOutput), ...output };
  }

  /** As CLIPVisionModel.fromPretrained; the checkpoint must hold visual_projection.weight. */
  static async fromPretrained(idOrPath: string, options: CLIPVisionFromPretrainedOptions = {}): Promise<CLIPVisionModelWithProjection> {
    return CLIPVisionModelWithProjection.fromFolder(await resolveComponentFolder(idOrPath, "CLIPVisionModelWithProjection", options), options);
  }

  /** `fromPretrained` for a component folder already on disk. */
  static fromFolder(componentDir: string, options: CLIPVisionFromPretrainedOptions = {}): CLIPVisionModelWithProjection {
    const model = new CLIPVisionModelWithProjection(readVisionConfig(componentDir), placementOf(options));
    return loadVisionWeights(model, componentDir, options);
  }
}

/** Pixels must be floating [B, num_channels, H, W]. */
function checkPixels(pixelValues: Tensor, config: { num_channels: number }, model = "CLIPVisionModel"): void {
  if (pixelValues.ndim !== 4) {
    throw new RangeError(`${model}: pixel values must be [batch, ${config.num_channels}, height, width], got shape [${pixelValues.shape.join(", ")}]`);
  }
  if (pixelValues.size(1) !== config.num_channels) {
    throw new RangeError(`${model}: pixel values must have ${config.num_channels} channels (num_channels) in dimension 1, got shape [${pixelValues.shape.join(", ")}]`);
  }
  if (!["float32", "float16", "bfloat16", "float64"].includes(pixelValues.dtype)) {
    throw new TypeError(`${model}: pixel values must be a floating-point tensor (an image processor's output), got ${pixelValues.dtype}`);
  }
}

/** An input resampled to its own grid needs at least one patch each way. */
export function checkGrid(pixelValues: Tensor, patchSize: number | readonly [number, number], model: string): void {
  const [ph, pw] = typeof patchSize === "number" ? [patchSize, patchSize] : patchSize;
  const [height, width] = [pixelValues.size(2), pixelValues.size(3)];
  if (height < ph || width < pw) {
    throw new RangeError(`${model}: the input (${height}*${width}) is smaller than one patch (${ph}*${pw})`);
  }
}

/** float32 unless asked otherwise, as transformers' from_pretrained. */
function placementOf(options: ModelPlacement): ModelPlacement {
  return { dtype: options.dtype ?? "float32", ...(options.device === undefined ? {} : { device: options.device }) };
}

function readVisionConfig(componentDir: string): CLIPVisionConfig {
  return parseCLIPVisionConfig(readComponentConfig(componentDir), join(componentDir, "config.json"));
}

/** The checkpoint's key names, from the shard index or the file header (no tensor is read). */
function checkpointKeys(componentDir: string, variant: string | undefined): string[] {
  const found = findWeightFiles(componentDir, variant);
  return found.weightMap ? [...found.weightMap.keys()] : [...readSafetensorsHeader(found.files[0]!).entries.keys()];
}

/**
 * Loads a folder's weights into a new model and returns it in eval mode (disposing it on failure). Keys without
 * "vision_model." (transformers 5's CLIPVisionModel) go into the tower itself. Ignored, as transformers ignores
 * them: a full CLIPModel's text tower, text_projection and logit_scale, a stored position_ids buffer, and, for
 * CLIPVisionModel, visual_projection.
 */
function loadVisionWeights<M extends CLIPVisionModel | CLIPVisionModelWithProjection>(model: M, componentDir: string, options: CLIPVisionFromPretrainedOptions): M {
  try {
    const prefixed = checkpointKeys(componentDir, options.variant).some((key) => key.startsWith("vision_model."));
    if (!prefixed && model instanceof CLIPVisionModelWithProjection) {
      throw new ModelLoadingError(
        `${componentDir}: the checkpoint has no "vision_model." keys, so no visual_projection either: it is a CLIPVisionModel ` +
          "saved by transformers 5; load it with CLIPVisionModel",
      );
    }
    const ignoreUnexpected = [/^(vision_model\.)?embeddings\.position_ids$/, /^text_model\./, /^text_projection\./, /^logit_scale$/];
    if (model instanceof CLIPVisionModel) ignoreUnexpected.push(/^visual_projection\./);
    loadPretrainedWeights(prefixed ? model : model.visionModel, componentDir, {
      ...placementOf(options), ...(options.variant === undefined ? {} : { variant: options.variant }), ignoreUnexpected,
    });
  } catch (error) {
    model.dispose();
    throw error;
  }
  model.eval();
  return model;
}
