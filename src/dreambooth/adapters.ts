/**
 * What DreamBooth training needs from the LiDB/LoRA adapters (src/adapters/{lidb,lora}/model.ts), behind one small interface:
 * initial factors, binding many identities' factors to a batch, one identity's factors for generation, and
 * the deliverable file: the LiDB file (src/adapters/lidb/file.ts) or a diffusers-layout LoRA file (src/adapters/lora/file.ts).
 *
 * LiDB: an identity's factors are the two stacked tensors of the LiDB file, a_train (L, a, r) and b_train
 * (L, r, b). For a batch, they are stacked over identities and picked per sample, (S, L, a, r) and
 * (S, L, r, b), and handed to the adapters as fresh leaves; after the backward pass the leaves' gradients are
 * sent back through the stack into each identity's own tensors. The detour through leaves is what the
 * adapters ask for under gradient checkpointing (the recompute backpropagates block by block, and a graph
 * shared by the blocks could not be backpropagated twice); it is used always, so both paths give the same
 * numbers.
 *
 * LoRA (the DreamBooth-LoRA baseline): LoRA adapters have no per-sample factors, so one identity per batch.
 * Its factors (lora_A, lora_B per layer) are copied into the adapters before the forward and the adapters'
 * gradients moved into the identity's tensors after the backward: exact copies, so the numbers are those of
 * training the adapters' own parameters.
 */
import { backward, keep, noGrad, stack, tidy, type Tensor } from "../engine/index.js";
import type { StableDiffusionPipeline } from "../pipeline/stable-diffusion.js";
import { describeBaseModel, saveLidbFile, type LidbBaseModel } from "../adapters/lidb/file.js";
import { injectLidb, type LidbAdapters } from "../adapters/lidb/model.js";
import { injectLora, type LoraAdapters } from "../adapters/lora/model.js";
import { writeLoraFile } from "../adapters/lora/file.js";
import type { TrainingConfig } from "./config.js";

export interface TrainingAdapters {
  readonly kind: "lidb" | "lora";
  /** The adapted layers, in the factors' order ("unet.…", "text_encoder.…"). */
  readonly layerNames: string[];
  /** The trainable factors' initial values by name, in a fixed order (every identity starts from these). */
  initialFactors(): Map<string, Tensor>;
  /**
   * Makes the next forward passes use these identities' factors, sample i using identity
   * `sampleIdentity[i]`'s (S,) (int64), with gradients reaching the given tensors (each identity's leaves).
   */
  bind(identities: readonly Map<string, Tensor>[], sampleIdentity: Tensor): void;
  /** After a backward pass: moves gradients into the identities' leaves (see the file comment). */
  collectGradients(identities: readonly Map<string, Tensor>[]): void;
  /** Ends `bind`: the adapters go back to their own parameters. */
  unbind(): void;
  /** One identity's factors for every sample (validation images, generation, saving). */
  setFactors(factors: Map<string, Tensor>): void;
  /** The file name of an identity's deliverable in the output folder. */
  fileName(id: string): string;
  /** Writes an identity's deliverable (the LiDB file, or a diffusers LoRA file) for `factors`. */
  save(file: string, factors: Map<string, Tensor>, summary: TrainingSummary): void;
  /** Takes the adapters out of the models and frees them. */
  dispose(): void;
}

/** What the deliverable records about its training. */
export interface TrainingSummary {
  identifier: string;
  /** A JSON-able summary: identity, prompt, steps, learning rate, seed, final loss. */
  training: Record<string, unknown>;
}

/** Which layers to adapt: the UNet's attention projections, and the text encoder's when it is trained. */
function targetsOf(config: TrainingConfig): { components: "unet" | "both" } {
  return { components: config.trainTextEncoder ? "both" : "unet" };
}

/** Injects the adapters the config asks for into the pipeline's models. */
export function attachAdapters(pipeline: StableDiffusionPipeline, config: TrainingConfig, predictionType: string): TrainingAdapters {
  const models = { unet: pipeline.unet, textEncoder: pipeline.textEncoder };
  const native = pipeline.unet.sampleSize;
  const baseModel = describeBaseModel(models, config.pretrainedModel, {
    predictionType, ...(native === null ? {} : { resolution: native[0] * pipeline.vaeScaleFactor }),
  });
  if (config.adapter === "lidb") {
    return new LidbBinding(injectLidb(models, { a: config.lidbA, b: config.lidbB, rank: config.rank, seed: config.basisSeed, targets: targetsOf(config) }), baseModel);
  }
  return new LoraBinding(injectLora(models, { rank: config.rank, seed: config.seed, targets: targetsOf(config) }), baseModel);
}

class LidbBinding implements TrainingAdapters {
  readonly kind = "lidb";
  get layerNames(): string[] {
    return this.lidb.layerNames;
  }
  /** The per-sample factors as computed from the identities, and the leaves the adapters use. */
  #bound: { producers: Tensor[]; leaves: Tensor[] } | null = null;

  /**
   * The factors as injected, kept: every identity starts from them. (Reading the adapters instead would hand a
   * later identity an earlier one's trained factors, which `save` and validation copy into the adapters.)
   */
  readonly #initial: Map<string, Tensor>;

  constructor(readonly lidb: LidbAdapters, readonly baseModel: LidbBaseModel) {
    const { aTrain, bTrain } = lidb.getFactors();
    this.#initial = new Map([["a_train", keep(aTrain)], ["b_train", keep(bTrain)]]);
  }

  initialFactors(): Map<string, Tensor> {
    return cloneFactors(this.#initial);
  }

  bind(identities: readonly Map<string, Tensor>[], sampleIdentity: Tensor): void {
    this.unbind();
    const producers = ["a_train", "b_train"].map((name) => keep(tidy(() => stack(identities.map((f) => f.get(name)!)).indexSelect(0, sampleIdentity))));
    const leaves = producers.map((p) => keep(p.detach()).requiresGrad_(true));
    this.#bound = { producers, leaves };
    this.lidb.setBatchedFactors({ aTrain: leaves[0]!, bTrain: leaves[1]! });
  }

  collectGradients(): void {
    if (!this.#bound) return;
    const { producers, leaves } = this.#bound;
    tidy(() => {
      const grads = leaves.map((leaf) => leaf.grad);
      const pairs = producers.map((p, i) => [p, grads[i] ?? null] as const).filter(([, g]) => g !== null);
      if (pairs.length > 0) backward(pairs.map(([p]) => p), pairs.map(([, g]) => g));
      for (const leaf of leaves) leaf.grad = null;
    });
  }

  unbind(): void {
    this.lidb.clearBatchedFactors();
    if (!this.#bound) return;
    for (const t of [...this.#bound.producers, ...this.#bound.leaves]) t.dispose();
    this.#bound = null;
  }

  setFactors(factors: Map<string, Tensor>): void {
    this.unbind();
    this.lidb.setFactors({ aTrain: factors.get("a_train")!, bTrain: factors.get("b_train")! });
  }

  fileName(id: string): string {
    return `${id}.lidb.safetensors`;
  }

  save(file: string, factors: Map<string, Tensor>, summary: TrainingSummary): void {
    this.setFactors(factors);
    saveLidbFile(file, this.lidb, { baseModel: this.baseModel, identifier: summary.identifier, training: summary.training });
  }

  dispose(): void {
    this.unbind();
    for (const t of this.#initial.values()) t.dispose();
    this.lidb.dispose();
  }
}

class LoraBinding implements TrainingAdapters {
  readonly kind = "lora";
  get layerNames(): string[] {
    return this.lora.layerNames;
  }

  /** The factors as injected, kept: every identity starts from them (see LidbBinding). */
  readonly #initial = new Map<string, Tensor>();

  constructor(readonly lora: LoraAdapters, readonly baseModel: LidbBaseModel) {
    for (const [layer, { down, up }] of lora.getFactors()) {
      this.#initial.set(`${layer}.lora_A`, keep(down));
      this.#initial.set(`${layer}.lora_B`, keep(up));
    }
  }

  initialFactors(): Map<string, Tensor> {
    return cloneFactors(this.#initial);
  }

  bind(identities: readonly Map<string, Tensor>[]): void {
    if (new Set(identities).size !== 1) throw new Error(`LoRA adapters train one identity per batch, got ${new Set(identities).size}`);
    this.setFactors(identities[0]!);
  }

  collectGradients(identities: readonly Map<string, Tensor>[]): void {
    const factors = identities[0]!;
    noGrad(() => tidy(() => {
      for (const [layer, adapter] of this.lora.entries().map(([target, a]) => [target.name, a] as const)) {
        for (const [param, name] of [[adapter.loraA, "lora_A"], [adapter.loraB, "lora_B"]] as const) {
          const grad = param.grad;
          if (!grad) continue;
          const leaf = factors.get(`${layer}.${name}`)!;
          const existing = leaf.grad;
          if (existing) existing.add_(grad);
          else leaf.grad = grad.clone();
          param.grad = null;
        }
      }
    }));
  }

  unbind(): void {}

  setFactors(factors: Map<string, Tensor>): void {
    this.lora.setFactors(new Map(this.lora.layerNames.map((layer) => [layer, { down: factors.get(`${layer}.lora_A`)!, up: factors.get(`${layer}.lora_B`)! }])));
  }

  fileName(id: string): string {
    return `${id}.lora.safetensors`;
  }

  save(file: string, factors: Map<string, Tensor>, summary: TrainingSummary): void {
    this.setFactors(factors);
    const layers = this.lora.getFactors();
    try {
      writeLoraFile(file, layers, {
        format: "diffusers", baseModel: this.baseModel, title: `DreamBooth-LoRA ${String(summary.training["identity"] ?? "")}`.trim(),
        triggerPhrase: summary.identifier, metadata: { "hdb.training": JSON.stringify(summary.training) },
      });
    } finally {
      for (const { down, up } of layers.values()) {
        down.dispose();
        up.dispose();
      }
    }
  }

  dispose(): void {
    for (const t of this.#initial.values()) t.dispose();
    this.lora.dispose();
  }
}

/** Fresh copies of factors (the caller frees them). */
function cloneFactors(factors: Map<string, Tensor>): Map<string, Tensor> {
  return new Map([...factors].map(([name, t]) => [name, noGrad(() => t.clone())]));
}
