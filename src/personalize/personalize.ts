/**
 * Personalisation (HyperDreamBooth §4.3, "rank-relaxed fast finetuning"): one face photo → the HyperNetwork's
 * LiDB prediction θ̂ (§4.2) → ΔW(θ̂) added to the UNet and text-encoder weights → a fresh LoRA of rank r > 1 on the
 * same layers, trained for a few dozen steps with the DreamBooth loss on "a [V] face" → one file holding both
 * parts (the LiDB file, version 2: src/adapters/lidb/file.ts), exported exactly as one standard LoRA of rank 1 + r.
 *
 * How ΔW(θ̂) is merged, and unmerged for the next person: each adapted layer's weight W0 is kept once (a copy of the
 * attention projections only); a person's weights are written as W0 + ΔW(θ̂) (computed in float32, from the LiDB
 * bases built once at load), and W0 is copied back afterwards. Copying back, rather than subtracting ΔW again, is
 * exact: no rounding drift accumulates over many people, so every person's result is the same bits whatever was
 * personalised before in the process. Merging (rather than keeping θ̂ as a frozen adapter beside the LoRA) keeps
 * the fine-tuning's forward and backward passes as cheap as plain LoRA training: a LiDB adapter adds 2 thin matmuls
 * per projection (≈ 45 % of a 320×320 projection's work at a = 100, b = 50).
 *
 * The fine-tuning is one DreamBooth-LoRA identity (src/dreambooth/) on the one training loop (src/training/): the
 * same loss, sampling and seeding as every other trainer. A `Personalizer` loads the models once and personalises
 * any number of people; `personalize()` is the one-shot form. The ablations of §5 are settings (config.ts):
 * `hyper: false` (No Hyper: the LoRA from zero), `steps: 0` (Only Hyper), `rounds: 1` (k = 1).
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { keep, noGrad, tidy, type Tensor } from "../engine/index.js";
import { injectLidb, type LidbAdapters } from "../adapters/lidb/model.js";
import type { LoraLayerWeights } from "../adapters/lora/config.js";
import { writeLoraFile, type LoraFormat } from "../adapters/lora/file.js";
import { exportLidbFile } from "../adapters/export.js";
import { describeBaseModel } from "../adapters/lidb/file.js";
import { resolveConfig, type TrainingConfig } from "../dreambooth/config.js";
import { DREAMBOOTH_STREAM, DreamBoothTrainer } from "../dreambooth/trainer.js";
import { VisionFeatureEncoder } from "../hypernetwork/encoder.js";
import { loadHyperNetwork, writePrediction, type LidbSpace } from "../hypernetwork/file.js";
import type { HyperNetwork } from "../hypernetwork/hypernetwork.js";
import { train, type LoopHooks } from "../training/index.js";
import { personalizeSettings, type PersonalizeSettings, type PersonalizeSettingsInput } from "./config.js";

export interface PersonalizerOptions {
  /** The base model's diffusers folder (or hub id). */
  model: string;
  /** A trained HyperNetwork folder (config.json, model.safetensors, lidb_space.json); required unless `hyper: false`. */
  hypernetwork?: string;
  settings?: PersonalizeSettingsInput;
  device?: string;
  log?: (line: string) => void;
}

/** Seconds per phase of one personalisation (what `hdb personalize --json` prints). */
export interface PersonalizationTimes {
  encode: number;
  predict: number;
  merge: number;
  fineTune: number;
  save: number;
  /** Writing the standard LoRA exports (when asked for). */
  export: number;
  total: number;
}

export interface Personalization {
  /** The result: a LiDB file (with its rank-relaxed part unless steps = 0), or a LoRA file under No Hyper. */
  file: string;
  kind: "lidb" | "lora";
  bytes: number;
  /** The fine-tuning's losses per step (empty for Only Hyper). */
  losses: number[];
  times: PersonalizationTimes;
  settings: PersonalizeSettings;
  /** The standard LoRA files written (rank 1 + r from a LiDB result, exactly: src/adapters/export.ts), with their sizes. */
  exports: { format: LoraFormat; file: string; bytes: number }[];
}

const seconds = (since: number): number => (performance.now() - since) / 1000;

/** The models, HyperNetwork and encoder, loaded once; personalises one person per `personalize` call. */
export class Personalizer {
  #count = 0;
  readonly #scratch: string;

  private constructor(
    readonly settings: PersonalizeSettings,
    /** The DreamBooth-LoRA session: pipeline, rank-r LoRA adapters, loss. */
    readonly session: DreamBoothTrainer,
    readonly config: TrainingConfig,
    readonly hyper: { network: HyperNetwork; space: LidbSpace; encoder: VisionFeatureEncoder; adapters: LidbAdapters; originals: Tensor[] } | null,
    /** Seconds it took to load everything. */
    readonly loadSeconds: number,
    scratch: string,
  ) {
    this.#scratch = scratch;
  }

  static async open(options: PersonalizerOptions): Promise<Personalizer> {
    const started = performance.now();
    const settings = personalizeSettings(options.settings);
    if (settings.hyper && options.hypernetwork === undefined) throw new Error("personalize: give a HyperNetwork folder (--hypernetwork), or fine-tune from zero (No Hyper: --no-hyper)");
    const log = options.log ?? (() => {});
    const loaded = settings.hyper && options.hypernetwork !== undefined ? loadHyperNetwork(options.hypernetwork) : null;
    const owned: { dispose(): void }[] = loaded ? [loaded.network] : [];
    const scratch = mkdtempSync(path.join(tmpdir(), "hdb-personalize-"));
    try {
      const space = loaded?.space ?? null;
      const textEncoder = space === null || space.targets.some((t) => t.name.startsWith("text_encoder."));
      // The DreamBooth-LoRA identity the fine-tuning is: its photos and checkpoints never outlive a call (scratch).
      const config = resolveConfig({
        adapter: "lora", pretrainedModel: options.model, outputDir: scratch, identities: [{ id: "person", images: ["(given to personalize)"] }],
        identifier: space?.identifier ?? "sks", instancePrompt: settings.prompt, rank: settings.rank, learningRate: settings.learningRate,
        maxTrainSteps: Math.max(1, settings.steps), checkpointingSteps: 0, seed: settings.seed, trainTextEncoder: textEncoder, randomFlip: settings.randomFlip,
        ...(options.device === undefined ? {} : { device: options.device }),
      });
      const session = await DreamBoothTrainer.open(config, { log }, { manifest: false });
      owned.push(session);
      let hyper: Personalizer["hyper"] = null;
      if (loaded && space) {
        const models = { unet: session.pipeline.unet, textEncoder: session.pipeline.textEncoder };
        const loraLayers = session.adapters.layerNames;
        const lidbLayers = space.targets.map((t) => t.name);
        if (loraLayers.join() !== lidbLayers.join()) {
          throw new Error(`${options.hypernetwork}: its LiDB space adapts ${lidbLayers.length} layers, the rank-relaxed LoRA ${loraLayers.length}: ` +
            "the HyperNetwork was trained for another model or another choice of layers");
        }
        const adapters = injectLidb(models, { a: space.a, b: space.b, rank: space.rank, seed: space.seed, layers: lidbLayers, name: "hyper" });
        owned.push(adapters);
        // Only their aux bases and ΔW are used (merge()): out of the layers, so the forward never runs them.
        adapters.remove();
        if (adapters.basisChecksum !== space.basisChecksum) {
          throw new Error(`${options.hypernetwork}: the aux bases rebuilt from seed ${space.seed} have checksum ${adapters.basisChecksum}, its LiDB space expects ${space.basisChecksum}`);
        }
        for (const p of adapters.trainableParameters()) p.requiresGrad_(false);
        const originals = noGrad(() => adapters.targets.map((target) => keep(target.layer.weight.clone())));
        owned.push({ dispose: () => originals.forEach((t) => t.dispose()) });
        const encoder = await VisionFeatureEncoder.fromPretrained(loaded.network.config.encoder, { layer: loaded.network.config.encoder_layer });
        owned.push(encoder);
        loaded.network.eval();
        if (config.device !== "cpu") loaded.network.to(config.device);
        hyper = { network: loaded.network, space, encoder, adapters, originals };
      }
      return new Personalizer(settings, session, config, hyper, seconds(started), scratch);
    } catch (error) {
      for (const item of owned.reverse()) item.dispose();
      rmSync(scratch, { recursive: true, force: true });
      throw error;
    }
  }

  /**
   * Personalises one person from their photo(s) (the first feeds the HyperNetwork; all are fine-tuned on) and writes
   * the result to `outFile` (a LiDB file, or under No Hyper a diffusers LoRA file). `extra.exports` also writes the
   * result as standard LoRA files in those layouts; `extra.training` is added to the summary the file records;
   * `extra.hooks` sees the fine-tuning's progress.
   */
  async personalize(photos: readonly string[], outFile: string, extra: { hooks?: LoopHooks; training?: Record<string, unknown>; exports?: Partial<Record<LoraFormat, string>> } = {}): Promise<Personalization> {
    if (photos.length === 0) throw new Error("personalize: no photo given");
    const { settings, hyper } = this;
    const times: PersonalizationTimes = { encode: 0, predict: 0, merge: 0, fineTune: 0, save: 0, export: 0, total: 0 };
    const exports: Personalization["exports"] = [];
    const started = performance.now();
    let prediction: { aTrain: Tensor; bTrain: Tensor } | null = null;
    try {
      if (hyper) {
        let t = performance.now();
        using features = await hyper.encoder.encode([photos[0]!]);
        times.encode = seconds(t);
        t = performance.now();
        prediction = noGrad(() => tidy(() => {
          const { aTrain, bTrain } = hyper.network.split(hyper.network.forward(features.to(this.config.device), settings.rounds === undefined ? {} : { rounds: settings.rounds }));
          return { aTrain: aTrain.select(0, 0).float().cpu().contiguous(), bTrain: bTrain.select(0, 0).float().cpu().contiguous() };
        }));
        times.predict = seconds(t);
        t = performance.now();
        this.merge(prediction);
        times.merge = seconds(t);
      }
      let t = performance.now();
      const { relaxed, losses } = settings.steps > 0 ? await this.#fineTune(photos, extra.hooks) : { relaxed: null, losses: [] };
      times.fineTune = seconds(t);
      t = performance.now();
      const training = {
        method: "hyperdreambooth", photo: photos[0], photos: photos.length, steps: settings.steps, rank: settings.rank, learningRate: settings.learningRate,
        hyper: settings.hyper, rounds: settings.rounds ?? hyper?.network.config.rounds ?? null, seed: settings.seed, finalLoss: losses.at(-1) ?? null,
        ...extra.training,
      };
      let bytes: number;
      try {
        bytes = hyper && prediction
          ? writePrediction(outFile, hyper.space, prediction, training, { identifier: this.config.identifier, ...(relaxed ? { relaxed } : {}) })
          : this.#writeLora(outFile, "diffusers", relaxed!, training);
        times.save = seconds(t);
        t = performance.now();
        for (const [format, file] of Object.entries(extra.exports ?? {}) as [LoraFormat, string][]) {
          if (hyper) exportLidbFile(outFile, file, { format });
          else this.#writeLora(file, format, relaxed!, training);
          exports.push({ format, file, bytes: statSync(file).size });
        }
        times.export = seconds(t);
      } finally {
        for (const { down, up } of relaxed?.values() ?? []) {
          down.dispose();
          up.dispose();
        }
      }
      times.total = seconds(started);
      return { file: outFile, kind: hyper ? "lidb" : "lora", bytes, losses, times, settings, exports };
    } finally {
      if (prediction) this.unmerge();
      prediction?.aTrain.dispose();
      prediction?.bTrain.dispose();
    }
  }

  /**
   * Writes W0 + ΔW(θ̂) into every adapted layer (ΔW in float32, then cast to the weight's dtype); `unmerge()` puts W0
   * back. personalize() does both; a caller that measures the prediction alone does too.
   */
  merge(prediction: { aTrain: Tensor; bTrain: Tensor }): void {
    if (!this.hyper) throw new Error("merge: this Personalizer has no HyperNetwork (No Hyper)");
    const { adapters, originals } = this.hyper;
    adapters.setFactors(prediction);
    noGrad(() => {
      for (const [i, [target, adapter]] of adapters.entries().entries()) {
        tidy(() => target.layer.weight.copy_(originals[i]!.float().add(adapter.deltaWeight().to(originals[i]!.device)).to(originals[i]!.dtype)));
      }
    });
  }

  /** Copies every adapted layer's original weight back (exact). */
  unmerge(): void {
    if (!this.hyper) return;
    const { adapters, originals } = this.hyper;
    noGrad(() => adapters.targets.forEach((target, i) => target.layer.weight.copy_(originals[i]!)));
  }

  /** The rank-relaxed fine-tuning: one DreamBooth-LoRA identity on the loop, from the LoRA's initial factors. */
  async #fineTune(photos: readonly string[], hooks: LoopHooks = {}): Promise<{ relaxed: Map<string, LoraLayerWeights>; losses: number[] }> {
    const id = `person-${++this.#count}`;
    const run = await this.session.startIdentity({ id, images: [...photos], seed: this.settings.seed });
    try {
      await train({
        label: "personalize", stream: DREAMBOOTH_STREAM, jobs: [run], checkpointEvery: 0, resume: false, step: (runs) => this.session.stepLosses(runs), hooks,
      });
      // The run's factors are named as the LoRA binding names them: "<layer>.lora_A" (down), "<layer>.lora_B" (up).
      const copy = (name: string): Tensor => noGrad(() => tidy(() => run.factors.get(name)!.detach().float().cpu().clone()));
      const relaxed = new Map(this.session.adapters.layerNames.map((layer): [string, LoraLayerWeights] =>
        [layer, { down: copy(`${layer}.lora_A`), up: copy(`${layer}.lora_B`), alpha: this.settings.rank }]));
      return { relaxed, losses: [...run.losses] };
    } finally {
      this.session.release(run);
    }
  }

  /** No Hyper: the rank-r LoRA alone, as a LoRA file of that layout. */
  #writeLora(outFile: string, format: LoraFormat, layers: Map<string, LoraLayerWeights>, training: Record<string, unknown>): number {
    const { pipeline } = this.session;
    const native = pipeline.unet.sampleSize;
    const baseModel = describeBaseModel({ unet: pipeline.unet, textEncoder: pipeline.textEncoder }, this.config.pretrainedModel,
      native === null ? {} : { resolution: native[0] * pipeline.vaeScaleFactor });
    writeLoraFile(outFile, layers, {
      format, baseModel, title: `HyperDreamBooth (No Hyper) ${this.config.identifier}`, triggerPhrase: this.config.identifier,
      metadata: { "hdb.training": JSON.stringify(training) },
    });
    return statSync(outFile).size;
  }

  dispose(): void {
    this.hyper?.encoder.dispose();
    this.hyper?.adapters.dispose();
    for (const t of this.hyper?.originals ?? []) t.dispose();
    this.hyper?.network.dispose();
    this.session.dispose();
    rmSync(this.#scratch, { recursive: true, force: true });
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** One person, one call: loads the models, personalises, frees them. */
export async function personalize(photos: readonly string[], outFile: string, options: PersonalizerOptions): Promise<Personalization & { loadSeconds: number }> {
  const personalizer = await Personalizer.open(options);
  try {
    return { ...(await personalizer.personalize(photos, outFile)), loadSeconds: personalizer.loadSeconds };
  } finally {
    personalizer.dispose();
  }
}
