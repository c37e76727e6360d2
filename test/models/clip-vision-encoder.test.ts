// CLIP's vision tower against transformers 5.23's CLIPVisionModel / CLIPVisionModelWithProjection: tiny random
// models that test/oracle/fixtures_vision.py saves in every layout real checkpoints come in (transformers 5's
// unprefixed CLIPVisionModel, transformers 4's "vision_model." keys with the position_ids buffer,
// CLIPVisionModelWithProjection, a full CLIPModel, fp16 shards), outputs within 1e-5 in fp32; loading from the hub
// cache, a pipeline's image_encoder subfolder and a download of one subfolder; the CLIPImageProcessor against
// transformers' (PIL) on test photos; input, weight and config errors; ViT-L/14's and ViT-H/14's module trees.
import assert from "node:assert/strict";
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, test } from "node:test";
import { fromBytes, loadSafetensors, memory, randn, saveSafetensors, tensor, tidy, type Tensor } from "../../src/engine/index.js";
import { CLIPImageProcessor, ImageProcessorConfigError, parseImageProcessorConfig } from "../../src/models/clip/image-processor.js";
import {
  CLIP_VISION_CONFIG_DEFAULTS, CLIPVisionConfigError, clipVisionConfig, parseCLIPVisionConfig,
} from "../../src/models/clip/vision-config.js";
import { CLIPVisionModel, CLIPVisionModelWithProjection, type CLIPVisionModelWithProjectionOutput } from "../../src/models/clip/vision-encoder.js";
import { listLocalFiles, ModelLoadingError, type HubClient } from "../../src/models/loading/index.js";
import { BAR, check, checkProcessor, expected, maxAbsDiff, meta, modelDir, processorDir, ref } from "./vision-fixtures.js";

after(() => {
  for (const t of expected.values()) t.dispose();
});

const temporary: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "clip-vision-"));
  temporary.push(dir);
  return dir;
}
after(() => {
  for (const dir of temporary) rmSync(dir, { recursive: true, force: true });
});

type AnyCLIPVision = CLIPVisionModel | CLIPVisionModelWithProjection;

/** Every output of one oracle case; returns the worst error. */
function checkCase(t: Parameters<typeof check>[0], name: string, model: AnyCLIPVision, layers: number, interpolate = false): number {
  return tidy(() => {
    const out = model.forward(ref(`${name}/pixel_values`), { outputHiddenStates: true, interpolatePosEncoding: interpolate });
    let worst = check(t, `${name} last`, out.lastHiddenState, ref(`${name}/last`));
    worst = Math.max(worst, check(t, `${name} pooled`, out.pooledOutput, ref(`${name}/pooled`)));
    if (model instanceof CLIPVisionModelWithProjection) {
      const { imageEmbeds } = out as CLIPVisionModelWithProjectionOutput;
      worst = Math.max(worst, check(t, `${name} image_embeds`, imageEmbeds, ref(`${name}/image_embeds`)));
    }
    assert.equal(out.hiddenStates?.length, layers + 1);
    out.hiddenStates!.forEach((h, i) => (worst = Math.max(worst, check(t, `${name} hidden ${i}`, h, ref(`${name}/hidden.${i}`)))));
    return worst;
  });
}

test("transformers' outputs: last, pooled, image_embeds, every hidden state (every checkpoint layout)", async (t) => {
  let worst = 0;
  const models = new Map<string, AnyCLIPVision>();
  for (const c of meta.cases) {
    const key = `${c.folder}/${c.projection}`;
    let model = models.get(key);
    if (!model) {
      const options = c.folder === "clip_fp16_sharded" ? { variant: "fp16" } : {};
      // One through the async entry point, the rest through the folder one.
      model = c.projection
        ? c.folder === "clip_projection" ? await CLIPVisionModelWithProjection.fromPretrained(modelDir(c.folder)) : CLIPVisionModelWithProjection.fromFolder(modelDir(c.folder), options)
        : CLIPVisionModel.fromFolder(modelDir(c.folder), options);
      assert.equal(model.training, false);
      assert.equal(model.visionModel.encoder.layers.at(0).selfAttn.causal, false);
      const scale = model.visionModel.encoder.layers.at(0).selfAttn.scale;
      assert.equal(scale, meta.scales[model.config.hidden_act === "gelu" ? "gelu" : "quick"], "attention scale");
      models.set(key, model);
    }
    worst = Math.max(worst, checkCase(t, c.name, model, c.layers, c.interpolate));
  }
  t.diagnostic(`worst max abs error over all outputs: ${worst.toExponential(2)} (bar ${BAR})`);
  for (const model of models.values()) model.dispose();
});

test("hidden states: the encoder's input and each layer; the last is lastHiddenState; the fp16 shards are fp32 models", () => {
  const model = CLIPVisionModelWithProjection.fromFolder(modelDir("clip_fp16_sharded"), { variant: "fp16" });
  assert.ok(model.parameters().every((p) => p.dtype === "float32"));
  assert.deepEqual(meta.shards, ["model.fp16-00001-of-00002.safetensors", "model.fp16-00002-of-00002.safetensors"]);
  tidy(() => {
    const out = model.forward(ref("projection/pixel_values"), { outputHiddenStates: true });
    assert.equal(maxAbsDiff(out.hiddenStates!.at(-1)!, out.lastHiddenState), 0);
    // The penultimate layer, which an image-prompt model may take instead of the pooled output.
    assert.deepEqual(out.hiddenStates!.at(-2)!.shape, [2, 26, 32]);
  });
  const before = memory().tensors;
  const out = model.forward(ref("projection/pixel_values"));
  assert.equal(memory().tensors, before + 3, "only imageEmbeds, lastHiddenState and pooledOutput remain");
  for (const tensorOut of [out.imageEmbeds, out.lastHiddenState, out.pooledOutput]) tensorOut.dispose();
  assert.equal(memory().tensors, before);
  assert.ok(!model.stateDict().has("vision_model.embeddings.position_ids"), "position_ids is not persistent");
  model.dispose();
});

test("loading: a hub-cache snapshot by repository id, a pipeline's image_encoder subfolder, a download of one subfolder", async (t) => {
  const commit = "c".repeat(40);
  // The cache layout of huggingface_hub, holding a full CLIPModel repository (as laion/CLIP-ViT-H-14's).
  const cache = tempDir();
  const snapshot = join(cache, "models--tiny--clip-vit", "snapshots", commit);
  cpSync(modelDir("clip_full"), snapshot, { recursive: true });
  mkdirSync(join(cache, "models--tiny--clip-vit", "refs"), { recursive: true });
  writeFileSync(join(cache, "models--tiny--clip-vit", "refs", "main"), commit);
  const env = { HF_HUB_CACHE: cache, HF_HUB_OFFLINE: "1" };
  const fromCache = await CLIPVisionModelWithProjection.fromPretrained("tiny/clip-vit", { env });
  tidy(() => check(t, "cache: image_embeds", fromCache.forward(ref("full_projection/pixel_values")).imageEmbeds, ref("full_projection/image_embeds")));
  fromCache.dispose();
  const processor = await CLIPImageProcessor.fromPretrained("tiny/clip-vit", { env });
  assert.deepEqual(processor.config.crop_size, { height: 30, width: 30 });

  // A diffusers pipeline with an image encoder (IP-Adapter style): the root is refused, the subfolder loads.
  const pipeline = tempDir();
  writeFileSync(join(pipeline, "model_index.json"), JSON.stringify({
    _class_name: "StableDiffusionPipeline", image_encoder: ["transformers", "CLIPVisionModelWithProjection"], feature_extractor: ["transformers", "CLIPImageProcessor"],
  }));
  mkdirSync(join(pipeline, "image_encoder"));
  for (const file of ["config.json", "model.safetensors"]) copyFileSync(join(modelDir("clip_projection"), file), join(pipeline, "image_encoder", file));
  mkdirSync(join(pipeline, "feature_extractor"));
  copyFileSync(join(modelDir("clip_projection"), "preprocessor_config.json"), join(pipeline, "feature_extractor", "preprocessor_config.json"));
  await assert.rejects(CLIPVisionModelWithProjection.fromPretrained(pipeline), (e: Error) =>
    e instanceof ModelLoadingError && /is a diffusers pipeline, not a CLIPVisionModelWithProjection folder.*subfolder.*image_encoder/s.test(e.message));
  const encoder = await CLIPVisionModelWithProjection.fromPretrained(pipeline, { subfolder: "image_encoder" });
  tidy(() => check(t, "pipeline subfolder: image_embeds", encoder.forward(ref("projection/pixel_values")).imageEmbeds, ref("projection/image_embeds")));
  encoder.dispose();
  assert.equal((await CLIPImageProcessor.fromPretrained(pipeline, { subfolder: "feature_extractor" })).config.crop_size.height, 30);
  await assert.rejects(CLIPVisionModel.fromPretrained(pipeline, { subfolder: "vision" }), /has no subfolder "vision"/);
  await assert.rejects(CLIPVisionModel.fromPretrained(pipeline, { subfolder: "../x" }), /subfolder must be a relative folder/);

  // h94/IP-Adapter's layout: the encoder in models/image_encoder/ of a repository without model_index.json,
  // fetched alone through a hub client whose "hub" is a local folder.
  const repo = tempDir();
  mkdirSync(join(repo, "models", "image_encoder"), { recursive: true });
  for (const file of ["config.json", "model.safetensors"]) copyFileSync(join(modelDir("clip_projection"), file), join(repo, "models", "image_encoder", file));
  writeFileSync(join(repo, "ip-adapter.bin"), "not fetched");
  const fetched: string[] = [];
  const client: HubClient = {
    resolveCommit: () => Promise.resolve(commit),
    listFiles: () => Promise.resolve(listLocalFiles(repo).concat(["models/image_encoder/config.json", "models/image_encoder/model.safetensors"])),
    downloadFile: (repoId, path, atCommit, cacheDir) => {
      fetched.push(path);
      const target = join(cacheDir, `models--${repoId.replace("/", "--")}`, "snapshots", atCommit, path);
      mkdirSync(dirname(target), { recursive: true });
      copyFileSync(join(repo, path), target);
      return Promise.resolve(target);
    },
  };
  const downloadCache = tempDir();
  const downloaded = await CLIPVisionModelWithProjection.fromPretrained("tiny/ip-adapter", {
    subfolder: "models/image_encoder", allowDownload: true, client, env: { HF_HUB_CACHE: downloadCache },
  });
  assert.deepEqual(fetched.sort(), ["models/image_encoder/config.json", "models/image_encoder/model.safetensors"]);
  downloaded.dispose();
  // Offline afterwards, from the cache.
  const again = await CLIPVisionModelWithProjection.fromPretrained("tiny/ip-adapter", { subfolder: "models/image_encoder", env: { HF_HUB_CACHE: downloadCache, HF_HUB_OFFLINE: "1" } });
  again.dispose();
});

test("input errors name the problem", () => {
  const model = new CLIPVisionModel(clipVisionConfig({ hidden_size: 8, intermediate_size: 8, num_hidden_layers: 1, num_attention_heads: 2, image_size: 12, patch_size: 4 }));
  tidy(() => {
    assert.throws(() => model.forward(randn([3, 12, 12])), /pixel values must be \[batch, 3, height, width\], got shape \[3, 12, 12\]/);
    assert.throws(() => model.forward(randn([1, 4, 12, 12])), /must have 3 channels \(num_channels\) in dimension 1, got shape \[1, 4, 12, 12\]/);
    assert.throws(() => model.forward(randn([1, 3, 16, 12])), /input image size \(16\*12\) doesn't match model \(12\*12\).*interpolatePosEncoding/);
    assert.throws(() => model.forward(randn([1, 3, 3, 12]), { interpolatePosEncoding: true }), /smaller than one patch \(4\*4\)/);
    assert.throws(() => model.forward(fromBytes(new Uint8Array(432), "uint8", [1, 3, 12, 12])), /floating-point tensor.*got uint8/);
    // Any size of at least one patch with interpolation: a 5×4 grid.
    assert.deepEqual(model.forward(randn([2, 3, 20, 16]), { interpolatePosEncoding: true }).lastHiddenState.shape, [2, 21, 8]);
  });
  model.dispose();
});

test("missing and misplaced weights are named", async () => {
  const dir = tempDir();
  cpSync(modelDir("clip_projection"), dir, { recursive: true });
  const weights = loadSafetensors(join(dir, "model.safetensors")).tensors;
  weights.delete("vision_model.post_layernorm.weight");
  saveSafetensors(join(dir, "model.safetensors"), weights);
  for (const w of weights.values()) w.dispose();
  assert.throws(() => CLIPVisionModelWithProjection.fromFolder(dir), (e: Error) =>
    e instanceof ModelLoadingError && /missing keys \(1\): "vision_model.post_layernorm.weight"/.test(e.message));
  await assert.rejects(CLIPVisionModelWithProjection.fromPretrained(modelDir("clip_vision")), /no "vision_model." keys.*load it with CLIPVisionModel/s);
  assert.throws(() => CLIPVisionModel.fromFolder(modelDir("dinov2")), /model_type must be "clip_vision_model" \(a CLIP vision encoder\), got "dinov2"/);
  assert.throws(() => CLIPVisionModel.fromFolder(modelDir("clip_fp16_sharded")), /pass variant "fp16"/);
});

test("config: transformers' defaults, ViT-L/14 and ViT-H/14 CLIPConfigs, errors naming file, key and value", () => {
  assert.deepEqual({ ...CLIP_VISION_CONFIG_DEFAULTS }, meta.clip_defaults);
  const large = parseCLIPVisionConfig(meta.trees.vit_l14.config);
  assert.deepEqual([large.hidden_size, large.num_hidden_layers, large.patch_size, large.projection_dim, large.hidden_act], [1024, 24, 14, 768, "quick_gelu"]);
  const huge = parseCLIPVisionConfig(meta.trees.vit_h14.config);
  assert.deepEqual([huge.hidden_size, huge.num_hidden_layers, huge.intermediate_size, huge.projection_dim, huge.hidden_act], [1280, 32, 5120, 1024, "gelu"]);
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ hidden_act: "gelu_10" }, /hidden_act="gelu_10" is not supported by this implementation \(supported: "quick_gelu", "gelu"/],
    [{ hidden_size: 30, num_attention_heads: 4 }, /hidden_size must be a multiple of num_attention_heads \(4\), got 30/],
    [{ image_size: [224, 224] }, /image_size must be a positive integer \(the square side\), got \[224,224\]/],
    [{ patch_size: 32, image_size: 16 }, /patch_size must be at most image_size \(16\), got 32/],
    [{ model_type: "clip_text_model" }, /model_type must be "clip_vision_model" \(a CLIP vision encoder\), got "clip_text_model"/],
    [{ model_type: "clip", vision_config: { layer_norm_eps: -1 } }, /vision_config\.layer_norm_eps must be a positive number, got -1/],
    [{ model_type: "clip", vision_config: [] }, /vision_config must be an object, got \[\]/],
  ];
  for (const [raw, message] of bad) {
    assert.throws(() => parseCLIPVisionConfig(raw, "cfg.json"), (e: Error) => e instanceof CLIPVisionConfigError && message.test(e.message) && e.message.startsWith("cfg.json: "), String(message));
  }
  // Through a folder: the message starts with the file's path.
  const dir = tempDir();
  cpSync(modelDir("clip_full"), dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify({ model_type: "clip", vision_config: { num_attention_heads: 0 } }));
  assert.throws(() => CLIPVisionModel.fromFolder(dir), (e: Error) =>
    e instanceof CLIPVisionConfigError && e.message.startsWith(`${join(dir, "config.json")}: vision_config.num_attention_heads must be a positive integer, got 0`));
});

test("ViT-L/14 and ViT-H/14 (the paper's encoder): module tree, names and shapes (meta device, no weights)", () => {
  for (const name of ["vit_l14", "vit_h14"] as const) {
    const tree = meta.trees[name];
    const model = new CLIPVisionModelWithProjection(parseCLIPVisionConfig(tree.config), { device: "meta" });
    assert.deepEqual(model.namedParameters().map(([key, p]) => [key, [...p.shape]]), tree.parameters, `${name} parameters`);
    assert.equal(model.parameterCount(), tree.parameter_count);
    model.dispose();
  }
});

test("CLIPImageProcessor against transformers' CLIPImageProcessorPil: legacy and current configs, five photos", (t) => {
  let worst = 0;
  for (const name of ["clip_legacy", "clip"]) {
    const processor = CLIPImageProcessor.fromFolder(processorDir(name));
    assert.deepEqual(processor.config.size, { shortest_edge: 224 });
    assert.deepEqual(processor.config.crop_size, { height: 224, width: 224 });
    // The bound measured on these photos (down- and upscaled): 1 level of 8 bits, in under 0.5% of the values.
    worst = Math.max(worst, checkProcessor(t, name, processor, 1, 0.005));
  }
  t.diagnostic(`worst difference from PIL's bicubic: ${worst} levels of 8 bits`);
});

test("CLIPImageProcessor: several images in one batch, RgbImage input, config and input errors", () => {
  const processor = new CLIPImageProcessor({ size: { shortest_edge: 8 }, crop_size: { height: 6, width: 7 } });
  tidy(() => {
    const rgb = { width: 10, height: 12, data: new Uint8Array(360).map((_, i) => (i * 37) % 256) };
    const asTensor = fromBytes(rgb.data, "uint8", [12, 10, 3]);
    const batch = processor.preprocess([rgb, asTensor]);
    assert.deepEqual(batch.shape, [2, 3, 6, 7]);
    assert.equal(maxAbsDiff(batch.select(0, 0), batch.select(0, 1)), 0);
    assert.throws(() => processor.preprocess({ width: 10, height: 12, data: new Uint8Array(359) }), /image 0: an RGB image of 10x12 needs 360 bytes, got 359/);
    assert.throws(() => processor.preprocess(tensor([[[1, 2, 3]]], { dtype: "float32" })), /image 0: expected an 8-bit RGB image, a uint8 tensor \[height, width, 3\], got float32 \[1, 1, 3\]/);
    const uncropped = new CLIPImageProcessor({ do_center_crop: false, size: { shortest_edge: 8 } });
    assert.throws(() => uncropped.preprocess([rgb, fromBytes(new Uint8Array(300), "uint8", [10, 10, 3])]), /processed images differ in size/);
  });
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ resample: 2 }, /resample=2 is not supported by this implementation \(supported: 3 \(bicubic\)\)/],
    [{ size: { longest_edge: 5 } }, /size must be \{"shortest_edge": n\} or \{"height": h, "width": w\}/],
    [{ image_mean: [0.5, 0.5] }, /image_mean must be a number or a list of 3 numbers/],
    [{ image_processor_type: "SiglipImageProcessor" }, /image_processor_type="SiglipImageProcessor" is not supported/],
    [{ do_pad: true }, /do_pad=true is not supported/],
    [{ do_resize: "yes" }, /do_resize must be true or false, got "yes"/],
  ];
  for (const [raw, message] of bad) {
    assert.throws(() => parseImageProcessorConfig(raw, "pre.json"), (e: Error) => e instanceof ImageProcessorConfigError && message.test(e.message) && e.message.startsWith("pre.json: "), String(message));
  }
  const dir = tempDir();
  writeFileSync(join(dir, "preprocessor_config.json"), JSON.stringify({ crop_size: -3 }));
  assert.throws(() => CLIPImageProcessor.fromFolder(dir), (e: Error) => e.message.startsWith(`${join(dir, "preprocessor_config.json")}: crop_size must be`) && /got -3/.test(e.message));
});

test("a processor's output feeds the model: image → pixel_values → image_embeds", () => {
  const processor = CLIPImageProcessor.fromFolder(modelDir("clip_projection"));
  const model = CLIPVisionModelWithProjection.fromFolder(modelDir("clip_projection"));
  tidy(() => {
    const pixels: Tensor = processor.preprocess(ref("image/landscape"));
    assert.deepEqual(pixels.shape, [1, 3, 30, 30]);
    assert.deepEqual(model.forward(pixels).imageEmbeds.shape, [1, 24]);
  });
  model.dispose();
});
