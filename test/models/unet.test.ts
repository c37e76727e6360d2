// UNet2DConditionModel against diffusers 0.42.1 (test/oracle/fixtures_unet.py): tiny SD1-, SD2- and
// unusual-option UNets loaded with fromPretrained from save_pretrained folders, at several timesteps, with
// and without a text mask, odd latent sizes, fp16 weights computed in fp32, the tiny pipelines' UNets, and
// gradients (sample, text states, a LoRA-like A·B on one to_q); the real SD1.5/SD2.1 configs built on the
// meta device against diffusers' state dict; config errors.
import assert from "node:assert/strict";
import { test } from "node:test";
import { empty, grad, noGrad, tidy, type Tensor } from "../../src/engine/index.js";
import type { Linear } from "../../src/engine/nn/index.js";
import type { Attention } from "../../src/models/blocks/attention.js";
import { resolveUNet2DConditionConfig, UNet2DConditionModel, UNet2DConditionConfigError } from "../../src/models/unet/index.js";
import type { CrossAttnDownBlock2D, UNetMidBlock2DCrossAttn } from "../../src/models/unet/index.js";
import { maxAbsDiff } from "../engine/nn-fixtures.js";
import { generatedPath, get, leaf, loadUnetTensors, readUnetOracle, unetFixturePath } from "./unet-fixtures.js";
import { readFileSync } from "node:fs";

const BAR = 1e-4;
const oracle = readUnetOracle();

for (const [name, entry] of Object.entries(oracle.unets)) {
  test(`UNet2DConditionModel (${name}) matches diffusers at several timesteps, masks and sizes`, () => tidy(() => {
    const unet = UNet2DConditionModel.fromPretrained(unetFixturePath(`unet_${name}`));
    const tensors = loadUnetTensors(`unet_${name}.safetensors`);
    const text = get(tensors, "encoder_hidden_states");
    const mask = get(tensors, "encoder_attention_mask");
    const errors = entry.runs.map((run, i) => noGrad(() => tidy(() => {
      const timestep = run.timestep ?? (run.timestep_shape!.length === 0 ? get(tensors, `run${i}.timestep`).reshape() : get(tensors, `run${i}.timestep`));
      const out = unet.forward(get(tensors, `run${i}.sample`), timestep, text, run.masked ? { encoderAttentionMask: mask } : {});
      return maxAbsDiff(out, get(tensors, `run${i}.output`));
    })));
    console.log(`${name}: max abs errors per run ${errors.map((e) => e.toExponential(2)).join(", ")}`);
    for (const error of errors) assert.ok(error <= BAR, `${name}: ${error} > ${BAR}`);
    unet.dispose();
  }));

  test(`UNet2DConditionModel (${name}) gradients match diffusers (sample, text states, LoRA-like A·B)`, () => tidy(() => {
    const unet = UNet2DConditionModel.fromPretrained(unetFixturePath(`unet_${name}`));
    const tensors = loadUnetTensors(`unet_${name}.safetensors`);
    const a = leaf(get(tensors, "grad.a"));
    const b = leaf(get(tensors, "grad.b"));
    const attention = (unet.downBlocks.at(0) as CrossAttnDownBlock2D).attentions.at(0).transformerBlocks.at(0).attn2!;
    addLowRankQuery(attention, a, b);
    const sample = leaf(get(tensors, "grad.sample"));
    const text = leaf(get(tensors, "encoder_hidden_states"));
    const out = unet.forward(sample, entry.grad_timestep, text, { encoderAttentionMask: get(tensors, "encoder_attention_mask") });
    const mid = (unet.midBlock as UNetMidBlock2DCrossAttn).attentions.at(0).transformerBlocks.at(0).attn1.toQ.weight;
    const grads = grad(out, [sample, text, a, b, unet.convIn.weight, mid], { gradOutputs: [get(tensors, "grad.g")] });
    const expected = ["d_sample", "d_encoder_hidden_states", "d_a", "d_b", "d_conv_in_weight", "d_mid_attn1_to_q_weight"];
    const errors = Object.fromEntries(expected.map((key, i) => [key, maxAbsDiff(grads[i]!, get(tensors, `grad.${key}`))]));
    errors.output = maxAbsDiff(out, get(tensors, "grad.output"));
    console.log(`${name}: ${JSON.stringify(errors)}`);
    for (const [key, error] of Object.entries(errors)) assert.ok(error <= BAR, `${name} ${key}: ${error} > ${BAR}`);
    unet.dispose();
  }));
}

/** Adds x·A·B to the attention's to_q output: the test's LoRA-like extra parameter (as LoraQuery in the oracle). */
function addLowRankQuery(attention: Attention, a: Tensor, b: Tensor): void {
  const toQ: Linear = attention.toQ;
  const base = toQ.forward.bind(toQ);
  toQ.forward = (x: Tensor): Tensor => tidy(() => base(x).add(x.matmul(a).matmul(b)));
}

test("fp16 weights (variant) load into a float32 UNet and match diffusers computing in float32", () => tidy(() => {
  const unet = UNet2DConditionModel.fromPretrained(unetFixturePath("unet_sd1_fp16"), { variant: "fp16", dtype: "float32" });
  assert.equal(unet.convIn.weight.dtype, "float32");
  const tensors = loadUnetTensors("unet_sd1_fp16.safetensors");
  const text = get(loadUnetTensors("unet_sd1.safetensors"), "encoder_hidden_states");
  const mask = get(loadUnetTensors("unet_sd1.safetensors"), "encoder_attention_mask");
  const out = noGrad(() => unet.forward(get(tensors, "sample"), 640, text, { encoderAttentionMask: mask }));
  const error = maxAbsDiff(out, get(tensors, "output"));
  console.log(`sd1 fp16 weights: max abs error ${error.toExponential(2)}`);
  assert.ok(error <= BAR);
  unet.dispose();
}));

for (const name of oracle.tiny_sd) {
  test(`the tiny ${name} pipeline's UNet (tiny_sd fixtures) matches diffusers`, () => tidy(() => {
    const unet = UNet2DConditionModel.fromPretrained(generatedPath(`tiny_sd/${name}/unet`));
    const tensors = loadUnetTensors(`tiny_sd_${name}.safetensors`);
    const out = noGrad(() => unet.forward(get(tensors, "sample"), get(tensors, "timestep"), get(tensors, "encoder_hidden_states")));
    const error = maxAbsDiff(out, get(tensors, "output"));
    console.log(`tiny_sd ${name}: max abs error ${error.toExponential(2)}`);
    assert.ok(error <= BAR);
    unet.dispose();
  }));
}

// The real configs, as published (runwayml/stable-diffusion-v1-5 and stabilityai/stable-diffusion-2-1, unet/config.json).
const SD_BLOCKS = {
  down_block_types: ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
  up_block_types: ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
};
const SD15_UNET_CONFIG = {
  _class_name: "UNet2DConditionModel", _diffusers_version: "0.6.0", act_fn: "silu", attention_head_dim: 8,
  block_out_channels: [320, 640, 1280, 1280], center_input_sample: false, cross_attention_dim: 768, ...SD_BLOCKS,
  downsample_padding: 1, flip_sin_to_cos: true, freq_shift: 0, in_channels: 4, layers_per_block: 2, mid_block_scale_factor: 1,
  norm_eps: 1e-05, norm_num_groups: 32, out_channels: 4, sample_size: 64,
};
const SD21_UNET_CONFIG = {
  _class_name: "UNet2DConditionModel", _diffusers_version: "0.10.0.dev0", act_fn: "silu", attention_head_dim: [5, 10, 20, 20],
  block_out_channels: [320, 640, 1280, 1280], center_input_sample: false, cross_attention_dim: 1024, ...SD_BLOCKS,
  downsample_padding: 1, dual_cross_attention: false, flip_sin_to_cos: true, freq_shift: 0, in_channels: 4, layers_per_block: 2,
  mid_block_scale_factor: 1, norm_eps: 1e-05, norm_num_groups: 32, num_class_embeds: null, only_cross_attention: false,
  out_channels: 4, sample_size: 96, upcast_attention: true, use_linear_projection: true,
};

interface Structure {
  config: Record<string, unknown>;
  state: [string, number[]][];
  parameters: number;
}
const structures = JSON.parse(readFileSync(unetFixturePath("structures.json"), "utf8")) as Record<string, Structure>;

for (const [name, config, text] of [["sd15", SD15_UNET_CONFIG, 768], ["sd21", SD21_UNET_CONFIG, 1024]] as const) {
  test(`the real ${name} config builds diffusers' exact module tree (names, shapes, order) on the meta device`, () => tidy(() => {
    const structure = structures[name]!;
    assert.deepEqual(config, structure.config, "the config here and the oracle's differ");
    const unet = new UNet2DConditionModel(config, { device: "meta" });
    const state = [...unet.stateDict()].map(([key, value]) => [key, [...value.shape]]);
    assert.deepEqual(state, structure.state);
    assert.equal(unet.parameterCount(), structure.parameters);
    assert.equal(unet.convIn.weight.device, "meta");
    const attn2 = (unet.downBlocks.at(0) as CrossAttnDownBlock2D).attentions.at(0).transformerBlocks.at(0).attn2!;
    assert.equal(attn2.toK.weight.shape[1], text);
    unet.dispose();
  }));
}

test("the SD2.1 config resolves diffusers' legacy head rule: attention_head_dim is the number of heads", () => tidy(() => {
  const unet = new UNet2DConditionModel(SD21_UNET_CONFIG, { device: "meta" });
  const heads = [...unet.downBlocks].map((block) => ("attentions" in block ? block.attentions.at(0).transformerBlocks.at(0).attn1.heads : null));
  assert.deepEqual(heads, [5, 10, 20, null]);
  const attn = (unet.downBlocks.at(0) as CrossAttnDownBlock2D).attentions.at(0).transformerBlocks.at(0).attn2!;
  assert.equal(attn.dimHead, 64);
  assert.equal(attn.upcastAttention, true);
  assert.equal(resolveUNet2DConditionConfig(SD15_UNET_CONFIG).upcast_attention, false);
  assert.deepEqual(unet.sampleSize, [96, 96]);
  unet.dispose();
}));

test("unsupported config values are refused with one error naming the key and the value", () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ down_block_types: ["SimpleCrossAttnDownBlock2D", "DownBlock2D"] }, /down_block_types\[0\]="SimpleCrossAttnDownBlock2D" is not supported/],
    [{ mid_block_type: "UNetMidBlock2DSimpleCrossAttn" }, /mid_block_type="UNetMidBlock2DSimpleCrossAttn"/],
    [{ class_embed_type: "timestep" }, /class_embed_type="timestep"/],
    [{ addition_embed_type: "text_time" }, /addition_embed_type="text_time"/],
    [{ num_attention_heads: 8 }, /num_attention_heads=8/],
    [{ dual_cross_attention: true }, /dual_cross_attention=true/],
    [{ resnet_time_scale_shift: "scale_shift" }, /resnet_time_scale_shift="scale_shift"/],
    [{ time_embedding_type: "fourier" }, /time_embedding_type="fourier"/],
    [{ encoder_hid_dim: 1024 }, /encoder_hid_dim=1024/],
    [{ act_fn: "mish" }, /act_fn="mish"/],
    [{ attention_type: "gated" }, /attention_type="gated"/],
    [{ time_cond_proj_dim: 256 }, /time_cond_proj_dim=256/],
    [{ block_out_channels: [320, 640] }, /block_out_channels must be one entry per down block \(4\), got \[320,640\]/],
    [{ attention_head_dim: [5, 10] }, /attention_head_dim must be one entry per down block \(4\), got \[5,10\]/],
    [{ norm_num_groups: 48 }, /norm_num_groups must be a divisor of every block_out_channels entry \(320 .*got 48/],
    [{ _class_name: "UNet2DModel" }, /_class_name must be "UNet2DConditionModel", got "UNet2DModel"/],
  ];
  for (const [raw, message] of cases) {
    assert.throws(() => resolveUNet2DConditionConfig(raw), (error: Error) => error instanceof UNet2DConditionConfigError && message.test(error.message), JSON.stringify(raw));
  }
  const defaults = resolveUNet2DConditionConfig({});
  assert.deepEqual(defaults.block_out_channels, [320, 640, 1280, 1280]);
  assert.equal(defaults.cross_attention_dim, 1280);
});

test("timesteps: a number, a 0-d tensor and a broadcast 1-d tensor give the same prediction; a wrong length is refused", () => tidy(() => {
  const unet = UNet2DConditionModel.fromPretrained(unetFixturePath("unet_sd1"));
  const tensors = loadUnetTensors("unet_sd1.safetensors");
  const sample = get(tensors, "run0.sample");
  const text = get(tensors, "encoder_hidden_states");
  noGrad(() => {
    const byNumber = unet.forward(sample, 321, text);
    const byScalar = unet.forward(sample, empty([]).fill_(321), text);
    const byVector = unet.forward(sample, empty([1]).fill_(321), text);
    assert.equal(maxAbsDiff(byNumber, byScalar), 0);
    assert.equal(maxAbsDiff(byNumber, byVector), 0);
    assert.throws(() => unet.forward(sample, empty([3]).fill_(1), text), /timestep must be a number, a 0-d tensor or a 1-d tensor of length 1 or 2/);
  });
  unet.dispose();
}));
