// ViT (the DINO metric's network, HyperDreamBooth §5) against transformers 5.23's ViTModel: tiny random models that
// test/oracle/fixtures_photo_metrics.py saves with save_pretrained (a dino-vits16-like model without pooler; one with
// pooler, gelu_new and no qkv bias), at the trained size and interpolated; last hidden state, pooler and every hidden
// state within 1e-5 in fp32 (measured worst: 0, bit for bit with one thread; printed as a diagnostic). The ViTImageProcessor against
// transformers' ViTImageProcessorPil with dino-vits16's legacy preprocessor_config.json (bilinear): equal, to 1e-6,
// to transformers' pipeline with torch's uint8 antialiased resize (measured: 0), and within 2 levels of 8 bits of PIL's
// resize (measured: 1 level downscaling, 2 levels in 6 % of the values upscaling 64 → 224).
// dino-vits16's checkpoint names and shapes; config, weight and input errors.
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test, type TestContext } from "node:test";
import { loadSafetensors, randn, saveSafetensors, tensor, tidy, type Tensor } from "../../src/engine/index.js";
import { ModelLoadingError } from "../../src/models/loading/index.js";
import {
  parseViTConfig, parseViTImageProcessorConfig, VIT_CONFIG_DEFAULTS, ViTConfigError, vitConfig, ViTImageProcessor,
  ViTImageProcessorConfigError, ViTModel,
} from "../../src/models/vit/index.js";
import { expected, meta, modelDir, processorDir, ref } from "./photo-metrics-fixtures.js";

/** fp32 parity bar with transformers. */
const BAR = 1e-5;

after(() => {
  for (const t of expected.values()) t.dispose();
});

const temporary: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "vit-"));
  temporary.push(dir);
  return dir;
}
after(() => {
  for (const dir of temporary) rmSync(dir, { recursive: true, force: true });
});

function maxAbsDiff(a: Tensor, b: Tensor): number {
  assert.deepEqual(a.shape, b.shape, "shapes differ");
  return tidy(() => a.float().sub(b.float()).abs().max().item());
}

function check(t: TestContext, label: string, actual: Tensor, reference: Tensor, bar = BAR): number {
  const error = maxAbsDiff(actual, reference);
  t.diagnostic(`${label}: max abs error ${error.toExponential(2)}`);
  assert.ok(error <= bar, `${label}: max abs error ${error} exceeds ${bar}`);
  return error;
}

test("transformers' ViTModel outputs: last, pooler, every hidden state; trained size and interpolated", async (t) => {
  let worst = 0;
  const models = new Map<string, ViTModel>();
  for (const c of meta.vit_cases) {
    let model = models.get(c.folder);
    if (!model) {
      model = c.folder === "dino" ? await ViTModel.fromPretrained(modelDir(c.folder)) : ViTModel.fromFolder(modelDir(c.folder));
      assert.equal(model.training, false);
      assert.equal(model.encoder.layer.at(0).attention.attention.scale, meta.scales[c.folder], "attention scale");
      models.set(c.folder, model);
    }
    tidy(() => {
      const out = model.forward(ref(`vit/${c.name}/pixel_values`), { outputHiddenStates: true, interpolatePosEncoding: c.interpolate });
      worst = Math.max(worst, check(t, `${c.name} last`, out.lastHiddenState, ref(`vit/${c.name}/last`)));
      if (c.pooled) worst = Math.max(worst, check(t, `${c.name} pooled`, out.pooledOutput!, ref(`vit/${c.name}/pooled`)));
      else assert.equal(out.pooledOutput, null, `${c.name}: no pooler`);
      assert.equal(out.hiddenStates?.length, c.layers + 1);
      out.hiddenStates!.forEach((h, i) => (worst = Math.max(worst, check(t, `${c.name} hidden ${i}`, h, ref(`vit/${c.name}/hidden.${i}`)))));
    });
  }
  t.diagnostic(`worst max abs error over all outputs: ${worst.toExponential(2)} (bar ${BAR})`);
  const dino = models.get("dino")!;
  assert.equal(dino.pooler, null, "dino: built without pooler (the checkpoint has none)");
  assert.deepEqual([...dino.stateDict().keys()].sort(), [...meta.dino_keys].sort(), "dino: exactly the checkpoint's keys");
  const pooled = models.get("vit_pooled")!;
  assert.equal(pooled.encoder.layer.at(0).attention.attention.query.bias, null, "qkv_bias false");
  for (const model of models.values()) model.dispose();
});

test("facebook/dino-vits16: checkpoint names and shapes (meta device, no weights)", () => {
  const tree = meta.dino_vits16;
  const model = new ViTModel(parseViTConfig(tree.config), { device: "meta" }, { addPoolingLayer: false });
  const ours = model.namedParameters().map(([key, p]) => [key, [...p.shape]] as [string, number[]]);
  const byName = (a: [string, number[]], b: [string, number[]]): number => a[0].localeCompare(b[0]);
  assert.deepEqual(ours.sort(byName), [...tree.parameters].sort(byName));
  assert.equal(model.parameterCount(), tree.parameter_count);
  model.dispose();
});

test("input errors name the problem", () => {
  const model = new ViTModel(vitConfig({ hidden_size: 8, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 8, image_size: 8, patch_size: 4 }));
  tidy(() => {
    assert.throws(() => model.forward(randn([3, 8, 8])), /pixel values must be \[batch, 3, height, width\] \(num_channels 3\), got shape \[3, 8, 8\]/);
    assert.throws(() => model.forward(randn([1, 3, 12, 8])), /input image size \(12\*8\) doesn't match model \(8\*8\)/);
    assert.throws(() => model.forward(randn([1, 3, 8, 3]), { interpolatePosEncoding: true }), /smaller than one patch \(4\*4\)/);
    assert.throws(() => model.forward(tensor([[[[1]]]], { dtype: "int64" })), /pixel values must be|floating-point/);
    assert.throws(() => model.forward(randn([1, 3, 8, 8]), { boolMaskedPos: tensor([[true, false, true, true]]) }), /needs a mask_token/);
    assert.deepEqual(model.forward(randn([2, 3, 12, 8]), { interpolatePosEncoding: true }).lastHiddenState.shape, [2, 7, 8], "a 3×2 grid");
    assert.deepEqual(model.forward(randn([1, 3, 8, 8])).pooledOutput?.shape, [1, 8]);
  });
  model.dispose();
});

test("a missing weight is named; a CLIP or task-head folder is not a ViTModel", () => {
  const dir = tempDir();
  cpSync(modelDir("dino"), dir, { recursive: true });
  const weights = loadSafetensors(join(dir, "model.safetensors")).tensors;
  weights.delete("encoder.layer.1.layernorm_after.bias");
  saveSafetensors(join(dir, "model.safetensors"), weights);
  assert.throws(() => ViTModel.fromFolder(dir), (e: Error) =>
    e instanceof ModelLoadingError && /missing keys \(1\): "encoder.layer.1.layernorm_after.bias"/.test(e.message));
  assert.throws(() => ViTModel.fromFolder(modelDir("clip")), /model_type must be "vit".*got "clip"/);
  const headed = tempDir();
  cpSync(modelDir("dino"), headed, { recursive: true });
  const prefixed = new Map([...loadSafetensors(join(dir, "model.safetensors")).tensors].map(([k, v]) => [`vit.${k}`, v]));
  saveSafetensors(join(headed, "model.safetensors"), prefixed);
  assert.throws(() => ViTModel.fromFolder(headed), (e: Error) => e instanceof ModelLoadingError && /keys start with "vit\."/.test(e.message));
  for (const w of [...weights.values(), ...prefixed.values()]) w.dispose();
});

test("config: transformers' defaults, dino-vits16's config, errors naming file, key and value", () => {
  assert.deepEqual({ ...VIT_CONFIG_DEFAULTS }, meta.vit_defaults);
  const vits16 = parseViTConfig(meta.dino_vits16.config);
  assert.deepEqual([vits16.hidden_size, vits16.num_hidden_layers, vits16.num_attention_heads, vits16.patch_size, vits16.pooler_output_size], [384, 12, 6, 16, 384]);
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ hidden_act: "gelu_10" }, /hidden_act="gelu_10" is not supported by this implementation/],
    [{ hidden_size: 30, num_attention_heads: 4 }, /hidden_size must be a multiple of num_attention_heads \(4\), got 30/],
    [{ model_type: "dinov2" }, /model_type must be "vit" .*got "dinov2"/],
    [{ image_size: 8, patch_size: 16 }, /patch_size must be at most image_size \(8\), got 16/],
    [{ qkv_bias: "yes" }, /qkv_bias must be true or false, got "yes"/],
    [{ pooler_act: "softmax" }, /pooler_act="softmax" is not supported/],
  ];
  for (const [raw, message] of bad) {
    assert.throws(() => parseViTConfig(raw, "cfg.json"), (e: Error) => e instanceof ViTConfigError && message.test(e.message) && e.message.startsWith("cfg.json: "), String(message));
  }
  const dir = tempDir();
  cpSync(modelDir("dino"), dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify({ model_type: "vit", intermediate_size: 0 }));
  assert.throws(() => ViTModel.fromFolder(dir), (e: Error) => e.message.startsWith(`${join(dir, "config.json")}: intermediate_size must be a positive integer, got 0`));
});

test("ViTImageProcessor against transformers' ViTImageProcessorPil (dino-vits16's preprocessor_config.json)", (t) => {
  const vits16 = ViTImageProcessor.fromFolder(processorDir("dino_vits16"));
  assert.deepEqual(vits16.config.size, { height: 224, width: 224 }, "an integer size is a square (default_to_square)");
  assert.equal(vits16.config.resample, 2);
  assert.deepEqual(vits16.config.image_std, [0.229, 0.224, 0.225]);
  const tiny = ViTImageProcessor.fromFolder(modelDir("dino"));
  let worst = 0;
  for (const [name, processor] of [["dino", tiny], ["dino_vits16", vits16]] as const) {
    for (const image of meta.images) {
      tidy(() => {
        const ours = processor.preprocess(ref(`image/${image}`));
        const pil = ref(`${name}/${image}/transformers`);
        const torchResized = ref(`${name}/${image}/torch_aa`);
        const exact = maxAbsDiff(ours, torchResized);
        const std = tensor([0.229, 0.224, 0.225], { dtype: "float32" }).view(1, 3, 1, 1);
        const delta = ours.sub(pil).abs();
        const levels = Math.round(delta.mul(std).mul(255).max().item());
        const share = delta.gt(1e-6).float().mean().item();
        t.diagnostic(`${name}/${image}: vs torch's uint8 bilinear ${exact.toExponential(2)}; vs PIL ≤ ${levels} levels of 8 bits in ${(share * 100).toFixed(2)}% of the values`);
        assert.ok(exact <= 1e-6, `${name}/${image}: differs from transformers' pipeline with torch's resize by ${exact}`);
        assert.ok(levels <= 2, `${name}/${image}: ${levels} levels from PIL`);
        assert.ok(share <= 0.2, `${name}/${image}: ${share} of the values differ from PIL`);
        worst = Math.max(worst, levels);
      });
    }
  }
  t.diagnostic(`worst difference from PIL's bilinear: ${worst} level(s) of 8 bits`);
  const bicubic = new ViTImageProcessor({ size: 16, resample: 3 });
  tidy(() => assert.deepEqual(bicubic.preprocess(ref("image/other")).shape, [1, 3, 16, 16]));
  const badConfigs: [Record<string, unknown>, RegExp][] = [
    [{ resample: 0 }, /resample=0 is not supported by this implementation \(supported: 2 \(bilinear\) or 3 \(bicubic\)\)/],
    [{ do_center_crop: true }, /do_center_crop=true is not supported/],
    [{ image_processor_type: "CLIPImageProcessor" }, /image_processor_type="CLIPImageProcessor" is not supported/],
    [{ size: { width: 3 } }, /size must be \{"height": h, "width": w\} or \{"shortest_edge": n\}/],
  ];
  for (const [raw, message] of badConfigs) {
    assert.throws(() => parseViTImageProcessorConfig(raw, "pp.json"), (e: Error) => e instanceof ViTImageProcessorConfigError && message.test(e.message) && e.message.startsWith("pp.json: "), String(message));
  }
  assert.throws(() => tiny.preprocess([]), /no images to preprocess/);
  assert.throws(() => tiny.preprocess({ width: 2, height: 2, data: new Uint8Array(5) }), /image 0: an RGB image of 2x2 needs 12 bytes, got 5/);
});
