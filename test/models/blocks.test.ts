// The shared building blocks (src/models/blocks/) against diffusers 0.42.1 (test/oracle/fixtures_unet.py):
// each case's output and the gradients of sum(output · g) w.r.t. its floating inputs, on the oracle's weights.
import assert from "node:assert/strict";
import { test } from "node:test";
import { manualSeed, noGrad, randn, tidy } from "../../src/engine/index.js";
import { Attention, type AttentionOptions } from "../../src/models/blocks/attention.js";
import { TimestepEmbedding, Timesteps, type TimestepEmbeddingOptions, type TimestepsOptions } from "../../src/models/blocks/embeddings.js";
import { ResnetBlock2D, type ResnetBlock2DOptions } from "../../src/models/blocks/resnet.js";
import { Downsample2D, Upsample2D, type Downsample2DOptions, type Upsample2DOptions } from "../../src/models/blocks/sampling.js";
import {
  BasicTransformerBlock, FeedForward, Transformer2DModel,
  type BasicTransformerBlockOptions, type FeedForwardOptions, type Transformer2DModelOptions,
} from "../../src/models/blocks/transformer.js";
import { maxAbsDiff } from "../engine/nn-fixtures.js";
import { readUnetOracle, runCase, runner, worst, type Runner } from "./unet-fixtures.js";

const BAR = 1e-4;
const oracle = readUnetOracle();

const runners: Record<string, Runner> = {
  ResnetBlock2D: runner({
    build: (options) => new ResnetBlock2D(options as unknown as ResnetBlock2DOptions),
    forward: (module, input) => [module.forward(input("input_tensor")!, input("temb"))],
  }),
  Downsample2D: runner({
    build: ({ channels, ...rest }) => new Downsample2D(channels as number, rest as Downsample2DOptions),
    forward: (module, input) => [module.forward(input("hidden_states")!)],
  }),
  Upsample2D: runner({
    build: ({ channels, ...rest }) => new Upsample2D(channels as number, rest as Upsample2DOptions),
    forward: (module, input, call) => [module.forward(input("hidden_states")!, (call.output_size as [number, number] | undefined) ?? null)],
  }),
  Attention: runner({
    build: (options) => new Attention(options as unknown as AttentionOptions),
    forward: (module, input) => [module.forward(input("hidden_states")!, input("encoder_hidden_states"), input("attention_mask"))],
  }),
  Timesteps: runner({
    build: (options) => new Timesteps(options as unknown as TimestepsOptions),
    forward: (module, input) => [module.forward(input("timesteps")!)],
  }),
  TimestepEmbedding: runner({
    build: (options) => new TimestepEmbedding(options as unknown as TimestepEmbeddingOptions),
    forward: (module, input) => [module.forward(input("sample")!)],
  }),
  FeedForward: runner({
    build: (options) => new FeedForward(options as unknown as FeedForwardOptions),
    forward: (module, input) => [module.forward(input("hidden_states")!)],
  }),
  BasicTransformerBlock: runner({
    build: (options) => new BasicTransformerBlock(options as unknown as BasicTransformerBlockOptions),
    forward: (module, input) => [module.forward(input("hidden_states")!, {
      encoderHiddenStates: input("encoder_hidden_states"), encoderAttentionMask: input("encoder_attention_mask"),
    })],
  }),
  Transformer2DModel: runner({
    build: (options) => new Transformer2DModel(options as unknown as Transformer2DModelOptions),
    forward: (module, input) => [module.forward(input("hidden_states")!, {
      encoderHiddenStates: input("encoder_hidden_states"), encoderAttentionMask: input("encoder_attention_mask"),
    })],
  }),
};

for (const entry of oracle.cases.filter((c) => c.kind in runners)) {
  test(`${entry.kind} matches diffusers: ${entry.name}`, () => {
    const report = runCase(entry, runners[entry.kind]!);
    console.log(`${entry.name}: output ${report.output.toExponential(2)}, grads ${JSON.stringify(Object.fromEntries(Object.entries(report.grads).map(([k, v]) => [k, Number(v.toExponential(2))])))}`);
    assert.ok(worst(report) <= BAR, `${entry.name}: max abs error ${worst(report)} > ${BAR}`);
  });
}

test("every building-block kind has oracle cases", () => {
  for (const kind of Object.keys(runners)) assert.ok(oracle.cases.some((c) => c.kind === kind), `no oracle case for ${kind}`);
});

test("upcast_attention computes the attention in float32 for float16 activations (and returns float16)", () => tidy(() => {
  manualSeed(5);
  const wide = new Attention({ queryDim: 16, crossAttentionDim: 12, heads: 2, dimHead: 8, upcastAttention: true });
  const half = new Attention({ queryDim: 16, crossAttentionDim: 12, heads: 2, dimHead: 8, upcastAttention: true }).to("float16");
  half.loadStateDict(wide.stateDict());
  const x = randn([2, 7, 16]);
  const context = randn([2, 5, 12]);
  const mask = randn([2, 1, 5]);
  const expected = noGrad(() => wide.forward(x, context, mask));
  const out = noGrad(() => half.forward(x.half(), context.half(), mask.half()));
  assert.equal(out.dtype, "float16");
  const error = maxAbsDiff(out.float(), expected);
  assert.ok(error < 1e-2, `float16 with upcast differs from float32 by ${error}`);
  wide.dispose();
  half.dispose();
}));

test("unsupported block options are refused with an error naming the option and value", () => {
  assert.throws(() => new ResnetBlock2D({ inChannels: 8, groups: 4, timeEmbeddingNorm: "scale_shift" }), /time_embedding_norm 'scale_shift'/);
  assert.throws(() => new ResnetBlock2D({ inChannels: 8, groups: 4, nonLinearity: "mish" }), /activation function 'mish'/);
  assert.throws(() => new BasicTransformerBlock({ dim: 8, numAttentionHeads: 2, attentionHeadDim: 4, normType: "ada_norm_zero" }), /norm_type 'ada_norm_zero'/);
  assert.throws(() => new Transformer2DModel({ inChannels: 8, normNumGroups: 4, patchSize: 2 }), /patch_size 2/);
  assert.throws(() => new FeedForward({ dim: 8, activationFn: "swiglu" }), /activation_fn 'swiglu'/);
  assert.throws(() => new TimestepEmbedding({ inChannels: 4, timeEmbedDim: 8, condProjDim: 4 }), /cond_proj_dim 4/);
  tidy(() => {
    const attention = new Attention({ queryDim: 8, crossAttentionDim: 4, heads: 2, dimHead: 4 });
    assert.throws(() => attention.forward(randn([1, 3, 8]), randn([1, 5, 4]), randn([1, 1, 6])), /mask's last dim is 6, but there are 5 keys/);
    const block = new ResnetBlock2D({ inChannels: 4, groups: 2, tembChannels: null });
    assert.throws(() => block.forward(randn([1, 4, 2, 2]), randn([1, 3])), /tembChannels null/);
    attention.dispose();
    block.dispose();
  });
});
