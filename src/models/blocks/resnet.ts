/**
 * ResnetBlock2D: diffusers' residual block (models/resnet.py), shared by the UNet and the VAE.
 *
 *     h = conv1(act(norm1(x)));  h = h + time_emb_proj(act(temb))[:, :, None, None]   (when temb is given)
 *     h = conv2(dropout(act(norm2(h))));  out = (shortcut(x) + h) / output_scale_factor
 *
 * Registered names are diffusers' (norm1, conv1, time_emb_proj, norm2, dropout, conv2, conv_shortcut), so
 * "down_blocks.0.resnets.0.conv1.weight" loads from a real checkpoint unchanged. Only the "default" time
 * embedding norm (add the projected embedding before norm2) is implemented: it is what SD1.x/SD2.x and the
 * VAE use. The up/down variants (ResnetDownsampleBlock2D) are not.
 */
import type { Tensor } from "../../engine/index.js";
import { Conv2d, Dropout, GroupNorm, Linear, Module } from "../../engine/nn/index.js";
import { parameterOptions, type ParameterOptions } from "./options.js";

/** diffusers' get_activation names that this port supports. */
export type ActivationName = "silu" | "swish" | "gelu" | "relu";

/** The activation function for a diffusers activation name (get_activation); a clear error otherwise. */
export function activationFunction(name: string): (x: Tensor) => Tensor {
  switch (name) {
    case "silu":
    case "swish":
      return (x) => x.silu();
    case "gelu":
      return (x) => x.gelu();
    case "relu":
      return (x) => x.relu();
    default:
      throw new Error(`unsupported activation function '${name}' (supported: silu, swish, gelu, relu)`);
  }
}

export interface ResnetBlock2DOptions extends ParameterOptions {
  inChannels: number;
  /** Defaults to inChannels. */
  outChannels?: number | null;
  /** Dropout probability before conv2 (default 0). */
  dropout?: number;
  /** Width of the timestep embedding; null for blocks without one (the VAE). Default 512, as diffusers. */
  tembChannels?: number | null;
  /** Groups of norm1 (default 32). */
  groups?: number;
  /** Groups of norm2; defaults to `groups`. */
  groupsOut?: number | null;
  /** GroupNorm epsilon (default 1e-6). */
  eps?: number;
  /** diffusers' non_linearity (default "swish", which is SiLU). */
  nonLinearity?: string;
  /** Only "default" is supported. */
  timeEmbeddingNorm?: string;
  /** The output is divided by this (default 1). */
  outputScaleFactor?: number;
  /** Force (or forbid) the 1×1 shortcut convolution; by default it exists when in ≠ out channels. */
  useInShortcut?: boolean | null;
  convShortcutBias?: boolean;
  /** Output channels of conv2 (and the shortcut); defaults to outChannels. */
  conv2dOutChannels?: number | null;
}

export class ResnetBlock2D extends Module {
  readonly norm1: GroupNorm;
  readonly conv1: Conv2d;
  readonly timeEmbProj: Linear | null;
  readonly norm2: GroupNorm;
  readonly dropout: Dropout;
  readonly conv2: Conv2d;
  readonly convShortcut: Conv2d | null;
  readonly inChannels: number;
  readonly outChannels: number;
  readonly outputScaleFactor: number;
  readonly #nonlinearity: (x: Tensor) => Tensor;

  constructor(options: ResnetBlock2DOptions) {
    super();
    const {
      inChannels, dropout = 0, tembChannels = 512, groups = 32, eps = 1e-6, nonLinearity = "swish",
      timeEmbeddingNorm = "default", outputScaleFactor = 1, convShortcutBias = true,
    } = options;
    if (timeEmbeddingNorm !== "default") {
      throw new Error(`ResnetBlock2D: unsupported time_embedding_norm '${timeEmbeddingNorm}' (only "default" is supported)`);
    }
    const outChannels = options.outChannels ?? inChannels;
    const groupsOut = options.groupsOut ?? groups;
    const conv2dOutChannels = options.conv2dOutChannels ?? outChannels;
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.outputScaleFactor = outputScaleFactor;
    this.#nonlinearity = activationFunction(nonLinearity);
    const where = parameterOptions(options);

    this.norm1 = this.registerModule("norm1", new GroupNorm(groups, inChannels, { eps, ...where }));
    this.conv1 = this.registerModule("conv1", new Conv2d(inChannels, outChannels, 3, { stride: 1, padding: 1, ...where }));
    this.timeEmbProj = tembChannels === null ? null : this.registerModule("time_emb_proj", new Linear(tembChannels, outChannels, where));
    this.norm2 = this.registerModule("norm2", new GroupNorm(groupsOut, outChannels, { eps, ...where }));
    this.dropout = this.registerModule("dropout", new Dropout(dropout));
    this.conv2 = this.registerModule("conv2", new Conv2d(outChannels, conv2dOutChannels, 3, { stride: 1, padding: 1, ...where }));
    const useInShortcut = options.useInShortcut ?? inChannels !== conv2dOutChannels;
    this.convShortcut = useInShortcut
      ? this.registerModule("conv_shortcut", new Conv2d(inChannels, conv2dOutChannels, 1, { stride: 1, padding: 0, bias: convShortcutBias, ...where }))
      : null;
  }

  /** (B, C_in, H, W) and an optional (B, temb_channels) timestep embedding → (B, C_out, H, W). */
  forward(inputTensor: Tensor, temb: Tensor | null = null): Tensor {
    using normed1 = this.norm1.forward(inputTensor);
    using activated1 = this.#nonlinearity(normed1);
    let hidden = this.conv1.forward(activated1);

    if (this.timeEmbProj === null && temb !== null) {
      throw new Error("ResnetBlock2D: got a timestep embedding, but the block was built with tembChannels null (no time_emb_proj)");
    }
    if (this.timeEmbProj !== null && temb !== null) {
      using activatedTemb = this.#nonlinearity(temb);
      using projected = this.timeEmbProj.forward(activatedTemb);
      using broadcastable = projected.unsqueeze(-1).unsqueeze(-1);
      const withTime = hidden.add(broadcastable);
      hidden.dispose();
      hidden = withTime;
    }

    using normed2 = this.norm2.forward(hidden);
    hidden.dispose();
    using activated2 = this.#nonlinearity(normed2);
    using dropped = this.dropout.forward(activated2);
    using convolved = this.conv2.forward(dropped);

    let shortcut = inputTensor;
    if (this.convShortcut !== null) {
      // diffusers makes the input contiguous in training mode (a layout change only: same values).
      shortcut = this.convShortcut.forward(inputTensor);
    }
    using summed = shortcut.add(convolved);
    if (shortcut !== inputTensor) shortcut.dispose();
    return summed.div(this.outputScaleFactor);
  }
}
