// The LiDB file and LoRA files (paper §4.1): SD1.5's and SD2.1's target counts from their real configs, the
// SD1.5 file's size (≤ 110 KB, factors from random values, the real basis checksum), round trips, precise
// compatibility errors and warnings, checksum verification, export without a model, and LoRA file reading.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  Generator, loadSafetensors, noGrad, randn, readSafetensorsHeader, saveSafetensors, setNumThreads, tensor, tidy, type Tensor,
} from "../../src/engine/index.js";
import {
  applyLidbFile, applyLoraFile, auxBasisChecksum, checkLidbCompatibility, describeBaseModel, exportLidbFile, injectLidb,
  loadLidbFile, readLidbFileInfo, readLoraFile, saveLidbFile, selectAttentionTargets, targetShapes, writeLidbFile, writeLoraFile,
  type AdaptedModels,
} from "../../src/adapters/index.js";
import { parseCLIPTextConfig } from "../../src/models/clip/text-config.js";
import { CLIPTextModel } from "../../src/models/clip/text-encoder.js";
import { UNet2DConditionModel } from "../../src/models/unet/index.js";

setNumThreads(1);
const generated = fileURLToPath(new URL("../../../test/fixtures/generated/", import.meta.url));
const work = mkdtempSync(path.join(tmpdir(), "hdb-lidb-file-"));
after(() => rmSync(work, { recursive: true, force: true }));

/** SD1.5's / SD2.1's real UNet and text-encoder configs (the unet and text_encoder oracle fixtures hold them). */
function realModels(name: "sd15" | "sd21"): AdaptedModels {
  const structures = JSON.parse(readFileSync(`${generated}unet/structures.json`, "utf8")) as Record<string, { config: Record<string, unknown> }>;
  const trees = (JSON.parse(readFileSync(`${generated}text_encoder/meta.json`, "utf8")) as { trees: Record<string, { config: Record<string, unknown> }> }).trees;
  return {
    unet: new UNet2DConditionModel(structures[name]!.config, { device: "meta" }),
    textEncoder: new CLIPTextModel(parseCLIPTextConfig(trees[name]!.config), { device: "meta" }),
  };
}
const loadTiny = (kind = "sd1"): { unet: UNet2DConditionModel; textEncoder: CLIPTextModel } => ({
  unet: UNet2DConditionModel.fromPretrained(`${generated}tiny_sd/${kind}/unet`),
  textEncoder: CLIPTextModel.fromPretrained(`${generated}tiny_sd/${kind}/text_encoder`),
});
const disposeModels = (models: AdaptedModels): void => {
  models.unet?.dispose();
  models.textEncoder?.dispose();
};
const maxAbs = (a: Tensor, b: Tensor): number => tidy(() => a.float().sub(b.float()).abs().max().item());

// Pinned: the checksum of SD1.5's bases at seed 0 (a=100, b=50). Every machine must build these exact bases.
const SD15_BASIS_SHA256 = "1b057c4070768723147d8feb6a910a427957d5574f1018557b371723346174bb";

test("SD1.5: 128 UNet + 48 text-encoder projections = 176 layers and 26,400 values; SD2.1: 128 + 92 = 220 and 33,000", () => {
  for (const [name, unet, text] of [["sd15", 128, 48], ["sd21", 128, 92]] as const) {
    const models = realModels(name);
    const all = selectAttentionTargets(models);
    assert.equal(selectAttentionTargets(models, { components: "unet" }).length, unet);
    assert.equal(selectAttentionTargets(models, { components: "text_encoder" }).length, text);
    assert.equal(all.length, unet + text);
    assert.equal(all.length * 1 * (100 + 50), name === "sd15" ? 26_400 : 33_000);
    // Self- and cross-attention, q/k/v/out each, in every one of the 16 transformer blocks.
    for (const projection of ["attn1.to_q", "attn1.to_out.0", "attn2.to_k", "attn2.to_v"]) {
      assert.equal(all.filter((t) => t.name.endsWith(projection)).length, 16, projection);
    }
    const crossK = all.find((t) => t.name.endsWith("attn2.to_k"))!;
    assert.equal(crossK.layer.inFeatures, name === "sd15" ? 768 : 1024);
    disposeModels(models);
  }
});

test("SD1.5's LiDB file (fp32, 176 layers, real basis checksum) is at most 110 KB", () => {
  const models = realModels("sd15");
  const targets = targetShapes(selectAttentionTargets(models));
  const started = Date.now();
  const basisChecksum = auxBasisChecksum(0, targets, { a: 100, b: 50 });
  const seconds = (Date.now() - started) / 1000;
  assert.equal(basisChecksum, SD15_BASIS_SHA256, "SD1.5's aux bases changed: every existing LiDB file would fail to load");
  const generator = new Generator("cpu", 0);
  const file = path.join(work, "sd15.lidb.safetensors");
  const bytes = tidy(() => writeLidbFile(file, {
    factors: { aTrain: randn([176, 100, 1], { generator }).mul(0.1), bTrain: randn([176, 1, 50], { generator }).mul(0.1) },
    targets, dims: { a: 100, b: 50, rank: 1 }, seed: 0, basisChecksum,
    baseModel: { ...describeBaseModel(models, "runwayml/stable-diffusion-v1-5"), predictionType: "epsilon", resolution: 512 },
    weightsHash: "0".repeat(64), identifier: "sks",
    training: { method: "lidb", steps: 400, learningRate: 1e-3, batchSize: 1, prompt: "a sks face", seconds: 12.5 },
  }));
  const header = readSafetensorsHeader(file);
  console.log(`SD1.5 LiDB file: ${bytes} bytes (${(bytes / 1024).toFixed(1)} KiB): 105,600 bytes of factors + ${header.dataStart} bytes of header; bases checksummed in ${seconds.toFixed(1)} s`);
  assert.ok(bytes <= 110_000, `the SD1.5 LiDB file is ${bytes} bytes`);
  const info = readLidbFileInfo(file);
  assert.equal(info.targets.length, 176);
  assert.deepEqual(info.targets, targets);
  assert.equal(info.baseModel.architecture, "stable-diffusion-v1");
  assert.deepEqual(info.dims, { a: 100, b: 50, rank: 1 });

  // Export needs no model: the bases are rebuilt from the seed and the stored target list.
  const lora = path.join(work, "sd15.kohya.safetensors");
  exportLidbFile(file, lora, { format: "kohya", dtype: "float16" });
  const exported = readSafetensorsHeader(lora);
  assert.equal(exported.entries.size, 176 * 3);
  assert.deepEqual(exported.entries.get("lora_unet_mid_block_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight")?.shape, [1, 768]);
  assert.deepEqual(exported.entries.get("lora_te_text_model_encoder_layers_11_self_attn_out_proj.lora_up.weight")?.shape, [768, 1]);
  assert.equal(exported.metadata["modelspec.architecture"], "stable-diffusion-v1/lora");
  assert.equal(exported.metadata["ss_network_dim"], "1");
  assert.equal(exported.metadata["ss_network_alpha"], "1");
  disposeModels(models);
});

test("a LiDB file round-trips (fp32 exactly, fp16 within rounding) and applies to fresh models with the same outputs", () => tidy(() => {
  const models = loadTiny();
  const lidb = injectLidb(models, { a: 16, b: 8, rank: 2, seed: 42 });
  const generator = new Generator("cpu", 3);
  lidb.setFactors({ aTrain: randn([56, 16, 2], { generator }).mul(0.2), bTrain: randn([56, 2, 8], { generator }).mul(0.2) });
  const file = path.join(work, "tiny.lidb.safetensors");
  const half = path.join(work, "tiny-fp16.lidb.safetensors");
  const bytes = saveLidbFile(file, lidb, { baseModel: describeBaseModel(models, "tiny/sd1"), identifier: "ohwx", training: { steps: 3 } });
  const halfBytes = saveLidbFile(half, lidb, { baseModel: describeBaseModel(models, "tiny/sd1"), dtype: "float16" });
  assert.ok(halfBytes < bytes);
  const x = randn([1, 4, 16, 16], { generator });
  const text = randn([1, 7, 32], { generator });
  const expected = noGrad(() => models.unet.forward(x, 10, text));
  const original = lidb.getFactors();
  lidb.dispose();

  const loaded = loadLidbFile(file);
  assert.equal(maxAbs(loaded.factors.aTrain, original.aTrain), 0);
  assert.equal(maxAbs(loaded.factors.bTrain, original.bTrain), 0);
  assert.equal(loaded.info.identifier, "ohwx");
  assert.deepEqual(loaded.info.training, { steps: 3 });
  assert.equal(loaded.info.seed, "42");
  assert.ok(maxAbs(loadLidbFile(half).factors.aTrain, original.aTrain) < 1e-3);

  const fresh = loadTiny();
  const { adapters, warnings } = applyLidbFile(fresh, file);
  assert.deepEqual(warnings, []);
  assert.equal(maxAbs(noGrad(() => fresh.unet.forward(x, 10, text)), expected), 0);
  adapters.dispose();
  disposeModels(fresh);
  disposeModels(models);
}));

test("applying a LiDB file to the wrong model says precisely what does not match", () => tidy(() => {
  const models = loadTiny();
  const lidb = injectLidb(models, { a: 8, b: 4, seed: 1 });
  const file = path.join(work, "sd1-only.lidb.safetensors");
  saveLidbFile(file, lidb, { baseModel: describeBaseModel(models, "tiny/sd1") });
  lidb.dispose();
  const info = readLidbFileInfo(file);

  const sd2 = loadTiny("sd2");
  const { errors } = checkLidbCompatibility(info, sd2);
  assert.equal(errors.length, 1);
  assert.match(errors[0]!, /made for tiny\/sd1 \(stable-diffusion-v1\), but the model has no layer unet\.down_blocks\.0\.attentions\.1\.transformer_blocks\.0\.attn1\.to_q;/);
  assert.match(errors[0]!, /… \(16 in all\)/);
  assert.throws(() => applyLidbFile(sd2, file), /sd1-only\.lidb\.safetensors: this LiDB file was made for tiny\/sd1/);
  assert.ok(selectAttentionTargets(sd2).every((t) => t.layer.adapters().length === 0), "a refused file leaves no adapter");
  disposeModels(sd2);

  assert.match(checkLidbCompatibility(info, { unet: models.unet }).errors[0]!, /it adapts the text_encoder, which was not given/);

  // Same names, other shapes: a text encoder built wider.
  const wide = new CLIPTextModel(parseCLIPTextConfig({ ...models.textEncoder.config, hidden_size: 48, intermediate_size: 37 }), { device: "meta" });
  assert.match(checkLidbCompatibility(info, { unet: models.unet, textEncoder: wide }).errors[0]!,
    /weight shapes differ: text_encoder\.text_model\.encoder\.layers\.0\.self_attn\.k_proj: the file has a 32×32 weight, the model 48×48/);
  wide.dispose();

  // Other weights, same architecture: a warning, and the file still applies.
  const tuned = loadTiny();
  noGrad(() => selectAttentionTargets(tuned)[0]!.layer.weight.add_(0.01));
  const applied = applyLidbFile(tuned, file);
  assert.match(applied.warnings[0]!, /targeted base weights differ from those of tiny\/sd1/);
  applied.adapters.dispose();
  disposeModels(tuned);
  disposeModels(models);
}));

test("a LiDB file whose bases or target list do not check out is refused", () => tidy(() => {
  const models = loadTiny();
  const lidb = injectLidb(models, { a: 8, b: 4, seed: 1 });
  const file = path.join(work, "good.lidb.safetensors");
  saveLidbFile(file, lidb, { baseModel: describeBaseModel(models, "tiny/sd1") });
  lidb.dispose();
  const { tensors, metadata } = loadSafetensors(file);
  const tamper = (name: string, changes: Record<string, string>): string => {
    const out = path.join(work, name);
    saveSafetensors(out, tensors, { ...metadata, ...changes });
    return out;
  };
  assert.throws(() => applyLidbFile(models, tamper("seed.lidb.safetensors", { "lidb.seed": "2" })),
    /the aux bases rebuilt from seed 2 have checksum [0-9a-f]{64}, the file expects [0-9a-f]{64}/);
  assert.throws(() => exportLidbFile(tamper("seed2.lidb.safetensors", { "lidb.seed": "2" }), path.join(work, "x.safetensors"), { format: "diffusers" }),
    /refusing to export with other bases than training used/);
  assert.throws(() => readLidbFileInfo(tamper("targets.lidb.safetensors", { "base_model.targets_sha256": "0".repeat(64) })), /the target list does not match its own hash/);
  assert.throws(() => readLidbFileInfo(tamper("version.lidb.safetensors", { "hdb.format_version": "9" })), /LiDB format version 9 is not supported/);
  assert.throws(() => readLidbFileInfo(tamper("basis.lidb.safetensors", { "lidb.a": "9" })), /expected tensors lidb\.a_train \[56, 9, 1\]/);
  assert.throws(() => readLidbFileInfo(`${generated}tiny_sd/sd1/unet/diffusion_pytorch_model.safetensors`), /is not a LiDB file/);
  assert.ok(selectAttentionTargets(models).every((t) => t.layer.adapters().length === 0));
  disposeModels(models);
}));

test("LoRA files: both layouts read back exactly (alpha kept or folded), foreign keys and conv LoRAs are clear errors", () => tidy(() => {
  const models = loadTiny();
  const names = selectAttentionTargets(models).slice(0, 3).map((t) => t.name);
  const generator = new Generator("cpu", 4);
  const layers = new Map(names.map((name, i) => [name, { down: randn([2, 32], { generator }), up: randn([32, 2], { generator }), alpha: i + 1 }]));
  for (const format of ["diffusers", "kohya"] as const) {
    const file = path.join(work, `three.${format}.safetensors`);
    writeLoraFile(file, layers, { format });
    const read = readLoraFile(file);
    assert.equal(read.format, format);
    const adapters = applyLoraFile(models, file);
    for (const [name, w] of layers) {
      const adapter = adapters.adapter(name);
      assert.ok(maxAbs(adapter.deltaWeight(), w.up.matmul(w.down).mul(w.alpha / 2)) < 1e-5, `${format} ${name}`);
    }
    adapters.dispose();
  }
  // diffusers' lora_adapter_metadata alphas (peft LoraConfig fields per component, with alpha_pattern).
  const withMetadata = path.join(work, "meta.diffusers.safetensors");
  saveSafetensors(withMetadata, { [`${names[0]}.lora_A.weight`]: layers.get(names[0]!)!.down, [`${names[0]}.lora_B.weight`]: layers.get(names[0]!)!.up },
    { format: "pt", lora_adapter_metadata: JSON.stringify({ "unet.lora_alpha": 8, "unet.r": 2, "unet.alpha_pattern": { "attn1.to_q": 4 } }) });
  assert.equal(readLoraFile(withMetadata).layers.get(names[0]!)!.alpha, 4);

  const conv = path.join(work, "locon.safetensors");
  saveSafetensors(conv, { "lora_unet_conv_in.lora_down.weight": randn([2, 4, 3, 3]), "lora_unet_conv_in.lora_up.weight": randn([32, 2, 1, 1]), "lora_unet_conv_in.alpha": tensor([2]) });
  assert.throws(() => readLoraFile(conv), /lora_unet_conv_in is not a Linear LoRA .*LoCon/);
  const foreign = path.join(work, "foreign.safetensors");
  saveSafetensors(foreign, { "transformer.blocks.0.attn.lora_A.weight": randn([2, 8]), "transformer.blocks.0.attn.lora_B.weight": randn([8, 2]) });
  assert.throws(() => readLoraFile(foreign), /unsupported LoRA keys .*transformer\.blocks\.0\.attn\.lora_A\.weight/);
  const missingLayer = path.join(work, "missing.safetensors");
  saveSafetensors(missingLayer, { "lora_unet_nowhere_to_q.lora_down.weight": randn([2, 8]), "lora_unet_nowhere_to_q.lora_up.weight": randn([8, 2]) });
  assert.throws(() => applyLoraFile(models, missingLayer), /the LoRA names layers these models lack: lora_unet_nowhere_to_q/);
  disposeModels(models);
}));
