// Module: registration and dotted names, state dicts (errors, dtype conversion), modes, in-place moves,
// freezing, apply, zeroGrad, and lifetimes (parameters survive tidy; dispose frees them).
import assert from "node:assert/strict";
import { test } from "node:test";
import { full, memory, ones, randn, tidy, zeros, type Tensor } from "../../src/engine/index.js";
import { Dropout, GELU, Identity, LayerNorm, Linear, Module, ModuleList, Parameter, Sequential } from "../../src/engine/nn/index.js";
import { AdamW } from "../../src/engine/optim/index.js";

class Attention extends Module {
  readonly qProj: Linear;
  readonly outProj: Linear;
  constructor(dim: number) {
    super();
    this.qProj = this.registerModule("q_proj", new Linear(dim, dim));
    this.outProj = this.registerModule("out_proj", new Linear(dim, dim, { bias: false }));
  }
  forward(x: Tensor): Tensor {
    return this.outProj.forward(this.qProj.forward(x));
  }
}

class Layer extends Module {
  readonly attn: Attention;
  readonly norm: LayerNorm;
  readonly dropout: Dropout;
  constructor(dim: number) {
    super();
    this.attn = this.registerModule("attn", new Attention(dim));
    this.norm = this.registerModule("norm", new LayerNorm(dim));
    this.dropout = this.registerModule("dropout", new Dropout(0.1));
  }
}

class Model extends Module {
  readonly scale: Parameter;
  readonly layers: ModuleList<Layer>;
  constructor(dim = 4) {
    super();
    this.scale = this.registerParameter("scale", ones([1]));
    this.registerBuffer("running_mean", zeros([dim]));
    this.registerBuffer("cache", zeros([2]), { persistent: false });
    this.layers = this.registerModule("layers", new ModuleList([new Layer(dim), new Layer(dim)]));
  }
}

test("dotted PyTorch-style names for parameters, buffers and the state dict", () => tidy(() => {
  const model = new Model();
  assert.deepEqual(model.namedParameters().map(([name]) => name), [
    "scale",
    "layers.0.attn.q_proj.weight", "layers.0.attn.q_proj.bias", "layers.0.attn.out_proj.weight", "layers.0.norm.weight", "layers.0.norm.bias",
    "layers.1.attn.q_proj.weight", "layers.1.attn.q_proj.bias", "layers.1.attn.out_proj.weight", "layers.1.norm.weight", "layers.1.norm.bias",
  ]);
  assert.deepEqual(model.namedBuffers().map(([name]) => name), ["running_mean", "cache"]);
  const keys = [...model.stateDict().keys()];
  assert.equal(keys[1], "running_mean");
  assert.ok(!keys.includes("cache"), "non-persistent buffers stay out of the state dict");
  assert.equal(keys.length, 12);
  assert.equal(model.parameterCount(), 1 + 2 * (16 + 4 + 16 + 4 + 4));
  assert.equal(model.layers.at(-1), model.layers.at(1));
  assert.throws(() => model.layers.at(2), /out of range/);
  assert.deepEqual(model.namedModules().map(([name]) => name).slice(0, 4), ["", "layers", "layers.0", "layers.0.attn"]);
  model.dispose();
}));

test("loadStateDict reports every missing key, unexpected key and shape mismatch in one error", () => tidy(() => {
  const model = new Model();
  const state = new Map(model.stateDict());
  state.delete("layers.0.norm.bias");
  state.delete("scale");
  state.set("layers.1.attn.k_proj.weight", zeros([4, 4]));
  state.set("layers.0.attn.q_proj.weight", zeros([3, 4]));
  let message = "";
  try {
    model.loadStateDict(state);
  } catch (error) {
    message = (error as Error).message;
  }
  assert.match(message, /missing keys: "scale", "layers\.0\.norm\.bias"/);
  assert.match(message, /unexpected keys: "layers\.1\.attn\.k_proj\.weight"/);
  assert.match(message, /shape mismatch for "layers\.0\.attn\.q_proj\.weight": the module has \[4, 4\], the state dict has \[3, 4\]/);
  // Nothing was copied because the load failed as a whole.
  assert.notEqual(model.layers.at(0).attn.qProj.weight.abs().sum().item(), 0);

  state.set("layers.0.attn.q_proj.weight", full([4, 4], 0.5));
  const result = model.loadStateDict(state, { strict: false });
  assert.deepEqual(result, { missing: ["scale", "layers.0.norm.bias"], unexpected: ["layers.1.attn.k_proj.weight"] });
  assert.equal(model.layers.at(0).attn.qProj.weight.sum().item(), 8);
  state.set("layers.0.attn.q_proj.weight", zeros([2]));
  assert.throws(() => model.loadStateDict(state, { strict: false }), /shape mismatch/);
  model.dispose();
}));

test("loading converts dtypes (float16 weights into a float32 module) and copies in place", () => tidy(() => {
  const linear = new Linear(3, 2);
  const weight = linear.weight;
  linear.loadStateDict({ weight: full([2, 3], 0.1, { dtype: "float16" }), bias: full([2], -2, { dtype: "float64" }) });
  assert.equal(linear.weight, weight, "same Parameter object");
  assert.equal(weight.dtype, "float32");
  assert.equal(weight.requiresGrad, true);
  assert.ok(Math.abs((weight.data() as Float32Array)[0]! - 0.0999755859375) < 1e-9, "the float16 value of 0.1");
  assert.deepEqual(linear.bias!.toArray(), [-2, -2]);
  linear.dispose();
}));

test("to() casts in place: same Parameter objects, metadata and gradients follow, optimizers stay valid", () => tidy(() => {
  const model = new Sequential(new Linear(3, 4), new GELU(), new Linear(4, 2));
  const before = model.parameters();
  const optimizer = new AdamW(model.parameters(), { lr: 0.1 });
  model.forward(randn([5, 3])).sum().backward();
  assert.equal(before[0]!.dtype, "float32");
  model.to("float64");
  const after = model.parameters();
  assert.ok(after.every((p, i) => p === before[i]), "the same objects");
  assert.ok(after.every((p) => p.dtype === "float64" && p.requiresGrad && p.isLeaf));
  assert.equal(after[0]!.grad!.dtype, "float64", "the gradient was converted with its parameter");
  const reference = after[0]!.clone();
  optimizer.step();
  assert.notEqual(after[0]!.sub(reference).abs().sum().item(), 0, "the optimizer updated the moved parameter");
  model.to({ device: "cpu", dtype: "float32" });
  assert.equal(before[2]!.dtype, "float32");
  const output = model.forward(randn([2, 3]));
  assert.equal(output.dtype, "float32");
  optimizer.dispose();
  model.dispose();
}));

test("train/eval set the flag recursively; requiresGrad_(false) freezes; apply visits children first", () => tidy(() => {
  const model = new Model();
  model.eval();
  assert.ok(model.modules().every((m) => !m.training));
  model.train();
  assert.ok(model.layers.at(1).dropout.training);
  model.layers.at(0).requiresGrad_(false);
  assert.equal(model.layers.at(0).attn.qProj.weight.requiresGrad, false);
  assert.equal(model.layers.at(1).attn.qProj.weight.requiresGrad, true);
  assert.equal(model.parameterCount(), 1 + 44);
  const visited: string[] = [];
  model.layers.at(0).attn.apply((m) => visited.push(m.constructor.name));
  assert.deepEqual(visited, ["Linear", "Linear", "Attention"]);
  model.dispose();
}));

test("zeroGrad clears to null or to zeros", () => tidy(() => {
  const linear = new Linear(2, 2);
  linear.forward(ones([1, 2])).sum().backward();
  linear.zeroGrad(false);
  assert.equal(linear.weight.grad!.abs().sum().item(), 0);
  linear.zeroGrad();
  assert.equal(linear.weight.grad, null);
  linear.dispose();
}));

test("parameters survive tidy scopes; dispose frees every parameter and buffer", () => {
  const before = memory().tensors;
  const model = tidy(() => {
    const m = new Model();
    m.layers.at(0).attn.forward(randn([2, 4]));
    return m;
  });
  assert.equal(memory().tensors, before + 11 + 2, "11 parameters and 2 buffers, nothing else");
  assert.ok(model.parameters().every((p) => !p.disposed));
  model.dispose();
  assert.equal(memory().tensors, before);
  assert.throws(() => model.scale.sum(), /disposed/);
});

test("a parameter shared by two modules is listed once; Identity and Sequential return new handles", () => tidy(() => {
  class Tied extends Module {
    constructor() {
      super();
      const embedding = this.registerModule("embedding", new Linear(3, 3, { bias: false }));
      const head = this.registerModule("head", new Identity());
      void head;
      this.registerParameter("head_weight", embedding.weight);
    }
  }
  const tied = new Tied();
  assert.deepEqual(tied.namedParameters().map(([name]) => name), ["head_weight"]);
  assert.deepEqual([...tied.stateDict().keys()], ["head_weight", "embedding.weight"]);
  const x = ones([2]);
  const y = new Identity().forward(x);
  assert.notEqual(y, x);
  y.dispose();
  assert.equal(x.disposed, false);
  assert.equal(new Sequential().forward(x).sum().item(), 2);
  class BadName extends Module {
    constructor() {
      super();
      this.registerModule("a.b", new Identity());
    }
  }
  assert.throws(() => new BadName(), /invalid name/);
  tied.dispose();
}));
