// The configs as zod schemas (src/util/schema.ts): for each, a wrong type, a missing required key, an
// out-of-range value and an unknown enum value are one error naming the file (or owner), the key and the value;
// defaults fill in what is not given; model folders name their config.json in errors.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { saveSafetensors, zeros, type Tensor } from "../../src/engine/index.js";
import { checkDimensions, LIDB_DEFAULTS, lidbDimensions } from "../../src/adapters/lidb/config.js";
import { readLidbFileInfo } from "../../src/adapters/lidb/file.js";
import { defaultConfig, resolveConfig, TrainingConfigError } from "../../src/dreambooth/config.js";
import { baseModelRecipe, DEFAULT_BASE_MODEL_RECIPE } from "../../src/miniworld/base-model/config.js";
import { CLIPTextConfigError, parseCLIPTextConfig } from "../../src/models/clip/text-config.js";
import { CLIPTextModel } from "../../src/models/clip/text-encoder.js";
import { parseCLIPVisionConfig } from "../../src/models/clip/vision-config.js";
import { resolveConfig as resolveSchedulerConfig, SCHEDULER_DEFAULTS, SchedulerError } from "../../src/models/schedulers/index.js";
import { resolveUNet2DConditionConfig, UNet2DConditionConfigError, UNet2DConditionModel } from "../../src/models/unet/index.js";
import { AutoencoderKL, AutoencoderKLConfigError, resolveAutoencoderKLConfig } from "../../src/models/vae/index.js";

const work = mkdtempSync(join(tmpdir(), "hdb-config-schemas-"));
after(() => rmSync(work, { recursive: true, force: true }));

/** Asserts `fn` throws an instance of `type` whose message matches each pattern. */
function throwsNaming(fn: () => unknown, type: abstract new (...args: never[]) => Error, ...patterns: RegExp[]): void {
  assert.throws(fn, (error: Error) => {
    assert.ok(error instanceof type, `${type.name} expected, got ${String(error)}`);
    for (const pattern of patterns) assert.match(error.message, pattern);
    return true;
  });
}

/** A component folder holding only a config.json. */
function componentFolder(name: string, config: Record<string, unknown>): string {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  return dir;
}

test("UNet config.json: type, range, unsupported values and the file's path; defaults fill in", () => {
  const dir = componentFolder("unet", { _class_name: "UNet2DConditionModel", block_out_channels: [32, 64, -3, 64], norm_num_groups: 1 });
  throwsNaming(() => UNet2DConditionModel.fromPretrained(dir), UNet2DConditionConfigError,
    new RegExp(`^${join(dir, "config.json").replaceAll("/", "\\/")}: block_out_channels\\[2\\] must be a positive integer, got -3$`));
  const source = "unet/config.json";
  throwsNaming(() => resolveUNet2DConditionConfig({ upcast_attention: "yes" }, source), UNet2DConditionConfigError, /^unet\/config\.json: upcast_attention must be true or false, got "yes"$/);
  throwsNaming(() => resolveUNet2DConditionConfig({ dropout: 1.5 }, source), UNet2DConditionConfigError, /^unet\/config\.json: dropout must be a probability in \[0, 1\], got 1\.5$/);
  throwsNaming(() => resolveUNet2DConditionConfig({ time_embedding_type: "fourier" }, source), UNet2DConditionConfigError,
    /^unet\/config\.json: time_embedding_type="fourier" is not supported by this implementation \(supported: "positional"\)$/);
  throwsNaming(() => resolveUNet2DConditionConfig({ conv_in_kernel: 4 }, source), UNet2DConditionConfigError, /conv_in_kernel must be an odd kernel size, got 4/);
  // diffusers' bookkeeping and keys the model does not take are ignored, as diffusers ignores them.
  const config = resolveUNet2DConditionConfig({ _class_name: "UNet2DConditionModel", _diffusers_version: "0.6.0", _name_or_path: "x", in_channels: 9, unknown: 1 });
  assert.equal(config.in_channels, 9);
  assert.equal(config.out_channels, 4);
  assert.deepEqual(config.block_out_channels, [320, 640, 1280, 1280]);
  for (const key of ["_class_name", "_diffusers_version", "_name_or_path", "unknown"]) assert.ok(!(key in config), key);
  assert.deepEqual(resolveUNet2DConditionConfig(config), config, "a resolved config resolves to itself");
});

test("VAE config.json: the file's path, the key and the value", () => {
  const dir = componentFolder("vae", { _class_name: "AutoencoderKL", scaling_factor: 0 });
  throwsNaming(() => AutoencoderKL.fromPretrained(dir), AutoencoderKLConfigError, new RegExp(`^${join(dir, "config.json").replaceAll("/", "\\/")}: scaling_factor must be a non-zero number, got 0$`));
  throwsNaming(() => resolveAutoencoderKLConfig({ latent_channels: "4" }, "vae/config.json"), AutoencoderKLConfigError, /^vae\/config\.json: latent_channels must be a positive integer, got "4"$/);
  const config = resolveAutoencoderKLConfig({ _diffusers_version: "0.6.0", block_out_channels: [32, 64], down_block_types: ["DownEncoderBlock2D", "DownEncoderBlock2D"], up_block_types: ["UpDecoderBlock2D", "UpDecoderBlock2D"] });
  assert.equal(config.scaling_factor, 0.18215);
  assert.equal(config.norm_num_groups, 32);
});

test("CLIP text config.json: flat and nested (text_config.<key>), and the file's path", () => {
  const dir = componentFolder("text_encoder", { model_type: "clip_text_model", num_attention_heads: 0 });
  throwsNaming(() => CLIPTextModel.fromPretrained(dir), CLIPTextConfigError, new RegExp(`^${join(dir, "config.json").replaceAll("/", "\\/")}: num_attention_heads must be a positive integer, got 0$`));
  throwsNaming(() => parseCLIPTextConfig({ model_type: "clip", text_config: { attention_dropout: 2 } }, "cfg.json"), CLIPTextConfigError,
    /^cfg\.json: text_config\.attention_dropout must be a number in \[0, 1\], got 2$/);
  // A legacy dict is ignored, as transformers' CLIPTextConfig/CLIPVisionConfig.from_pretrained ignore it (checked with
  // transformers 5.23: text_config's 48 wins over text_config_dict's 64 for the towers; only CLIPConfig takes the 64).
  assert.equal(parseCLIPTextConfig({ model_type: "clip", text_config: { hidden_size: 48, num_attention_heads: 4 }, text_config_dict: { hidden_size: 64, num_attention_heads: 4 } }).hidden_size, 48);
  assert.equal(parseCLIPVisionConfig({ model_type: "clip", vision_config: { hidden_size: 48, num_attention_heads: 4 }, vision_config_dict: { hidden_size: 64, num_attention_heads: 4 } }).hidden_size, 48);
  // openai/clip-vit-base-patch32's config.json writes the legacy keys as null: absent.
  assert.equal(parseCLIPTextConfig({ model_type: "clip", text_config: { hidden_size: 48, num_attention_heads: 4 }, text_config_dict: null, vision_config_dict: null }).hidden_size, 48);
  assert.equal(parseCLIPVisionConfig({ model_type: "clip", vision_config: { hidden_size: 48, num_attention_heads: 4 }, vision_config_dict: null, text_config_dict: null }).hidden_size, 48);
  const config = parseCLIPTextConfig({ hidden_size: 64, num_attention_heads: 4, architectures: ["CLIPTextModel"], torch_dtype: "float32" });
  assert.deepEqual([config.hidden_size, config.intermediate_size, config.hidden_act, config.eos_token_id], [64, 2048, "quick_gelu", 49407]);
  assert.ok(!("architectures" in config) && !("model_type" in config));
});

test("scheduler configs: the scheduler, the option and the value; null and missing options take defaults", () => {
  throwsNaming(() => resolveSchedulerConfig("EulerDiscreteScheduler", { sigma_min: -1 }), SchedulerError, /^EulerDiscreteScheduler: sigma_min must be a positive number or null, got -1$/);
  throwsNaming(() => resolveSchedulerConfig("DDPMScheduler", { steps_offset: 1.5 }), SchedulerError, /^DDPMScheduler: steps_offset must be an integer >= 0, got 1\.5$/);
  throwsNaming(() => resolveSchedulerConfig("DPMSolverMultistepScheduler", { solver_order: 4 }), SchedulerError,
    /^DPMSolverMultistepScheduler: solver_order=4 is not supported by this implementation \(supported: 1, 2, 3\)$/);
  // PNDM's own default (skip_prk_steps false) is checked like a given value: only PLMS is implemented.
  throwsNaming(() => resolveSchedulerConfig("PNDMScheduler", {}), SchedulerError, /skip_prk_steps=false is not supported/);
  const ddim = resolveSchedulerConfig("DDIMScheduler", { _class_name: "PNDMScheduler", beta_schedule: "scaled_linear", prediction_type: null, skip_prk_steps: true });
  assert.equal(ddim._class_name, "DDIMScheduler");
  assert.equal(ddim.prediction_type, "epsilon", "null means the default for a non-nullable option");
  assert.equal((ddim as unknown as Record<string, unknown>)["skip_prk_steps"], true, "other schedulers' options are carried along");
  assert.deepEqual(ddim._use_default_values, Object.keys(SCHEDULER_DEFAULTS.DDIMScheduler).filter((k) => k !== "beta_schedule"));
  assert.equal(SCHEDULER_DEFAULTS.DPMSolverMultistepScheduler["lambda_min_clipped"], -Infinity);
});

test("LiDB sizes and file metadata: the key and the value; the paper's sizes by default", () => {
  assert.deepEqual({ ...LIDB_DEFAULTS }, { a: 100, b: 50, rank: 1 });
  assert.deepEqual(lidbDimensions({ rank: 2 }), { a: 100, b: 50, rank: 2 });
  throwsNaming(() => checkDimensions({ b: 2.5 }), RangeError, /^LiDB dimensions: b must be a positive integer, got 2\.5$/);
  throwsNaming(() => checkDimensions({ rank: 0 }, "LoRA"), RangeError, /^LoRA: rank must be a positive integer, got 0$/);
  const file = join(work, "bad.lidb.safetensors");
  const write = (metadata: Record<string, string>): void => {
    const tensors = new Map<string, Tensor>([["lidb.a_train", zeros([1, 2, 1])], ["lidb.b_train", zeros([1, 1, 2])]]);
    saveSafetensors(file, tensors, { "hdb.format": "lidb", "hdb.format_version": "1", ...metadata });
    for (const t of tensors.values()) t.dispose();
  };
  write({ "lidb.a": "0" });
  throwsNaming(() => readLidbFileInfo(file), Error, new RegExp(`^${file.replaceAll("/", "\\/")}: "lidb\\.a" must be a positive integer, got "0"`));
  write({ "lidb.a": "2", "lidb.b": "2", "lidb.rank": "1" });
  throwsNaming(() => readLidbFileInfo(file), Error, /: "lidb\.seed" is missing; it must be the seed of the aux bases/);
});

test("DreamBooth config: missing, wrong-typed, out-of-range and unknown values; each adapter's defaults", () => {
  const base = { pretrainedModel: "m", outputDir: "o", identities: [{ id: "a", images: ["a.png"] }] };
  throwsNaming(() => resolveConfig({ outputDir: "o", identities: base.identities } as never), TrainingConfigError, /^DreamBooth config: pretrainedModel is missing; it must be a string$/);
  throwsNaming(() => resolveConfig({ ...base, trainTextEncoder: "no" as never }), TrainingConfigError, /^DreamBooth config: trainTextEncoder must be true or false, got "no"$/);
  throwsNaming(() => resolveConfig({ ...base, randomCropScale: 0 }), TrainingConfigError, /randomCropScale must be in \(0, 1\] \(or null: off\), got 0$/);
  throwsNaming(() => resolveConfig({ ...base, mixedPrecision: "fp8" as never }), TrainingConfigError, /mixedPrecision must be no, fp16 or bf16, got "fp8"$/);
  throwsNaming(() => resolveConfig({ ...base, adapter: "dora" as never }), TrainingConfigError, /^DreamBooth config: adapter must be "lidb" or "lora", got "dora"$/);
  throwsNaming(() => resolveConfig({ ...base, identities: [{ id: ".hidden", images: ["x"] }] }), TrainingConfigError, /identities\[0\]\.id must be letters, .*got "\.hidden"/);
  throwsNaming(() => resolveConfig({ ...base, basisSeed: -1 }), TrainingConfigError, /basisSeed must be a non-negative integer, got -1/);
  const lora = resolveConfig({ ...base, adapter: "lora", rank: undefined });
  assert.deepEqual([lora.maxTrainSteps, lora.learningRate, lora.rank, lora.lidbA], [500, 1e-4, 4, 100]);
  assert.deepEqual(Object.keys(lora).slice(-3), ["pretrainedModel", "outputDir", "identities"]);
  assert.deepEqual(defaultConfig("lidb"), Object.fromEntries(Object.entries(resolveConfig(base)).filter(([k]) => !(k in base))));
});

test("base-model recipe: nested keys named with their path; every default is the bundled model's", () => {
  assert.throws(() => baseModelRecipe({ conditioning: { learningRate: 0 } }), /^Error: base model recipe: conditioning\.learningRate must be a learning rate > 0, got 0$/);
  assert.throws(() => baseModelRecipe({ diffusion: { emptyCaptionRate: 1.5 } }), /diffusion\.emptyCaptionRate must be a probability in \[0, 1\], got 1\.5/);
  const recipe = baseModelRecipe({ vae: { steps: 7 } });
  assert.deepEqual(recipe.vae, { ...DEFAULT_BASE_MODEL_RECIPE.vae, steps: 7 });
  assert.deepEqual(Object.keys(recipe), ["seed", "datasetSize", "vae", "diffusion", "continuation", "conditioning", "colourBalance", "checkpointEvery"]);
  assert.equal(DEFAULT_BASE_MODEL_RECIPE.conditioning.steps, 12_000);
});
