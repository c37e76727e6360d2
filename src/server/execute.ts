/**
 * The engine work of the service's jobs (what `hdb personalize` and `hdb generate` do, with the models kept loaded
 * between jobs): a personalisation is Personalizer.personalize (HyperDreamBooth §4.3: the HyperNetwork's prediction,
 * then the rank-relaxed fast fine-tuning) writing the LiDB file and its exact export as a diffusers and a kohya
 * LoRA; a generation is the base pipeline with the person's LiDB file applied (src/adapters/apply.ts). The
 * Personalizer is reopened only when a job asks for other settings; the pipeline is loaded once.
 *
 * Runs wherever the engine may block (a worker thread: src/server/worker.ts); every file it writes is atomic.
 */
import { mkdirSync, statSync } from "node:fs";
import path from "node:path";
import sharp from "sharp";
import { applyAdapterFiles } from "../adapters/index.js";
import { setNumThreads } from "../engine/index.js";
import { Personalizer } from "../personalize/index.js";
import { StableDiffusionPipeline } from "../pipeline/stable-diffusion.js";
import { writeFileAtomic, writeJsonAtomic } from "../util/atomic.js";
import type { ProgressUpdate } from "../util/progress.js";
import { MODEL_FILES, type EngineConfig, type GenerateResult, type GenerateSpec, type JobResult, type JobSpec, type PersonalizeResult, type PersonalizeSpec } from "./protocol.js";

export type ProgressSink = (update: Pick<ProgressUpdate, "label" | "done" | "total">) => void;

/** Runs jobs one at a time on one device, keeping the models loaded. */
export class Executor {
  #personalizer: { key: string; instance: Personalizer } | null = null;
  #pipeline: StableDiffusionPipeline | null = null;

  constructor(readonly config: EngineConfig) {
    if (config.threads !== undefined) setNumThreads(config.threads);
  }

  async run(job: JobSpec, progress: ProgressSink): Promise<JobResult> {
    mkdirSync(job.outDir, { recursive: true });
    return job.kind === "personalize" ? this.#personalize(job, progress) : this.#generate(job, progress);
  }

  async #personalize(job: PersonalizeSpec, progress: ProgressSink): Promise<PersonalizeResult> {
    const settings = { ...job.settings, hyper: true };
    const key = JSON.stringify(settings);
    if (this.#personalizer?.key !== key) {
      this.#personalizer?.instance.dispose();
      this.#personalizer = null;
      const instance = await Personalizer.open({ model: this.config.model, hypernetwork: this.config.hypernetwork, device: this.config.device, settings });
      this.#personalizer = { key, instance };
    }
    const personalizer = this.#personalizer.instance;
    const file = (kind: keyof typeof MODEL_FILES): string => path.join(job.outDir, MODEL_FILES[kind]);
    progress({ label: "personalize", done: 0, total: settings.steps });
    const result = await personalizer.personalize(job.photos, file("lidb"), {
      exports: { diffusers: file("lora-diffusers"), kohya: file("lora-kohya") },
      // The file's metadata names the photo by its upload name only: no path of the server's leaves with a download.
      training: { photo: path.basename(job.photos[0]!) },
      hooks: { progress: (update) => progress({ label: "personalize", done: update.done, total: update.total }) },
    });
    const summary: PersonalizeResult = {
      kind: "personalize",
      bytes: { lidb: result.bytes, "lora-diffusers": statSync(file("lora-diffusers")).size, "lora-kohya": statSync(file("lora-kohya")).size },
      identifier: personalizer.config.identifier,
      times: { load: personalizer.loadSeconds, ...result.times },
      finalLoss: result.losses.at(-1) ?? null,
      settings: { ...result.settings },
    };
    writeJsonAtomic(path.join(job.outDir, "personalize.json"), summary);
    return summary;
  }

  async #generate(job: GenerateSpec, progress: ProgressSink): Promise<GenerateResult> {
    const started = performance.now();
    this.#pipeline ??= await StableDiffusionPipeline.fromPretrained(this.config.model, { device: this.config.device });
    const pipeline = this.#pipeline;
    const applied = applyAdapterFiles({ unet: pipeline.unet, textEncoder: pipeline.textEncoder }, { lidb: job.lidb === null ? [] : [{ path: job.lidb, weight: job.weight }] });
    try {
      progress({ label: "generate", done: 0, total: job.steps });
      const result = pipeline.generate({
        prompt: job.prompt, negativePrompt: job.negativePrompt, steps: job.steps, guidanceScale: job.guidance, seed: job.seed, imagesPerPrompt: job.images,
        onStep: (step, total) => progress({ label: "generate", done: step, total }),
      });
      result.images.dispose();
      result.latents.dispose();
      const names: string[] = [];
      for (const [i, image] of result.rgb.entries()) {
        const name = `${i}.png`;
        const png = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } }).png().toBuffer();
        writeFileAtomic(path.join(job.outDir, name), png);
        names.push(name);
      }
      return { kind: "generate", images: names, seconds: (performance.now() - started) / 1000 };
    } finally {
      applied.dispose();
    }
  }

  dispose(): void {
    this.#personalizer?.instance.dispose();
    this.#personalizer = null;
    this.#pipeline?.dispose();
    this.#pipeline = null;
  }
}
