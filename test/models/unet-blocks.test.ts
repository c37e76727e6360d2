// The UNet's resolution-level blocks (src/models/unet/unet-blocks.ts) against diffusers 0.42.1
// (test/oracle/fixtures_unet.py): outputs (the down blocks' skip connections included) and the gradients of
// sum(outputs · g) w.r.t. every floating input, on the oracle's weights.
import assert from "node:assert/strict";
import { test } from "node:test";
import { tidy, zeros, type Tensor } from "../../src/engine/index.js";
import {
  CrossAttnDownBlock2D, CrossAttnUpBlock2D, DownBlock2D, UNetMidBlock2DCrossAttn, UpBlock2D,
  type CrossAttnDownBlockOptions, type CrossAttnUpBlockOptions, type DownBlockOptions, type MidBlockOptions, type UpBlockOptions,
} from "../../src/models/unet/index.js";
import { readUnetOracle, runCase, runner, worst, type Inputs, type Runner } from "./unet-fixtures.js";

const BAR = 1e-4;
const oracle = readUnetOracle();

const conditioning = (input: Inputs) => ({
  encoderHiddenStates: input("encoder_hidden_states"), encoderAttentionMask: input("encoder_attention_mask"),
});
/** res_hidden_states_tuple.0, .1, ... in order. */
function skips(input: Inputs): Tensor[] {
  const result: Tensor[] = [];
  for (let i = 0; ; i++) {
    const skip = input(`res_hidden_states_tuple.${i}`);
    if (skip === null) return result;
    result.push(skip);
  }
}
const upsampleSize = (call: Record<string, unknown>): [number, number] | null => (call.upsample_size as [number, number] | undefined) ?? null;

const runners: Record<string, Runner> = {
  CrossAttnDownBlock2D: runner({
    build: (options) => new CrossAttnDownBlock2D(options as unknown as CrossAttnDownBlockOptions),
    forward: (module, input) => {
      const { hiddenStates, resSamples } = module.forward(input("hidden_states")!, input("temb")!, conditioning(input));
      return [hiddenStates, ...resSamples];
    },
  }),
  DownBlock2D: runner({
    build: (options) => new DownBlock2D(options as unknown as DownBlockOptions),
    forward: (module, input) => {
      const { hiddenStates, resSamples } = module.forward(input("hidden_states")!, input("temb")!);
      return [hiddenStates, ...resSamples];
    },
  }),
  UNetMidBlock2DCrossAttn: runner({
    build: (options) => new UNetMidBlock2DCrossAttn(options as unknown as MidBlockOptions),
    forward: (module, input) => [module.forward(input("hidden_states")!, input("temb")!, conditioning(input))],
  }),
  UpBlock2D: runner({
    build: (options) => new UpBlock2D(options as unknown as UpBlockOptions),
    forward: (module, input, call) => [module.forward(input("hidden_states")!, skips(input), input("temb")!, {}, upsampleSize(call))],
  }),
  CrossAttnUpBlock2D: runner({
    build: (options) => new CrossAttnUpBlock2D(options as unknown as CrossAttnUpBlockOptions),
    forward: (module, input, call) => [module.forward(input("hidden_states")!, skips(input), input("temb")!, conditioning(input), upsampleSize(call))],
  }),
};

for (const entry of oracle.cases.filter((c) => c.kind in runners)) {
  test(`${entry.kind} matches diffusers: ${entry.name}`, () => {
    const report = runCase(entry, runners[entry.kind]!);
    console.log(`${entry.name}: output ${report.output.toExponential(2)}, grads ${JSON.stringify(report.grads)}`);
    assert.ok(Object.keys(report.grads).length > 0, "no gradients were compared");
    assert.ok(worst(report) <= BAR, `${entry.name}: max abs error ${worst(report)} > ${BAR}`);
  });
}

test("every UNet block kind has oracle cases", () => {
  for (const kind of Object.keys(runners)) assert.ok(oracle.cases.some((c) => c.kind === kind), `no oracle case for ${kind}`);
});

test("an up block refuses the wrong number of skip connections", () => tidy(() => {
  const block = new UpBlock2D({ inChannels: 4, prevOutputChannel: 4, outChannels: 4, tembChannels: 8, numLayers: 2, resnetGroups: 2 });
  const x = zeros([1, 4, 2, 2]);
  assert.throws(() => block.forward(x, [x], zeros([1, 8])), /got 1 skip connections for 2 resnets/);
  block.dispose();
}));
