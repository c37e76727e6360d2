// The metric networks as modules and files: shapes, unit embeddings, the margin loss, save/load round trips,
// and errors that name the file and the key.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { manualSeed, noGrad, randn, readSafetensorsHeader, setNumThreads, tensor, tidy, type Tensor } from "../../src/engine/index.js";
import {
  CosineMarginHead, HAIR_COLOUR_LABELS, IdentityNetwork, MetricNetworkError, PromptFidelityNetwork, STYLE_LABELS, styleFollowsPrompt, visibleStyle,
  type IdentityNetworkConfig, type PromptFidelityNetworkConfig,
} from "../../src/evaluation/index.js";
import { WORLD_SEED } from "../../src/miniworld/identity.js";
import { nuisanceFor } from "../../src/miniworld/nuisance.js";
import { STYLE_NAMES } from "../../src/miniworld/styles.js";

setNumThreads(1);
const root = mkdtempSync(path.join(tmpdir(), "metric-networks-"));
after(() => rmSync(root, { recursive: true, force: true }));

/** 64 × 64 inputs pooled to 16 × 16, two small blocks: a few thousand parameters. */
const TINY: IdentityNetworkConfig = { sampleSize: 16, inChannels: 3, blockOutChannels: [8, 16], layersPerBlock: 1, normNumGroups: 4, stemStride: 2, featureDim: 8 };
const TINY_FIDELITY: PromptFidelityNetworkConfig = { ...TINY, styleLabels: [...STYLE_LABELS], hairColourLabels: [...HAIR_COLOUR_LABELS] };

const maxAbsDifference = (a: Tensor, b: Tensor): number => tidy(() => a.sub(b).abs().max().item());

test("the identity network embeds 64 × 64 images as unit vectors", () => {
  manualSeed(0);
  using network = new IdentityNetwork(TINY);
  tidy(() => {
    const embeddings = noGrad(() => network.embed(randn([3, 3, 64, 64])));
    assert.deepEqual(embeddings.shape, [3, 8]);
    const norms = Array.from(embeddings.norm(2, -1).data() as Float32Array);
    for (const norm of norms) assert.ok(Math.abs(norm - 1) < 1e-5);
    assert.throws(() => network.embed(randn([1, 3, 20, 20])), /multiple of 16, got \[1, 3, 20, 20\]/);
    assert.throws(() => network.embed(randn([1, 1, 64, 64])), /\(N, 3, H, H\)/);
  });
});

test("the cosine margin loss is s·(cos − m) softmax cross-entropy", () => {
  manualSeed(1);
  using head = new CosineMarginHead(4, 3, { scale: 10, margin: 0.2 });
  tidy(() => {
    const embeddings = randn([2, 4]);
    const unit = embeddings.div(embeddings.norm(2, -1, true));
    const labels = tensor(BigInt64Array.from([2n, 0n]));
    const loss = head.loss(unit, labels).item();
    const weights = head.weight.toArray() as number[][];
    const rows = unit.toArray() as number[][];
    const length = (v: number[]): number => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    let expected = 0;
    rows.forEach((row, i) => {
      const label = i === 0 ? 2 : 0;
      const logits = weights.map((w, c) => 10 * (w.reduce((s, x, k) => s + x * row[k]!, 0) / length(w) - (c === label ? 0.2 : 0)));
      const logSum = Math.log(logits.reduce((s, l) => s + Math.exp(l), 0));
      expected += (logSum - logits[label]!) / 2;
    });
    assert.ok(Math.abs(loss - expected) < 1e-5, `${loss} vs ${expected}`);
  });
  assert.throws(() => new CosineMarginHead(4, 3, { margin: 1.5 }), /margin must be in \[0, 1\)/);
});

test("identity network save/load: float32 is exact, float16 is close, the head is not saved", () => {
  manualSeed(2);
  using network = new IdentityNetwork(TINY);
  network.eval();
  const exactDir = path.join(root, "identity-fp32");
  const halfDir = path.join(root, "identity-fp16");
  network.save(exactDir, { dtype: "float32", training: { steps: 1 } });
  network.save(halfDir);
  using images = randn([4, 3, 64, 64]);
  using exact = IdentityNetwork.load(exactDir);
  using half = IdentityNetwork.load(halfDir);
  assert.equal(exact.training, false);
  assert.deepEqual(exact.config, TINY);
  noGrad(() => tidy(() => {
    const reference = network.embed(images);
    assert.equal(maxAbsDifference(reference, exact.embed(images)), 0);
    assert.ok(maxAbsDifference(reference, half.embed(images)) < 1e-2);
  }));
  const header = readSafetensorsHeader(path.join(halfDir, "model.safetensors"));
  assert.ok([...header.entries.values()].every((entry) => entry.dtype === "float16"));
  assert.ok([...header.entries.keys()].every((key) => key.startsWith("encoder.")), "only the embedding network is saved");
  const config = JSON.parse(readFileSync(path.join(exactDir, "config.json"), "utf8")) as Record<string, unknown>;
  assert.equal(config["_class_name"], "IdentityNetwork");
  assert.deepEqual(config["block_out_channels"], [8, 16]);
  assert.deepEqual(config["training"], { steps: 1 });
});

test("prompt fidelity network: logits over 31 styles and 15 hair colours, labels saved and loaded", () => {
  assert.equal(STYLE_LABELS.length, 31);
  assert.deepEqual(STYLE_LABELS.slice(1), STYLE_NAMES);
  assert.equal(HAIR_COLOUR_LABELS.length, 15);
  manualSeed(3);
  using network = new PromptFidelityNetwork({ ...TINY_FIDELITY, hairColourLabels: ["red", "blue"] });
  network.eval();
  const dir = path.join(root, "fidelity");
  network.save(dir, { dtype: "float32" });
  using loaded = PromptFidelityNetwork.load(dir);
  assert.deepEqual(loaded.config.hairColourLabels, ["red", "blue"]);
  assert.deepEqual(loaded.config.styleLabels, STYLE_LABELS);
  using images = randn([5, 3, 64, 64]);
  noGrad(() => tidy(() => {
    const logits = network.forward(images);
    assert.deepEqual(logits.style.shape, [5, 31]);
    assert.deepEqual(logits.hairColour.shape, [5, 2]);
    const again = loaded.forward(images);
    assert.equal(maxAbsDifference(logits.style, again.style), 0);
    assert.equal(maxAbsDifference(logits.hairColour, again.hairColour), 0);
  }));
  const prediction = loaded.classify(images);
  assert.equal(prediction.styles.length, 5);
  assert.ok(prediction.styles.every((label) => STYLE_LABELS.includes(label)));
  assert.ok(prediction.hairColours.every((label) => label === "red" || label === "blue"));
  assert.ok(prediction.styleConfidence.every((p) => p > 0 && p <= 1));
  assert.throws(() => new PromptFidelityNetwork({ ...TINY_FIDELITY, styleLabels: ["photo", "photo"] }), /style_labels must be a non-empty list of distinct labels/);
});

test("the style a render shows: a photo that smiles shows 'smiling', and follows a photo prompt", () => {
  // Find photos of identity 7 with each nuisance expression.
  const byExpression = new Map<string, number>();
  for (let seed = 0; byExpression.size < 5 && seed < 500; seed++) byExpression.set(nuisanceFor(7, seed, WORLD_SEED).expression, seed);
  assert.equal(byExpression.size, 5);
  const shown = (expression: string): string => visibleStyle(7, byExpression.get(expression)!);
  assert.deepEqual(["smile", "surprised", "angry", "neutral", "open"].map(shown), ["smiling", "surprised", "angry", "photo", "photo"]);
  assert.equal(visibleStyle(7, byExpression.get("smile")!, "pencil-sketch"), "pencil-sketch");
  assert.equal(visibleStyle(7, undefined), "photo");
  assert.ok(styleFollowsPrompt("smiling", "photo") && styleFollowsPrompt("photo", "photo") && styleFollowsPrompt("comic", "comic"));
  assert.ok(!styleFollowsPrompt("photo", "smiling") && !styleFollowsPrompt("comic", "photo") && !styleFollowsPrompt("smiling", "comic"));
});

test("bad folders, configs and weight files give errors naming the file and the key", () => {
  manualSeed(4);
  using network = new IdentityNetwork(TINY);
  const dir = path.join(root, "broken");
  network.save(dir, { dtype: "float32" });
  const configFile = path.join(dir, "config.json");
  const good = JSON.parse(readFileSync(configFile, "utf8")) as Record<string, unknown>;
  const withConfig = (config: unknown): void => writeFileSync(configFile, typeof config === "string" ? config : JSON.stringify(config));
  const expectError = (pattern: RegExp): void => {
    assert.throws(() => IdentityNetwork.load(dir), (error: Error) => error instanceof MetricNetworkError && pattern.test(error.message));
  };
  assert.throws(() => IdentityNetwork.load(path.join(root, "nowhere")), /no config\.json in .*nowhere/);
  withConfig("{ not json");
  expectError(/config\.json is not valid JSON/);
  withConfig({ ...good, block_out_channels: undefined });
  expectError(/config\.json: missing key "block_out_channels"/);
  withConfig({ ...good, layers_per_block: "one" });
  expectError(/config\.json: "layers_per_block" must be a positive integer, got "one"/);
  withConfig({ ...good, _class_name: "PromptFidelityNetwork" });
  expectError(/config\.json: "_class_name" is "PromptFidelityNetwork", expected "IdentityNetwork"/);
  withConfig({ ...good, norm_num_groups: 3 });
  expectError(/config\.json: block_out_channels 8 is not divisible by norm_num_groups 3/);
  withConfig({ ...good, feature_dim: 9 });
  expectError(/model\.safetensors: error loading the state dict[\s\S]*"encoder\.proj\.weight"/);
  withConfig(good);
  assert.throws(() => PromptFidelityNetwork.load(dir), /"_class_name" is "IdentityNetwork", expected "PromptFidelityNetwork"/);
  writeFileSync(path.join(dir, "model.safetensors"), "garbage");
  expectError(/cannot read .*model\.safetensors/);
  rmSync(path.join(dir, "model.safetensors"));
  expectError(/no model\.safetensors in .*broken/);
});
