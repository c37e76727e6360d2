/**
 * `hdb train-lidb` and `hdb train-lora`: DreamBooth training of LiDB adapters (HyperDreamBooth §4.1) or of a
 * LoRA (the DreamBooth-LoRA baseline) for one identity or many. Flags mirror diffusers'
 * train_dreambooth_lora.py in kebab-case; see src/lidb/training/config.ts for what each does.
 *
 *   hdb train-lidb --pretrained-model <folder|id> --output-dir <dir>
 *       (--instance-data-dir <folder|image> [--identity-id ID] | --identities <folder|manifest.json>)
 *       [--identifier sks] [--instance-prompt "a [V] face"] [--resolution 512] [--train-batch-size 1]
 *       [--identities-per-batch 16] [--max-train-steps 400] [--gradient-accumulation-steps 1]
 *       [--learning-rate 1e-3] [--lr-scheduler constant] [--lr-warmup-steps 0] [--adam-beta1 0.9]
 *       [--adam-beta2 0.999] [--adam-weight-decay 1e-2] [--adam-epsilon 1e-8] [--max-grad-norm 1]
 *       [--snr-gamma 5] [--rank 1] [--lidb-a 100] [--lidb-b 50] [--no-train-text-encoder]
 *       [--with-prior-preservation --class-prompt "a face" --class-data-dir DIR --num-class-images 100
 *        --prior-loss-weight 1] [--random-flip 0.5] [--random-crop-scale 0.8]
 *       [--checkpointing-steps 100] [--resume-from-checkpoint latest]
 *       [--validation-prompt "a [V] face"] [--validation-steps N] [--num-validation-images 1]
 *       [--validation-inference-steps 25] [--seed 0] [--mixed-precision no|fp16|bf16]
 *       [--gradient-checkpointing] [--device cpu|cuda:0]
 *
 * The output folder gets one adapter file per identity, manifest.json (finished identities with image,
 * loss, steps and seed), checkpoints/ for identities in flight and validation/ images. A killed run continues
 * with --resume-from-checkpoint latest, losing at most the steps since each in-flight identity's checkpoint.
 */
import path from "node:path";
import { parseArgs } from "node:util";
import type { SchedulerName } from "../engine/optim/index.js";
import { identitiesFrom, identityFromPath } from "../lidb/training/data.js";
import { trainDreamBooth } from "../lidb/training/trainer.js";
import type { AdapterKind, IdentitySpec, MixedPrecision, TrainingConfigInput } from "../lidb/training/config.js";

const OPTIONS = {
  "pretrained-model": { type: "string" }, "output-dir": { type: "string" },
  "instance-data-dir": { type: "string" }, "identity-id": { type: "string" }, identities: { type: "string" },
  identifier: { type: "string" }, "instance-prompt": { type: "string" },
  "with-prior-preservation": { type: "boolean" }, "class-prompt": { type: "string" }, "class-data-dir": { type: "string" },
  "num-class-images": { type: "string" }, "prior-loss-weight": { type: "string" },
  resolution: { type: "string" }, "random-flip": { type: "string" }, "random-crop-scale": { type: "string" },
  "train-batch-size": { type: "string" }, "identities-per-batch": { type: "string" }, "max-train-steps": { type: "string" },
  "gradient-accumulation-steps": { type: "string" }, "learning-rate": { type: "string" }, "lr-scheduler": { type: "string" },
  "lr-warmup-steps": { type: "string" }, "adam-beta1": { type: "string" }, "adam-beta2": { type: "string" },
  "adam-weight-decay": { type: "string" }, "adam-epsilon": { type: "string" }, "max-grad-norm": { type: "string" },
  "snr-gamma": { type: "string" }, rank: { type: "string" }, "lidb-a": { type: "string" }, "lidb-b": { type: "string" },
  "no-train-text-encoder": { type: "boolean" }, "checkpointing-steps": { type: "string" },
  "resume-from-checkpoint": { type: "string" }, "validation-prompt": { type: "string" }, "validation-steps": { type: "string" },
  "num-validation-images": { type: "string" }, "validation-inference-steps": { type: "string" }, seed: { type: "string" },
  "mixed-precision": { type: "string" }, "gradient-checkpointing": { type: "boolean" }, device: { type: "string" },
} as const;

/** A numeric flag: undefined when absent, an error naming the flag when not a finite number. */
function numberFlag(values: Record<string, unknown>, name: string): number | undefined {
  const text = values[name] as string | undefined;
  if (text === undefined) return undefined;
  const n = Number(text);
  if (text.trim() === "" || !Number.isFinite(n)) throw new Error(`--${name} must be a number, got '${text}'`);
  return n;
}

/** The training config for `hdb train-lidb` / `hdb train-lora` arguments. */
export function parseTrainArgs(adapter: AdapterKind, argv: string[]): TrainingConfigInput {
  const { values } = parseArgs({ args: argv, options: OPTIONS, strict: true });
  const v = values as Record<string, unknown>;
  const model = values["pretrained-model"];
  if (!model) throw new Error("--pretrained-model is required (a diffusers folder, a Hugging Face cache path or a model id)");
  if (!values["output-dir"]) throw new Error("--output-dir is required");
  if ((values["instance-data-dir"] === undefined) === (values.identities === undefined)) {
    throw new Error("give exactly one of --instance-data-dir (one identity) or --identities (a folder or manifest of many)");
  }
  const identities: IdentitySpec[] = values.identities !== undefined ? identitiesFrom(values.identities)
    : [identityFromPath(values["instance-data-dir"]!, values["identity-id"])];
  const resume = values["resume-from-checkpoint"];
  if (resume !== undefined && resume !== "latest") throw new Error(`--resume-from-checkpoint takes "latest" (the output folder's own checkpoints), got '${resume}'`);
  const mixed = values["mixed-precision"];
  if (mixed !== undefined && !["no", "fp16", "bf16"].includes(mixed)) throw new Error(`--mixed-precision must be no, fp16 or bf16, got '${mixed}'`);
  const config: TrainingConfigInput = {
    adapter, pretrainedModel: model, outputDir: values["output-dir"], identities,
    identifier: values.identifier, instancePrompt: values["instance-prompt"],
    withPriorPreservation: values["with-prior-preservation"], classPrompt: values["class-prompt"],
    classDataDir: values["class-data-dir"], numClassImages: numberFlag(v, "num-class-images"), priorLossWeight: numberFlag(v, "prior-loss-weight"),
    resolution: numberFlag(v, "resolution"), randomFlip: numberFlag(v, "random-flip"), randomCropScale: numberFlag(v, "random-crop-scale"),
    trainBatchSize: numberFlag(v, "train-batch-size"), identitiesPerBatch: numberFlag(v, "identities-per-batch"),
    maxTrainSteps: numberFlag(v, "max-train-steps"), gradientAccumulationSteps: numberFlag(v, "gradient-accumulation-steps"),
    learningRate: numberFlag(v, "learning-rate"), lrScheduler: values["lr-scheduler"] as SchedulerName | undefined,
    lrWarmupSteps: numberFlag(v, "lr-warmup-steps"), adamBeta1: numberFlag(v, "adam-beta1"), adamBeta2: numberFlag(v, "adam-beta2"),
    adamWeightDecay: numberFlag(v, "adam-weight-decay"), adamEpsilon: numberFlag(v, "adam-epsilon"), maxGradNorm: numberFlag(v, "max-grad-norm"),
    snrGamma: numberFlag(v, "snr-gamma"), rank: numberFlag(v, "rank"), lidbA: numberFlag(v, "lidb-a"), lidbB: numberFlag(v, "lidb-b"),
    trainTextEncoder: values["no-train-text-encoder"] ? false : undefined,
    checkpointingSteps: numberFlag(v, "checkpointing-steps"), resumeFromCheckpoint: resume === "latest" ? true : undefined,
    validationPrompt: values["validation-prompt"], validationSteps: numberFlag(v, "validation-steps"),
    numValidationImages: numberFlag(v, "num-validation-images"), validationInferenceSteps: numberFlag(v, "validation-inference-steps"),
    seed: numberFlag(v, "seed"), mixedPrecision: mixed as MixedPrecision | undefined,
    gradientCheckpointing: values["gradient-checkpointing"], device: values.device,
  };
  // A validation prompt alone means "validate" (as in diffusers): every 100 steps unless told otherwise.
  if (config.validationPrompt !== undefined && config.validationSteps === undefined) config.validationSteps = 100;
  return config;
}

export async function runTrain(adapter: AdapterKind, argv: string[]): Promise<void> {
  const config = parseTrainArgs(adapter, argv);
  const started = Date.now();
  const result = await trainDreamBooth(config, {
    progress: true,
    log: (line) => process.stderr.write(`${line}\n`),
    onIdentityDone: (entry) => process.stderr.write(`\n${entry.id}: ${entry.file} (final loss ${entry.finalLoss.toFixed(4)}, ${entry.steps} steps)\n`),
  });
  const done = result.manifest.identities.length;
  const seconds = (Date.now() - started) / 1000;
  console.log(`trained ${done}/${result.config.identities.length} identities in ${seconds.toFixed(1)} s; manifest: ${path.join(result.config.outputDir, "manifest.json")}`);
}
