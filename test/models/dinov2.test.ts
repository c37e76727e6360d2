// DINOv2 against transformers 5.23's Dinov2Model: tiny random models that test/oracle/fixtures_vision.py saves with
// save_pretrained (gelu MLP; SwiGLU without qkv bias), at the trained input size and at sizes that interpolate the
// position embeddings (a larger non-square grid, a smaller square one), with mask tokens; outputs within 1e-5 in
// fp32. The BitImageProcessor against transformers' (PIL) with facebook/dinov2-base's settings; input, weight and
// config errors; DINOv2-base's and -giant's module trees.
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { loadSafetensors, memory, randn, saveSafetensors, tensor, tidy } from "../../src/engine/index.js";
import { ModelLoadingError } from "../../src/models/loading/index.js";
import {
  BitImageProcessor, DINOV2_CONFIG_DEFAULTS, Dinov2ConfigError, dinov2Config, Dinov2Model, parseDinov2Config,
} from "../../src/models/dinov2/index.js";
import { BAR, check, checkProcessor, expected, meta, modelDir, processorDir, ref } from "./vision-fixtures.js";

after(() => {
  for (const t of expected.values()) t.dispose();
});

const temporary: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "dinov2-"));
  temporary.push(dir);
  return dir;
}
after(() => {
  for (const dir of temporary) rmSync(dir, { recursive: true, force: true });
});

test("transformers' outputs: last, pooled, every hidden state; trained size, interpolated sizes, mask tokens", async (t) => {
  let worst = 0;
  const models = new Map<string, Dinov2Model>();
  for (const c of meta.dino_cases) {
    let model = models.get(c.folder);
    if (!model) {
      model = await Dinov2Model.fromPretrained(modelDir(c.folder));
      assert.equal(model.training, false);
      assert.equal(model.encoder.layer.at(0).attention.attention.scale, meta.scales[c.folder], "attention scale");
      models.set(c.folder, model);
    }
    tidy(() => {
      const out = model.forward(ref(`${c.name}/pixel_values`), {
        outputHiddenStates: true, ...(c.masked ? { boolMaskedPos: ref(`${c.name}/bool_masked_pos`) } : {}),
      });
      worst = Math.max(worst, check(t, `${c.name} last`, out.lastHiddenState, ref(`${c.name}/last`)));
      worst = Math.max(worst, check(t, `${c.name} pooled`, out.pooledOutput, ref(`${c.name}/pooled`)));
      assert.equal(out.hiddenStates?.length, c.layers + 1);
      out.hiddenStates!.forEach((h, i) => (worst = Math.max(worst, check(t, `${c.name} hidden ${i}`, h, ref(`${c.name}/hidden.${i}`)))));
    });
  }
  t.diagnostic(`worst max abs error over all outputs: ${worst.toExponential(2)} (bar ${BAR})`);
  const swiglu = models.get("dinov2_swiglu")!;
  assert.equal(swiglu.encoder.layer.at(0).attention.attention.query.bias, null, "qkv_bias false");
  assert.ok(!models.get("dinov2")!.stateDict().has("encoder.layer.0.mlp.weights_in.weight"));
  for (const model of models.values()) model.dispose();
});

test("forward frees its temporaries", () => {
  const model = Dinov2Model.fromFolder(modelDir("dinov2"));
  const before = memory().tensors;
  const out = model.forward(ref("dinov2/wide/pixel_values"));
  assert.equal(memory().tensors, before + 2, "only lastHiddenState and pooledOutput remain");
  out.lastHiddenState.dispose();
  out.pooledOutput.dispose();
  assert.equal(memory().tensors, before);
  model.dispose();
});

test("input errors name the problem", () => {
  const model = new Dinov2Model(dinov2Config({ hidden_size: 8, num_hidden_layers: 1, num_attention_heads: 2, image_size: 8, patch_size: 4 }));
  tidy(() => {
    assert.throws(() => model.forward(randn([3, 8, 8])), /pixel values must be \[batch, 3, height, width\] \(num_channels 3\), got shape \[3, 8, 8\]/);
    assert.throws(() => model.forward(randn([1, 1, 8, 8])), /got shape \[1, 1, 8, 8\]/);
    assert.throws(() => model.forward(randn([1, 3, 8, 3])), /smaller than one patch \(4\*4\)/);
    assert.throws(() => model.forward(tensor([[[[1]]]], { dtype: "int64" })), /pixel values must be|floating-point/);
    assert.throws(() => model.forward(randn([1, 3, 8, 8]), { boolMaskedPos: tensor([[true, false]]) }), /boolMaskedPos must have shape \[1, 4\] \(batch, patches\), got \[1, 2\]/);
    assert.deepEqual(model.forward(randn([2, 3, 13, 9])).lastHiddenState.shape, [2, 7, 8], "any size: a 3×2 grid");
  });
  model.train();
  tidy(() => model.forward(randn([1, 3, 8, 8])));
  const dropping = new Dinov2Model(dinov2Config({ hidden_size: 8, num_hidden_layers: 1, num_attention_heads: 2, image_size: 8, patch_size: 4, drop_path_rate: 0.1 }));
  assert.throws(() => tidy(() => dropping.forward(randn([1, 3, 8, 8]))), /drop path \(drop_path_rate 0.1\) in training mode is not implemented/);
  dropping.eval();
  tidy(() => dropping.forward(randn([1, 3, 8, 8])));
  for (const m of [model, dropping]) m.dispose();
});

test("a missing weight is named; a CLIP folder is not a DINOv2 one", () => {
  const dir = tempDir();
  cpSync(modelDir("dinov2"), dir, { recursive: true });
  const weights = loadSafetensors(join(dir, "model.safetensors")).tensors;
  weights.delete("encoder.layer.1.layer_scale2.lambda1");
  saveSafetensors(join(dir, "model.safetensors"), weights);
  for (const w of weights.values()) w.dispose();
  assert.throws(() => Dinov2Model.fromFolder(dir), (e: Error) =>
    e instanceof ModelLoadingError && /missing keys \(1\): "encoder.layer.1.layer_scale2.lambda1"/.test(e.message));
  assert.throws(() => Dinov2Model.fromFolder(modelDir("clip_vision")), /model_type must be "dinov2".*got "clip_vision_model"/);
});

test("config: transformers' defaults, the released models' configs, errors naming file, key and value", () => {
  assert.deepEqual({ ...DINOV2_CONFIG_DEFAULTS }, meta.dino_defaults);
  const giant = parseDinov2Config(meta.trees.dinov2_giant.config);
  assert.deepEqual([giant.hidden_size, giant.num_hidden_layers, giant.use_swiglu_ffn, giant.image_size], [1536, 40, true, 518]);
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ hidden_act: "gelu_10" }, /hidden_act="gelu_10" is not supported by this implementation/],
    [{ hidden_size: 30, num_attention_heads: 4 }, /hidden_size must be a multiple of num_attention_heads \(4\), got 30/],
    [{ model_type: "dinov2_with_registers" }, /model_type must be "dinov2" \(a DINOv2 model; dinov2_with_registers is another architecture\), got "dinov2_with_registers"/],
    [{ image_size: [28, 14], patch_size: 7 }, /image_size must be a size giving a square grid/],
    [{ patch_size: "14" }, /patch_size must be a positive integer or \[height, width\], got "14"/],
    [{ use_swiglu_ffn: 1 }, /use_swiglu_ffn must be true or false, got 1/],
  ];
  for (const [raw, message] of bad) {
    assert.throws(() => parseDinov2Config(raw, "cfg.json"), (e: Error) => e instanceof Dinov2ConfigError && message.test(e.message) && e.message.startsWith("cfg.json: "), String(message));
  }
  const dir = tempDir();
  cpSync(modelDir("dinov2"), dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify({ model_type: "dinov2", mlp_ratio: -4 }));
  assert.throws(() => Dinov2Model.fromFolder(dir), (e: Error) => e.message.startsWith(`${join(dir, "config.json")}: mlp_ratio must be a positive number, got -4`));
});

test("DINOv2-base and DINOv2-giant (SwiGLU): checkpoint names and shapes (meta device, no weights)", () => {
  for (const name of ["dinov2_base", "dinov2_giant"] as const) {
    const tree = meta.trees[name];
    const model = new Dinov2Model(parseDinov2Config(tree.config), { device: "meta" });
    const ours = model.namedParameters().map(([key, p]) => [key, [...p.shape]] as [string, number[]]);
    const byName = (a: [string, number[]], b: [string, number[]]): number => a[0].localeCompare(b[0]);
    assert.deepEqual(ours.sort(byName), [...tree.parameters].sort(byName), `${name} parameters`);
    assert.equal(model.parameterCount(), tree.parameter_count);
    model.dispose();
  }
});

test("BitImageProcessor against transformers' BitImageProcessorPil (facebook/dinov2-base's settings), five photos", (t) => {
  const processor = BitImageProcessor.fromFolder(processorDir("dinov2"));
  assert.ok(processor instanceof BitImageProcessor);
  assert.deepEqual(processor.config.size, { shortest_edge: 256 });
  assert.deepEqual(processor.config.image_std, [0.229, 0.224, 0.225]);
  // The bound measured on these photos (down- and upscaled): 1 level of 8 bits, in under 0.5% of the values.
  const worst = checkProcessor(t, "dinov2", processor, 1, 0.005);
  t.diagnostic(`worst difference from PIL's bicubic: ${worst} levels of 8 bits`);
  const model = Dinov2Model.fromFolder(modelDir("dinov2"));
  const tiny = BitImageProcessor.fromFolder(modelDir("dinov2"));
  tidy(() => assert.deepEqual(model.forward(tiny.preprocess(ref("image/portrait"))).pooledOutput.shape, [1, 32]));
  model.dispose();
});
