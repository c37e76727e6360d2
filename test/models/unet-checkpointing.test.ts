// Gradient checkpointing (src/models/blocks/checkpointing.ts, UNet2DConditionModel.enableGradientCheckpointing):
// the gradients equal those of the plain backward pass, the peak memory of a training step is lower, and the
// tape handles DAGs, inputs computed from earlier segments, dropout, and leaves nothing behind.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { test } from "node:test";
import { backward, cat, dropout, grad, manualSeed, memory, noGrad, randn, tidy, type Tensor } from "../../src/engine/index.js";
import { Linear } from "../../src/engine/nn/index.js";
import { CheckpointTape } from "../../src/models/blocks/checkpointing.js";
import { UNet2DConditionModel, type CrossAttnDownBlock2D } from "../../src/models/unet/index.js";
import { maxAbsDiff } from "../engine/nn-fixtures.js";
import { get, leaf, loadUnetTensors, unetFixturePath } from "./unet-fixtures.js";

/** Gradients of sum(out · g) for every parameter, the sample, the text states and a LoRA-like A·B on one to_q. */
function gradients(name: string, checkpointing: boolean): Map<string, Tensor> {
  return tidy(() => {
    const unet = UNet2DConditionModel.fromPretrained(unetFixturePath(`unet_${name}`)).train();
    if (checkpointing) unet.enableGradientCheckpointing();
    const tensors = loadUnetTensors(`unet_${name}.safetensors`);
    const a = leaf(get(tensors, "grad.a"));
    const b = leaf(get(tensors, "grad.b"));
    const toQ = (unet.downBlocks.at(0) as CrossAttnDownBlock2D).attentions.at(0).transformerBlocks.at(0).attn2!.toQ;
    const base = toQ.forward.bind(toQ);
    toQ.forward = (x: Tensor): Tensor => tidy(() => base(x).add(x.matmul(a).matmul(b)));
    const sample = leaf(get(tensors, "grad.sample"));
    const text = leaf(get(tensors, "encoder_hidden_states"));
    const out = unet.forward(sample, 321, text, { encoderAttentionMask: get(tensors, "encoder_attention_mask") });
    const loss = out.mul(get(tensors, "grad.g")).sum();
    unet.backward(loss);
    const result = new Map<string, Tensor>([["sample", sample.grad!], ["text", text.grad!], ["lora.a", a.grad!], ["lora.b", b.grad!]]);
    for (const [key, parameter] of unet.namedParameters()) result.set(key, parameter.grad ?? noGrad(() => parameter.mul(0)));
    unet.dispose();
    return result;
  });
}

for (const name of ["sd1", "misc"]) {
  test(`checkpointed gradients equal plain gradients (${name}: every parameter, sample, text states, LoRA A·B)`, () => tidy(() => {
    const plain = gradients(name, false);
    const checkpointed = gradients(name, true);
    assert.deepEqual([...checkpointed.keys()], [...plain.keys()]);
    let worst = 0;
    let worstKey = "";
    for (const [key, expected] of plain) {
      const error = maxAbsDiff(checkpointed.get(key)!, expected);
      if (error > worst) [worst, worstKey] = [error, key];
    }
    console.log(`${name}: ${plain.size} gradients, max abs difference ${worst.toExponential(2)} (${worstKey || "all equal"})`);
    assert.ok(worst <= 1e-5, `${worstKey}: ${worst}`);
  }));
}

// One training step of a small UNet on 40×40 latents in a fresh process; prints the growth of the peak RSS.
const STEP_SCRIPT = `
import { manualSeed, randn, tidy, setNumThreads } from ${JSON.stringify(new URL("../../src/engine/index.js", import.meta.url).href)};
import { UNet2DConditionModel } from ${JSON.stringify(new URL("../../src/models/unet/index.js", import.meta.url).href)};
setNumThreads(1);
manualSeed(0);
const unet = new UNet2DConditionModel({
  block_out_channels: [32, 64, 64], down_block_types: ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
  up_block_types: ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"], layers_per_block: 2, cross_attention_dim: 32,
  attention_head_dim: 4, norm_num_groups: 8,
});
if (process.argv[1] === "checkpointed") unet.enableGradientCheckpointing();
const before = process.resourceUsage().maxRSS;
tidy(() => {
  const out = unet.forward(randn([2, 4, 40, 40]), 500, randn([2, 8, 32]));
  unet.backward(out.square().mean());
});
console.log(JSON.stringify({ growthKiB: process.resourceUsage().maxRSS - before }));
`;

function peakGrowthMiB(mode: "plain" | "checkpointed"): number {
  const output = execFileSync(process.execPath, ["--input-type=module", "-e", STEP_SCRIPT, mode], { encoding: "utf8" });
  return (JSON.parse(output.trim().split("\n").pop()!) as { growthKiB: number }).growthKiB / 1024;
}

test("a checkpointed training step has a lower peak memory than a plain one", () => {
  const plain = peakGrowthMiB("plain");
  const checkpointed = peakGrowthMiB("checkpointed");
  console.log(`peak RSS growth of one training step: plain ${plain.toFixed(1)} MiB, checkpointed ${checkpointed.toFixed(1)} MiB`);
  assert.ok(checkpointed < 0.85 * plain, `checkpointed ${checkpointed} MiB is not clearly below plain ${plain} MiB`);
});

test("the tape: DAG fan-out, inputs computed from earlier segments, dropout, and nothing left behind", () => {
  const baseline = memory().tensors;
  tidy(() => {
    manualSeed(3);
    const layer1 = new Linear(6, 6);
    const layer2 = new Linear(6, 6);
    const layer3 = new Linear(12, 6);
    const x = randn([4, 6]).requiresGrad_(true);
    const segment1 = ([h]: Tensor[]): Tensor[] => [dropout(layer1.forward(h!).tanh(), 0.3, true)];
    const segment2 = ([h]: Tensor[]): Tensor[] => [layer2.forward(h!).sigmoid()];
    const join = ([h, skip]: Tensor[]): Tensor[] => [layer3.forward(cat([h!, skip!], 1))];
    const run = (tape: CheckpointTape | null): Map<string, Tensor> => {
      manualSeed(11);
      const go = (fn: (inputs: Tensor[]) => Tensor[], inputs: Tensor[]): Tensor => (tape ? tape.run(fn, inputs) : fn(inputs))[0]!;
      const h1 = go(segment1, [x]);
      const h2 = go(segment2, [h1]);
      const shifted = h1.mul(2).add(h2); // computed outside the tape from two tape outputs, then fed back in
      const out = go(join, [shifted, h1]); // h1 fans out to segment2, `shifted`, this segment and the loss
      const loss = out.square().sum().add(h1.sum());
      if (tape) tape.backward(loss);
      else loss.backward();
      const grads = new Map<string, Tensor>([["x", x.grad!]]);
      for (const [i, layer] of [layer1, layer2, layer3].entries()) for (const [key, p] of layer.namedParameters()) grads.set(`${i}.${key}`, p.grad!);
      for (const layer of [layer1, layer2, layer3]) layer.zeroGrad();
      x.grad = null;
      return grads;
    };
    const plain = run(null);
    const tape = new CheckpointTape();
    const checkpointed = run(tape);
    assert.equal(tape.length, 0);
    for (const [key, expected] of plain) assert.ok(maxAbsDiff(checkpointed.get(key)!, expected) <= 1e-6, key);
    for (const layer of [layer1, layer2, layer3]) layer.dispose();
  });
  assert.equal(memory().tensors, baseline, "tensors were left behind");
});

test("after a checkpointed step the UNet leaves no tensors behind, and backward without checkpointing is loss.backward()", () => {
  const unet = UNet2DConditionModel.fromPretrained(unetFixturePath("unet_sd1"));
  const tensors = loadUnetTensors("unet_sd1.safetensors");
  const baseline = memory().tensors;
  for (const checkpointing of [true, false]) {
    if (checkpointing) unet.enableGradientCheckpointing();
    else unet.disableGradientCheckpointing();
    tidy(() => {
      const out = unet.forward(get(tensors, "grad.sample"), 10, get(tensors, "encoder_hidden_states"));
      unet.backward(out.square().mean());
    });
    unet.zeroGrad();
    assert.equal(memory().tensors, baseline, `tensors were left behind (checkpointing ${checkpointing})`);
  }
  for (const tensor of tensors.values()) tensor.dispose();
  unet.dispose();
});

test("with checkpointed blocks recorded, a plain loss.backward() (or backward, grad) fails naming unet.backward(loss)", () => {
  const unet = UNet2DConditionModel.fromPretrained(unetFixturePath("unet_sd1")).train().enableGradientCheckpointing();
  const tensors = loadUnetTensors("unet_sd1.safetensors");
  const baseline = memory().tensors;
  const wrongCalls: [string, (loss: Tensor) => void][] = [
    ["loss.backward()", (loss) => loss.backward()],
    ["backward([loss])", (loss) => backward([loss])],
    ["grad(loss, parameters)", (loss) => void grad(loss, [unet.parameters()[0]!], { allowUnused: true })],
  ];
  for (const [name, call] of wrongCalls) {
    tidy(() => {
      const loss = unet.forward(get(tensors, "grad.sample"), 10, get(tensors, "encoder_hidden_states")).square().mean();
      assert.throws(() => call(loss), /gradient checkpointing recorded \d+ blocks of the UNet .* unet\.backward\(loss\)/, name);
      assert.equal(unet.parameters().filter((p) => p.grad !== null).length, 0, `${name}: no gradient may have been written`);
      unet.backward(loss);  // the right call still works afterwards, and clears the record
      assert.ok(unet.parameters().every((p) => p.grad !== null), `${name}: unet.backward fills every gradient`);
    });
    unet.zeroGrad();
    tidy(() => randn([3], { requiresGrad: true }).square().sum().backward());  // nothing recorded: backward is free again
  }
  noGrad(() => tidy(() => void unet.forward(get(tensors, "grad.sample"), 10, get(tensors, "encoder_hidden_states"))));
  tidy(() => randn([3], { requiresGrad: true }).square().sum().backward());  // forward passes under noGrad record nothing
  assert.equal(memory().tensors, baseline, "tensors were left behind");
  for (const tensor of tensors.values()) tensor.dispose();
  unet.dispose();
});
