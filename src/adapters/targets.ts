/**
 * Which Linear layers get adapters (paper §4.1): every attention projection, q, k, v and out, of the UNet's
 * self- and cross-attentions (attn1, attn2: diffusers' to_q, to_k, to_v, to_out.0) and of the CLIP text
 * encoder's self-attentions (q_proj, k_proj, v_proj, out_proj). For SD1.5 that is 16 transformer blocks × 2
 * attentions × 4 = 128 UNet layers and 12 layers × 4 = 48 text-encoder layers: 176.
 *
 * Layers are named as diffusers/peft name them in LoRA files: the component ("unet" or "text_encoder"), then
 * the module path in that model's state dict:
 *
 *     unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q
 *     text_encoder.text_model.encoder.layers.0.self_attn.q_proj
 *
 * and listed in module-tree order (the state dict's order; the text encoder registers k, v, q, out), UNet
 * first. The order is part of a LiDB file (its factors are stacked in it), so it never depends on options.
 */
import { Linear, type Module } from "../engine/nn/index.js";
import { Attention } from "../models/blocks/attention.js";
import { CLIPAttention } from "../models/clip/text-encoder.js";

/** The two adapted components, by their diffusers folder names (the first part of a layer name). */
export type ModelComponent = "unet" | "text_encoder";
export const MODEL_COMPONENTS: readonly ModelComponent[] = ["unet", "text_encoder"];

/** The models adapters go into; either may be left out. */
export interface AdaptedModels {
  unet?: Module | null;
  textEncoder?: Module | null;
}

/**
 * A subset of the attention projections. Patterns are regular expressions (strings or RegExp) searched
 * anywhere in the full layer name, e.g. `include: ["attn2"]` (cross-attention only) or
 * `exclude: ["\\.to_out\\.0$", "out_proj$"]`.
 */
export interface TargetSelection {
  /** "unet", "text_encoder" or "both" (default). */
  components?: ModelComponent | "both";
  /** Keep only layers matching at least one pattern (default: all). */
  include?: readonly (string | RegExp)[];
  /** Then drop layers matching any pattern. */
  exclude?: readonly (string | RegExp)[];
}

/** One adapted layer: its full name, where it is, and the Linear itself. */
export interface LinearTarget {
  /** "unet.…" or "text_encoder.…" (see the file comment). */
  name: string;
  component: ModelComponent;
  /** The module path inside the component ("down_blocks.0.….to_q"). */
  path: string;
  layer: Linear;
}

/** A target's name and weight shape: what a LiDB file records (no model needed). */
export interface TargetShape {
  name: string;
  /** n: rows of the (out, in) weight. */
  outFeatures: number;
  /** m: columns of the weight. */
  inFeatures: number;
}

/** The model of a component in `models`, or null when it is not given. */
export function componentModel(models: AdaptedModels, component: ModelComponent): Module | null {
  return (component === "unet" ? models.unet : models.textEncoder) ?? null;
}

/** The attention projections of the given models, selected and in the fixed order (see the file comment). */
export function selectAttentionTargets(models: AdaptedModels, selection: TargetSelection = {}): LinearTarget[] {
  const components = selection.components ?? "both";
  if (components !== "both" && !MODEL_COMPONENTS.includes(components)) {
    throw new Error(`target components must be "unet", "text_encoder" or "both", got '${String(components)}'`);
  }
  const include = (selection.include ?? []).map(toRegExp);
  const exclude = (selection.exclude ?? []).map(toRegExp);
  const targets: LinearTarget[] = [];
  for (const component of MODEL_COMPONENTS) {
    if (components !== "both" && components !== component) continue;
    const model = componentModel(models, component);
    if (model === null) continue;
    for (const target of attentionProjections(model, component)) {
      if (include.length > 0 && !include.some((pattern) => pattern.test(target.name))) continue;
      if (exclude.some((pattern) => pattern.test(target.name))) continue;
      targets.push(target);
    }
  }
  return targets;
}

/** Every Linear of the model by full name ("unet.…"), for loading LoRA files that target other layers too. */
export function linearLayers(model: Module, component: ModelComponent): Map<string, Linear> {
  const layers = new Map<string, Linear>();
  for (const [path, module] of model.namedModules()) {
    if (module instanceof Linear) layers.set(`${component}.${path}`, module);
  }
  return layers;
}

/** The shapes of targets (what a LiDB file stores about the base model). */
export function targetShapes(targets: readonly LinearTarget[]): TargetShape[] {
  return targets.map((t) => ({ name: t.name, outFeatures: t.layer.outFeatures, inFeatures: t.layer.inFeatures }));
}

/** The q/k/v/out projections of every diffusers Attention and CLIP attention in `model`, in module-tree order. */
function attentionProjections(model: Module, component: ModelComponent): LinearTarget[] {
  const projections = new Set<Linear>();
  for (const module of model.modules()) {
    if (module instanceof Attention) {
      for (const layer of [module.toQ, module.toK, module.toV, module.toOut.at(0)]) projections.add(layer as Linear);
    } else if (module instanceof CLIPAttention) {
      for (const layer of [module.qProj, module.kProj, module.vProj, module.outProj]) projections.add(layer);
    }
  }
  const targets: LinearTarget[] = [];
  for (const [path, module] of model.namedModules()) {
    if (module instanceof Linear && projections.has(module)) targets.push({ name: `${component}.${path}`, component, path, layer: module });
  }
  return targets;
}

function toRegExp(pattern: string | RegExp): RegExp {
  // A global or sticky RegExp keeps state between test() calls: use a stateless copy.
  if (pattern instanceof RegExp) return new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ""));
  try {
    return new RegExp(pattern);
  } catch (error) {
    throw new Error(`invalid target pattern '${pattern}': ${(error as Error).message}`);
  }
}
