// The CLIP text encoder against transformers 5.23's CLIPTextModel: tiny models that
// test/oracle/fixtures_text_encoder.py builds and saves with save_pretrained (SD1-style quick_gelu, SD2-style
// gelu, a non-legacy end token, real-SD key layout, fp16 variant, with projection), on padded inputs with and
// without attention masks: last hidden state, pooled output, every hidden state, clip skip 1 and 2, gradients
// (every parameter and a LoRA-like pair on one q_proj). Then the tiny_sd pipelines' text encoders (the oracle
// is run on them), the config rules, and SD1.5's / SD2.1's real module trees built on the meta device.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test, type TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import {
  arange, enableGrad, grad, layerNorm, linear, loadSafetensors, memory, saveSafetensors, tensor, tidy, type Tensor,
} from "../../src/engine/index.js";
import type { Linear } from "../../src/engine/nn/index.js";
import { ModelLoadingError } from "../../src/models/loading/errors.js";
import {
  CLIP_TEXT_ACTIVATIONS, CLIP_TEXT_CONFIG_DEFAULTS, CLIPTextConfigError, clipActivation, clipTextConfig, parseCLIPTextConfig,
} from "../../src/models/clip/text-config.js";
import { CLIPTextModel, CLIPTextModelWithProjection, inverseSqrt } from "../../src/models/clip/text-encoder.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const FIXTURES = join(ROOT, "test", "fixtures", "generated", "text_encoder");
const TINY_SD = join(ROOT, "test", "fixtures", "generated", "tiny_sd");
const ORACLE = join(ROOT, "test", "oracle", "fixtures_text_encoder.py");
const PYTHON = join(ROOT, ".venv", "bin", "python");
const BAR = 1e-4;

interface Case { model: string; folder: string; case: string; mask: boolean; layers: number }
interface Tree { config: Record<string, unknown>; parameters: [string, number[]][]; buffers: [string, number[]][]; parameter_count: number }
interface Meta {
  cases: Case[];
  scales: Record<string, number>;
  gradient: { model: string; case: string; parameters: string[]; lora_layer: number; lora_scale: number };
  defaults: Record<string, unknown>;
  trees: Record<"sd15" | "sd21", Tree>;
}

if (!existsSync(join(FIXTURES, "meta.json"))) {
  throw new Error(`${FIXTURES}/meta.json is missing: run .venv/bin/python test/oracle/generate.py text_encoder`);
}
const meta = JSON.parse(readFileSync(join(FIXTURES, "meta.json"), "utf8")) as Meta;
const expected = loadSafetensors(join(FIXTURES, "expected.safetensors")).tensors;
after(() => {
  for (const t of expected.values()) t.dispose();
});

function ref(key: string): Tensor {
  const t = expected.get(key);
  if (!t) throw new Error(`expected.safetensors has no "${key}"`);
  return t;
}

function maxAbsDiff(a: Tensor, b: Tensor): number {
  assert.deepEqual(a.shape, b.shape, "shapes differ");
  return tidy(() => a.float().sub(b.float()).abs().max().item());
}

/** Compares, reports the measured error, and returns it. */
function check(t: TestContext, label: string, actual: Tensor, reference: Tensor, bar = BAR): number {
  const error = maxAbsDiff(actual, reference);
  t.diagnostic(`${label}: max abs error ${error.toExponential(2)}`);
  assert.ok(error <= bar, `${label}: max abs error ${error} exceeds ${bar}`);
  return error;
}

const modelDir = (folder: string): string => join(FIXTURES, "models", folder);

test("transformers' outputs: last, pooled, every hidden state, clip skip (all models and masks)", (t) => {
  let worst = 0;
  const models = new Map<string, CLIPTextModel>();
  for (const c of meta.cases) {
    let model = models.get(c.folder);
    if (!model) {
      model = CLIPTextModel.fromPretrained(modelDir(c.folder), c.folder === "sd2_fp16" ? { variant: "fp16" } : {});
      models.set(c.folder, model);
      assert.equal(model.textModel.encoder.layers.at(0).selfAttn.scale, meta.scales[c.model], "attention scale");
    }
    const p = `${c.folder}/${c.case}`;
    tidy(() => {
      const ids = ref(`${p}/input_ids`);
      const attentionMask = c.mask ? ref(`${p}/attention_mask`) : undefined;
      const out = model.forward(ids, { attentionMask, outputHiddenStates: true });
      worst = Math.max(worst, check(t, `${p} last`, out.lastHiddenState, ref(`${p}/last`)));
      worst = Math.max(worst, check(t, `${p} pooled`, out.pooledOutput, ref(`${p}/pooled`)));
      assert.equal(out.hiddenStates?.length, c.layers + 1);
      out.hiddenStates!.forEach((h, i) => (worst = Math.max(worst, check(t, `${p} hidden ${i}`, h, ref(`${p}/hidden.${i}`)))));
      for (const k of [1, 2]) {
        worst = Math.max(worst, check(t, `${p} clip skip ${k}`, model.encode(ids, { attentionMask, clipSkip: k }), ref(`${p}/clip_skip_${k}`)));
      }
      // clip skip 0 is the last hidden state; skipping every layer is the embeddings through the final norm.
      assert.equal(maxAbsDiff(model.encode(ids, { attentionMask }), out.lastHiddenState), 0);
      const norm = model.textModel.finalLayerNorm;
      const embeddingsNormed = layerNorm(out.hiddenStates![0]!, norm.normalizedShape, norm.weight, norm.bias, norm.eps);
      assert.equal(maxAbsDiff(model.encode(ids, { attentionMask, clipSkip: c.layers }), embeddingsNormed), 0);
    });
  }
  t.diagnostic(`worst max abs error over all outputs: ${worst.toExponential(2)}`);
  for (const model of models.values()) model.dispose();
});

test("gradients of sum(last_hidden_state · g): every parameter and a LoRA-like pair on one q_proj", (t) => {
  const { model: name, case: caseName, parameters, lora_layer: layer, lora_scale: scale } = meta.gradient;
  const model = CLIPTextModel.fromPretrained(modelDir(name));
  const before = memory().tensors;
  tidy(() => {
    const loraA = ref("grad/lora_a").clone().requiresGrad_();
    const loraB = ref("grad/lora_b").clone().requiresGrad_();
    const qProj: Linear = model.textModel.encoder.layers.at(layer).selfAttn.qProj;
    // The same extra path as the oracle: q = linear(x, W, b) + scale · linear(linear(x, A), B).
    qProj.forward = (x: Tensor): Tensor => linear(x, qProj.weight, qProj.bias).add(linear(linear(x, loraA), loraB).mul(scale));
    const named = new Map(model.namedParameters());
    assert.deepEqual([...named.keys()], parameters, "parameter order");
    const out = enableGrad(() => model.forward(ref(`${name}/${caseName}/input_ids`), { attentionMask: ref(`${name}/${caseName}/attention_mask`) }));
    const loss = out.lastHiddenState.mul(ref("grad/weights")).sum();
    const inputs = [loraA, loraB, ...named.values()];
    const grads = grad(loss, inputs);
    let worst = check(t, "d lora_a", grads[0]!, ref("grad/d_lora_a"));
    worst = Math.max(worst, check(t, "d lora_b", grads[1]!, ref("grad/d_lora_b")));
    parameters.forEach((key, i) => (worst = Math.max(worst, check(t, `d ${key}`, grads[i + 2]!, ref(`grad/d/${key}`)))));
    t.diagnostic(`worst gradient max abs error: ${worst.toExponential(2)} (token embedding: ${maxAbsDiff(grads[2]!, ref(`grad/d/${parameters[0]}`)).toExponential(2)})`);
    delete (qProj as { forward?: unknown }).forward;
  });
  assert.equal(memory().tensors, before, "no tensor outlives the tidy scope");
  model.dispose();
});

test("CLIPTextModelWithProjection: text_embeds and last hidden state", (t) => {
  const model = CLIPTextModelWithProjection.fromPretrained(modelDir("projection"));
  assert.equal(model.textProjection.bias, null);
  tidy(() => {
    const out = model.forward(ref("projection/masked/input_ids"), { attentionMask: ref("projection/masked/attention_mask") });
    check(t, "text_embeds", out.textEmbeds, ref("projection/masked/text_embeds"));
    check(t, "last", out.lastHiddenState, ref("projection/masked/last"));
  });
  model.dispose();
});

test("activations match transformers' ACT2FN", (t) => {
  const x = ref("act/input");
  for (const name of CLIP_TEXT_ACTIVATIONS) {
    tidy(() => check(t, name, clipActivation(name)(x), ref(`act/${name}`), 1e-6));
  }
});

test("inverseSqrt is the correctly rounded n ** -0.5 (Python's head_dim ** -0.5)", () => {
  // 8 ** -0.5 in V8 is 1 ulp below Python's value; the rest are the head sizes of SD1, SD2 and SDXL.
  assert.equal(inverseSqrt(8), 0.3535533905932738);
  assert.equal(inverseSqrt(40), 0.15811388300841897);
  assert.equal(inverseSqrt(64), 0.125);
  assert.equal(inverseSqrt(80), 0.11180339887498948);
  assert.equal(inverseSqrt(160), 0.07905694150420949);
});

test("forward frees its temporaries and the position_ids buffer stays out of the state dict", () => {
  const model = CLIPTextModel.fromPretrained(modelDir("sd1_prefixed"));
  assert.ok(!model.stateDict().has("text_model.embeddings.position_ids"));
  assert.deepEqual(model.namedBuffers().map(([name, b]) => [name, b.shape, b.dtype]), [["text_model.embeddings.position_ids", [1, 16], "int64"]]);
  const before = memory().tensors;
  const ids = ref("sd1/masked/input_ids");
  const out = model.forward(ids, { attentionMask: ref("sd1/masked/attention_mask") });
  assert.equal(memory().tensors, before + 2, "only lastHiddenState and pooledOutput remain");
  out.lastHiddenState.dispose();
  out.pooledOutput.dispose();
  model.encode(ids, { clipSkip: 2 }).dispose();
  assert.equal(memory().tensors, before);
  model.dispose();
});

test("input errors name the problem", () => {
  const model = new CLIPTextModel(clipTextConfig({ vocab_size: 50, hidden_size: 8, intermediate_size: 8, num_hidden_layers: 2, num_attention_heads: 2, max_position_embeddings: 6 }));
  tidy(() => {
    assert.throws(() => model.forward(tensor([[1, 2, 3, 4, 5, 6, 7]], { dtype: "int64" })), /sequence length 7 exceeds max_position_embeddings 6/);
    assert.throws(() => model.forward(tensor([[1, 2]])), /integer tensor/);
    assert.throws(() => model.forward(tensor([[1, 2]], { dtype: "int64" }), { attentionMask: tensor([[1, 1, 0]], { dtype: "int64" }) }), /shape \[1, 2\]/);
    assert.throws(() => model.encode(tensor([[1, 2]], { dtype: "int64" }), { clipSkip: 3 }), /clipSkip must be an integer in \[0, 2\]/);
    // 1-D ids are one sequence, as transformers' view(-1, T) makes them.
    assert.deepEqual(model.forward(arange(4, undefined, 1, { dtype: "int64" })).lastHiddenState.shape, [1, 4, 8]);
  });
  model.dispose();
});

test("config: transformers' defaults, real SD configs, nested CLIPConfig, unsupported values", () => {
  assert.deepEqual({ ...CLIP_TEXT_CONFIG_DEFAULTS }, meta.defaults);
  const sd15 = parseCLIPTextConfig(meta.trees.sd15.config);
  assert.equal(sd15.hidden_act, "quick_gelu");
  assert.equal(sd15.eos_token_id, 2);
  const sd21 = parseCLIPTextConfig(meta.trees.sd21.config);
  assert.deepEqual([sd21.hidden_size, sd21.num_hidden_layers, sd21.num_attention_heads, sd21.intermediate_size, sd21.hidden_act], [1024, 23, 16, 4096, "gelu"]);
  const nested = parseCLIPTextConfig({ model_type: "clip", projection_dim: 768, text_config: { hidden_size: 64, num_attention_heads: 4 }, vision_config: {} });
  assert.equal(nested.hidden_size, 64);
  assert.equal(nested.intermediate_size, 2048);
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ hidden_act: "gelu_10" }, /hidden_act="gelu_10" is not supported by this implementation \(supported: "quick_gelu", "gelu"/],
    [{ hidden_size: 30, num_attention_heads: 4 }, /hidden_size must be a multiple of num_attention_heads \(4\), got 30/],
    [{ eos_token_id: [2, 3] }, /eos_token_id must be one integer.*\[2,3\]/],
    [{ vocab_size: null }, /vocab_size must be a positive integer, got null/],
    [{ layer_norm_eps: "1e-5" }, /layer_norm_eps must be a positive number, got "1e-5"/],
    [{ model_type: "t5" }, /model_type must be "clip_text_model" \(a CLIP text encoder\), got "t5"/],
    [{ is_causal: false }, /is_causal=false is not supported/],
    [{ model_type: "clip", text_config: [] }, /text_config must be an object, got \[\]/],
  ];
  for (const [raw, message] of bad) assert.throws(() => parseCLIPTextConfig(raw, "cfg.json"), (e: Error) => e instanceof CLIPTextConfigError && message.test(e.message) && e.message.startsWith("cfg.json"));
});

test("fromPretrained: folder errors are explicit", () => {
  const dir = mkdtempSync(join(tmpdir(), "clip-text-"));
  try {
    writeFileSync(join(dir, "config.json"), JSON.stringify({ model_type: "clip", text_config: {}, vision_config: {} }));
    assert.throws(() => CLIPTextModel.fromPretrained(dir), (e: Error) => e instanceof ModelLoadingError && /full CLIPModel/.test(e.message));
    // sd2's weights under sd1's config: every mismatched shape is named.
    const wrong = join(dir, "wrong");
    mkdirSync(wrong);
    writeFileSync(join(wrong, "config.json"), JSON.stringify({ ...meta.trees.sd15.config, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 4, num_attention_heads: 4, vocab_size: 1000, max_position_embeddings: 16 }));
    const weights = loadSafetensors(join(modelDir("sd2"), "model.safetensors")).tensors;
    saveSafetensors(join(wrong, "model.safetensors"), weights);
    for (const w of weights.values()) w.dispose();
    assert.throws(() => CLIPTextModel.fromPretrained(wrong), /shape mismatch for "embeddings.token_embedding.weight".*\[1000, 32\].*\[1000, 48\]/s);
    assert.throws(() => CLIPTextModel.fromPretrained(modelDir("sd2_fp16")), /pass variant "fp16"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("tiny_sd pipelines' text_encoder folders load unchanged and match transformers", (t) => {
  const names = ["sd1", "sd2", "sd1-fp16"];
  const folders = names.map((name) => join(TINY_SD, name, "text_encoder"));
  for (const folder of folders) {
    if (!existsSync(folder)) throw new Error(`${folder} is missing: run .venv/bin/python test/oracle/generate.py tiny_sd`);
  }
  const work = mkdtempSync(join(tmpdir(), "clip-text-tiny-sd-"));
  const outPath = join(work, "reference.safetensors");
  try {
    const result = spawnSync(PYTHON, [ORACLE, "reference", outPath, ...folders], { encoding: "utf8" });
    assert.equal(result.status, 0, result.stderr);
    const reference = loadSafetensors(outPath).tensors;
    const get = (key: string): Tensor => reference.get(key) ?? assert.fail(`the oracle wrote no "${key}"`);
    folders.forEach((folder, i) => {
      for (const variant of names[i]!.endsWith("fp16") ? ["plain", "fp16"] : ["plain"]) {
        const model = CLIPTextModel.fromPretrained(folder, variant === "fp16" ? { variant } : {});
        tidy(() => {
          const ids = get(`${i}/input_ids`);
          const attentionMask = get(`${i}/attention_mask`);
          const out = model.forward(ids, { attentionMask, outputHiddenStates: true });
          const label = `${names[i]} ${variant}`;
          check(t, `${label} last`, out.lastHiddenState, get(`${i}/${variant}/last`));
          check(t, `${label} pooled`, out.pooledOutput, get(`${i}/${variant}/pooled`));
          out.hiddenStates!.forEach((h, k) => check(t, `${label} hidden ${k}`, h, get(`${i}/${variant}/hidden.${k}`)));
          for (const k of [1, 2]) check(t, `${label} clip skip ${k}`, model.encode(ids, { attentionMask, clipSkip: k }), get(`${i}/${variant}/clip_skip_${k}`));
        });
        model.dispose();
      }
    });
    for (const r of reference.values()) r.dispose();
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test("SD1.5's and SD2.1's real text encoders: module tree, names and shapes (meta device, no weights)", () => {
  for (const [name, projections] of [["sd15", 48], ["sd21", 92]] as const) {
    const tree = meta.trees[name];
    const model = new CLIPTextModel(parseCLIPTextConfig(tree.config), { device: "meta" });
    assert.deepEqual(model.namedParameters().map(([key, p]) => [key, [...p.shape]]), tree.parameters, `${name} parameters`);
    assert.deepEqual(model.namedBuffers().map(([key, b]) => [key, [...b.shape]]), tree.buffers, `${name} buffers`);
    assert.equal(model.parameterCount(), tree.parameter_count);
    assert.ok(model.parameters().every((p) => p.device === "meta"));
    const attention = model.namedParameters().filter(([key]) => /self_attn\.(q|k|v|out)_proj\.weight$/.test(key));
    assert.equal(attention.length, projections, `${name}: attention projections`);
    model.dispose();
  }
});
