// nn layers against PyTorch (test/oracle/fixtures_nn.py): the same seed gives bit-identical default
// weights, and each layer's forward matches torch.nn's on the oracle's weights and inputs.
import assert from "node:assert/strict";
import { test } from "node:test";
import { empty, manualSeed, noGrad, ones, tidy, type Tensor } from "../../src/engine/index.js";
import {
  Conv2d, Dropout, Embedding, GELU, GroupNorm, init, LayerNorm, Linear, Sequential, SiLU, type Module, type UnaryModule,
} from "../../src/engine/nn/index.js";
import { bitIdentical, decodeState, decodeTensor, maxAbsDiff, readFixture, type EncodedTensor } from "./nn-fixtures.js";

interface LayersFixture {
  init_seed: number;
  init: { name: string; state: Record<string, EncodedTensor> }[];
  init_functions: Record<string, EncodedTensor>;
  forward: { name: string; state: Record<string, EncodedTensor>; input: EncodedTensor; output: EncodedTensor }[];
  dropout: { seed: number; p: number; output: EncodedTensor };
}

const fixture = readFixture<LayersFixture>("nn", "layers.json");

/** The layers of fixtures_nn.py's init case, in the same construction order. */
function initLayers(): [string, Module][] {
  return [
    ["linear", new Linear(5, 7)],
    ["linear_no_bias", new Linear(6, 3, { bias: false })],
    ["linear_wide", new Linear(300, 2)],
    ["conv", new Conv2d(3, 6, 3, { stride: 2, padding: 1 })],
    ["conv_grouped", new Conv2d(4, 8, [3, 1], { groups: 2, dilation: [2, 1], padding: [2, 0] })],
    ["conv_no_bias", new Conv2d(2, 4, 1, { bias: false })],
    ["group_norm", new GroupNorm(2, 6)],
    ["layer_norm", new LayerNorm(7)],
    ["embedding", new Embedding(10, 4)],
    ["embedding_padded", new Embedding(6, 3, { paddingIdx: 2 })],
    ["sequential", new Sequential(new Linear(4, 8), new GELU(), new Linear(8, 2))],
  ];
}

/** The modules of fixtures_nn.py's forward cases (their weights come from the fixture). */
const forwardModules: Record<string, () => UnaryModule> = {
  linear: () => new Linear(5, 7),
  linear_no_bias: () => new Linear(6, 3, { bias: false }),
  conv: () => new Conv2d(3, 6, 3, { stride: 2, padding: 1 }),
  conv_grouped: () => new Conv2d(4, 8, [3, 1], { groups: 2, dilation: [2, 1], padding: [2, 0] }),
  conv_same: () => new Conv2d(3, 4, 3, { padding: "same" }),
  group_norm: () => new GroupNorm(2, 6),
  group_norm_no_affine: () => new GroupNorm(3, 6, { eps: 1e-3, affine: false }),
  layer_norm: () => new LayerNorm(7),
  layer_norm_2d: () => new LayerNorm([4, 7], { eps: 1e-6 }),
  embedding: () => new Embedding(10, 4),
  silu: () => new SiLU(),
  gelu: () => new GELU(),
  gelu_tanh: () => new GELU("tanh"),
  sequential: () => new Sequential(new Linear(4, 8), new SiLU(), new Linear(8, 2)),
};

test("default initialisation is bit-identical to PyTorch's after the same manual seed", () => tidy(() => {
  manualSeed(fixture.init_seed);
  const layers = initLayers();
  assert.deepEqual(layers.map(([name]) => name), fixture.init.map((entry) => entry.name));
  layers.forEach(([name, layer], i) => {
    const expected = decodeState(fixture.init[i]!.state);
    const actual = layer.stateDict();
    assert.deepEqual([...actual.keys()], [...expected.keys()], `${name}: state dict keys`);
    for (const [key, value] of expected) {
      assert.ok(bitIdentical(actual.get(key)!, value), `${name}.${key} differs from PyTorch (max |diff| ${maxAbsDiff(actual.get(key)!, value)})`);
    }
    layer.dispose();
  });
}));

test("init functions draw PyTorch's values (same bounds, same generator calls in the same order)", () => tidy(() => {
  manualSeed(fixture.init_seed);
  const fresh = (): Tensor => empty([6, 3, 2, 2]);
  const actual: Record<string, Tensor> = {
    kaiming_uniform_default: init.kaimingUniform_(fresh()),
    kaiming_uniform_fan_out_relu: init.kaimingUniform_(fresh(), { mode: "fan_out", nonlinearity: "relu" }),
    kaiming_normal_leaky: init.kaimingNormal_(fresh(), { a: 0.2 }),
    xavier_uniform_tanh: init.xavierUniform_(fresh(), init.calculateGain("tanh")),
    xavier_normal: init.xavierNormal_(fresh()),
    normal: init.normal_(fresh(), 0.5, 2.0),
    uniform: init.uniform_(fresh(), -2.0, 3.0),
  };
  assert.deepEqual(Object.keys(actual), Object.keys(fixture.init_functions));
  for (const [name, tensor] of Object.entries(actual)) {
    assert.ok(bitIdentical(tensor, decodeTensor(fixture.init_functions[name]!)), `${name} differs from torch.nn.init`);
  }
}));

test("every layer's forward matches torch.nn on the oracle's weights and inputs", (t) => tidy(() => {
  let worst = 0;
  assert.deepEqual(fixture.forward.map((c) => c.name).sort(), Object.keys(forwardModules).sort());
  for (const testCase of fixture.forward) {
    const module = forwardModules[testCase.name]!();
    module.eval();
    module.loadStateDict(decodeState(testCase.state));
    const output = noGrad(() => module.forward(decodeTensor(testCase.input)));
    const expected = decodeTensor(testCase.output);
    const diff = maxAbsDiff(output, expected);
    // Same ATen kernels as PyTorch, so the outputs agree to float32 rounding at most.
    assert.ok(diff <= 1e-6, `${testCase.name}: max |diff| ${diff}`);
    worst = Math.max(worst, diff);
    module.dispose();
  }
  t.diagnostic(`largest |difference| from PyTorch over ${fixture.forward.length} layers: ${worst.toExponential(2)}`);
}));

test("Dropout draws the same mask as PyTorch after the same seed, and is the identity in eval mode", () => tidy(() => {
  const { seed, p, output } = fixture.dropout;
  const dropout = new Dropout(p);
  manualSeed(seed);
  const dropped = dropout.forward(ones([1000]));
  assert.ok(bitIdentical(dropped, decodeTensor(output)));
  dropout.eval();
  assert.equal(dropout.forward(ones([4])).sum().item(), 4);
}));

test("layers register PyTorch's parameter names and shapes", () => tidy(() => {
  const conv = new Conv2d(4, 8, 3, { groups: 2 });
  assert.deepEqual(conv.namedParameters().map(([name, p]) => [name, [...p.shape]]), [["weight", [8, 2, 3, 3]], ["bias", [8]]]);
  const model = new Sequential(new Linear(3, 4), new SiLU(), new LayerNorm(4), new Linear(4, 1, { bias: false }));
  assert.deepEqual([...model.stateDict().keys()], ["0.weight", "0.bias", "2.weight", "2.bias", "3.weight"]);
  assert.throws(() => new Conv2d(3, 4, 3, { groups: 2 }), /divisible by groups/);
  assert.throws(() => new GroupNorm(4, 6), /divisible by numGroups/);
  conv.dispose();
  model.dispose();
}));
