/**
 * UNet2DConditionModel: Stable Diffusion's noise-prediction network, as diffusers 0.42.1 builds and runs it
 * (models/unets/unet_2d_condition.py), config-driven and with diffusers' module and parameter names, so the
 * `unet/` folder of a real SD1.x/SD2.x checkpoint loads unchanged.
 *
 *     emb    = time_embedding(time_proj(timestep))                 timestep → (B, 4·C0)
 *     x      = conv_in(sample)
 *     down:  x, skips += down_block(x, emb, text)                  per resolution level, halving H and W
 *     mid:   x = mid_block(x, emb, text)
 *     up:    x = up_block(x, skips.pop(n), emb, text)              per level, doubling H and W
 *     out    = conv_out(act(conv_norm_out(x)))
 *
 * Odd latent sizes work as in diffusers: when H or W is not a multiple of 2^(upsamplers), each upsampler
 * resizes to its skip connection's size. The text mask (`encoderAttentionMask`, 1 keep / 0 discard) becomes
 * an additive −10000 bias on the cross-attention scores.
 *
 * Gradient checkpointing (`enableGradientCheckpointing()`) records each down/mid/up block on a
 * CheckpointTape (blocks/checkpointing.ts) instead of keeping its activations; the backward pass must then go
 * through `unet.backward(loss)`, which recomputes the blocks one at a time. Without checkpointing,
 * `unet.backward(loss)` is plain `loss.backward()`, so training code can always call it.
 */
import { join } from "node:path";
import { isGradEnabled, tensor, tidy, type DType, type Device, type Tensor } from "../../engine/index.js";
import { Conv2d, GroupNorm, Module, ModuleList } from "../../engine/nn/index.js";
import { CheckpointTape } from "../blocks/checkpointing.js";
import { TimestepEmbedding, Timesteps } from "../blocks/embeddings.js";
import { parameterOptions, type ParameterOptions } from "../blocks/options.js";
import { activationFunction } from "../blocks/resnet.js";
import { maskToBias, type TransformerConditioning } from "../blocks/transformer.js";
import { loadPretrainedWeights, readComponentConfig } from "../loading/weights.js";
import { planUNetBlocks, resolveUNet2DConditionConfig, type UNet2DConditionConfig } from "./config.js";
import {
  CrossAttnDownBlock2D, CrossAttnUpBlock2D, DownBlock2D, UNetMidBlock2DCrossAttn, UpBlock2D,
  type UNetDownBlock, type UNetUpBlock,
} from "./unet-blocks.js";

export interface UNetForwardOptions {
  /** (B, S) keep-mask over the text tokens (1 keep, 0 discard) for the cross-attentions. */
  encoderAttentionMask?: Tensor | null;
  /** (B, N) keep-mask for the self-attentions (N must match every attention's token count, as in diffusers). */
  attentionMask?: Tensor | null;
}

export interface FromPretrainedOptions {
  /** Parameter dtype (default float32; fp16 checkpoints are converted on load). */
  dtype?: DType;
  device?: Device;
  /** Load `diffusion_pytorch_model.<variant>.safetensors` (e.g. "fp16"). */
  variant?: string;
}

/** A timestep for the whole batch (a number, or a 0-d tensor) or one per sample (a 1-d tensor of length 1 or B). */
export type Timestep = number | Tensor;

export class UNet2DConditionModel extends Module {
  readonly config: UNet2DConditionConfig;
  readonly convIn: Conv2d;
  readonly timeProj: Timesteps;
  readonly timeEmbedding: TimestepEmbedding;
  readonly downBlocks: ModuleList<UNetDownBlock>;
  readonly upBlocks: ModuleList<UNetUpBlock>;
  readonly midBlock: UNetMidBlock2DCrossAttn | null;
  readonly convNormOut: GroupNorm;
  readonly convOut: Conv2d;
  /** How many up blocks upsample: inputs should be multiples of 2^numUpsamplers (others are resized). */
  readonly numUpsamplers: number;
  readonly #timeEmbedAct: ((x: Tensor) => Tensor) | null;
  readonly #convAct: (x: Tensor) => Tensor;
  #gradientCheckpointing = false;
  readonly #tape = new CheckpointTape("the UNet");

  /** Builds the model from a (raw or resolved) config; parameters are randomly initialised. */
  constructor(config: Readonly<Record<string, unknown>> | UNet2DConditionConfig = {}, options: ParameterOptions = {}) {
    super();
    const c = resolveUNet2DConditionConfig(config as Readonly<Record<string, unknown>>);
    this.config = c;
    const plan = planUNetBlocks(c);
    const where = parameterOptions(options);
    const channels = c.block_out_channels;
    const levels = channels.length;

    this.convIn = this.registerModule("conv_in", new Conv2d(c.in_channels, channels[0]!, c.conv_in_kernel, { padding: (c.conv_in_kernel - 1) / 2, ...where }));
    this.timeProj = this.registerModule("time_proj", new Timesteps({ numChannels: channels[0]!, flipSinToCos: c.flip_sin_to_cos, downscaleFreqShift: c.freq_shift }));
    this.timeEmbedding = this.registerModule("time_embedding", new TimestepEmbedding({
      inChannels: channels[0]!, timeEmbedDim: plan.timeEmbedDim, actFn: c.act_fn, postActFn: c.timestep_post_act, ...where,
    }));
    this.#timeEmbedAct = c.time_embedding_act_fn === null ? null : activationFunction(c.time_embedding_act_fn);

    const shared = {
      tembChannels: plan.timeEmbedDim, resnetEps: c.norm_eps, resnetActFn: c.act_fn, resnetGroups: c.norm_num_groups,
      dropout: c.dropout, useLinearProjection: c.use_linear_projection, upcastAttention: c.upcast_attention, ...where,
    };
    const downBlocks: UNetDownBlock[] = c.down_block_types.map((type, i) => {
      const options = {
        ...shared, numLayers: plan.layersPerBlock[i]!, inChannels: channels[Math.max(i - 1, 0)]!, outChannels: channels[i]!,
        addDownsample: i < levels - 1, downsamplePadding: c.downsample_padding,
      };
      if (type === "DownBlock2D") return new DownBlock2D(options);
      return new CrossAttnDownBlock2D({
        ...options, transformerLayersPerBlock: plan.transformerLayersPerBlock[i]!, numAttentionHeads: plan.numAttentionHeads[i]!,
        crossAttentionDim: plan.crossAttentionDim[i]!, onlyCrossAttention: plan.onlyCrossAttention[i]!,
      });
    });
    this.downBlocks = this.registerModule("down_blocks", new ModuleList(downBlocks));

    const upBlocks: UNetUpBlock[] = [];
    const reversedChannels = [...channels].reverse();
    let outputChannel = reversedChannels[0]!;
    for (const [i, type] of c.up_block_types.entries()) {
      const prevOutputChannel = outputChannel;
      outputChannel = reversedChannels[i]!;
      const deep = levels - 1 - i;
      const options = {
        ...shared, numLayers: plan.layersPerBlock[deep]! + 1, inChannels: reversedChannels[Math.min(i + 1, levels - 1)]!,
        outChannels: outputChannel, prevOutputChannel, addUpsample: i < levels - 1, resolutionIdx: i,
      };
      upBlocks.push(type === "UpBlock2D" ? new UpBlock2D(options) : new CrossAttnUpBlock2D({
        ...options, transformerLayersPerBlock: plan.reverseTransformerLayersPerBlock[i]!, numAttentionHeads: plan.numAttentionHeads[deep]!,
        crossAttentionDim: plan.crossAttentionDim[deep]!, onlyCrossAttention: plan.onlyCrossAttention[deep]!,
      }));
    }
    this.numUpsamplers = levels - 1;
    // diffusers registers up_blocks (empty, filled later) before mid_block: the same parameter order here.
    this.upBlocks = this.registerModule("up_blocks", new ModuleList(upBlocks));

    this.midBlock = c.mid_block_type === null ? null : this.registerModule("mid_block", new UNetMidBlock2DCrossAttn({
      ...shared, inChannels: channels[levels - 1]!, outputScaleFactor: c.mid_block_scale_factor,
      transformerLayersPerBlock: plan.transformerLayersPerBlock[levels - 1]!, numAttentionHeads: plan.numAttentionHeads[levels - 1]!,
      crossAttentionDim: plan.crossAttentionDim[levels - 1]!,
    }));

    this.convNormOut = this.registerModule("conv_norm_out", new GroupNorm(c.norm_num_groups, channels[0]!, { eps: c.norm_eps, ...where }));
    this.#convAct = activationFunction(c.act_fn);
    this.convOut = this.registerModule("conv_out", new Conv2d(channels[0]!, c.out_channels, c.conv_out_kernel, { padding: (c.conv_out_kernel - 1) / 2, ...where }));
  }

  /**
   * Builds the model from `<dir>/config.json` and loads its safetensors weights (single file, variant or
   * shards), as diffusers' `UNet2DConditionModel.from_pretrained(dir)`.
   */
  static fromPretrained(dir: string, options: FromPretrainedOptions = {}): UNet2DConditionModel {
    const config = resolveUNet2DConditionConfig(readComponentConfig(dir), join(dir, "config.json"));
    const model = new UNet2DConditionModel(config, { ...(options.dtype ? { dtype: options.dtype } : {}), ...(options.device ? { device: options.device } : {}) });
    try {
      loadPretrainedWeights(model, dir, { ...(options.variant === undefined ? {} : { variant: options.variant }) });
    } catch (error) {
      model.dispose();
      throw error;
    }
    return model.eval();
  }

  /** config.sample_size as [height, width] latents (an int means square), or null when the config has none. */
  get sampleSize(): [number, number] | null {
    const size = this.config.sample_size;
    return size === null ? null : typeof size === "number" ? [size, size] : [size[0], size[1]];
  }

  /**
   * Record the down/mid/up blocks for recomputation instead of keeping their activations. Forward passes with
   * autograd on are recorded until `unet.backward(loss)` (run validation passes under noGrad, which bypasses
   * the tape); `loss.backward()` alone would not reach the recorded blocks' parameters, so while blocks are
   * recorded any other backward pass throws an error naming `unet.backward(loss)`.
   */
  enableGradientCheckpointing(): this {
    this.#gradientCheckpointing = true;
    return this;
  }
  disableGradientCheckpointing(): this {
    this.#gradientCheckpointing = false;
    this.#tape.clear();
    return this;
  }
  get gradientCheckpointing(): boolean {
    return this.#gradientCheckpointing;
  }

  /**
   * Backpropagates a loss computed from this model's outputs: through the checkpoint tape when gradient
   * checkpointing recorded the forward passes, else loss.backward(). See the file comment.
   */
  backward(loss: Tensor, gradient?: Tensor): void {
    if (this.#tape.length > 0) this.#tape.backward(loss, gradient);
    else loss.backward(gradient);
  }

  /**
   * Predicts the noise (or v, or x0: whatever the checkpoint was trained for) for `sample` (B, in, H, W) at
   * `timestep`, conditioned on `encoderHiddenStates` (B, S, cross_attention_dim). Returns (B, out, H, W).
   */
  forward(sample: Tensor, timestep: Timestep, encoderHiddenStates: Tensor, options: UNetForwardOptions = {}): Tensor {
    return tidy(() => {
      const upFactor = 2 ** this.numUpsamplers;
      const forwardUpsampleSize = sample.shape.slice(-2).some((size) => size % upFactor !== 0);
      const conditioning: TransformerConditioning = {
        encoderHiddenStates,
        attentionMask: maskToBias(options.attentionMask ?? null, sample),
        encoderAttentionMask: maskToBias(options.encoderAttentionMask ?? null, sample),
      };
      const input = this.config.center_input_sample ? sample.mul(2).sub(1.0) : sample;

      // 1. time
      const tEmb = this.timeEmbed(input, timestep);
      let emb = this.timeEmbedding.forward(tEmb);
      if (this.#timeEmbedAct) emb = this.#timeEmbedAct(emb);

      // 2. pre-process
      let x = this.convIn.forward(input);

      // 3. down
      const run = this.#blockRunner(emb, conditioning);
      const downBlockResSamples: Tensor[] = [x];
      for (const block of this.downBlocks) {
        const resSamples = run.down(block, x);
        x = resSamples[resSamples.length - 1]!;
        downBlockResSamples.push(...resSamples);
      }

      // 4. mid
      if (this.midBlock) x = run.mid(this.midBlock, x);

      // 5. up
      let upsampleSize: [number, number] | null = null;
      for (const [i, block] of [...this.upBlocks].entries()) {
        const isFinalBlock = i === this.upBlocks.length - 1;
        const resSamples = downBlockResSamples.splice(-block.resnets.length);
        if (!isFinalBlock && forwardUpsampleSize) {
          const next = downBlockResSamples[downBlockResSamples.length - 1]!;
          upsampleSize = [next.size(2), next.size(3)];
        }
        x = run.up(block, x, resSamples, upsampleSize);
      }

      // 6. post-process
      const normed = this.convNormOut.forward(x);
      return this.convOut.forward(this.#convAct(normed));
    });
  }

  /** diffusers' get_time_embed: the timestep broadcast to the batch, sinusoidal features in sample's dtype. */
  timeEmbed(sample: Tensor, timestep: Timestep): Tensor {
    return tidy(() => {
      const batch = sample.size(0);
      let timesteps: Tensor;
      if (typeof timestep === "number") {
        timesteps = tensor([timestep], { dtype: Number.isInteger(timestep) ? "int64" : "float64", device: sample.device });
      } else if (timestep.ndim === 0) {
        timesteps = timestep.unsqueeze(0).to(sample.device);
      } else if (timestep.ndim === 1 && (timestep.size(0) === 1 || timestep.size(0) === batch)) {
        timesteps = timestep;
      } else {
        throw new Error(`UNet2DConditionModel: timestep must be a number, a 0-d tensor or a 1-d tensor of length 1 or ${batch}, got shape [${timestep.shape.join(", ")}]`);
      }
      const features = this.timeProj.forward(timesteps.expand(batch));
      return features.to(sample.dtype);
    });
  }

  /** Calls the blocks directly, or through the checkpoint tape when checkpointing and autograd are on. */
  #blockRunner(emb: Tensor, conditioning: TransformerConditioning): BlockRunner {
    const direct: BlockRunner = {
      down: (block, x) => block.forward(x, emb, conditioning).resSamples,
      mid: (block, x) => block.forward(x, emb, conditioning),
      up: (block, x, skips, size) => block.forward(x, skips, emb, conditioning, size),
    };
    if (!this.#gradientCheckpointing || !isGradEnabled()) return direct;
    // Segment inputs: [x, ...skips, emb, text, masks]; the closures map them back to the blocks' arguments.
    const context = [emb, conditioning.encoderHiddenStates, conditioning.attentionMask, conditioning.encoderAttentionMask];
    const present = context.filter((t): t is Tensor => t !== null && t !== undefined);
    const unpack = (rest: Tensor[]): [Tensor, TransformerConditioning] => {
      const values = [...rest];
      const [e, text, mask, textMask] = context.map((t) => (t === null || t === undefined ? null : values.shift()!));
      return [e!, { encoderHiddenStates: text, attentionMask: mask, encoderAttentionMask: textMask }];
    };
    const tape = this.#tape;
    return {
      down: (block, x) => tape.run(([h, ...rest]) => block.forward(h!, ...unpack(rest)).resSamples, [x, ...present]),
      mid: (block, x) => tape.run(([h, ...rest]) => [block.forward(h!, ...unpack(rest))], [x, ...present])[0]!,
      up: (block, x, skips, size) => tape.run((inputs) => {
        const [h, ...rest] = inputs;
        const [e, cond] = unpack(rest.slice(skips.length));
        return [block.forward(h!, rest.slice(0, skips.length), e, cond, size)];
      }, [x, ...skips, ...present])[0]!,
    };
  }
}

interface BlockRunner {
  down(block: UNetDownBlock, x: Tensor): Tensor[];
  mid(block: UNetMidBlock2DCrossAttn, x: Tensor): Tensor;
  up(block: UNetUpBlock, x: Tensor, skips: Tensor[], upsampleSize: [number, number] | null): Tensor;
}

