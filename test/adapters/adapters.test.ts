// LiDB and LoRA adapters (paper §4.1): the aux bases (orthonormality, determinism, device/dtype independence,
// the global RNG untouched), ΔW's orientation and the forward, initialisation (ΔW = 0 with a non-zero
// gradient), per-sample batched factors equal to a loop (outputs and gradients into their producer), merge
// and unmerge, removal, target selection, and the LoRA adapter's peft conventions.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  devices, enableGrad, Generator, getRngState, grad, linear, memory, noGrad, randn, setNumThreads, stack, tensor, tidy, type Tensor,
} from "../../src/engine/index.js";
import { Module } from "../../src/engine/nn/index.js";
import { Linear } from "../../src/engine/nn/linear.js";
import {
  buildAuxBases, injectLidb, injectLora, selectAttentionTargets, warnIfNarrowLayers, type AdaptedModels, type LidbDimensions,
} from "../../src/adapters/index.js";
import { CLIPTextModel } from "../../src/models/clip/text-encoder.js";
import { UNet2DConditionModel } from "../../src/models/unet/index.js";
import { fileURLToPath } from "node:url";

setNumThreads(1);
const tiny = fileURLToPath(new URL("../../../test/fixtures/generated/tiny_sd/", import.meta.url));
const loadTiny = (kind = "sd1"): AdaptedModels & { unet: UNet2DConditionModel; textEncoder: CLIPTextModel } => ({
  unet: UNet2DConditionModel.fromPretrained(`${tiny}${kind}/unet`),
  textEncoder: CLIPTextModel.fromPretrained(`${tiny}${kind}/text_encoder`),
});
/** A module holding one child under `name` (to give a Linear the path "x.to_q"). */
class Named extends Module {
  constructor(name: string, child: Module) {
    super();
    this.registerModule(name, child);
  }
}
/** A stand-in "UNet" whose only Linear is "x.to_q" (full layer name "unet.x.to_q"). */
function holder(layer: Linear): Module {
  return new Named("x", new Named("to_q", layer));
}
const maxAbs = (a: Tensor, b: Tensor): number => tidy(() => a.float().sub(b.float()).abs().max().item());
/** max |M·Mᵀ − I| (rows) or |Mᵀ·M − I| (columns) of a float32 row-major matrix. */
function orthonormalityError(values: Float32Array, rows: number, cols: number, along: "rows" | "columns"): number {
  return tidy(() => {
    const m = tensor(values, { shape: [rows, cols] }).to("float64");
    const gram = along === "rows" ? m.matmul(m.mT()) : m.mT().matmul(m);
    const n = gram.size(0);
    const identity = tensor(Float64Array.from({ length: n * n }, (_, i) => (i % (n + 1) === 0 ? 1 : 0)), { shape: [n, n] });
    return gram.sub(identity).abs().max().item();
  });
}

test("aux bases: B_aux has orthonormal rows, A_aux orthonormal columns (rows when n < a), deterministic per (seed, layer)", () => {
  const layer = { name: "unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_k", outFeatures: 320, inFeatures: 768 };
  const bases = buildAuxBases(0, layer, { a: 100, b: 50 });
  assert.equal(bases.aAux.length, 320 * 100);
  assert.equal(bases.bAux.length, 50 * 768);
  const errors = [orthonormalityError(bases.aAux, 320, 100, "columns"), orthonormalityError(bases.bAux, 50, 768, "rows")];
  console.log(`orthonormality errors (float32 bases): A_aux ${errors[0]!.toExponential(2)}, B_aux ${errors[1]!.toExponential(2)}`);
  for (const error of errors) assert.ok(error < 1e-6, `orthonormality error ${error}`);
  // Small layers (the tiny models): n < a and m < b swap the orthonormal side.
  const small = buildAuxBases(3, { name: "text_encoder.x.q_proj", outFeatures: 32, inFeatures: 24 }, { a: 100, b: 50 });
  assert.ok(orthonormalityError(small.aAux, 32, 100, "rows") < 1e-6);
  assert.ok(orthonormalityError(small.bAux, 50, 24, "columns") < 1e-6);
  // Same (seed, name, shape) → bit-identical; another seed or name → other bases.
  assert.deepEqual(buildAuxBases(0, layer, { a: 100, b: 50 }).aAux, bases.aAux);
  assert.notDeepEqual(buildAuxBases(1, layer, { a: 100, b: 50 }).aAux.slice(0, 10), bases.aAux.slice(0, 10));
  assert.notDeepEqual(buildAuxBases(0, { ...layer, name: "unet.other" }, { a: 100, b: 50 }).bAux.slice(0, 10), bases.bAux.slice(0, 10));
  // Pinned values: the construction is part of every LiDB file's meaning (a change must be deliberate).
  assert.deepEqual([...bases.aAux.slice(0, 3)].map((v) => v.toPrecision(6)), ["0.0667329", "0.00495345", "0.0856700"]);
  assert.throws(() => buildAuxBases(-1, layer, { a: 100, b: 50 }), /seed must be an integer in \[0, 2\^64\)/);
});

test("injected bases are the float32 construction cast to each dtype (and on CUDA when present); the global RNG is untouched", () => {
  const name = "unet.x.to_q";
  const reference = buildAuxBases(11, { name, outFeatures: 40, inFeatures: 48 }, { a: 12, b: 6 });
  const placements: { dtype: "float32" | "float16" | "bfloat16"; device: string }[] = [
    { dtype: "float32", device: "cpu" }, { dtype: "float16", device: "cpu" }, { dtype: "bfloat16", device: "cpu" },
  ];
  if (devices().cuda > 0) placements.push({ dtype: "float32", device: "cuda" }, { dtype: "float16", device: "cuda" }, { dtype: "bfloat16", device: "cuda" });
  for (const { dtype, device } of placements) {
    tidy(() => {
      const model = holder(new Linear(48, 40, { dtype, device }));
      const rng = getRngState();
      const lidb = injectLidb({ unet: model }, { a: 12, b: 6, seed: 11, layers: [name] });
      assert.deepEqual(getRngState().bytes(), rng.bytes(), "injectLidb must not draw from the global generator");
      const adapter = lidb.adapter(name);
      assert.equal(adapter.aAux.dtype, dtype);
      assert.ok(adapter.aAux.device.startsWith(device));
      const expectedA = tensor(reference.aAux, { shape: [40, 12] }).to(dtype);
      const expectedB = tensor(reference.bAux, { shape: [6, 48] }).to(dtype);
      assert.deepEqual(adapter.aAux.cpu().bytes(), expectedA.bytes(), `A_aux on ${device} ${dtype}`);
      assert.deepEqual(adapter.bAux.cpu().bytes(), expectedB.bytes(), `B_aux on ${device} ${dtype}`);
      lidb.dispose();
      model.dispose();
    });
  }
  console.log(`bases checked on ${placements.map((p) => `${p.device}/${p.dtype}`).join(", ")}`);
});

test("ΔW = A_aux·A_train·B_train·B_aux in PyTorch's (out, in) layout; the forward adds x·ΔWᵀ without building ΔW", () => tidy(() => {
  const layer = new Linear(24, 20);
  const model = holder(layer);
  const lidb = injectLidb({ unet: model }, { a: 10, b: 6, rank: 2, seed: 1, layers: ["unet.x.to_q"] });
  const adapter = lidb.adapter("unet.x.to_q");
  const generator = new Generator("cpu", 5);
  adapter.setFactors(randn([10, 2], { generator }), randn([2, 6], { generator }));
  const deltaW = adapter.aAux.matmul(adapter.aTrain).matmul(adapter.bTrain).matmul(adapter.bAux);
  assert.deepEqual(deltaW.shape, [20, 24]);
  assert.ok(maxAbs(adapter.deltaWeight(), deltaW) < 1e-6);
  const { up, down } = adapter.loraFactors();
  assert.deepEqual([up.shape, down.shape], [[20, 2], [2, 24]]);
  const x = randn([3, 5, 24], { generator });
  const expected = linear(x, layer.weight.add(deltaW), layer.bias);
  const error = maxAbs(noGrad(() => layer.forward(x)), expected);
  assert.ok(error < 1e-5, `forward vs x·(W + ΔW)ᵀ + b: ${error}`);
  lidb.dispose();
  model.dispose();
}));

test("initialisation: A_train = 0 and B_train ~ U(±1/√b), so the model is unchanged but A_train's gradient is not zero", () => tidy(() => {
  const models = loadTiny();
  const x = randn([1, 4, 16, 16], { generator: new Generator("cpu", 0) });
  const text = randn([1, 7, 32], { generator: new Generator("cpu", 1) });
  const before = noGrad(() => models.unet.forward(x, 10, text));
  models.unet.requiresGrad_(false);
  const lidb = injectLidb({ unet: models.unet }, { seed: 4 });
  assert.equal(lidb.size, 48);
  assert.equal(lidb.trainableCount, 48 * 150);
  const factors = lidb.getFactors();
  assert.equal(factors.aTrain.abs().max().item(), 0);
  const bound = factors.bTrain.abs().max().item();
  assert.ok(bound > 0.05 && bound <= 1 / Math.sqrt(50), `B_train init bound ${bound}`);
  const out = enableGrad(() => models.unet.forward(x, 10, text));
  assert.equal(maxAbs(out, before), 0);
  const params = lidb.trainableParameters();
  const grads = grad(out.square().sum(), params);
  const aNorm = grads.filter((_, i) => i % 2 === 0).reduce((s, g) => s + g!.norm().item(), 0);
  const bNorm = grads.filter((_, i) => i % 2 === 1).reduce((s, g) => s + g!.norm().item(), 0);
  assert.ok(aNorm > 0, "A_train's gradient must not be zero at initialisation (prior-art mistake 2)");
  assert.equal(bNorm, 0, "B_train's gradient is zero while A_train is");
  lidb.dispose();
  models.unet.dispose();
  models.textEncoder.dispose();
}));

test("per-sample factors: one batched pass equals a loop over samples, and gradients reach the factors' producer", () => tidy(() => {
  const models = loadTiny();
  const dims: LidbDimensions = { a: 12, b: 6, rank: 2 };
  const lidb = injectLidb(models, { ...dims, seed: 9 });
  const L = lidb.size;
  const generator = new Generator("cpu", 21);
  const batch = 3;
  const x = randn([batch, 4, 16, 16], { generator });
  const ids = tensor(BigInt64Array.from({ length: batch * 7 }, (_, i) => BigInt((i * 37) % 5000)), { shape: [batch, 7] });
  // The "hypernetwork": leaves from which the per-sample factors are computed.
  const sourceA = randn([batch, L, dims.a, dims.rank], { generator }).mul(0.1).requiresGrad_(true);
  const sourceB = randn([batch, L, dims.rank, dims.b], { generator }).mul(0.1).requiresGrad_(true);
  const g = randn([batch, 4, 16, 16], { generator });
  const run = (factorsFor: () => void, samples: Tensor, tokenIds: Tensor): Tensor => {
    factorsFor();
    const text = models.textEncoder.forward(tokenIds).lastHiddenState;
    return models.unet.forward(samples, 10, text);
  };
  const batched = enableGrad(() => run(() => lidb.setBatchedFactors({ aTrain: sourceA.mul(2), bTrain: sourceB.mul(2) }), x, ids));
  const [gradA, gradB] = grad(batched.mul(g).sum(), [sourceA, sourceB]);
  lidb.clearBatchedFactors();
  let outputError = 0;
  let gradError = 0;
  for (let i = 0; i < batch; i++) {
    const slice = (t: Tensor): Tensor => t.slice(0, i, i + 1);
    lidb.setFactors({ aTrain: sourceA.select(0, i).mul(2), bTrain: sourceB.select(0, i).mul(2) });
    const single = enableGrad(() => run(() => undefined, slice(x), slice(ids)));
    outputError = Math.max(outputError, maxAbs(single, slice(batched)));
    const params = lidb.trainableParameters();
    const grads = grad(single.mul(slice(g)).sum(), params);
    // d/d source = 2 · d/d factors (the producer multiplied by 2).
    const expectedA = stack(grads.filter((_, k) => k % 2 === 0).map((t) => t!)).mul(2);
    const expectedB = stack(grads.filter((_, k) => k % 2 === 1).map((t) => t!)).mul(2);
    gradError = Math.max(gradError, maxAbs(gradA!.select(0, i), expectedA), maxAbs(gradB!.select(0, i), expectedB));
  }
  const scale = { output: batched.abs().max().item(), gradA: gradA!.abs().max().item(), gradB: gradB!.abs().max().item() };
  console.log(`batched vs loop over samples: max |Δoutput| ${outputError.toExponential(2)}, max |Δgrad| ${gradError.toExponential(2)} (magnitudes ${JSON.stringify(scale)})`);
  assert.ok(outputError < 1e-5, `outputs differ by ${outputError}`);
  assert.ok(gradError < 1e-4, `gradients differ by ${gradError}`);
  assert.throws(() => lidb.setBatchedFactors({ aTrain: sourceA.slice(1, 0, 3), bTrain: sourceB }), /aTrain must have shape \[3, 56, 12, 2\]/);
  lidb.setBatchedFactors({ aTrain: sourceA.detach(), bTrain: sourceB.detach() });
  assert.throws(() => noGrad(() => models.unet.forward(x.slice(0, 0, 2), 10, randn([2, 7, 32]))), /per-sample factors are for a batch of 3/);
  assert.throws(() => lidb.merge(), /clear the per-sample factors before merging/);
  lidb.dispose();
  models.unet.dispose();
  models.textEncoder.dispose();
}));

test("merge adds ΔW into the weights (same outputs), unmerge restores them up to float error, remove restores the model", () => tidy(() => {
  const models = loadTiny("sd2");
  const generator = new Generator("cpu", 2);
  const x = randn([2, 4, 16, 16], { generator });
  const text = randn([2, 7, 32], { generator });
  const weightsBefore = selectAttentionTargets(models).map((t) => t.layer.weight.clone());
  const base = noGrad(() => models.unet.forward(x, 500, text));
  const lidb = injectLidb(models, { seed: 1 });
  lidb.setFactors({ aTrain: randn([lidb.size, 100, 1], { generator }).mul(0.3), bTrain: randn([lidb.size, 1, 50], { generator }).mul(0.3) });
  const adapted = noGrad(() => models.unet.forward(x, 500, text));
  assert.ok(maxAbs(adapted, base) > 1e-2);
  lidb.merge();
  assert.ok(lidb.merged);
  assert.throws(() => lidb.setFactors(lidb.getFactors()), /unmerge before setting the factors/);
  const merged = noGrad(() => models.unet.forward(x, 500, text));
  lidb.unmerge();
  const weightError = Math.max(...selectAttentionTargets(models).map((t, i) => maxAbs(t.layer.weight, weightsBefore[i]!)));
  const mergeError = maxAbs(merged, adapted);
  console.log(`merge: |Δoutput| ${mergeError.toExponential(2)}; unmerge: |Δweight| ${weightError.toExponential(2)}`);
  assert.ok(mergeError < 1e-5, `merged output differs by ${mergeError}`);
  assert.ok(weightError < 1e-6, `unmerged weights differ by ${weightError}`);
  lidb.merge();
  lidb.remove();
  assert.ok(selectAttentionTargets(models).every((t) => t.layer.adapters().length === 0));
  assert.ok(maxAbs(noGrad(() => models.unet.forward(x, 500, text)), base) < 1e-5);
  lidb.dispose();
  models.unet.dispose();
  models.textEncoder.dispose();
}));

test("target selection by component and pattern; injection errors leave the model unchanged", () => tidy(() => {
  const models = loadTiny();
  assert.equal(selectAttentionTargets(models).length, 56);
  assert.equal(selectAttentionTargets(models, { components: "unet" }).length, 48);
  assert.equal(selectAttentionTargets(models, { components: "text_encoder" }).length, 8);
  const cross = selectAttentionTargets(models, { include: ["attn2"] });
  assert.equal(cross.length, 24);
  assert.ok(cross.every((t) => t.name.includes(".attn2.")));
  assert.equal(selectAttentionTargets(models, { exclude: [/\.to_out\.0$/, "out_proj$"] }).length, 42);
  assert.equal(selectAttentionTargets({ textEncoder: models.textEncoder }, { components: "unet" }).length, 0);
  assert.throws(() => selectAttentionTargets(models, { include: ["("] }), /invalid target pattern '\('/);
  assert.deepEqual(selectAttentionTargets(models, { components: "text_encoder" }).slice(0, 4).map((t) => t.name), [
    "text_encoder.text_model.encoder.layers.0.self_attn.k_proj", "text_encoder.text_model.encoder.layers.0.self_attn.v_proj",
    "text_encoder.text_model.encoder.layers.0.self_attn.q_proj", "text_encoder.text_model.encoder.layers.0.self_attn.out_proj",
  ]);
  const first = injectLidb(models, { a: 4, b: 4, targets: { include: ["attn1"] } });
  assert.throws(() => injectLidb(models, { a: 4, b: 4 }), /already has an adapter named 'lidb'/);
  assert.equal(selectAttentionTargets(models).filter((t) => t.layer.adapters().length > 0).length, 24, "a failed injection must not leave adapters behind");
  const second = injectLidb(models, { a: 4, b: 4, name: "lidb_2", targets: { components: "text_encoder" } });
  assert.equal(second.layerNames.length, 8);
  assert.ok(second.namedParameters()[0]![0].endsWith(".k_proj.lidb_2.a_train"));
  assert.throws(() => injectLidb(models, { a: 0 }), /LiDB dimensions: a must be a positive integer, got 0/);
  assert.throws(() => injectLidb(models, { layers: ["unet.nope"] }), /no Linear layer named unet\.nope/);
  first.dispose();
  second.dispose();
  models.unet.dispose();
  models.textEncoder.dispose();
}));

test("LoRA: peft's init (lora_A U(±1/√in), lora_B 0) from a local generator, scaling alpha/rank, merge", () => tidy(() => {
  const layer = new Linear(64, 40);
  const model = holder(layer);
  const rng = getRngState();
  const single = injectLora({ unet: model }, { rank: 4, alpha: 8, seed: 2, layers: ["unet.x.to_q"] });
  assert.deepEqual(getRngState().bytes(), rng.bytes(), "injectLora must not draw from the global generator");
  const again = injectLora({ unet: holder(new Linear(64, 40)) }, { rank: 4, alpha: 8, seed: 2, layers: ["unet.x.to_q"] });
  assert.deepEqual(again.adapter("unet.x.to_q").loraA.bytes(), single.adapter("unet.x.to_q").loraA.bytes(), "same seed, same init");
  again.dispose();
  const adapter = single.adapter("unet.x.to_q");
  assert.equal(adapter.scaling, 2);
  const bound = adapter.loraA.abs().max().item();
  assert.ok(bound <= 1 / 8 && bound > 0.1, `lora_A bound ${bound}`);
  assert.equal(adapter.loraB.abs().max().item(), 0);
  const generator = new Generator("cpu", 8);
  adapter.setFactors(adapter.loraA, randn([40, 4], { generator }));
  const x = randn([2, 64], { generator });
  const expected = linear(x, layer.weight, layer.bias).add(linear(linear(x, adapter.loraA), adapter.loraB).mul(2));
  assert.ok(maxAbs(noGrad(() => layer.forward(x)), expected) < 1e-6);
  single.setScale(0.5);
  const half = linear(x, layer.weight, layer.bias).add(linear(linear(x, adapter.loraA), adapter.loraB).mul(1));
  assert.ok(maxAbs(noGrad(() => layer.forward(x)), half) < 1e-6);
  single.merge();
  assert.ok(maxAbs(noGrad(() => layer.forward(x)), half) < 1e-5);
  single.dispose();
  assert.ok(maxAbs(noGrad(() => layer.forward(x)), linear(x, layer.weight, layer.bias)) === 0);
  model.dispose();
}));

test("LiDB factors get the same gradients with the UNet's gradient checkpointing as without", () => tidy(() => {
  const models = loadTiny();
  models.unet.requiresGrad_(false);
  const lidb = injectLidb({ unet: models.unet }, { a: 12, b: 6, seed: 1 });
  const generator = new Generator("cpu", 1);
  lidb.setFactors({ aTrain: randn([lidb.size, 12, 1], { generator }).mul(0.1), bTrain: randn([lidb.size, 1, 6], { generator }).mul(0.1) });
  const x = randn([2, 4, 16, 16], { generator });
  const text = randn([2, 7, 32], { generator });
  const gradients = (): Tensor[] => {
    enableGrad(() => {
      const out = models.unet.forward(x, 10, text);
      models.unet.backward(out.square().mean());
    });
    return lidb.trainableParameters().map((p) => {
      const g = p.grad!;
      p.grad = null;
      return g;
    });
  };
  const plain = gradients();
  models.unet.enableGradientCheckpointing();
  const checkpointed = gradients();
  const scale = Math.max(...plain.map((g) => g.abs().max().item()));
  const error = Math.max(...plain.map((g, i) => maxAbs(g, checkpointed[i]!)));
  assert.ok(scale > 0 && error <= 1e-5 * scale, `checkpointed gradients differ by ${error} (scale ${scale})`);
  lidb.dispose();
  models.unet.dispose();
  models.textEncoder.dispose();
}));

test("injecting, running, merging and disposing adapters leaves no tensor behind", () => {
  const models = loadTiny();
  const x = randn([2, 4, 16, 16]);
  const text = randn([2, 7, 32]);
  const before = memory().tensors;
  const lidb = injectLidb(models, { a: 8, b: 4 });
  const lora = injectLora(models, { rank: 2 });
  noGrad(() => models.unet.forward(x, 10, text)).dispose();
  const factors = lidb.getFactors();
  const perSample = tidy(() => ({ aTrain: factors.aTrain.unsqueeze(0).expand(2, -1, -1, -1), bTrain: factors.bTrain.unsqueeze(0).expand(2, -1, -1, -1) }));
  lidb.setBatchedFactors(perSample);
  noGrad(() => models.unet.forward(x, 10, text)).dispose();
  lidb.clearBatchedFactors();
  perSample.aTrain.dispose();
  perSample.bTrain.dispose();
  lidb.merge();
  lora.merge();
  lidb.unmerge();
  lora.dispose();
  lidb.dispose();
  factors.aTrain.dispose();
  factors.bTrain.dispose();
  assert.equal(memory().tensors, before);
  models.unet.dispose();
  models.textEncoder.dispose();
});

test("LiDB dimensions wider than a target layer give a warning naming the layer; fitting ones give none", () => {
  const layers = [{ name: "unet.mid.to_q", outFeatures: 32, inFeatures: 32 }, { name: "unet.big.to_q", outFeatures: 320, inFeatures: 320 }];
  assert.equal(warnIfNarrowLayers(layers.slice(1), { a: 100, b: 50, rank: 1 }), null);
  const message = warnIfNarrowLayers(layers, { a: 100, b: 50, rank: 1 });
  assert.match(message ?? "", /a=100, b=50 exceed the width of 1 of 2 target layers \(e\.g\. unet\.mid\.to_q: out 32, in 32\)/);
});
