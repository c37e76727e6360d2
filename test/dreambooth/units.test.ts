// The pieces of DreamBooth training that need no model: identity sources, seeds, configuration checks,
// augmentation and the per-identity loss layout.
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { Generator, randn, tensor, tidy } from "../../src/engine/index.js";
import { identitySeed, resolveConfig, TrainingConfigError } from "../../src/dreambooth/config.js";
import { augment, identitiesFrom, identityFromPath } from "../../src/dreambooth/data.js";
import { temporaryDir, writeFacePhotos } from "./helpers.js";

test("identities come from a folder (sub-folders and loose photos), a manifest, or one instance folder", async () => {
  const root = temporaryDir("identities");
  await writeFacePhotos(path.join(root, "people", "alice"), 0, 2);
  const [loose] = await writeFacePhotos(path.join(root, "tmp"), 1);
  mkdirSync(path.join(root, "people", "empty"));
  writeFileSync(path.join(root, "people", "bob.png"), readFileSync(loose!));
  writeFileSync(path.join(root, "people", "notes.txt"), "not an image");
  assert.deepEqual(identitiesFrom(path.join(root, "people")).map((i) => [i.id, i.images.map((f) => path.basename(f))]),
    [["alice", ["photo-0.png", "photo-1.png"]], ["bob", ["bob.png"]]]);
  writeFileSync(path.join(root, "list.json"), JSON.stringify({ identities: [{ id: "x", image: "tmp/photo-0.png", seed: 9 }, { id: "y", images: ["tmp/photo-0.png"] }] }));
  assert.deepEqual(identitiesFrom(path.join(root, "list.json")), [
    { id: "x", images: [path.join(root, "tmp", "photo-0.png")], seed: 9 }, { id: "y", images: [path.join(root, "tmp", "photo-0.png")] },
  ]);
  writeFileSync(path.join(root, "bad.json"), JSON.stringify([{ id: 3 }]));
  assert.throws(() => identitiesFrom(path.join(root, "bad.json")), /identity 0 needs a string "id"/);
  assert.deepEqual(identityFromPath(path.join(root, "people", "alice")).id, "alice");
  assert.deepEqual(identityFromPath(loose!, "me"), { id: "me", images: [loose] });
});

test("an identity's seed depends on the run's seed and its id, not on its place in the list", () => {
  const a = { id: "alice", images: ["a.png"] };
  assert.equal(identitySeed(0, a), identitySeed(0, { ...a, images: ["other.png"] }));
  assert.notEqual(identitySeed(0, a), identitySeed(1, a));
  // libtorch's CPU generator keeps a seed's low 32 bits only: the run's seed must change those.
  const low = (seed: number): number => seed % 2 ** 32;
  const lows = new Set([0, 1, 2, 3, 2 ** 32, 2 ** 40].map((run) => low(identitySeed(run, a))));
  assert.equal(lows.size, 6, "every run seed gives the identity another stream");
  // Seed 0 keeps the streams of runs made before: the id's FNV-1a hash.
  assert.equal(identitySeed(0, a), 0x872213e7);
  assert.notEqual(identitySeed(0, a), identitySeed(0, { id: "bob", images: [] }));
  assert.equal(identitySeed(5, { ...a, seed: 42 }), 42);
  assert.ok(Number.isSafeInteger(identitySeed(2 ** 40, a)));
});

test("configuration errors name the option and the value", () => {
  const base = { pretrainedModel: "m", outputDir: "o", identities: [{ id: "a", images: ["a.png"] }] };
  const cases: [object, RegExp][] = [
    [{ identities: [] }, /no identities/],
    [{ identities: [{ id: "a b", images: ["x"] }] }, /identities\[0\]\.id must be letters, digits, .*got "a b"/],
    [{ identities: [{ id: "a", images: ["x"] }, { id: "a", images: ["y"] }] }, /identities\[1\]\.id must be unique .*appears twice.*got "a"/],
    [{ maxTrainSteps: 0 }, /maxTrainSteps must be an integer ≥ 1, got 0/],
    [{ learningRate: -1 }, /learningRate must be > 0/],
    [{ lrScheduler: "step" }, /lrScheduler must be one of/],
    [{ randomFlip: 2 }, /randomFlip must be a probability/],
    [{ snrGamma: 0 }, /snrGamma must be > 0/],
    [{ adapter: "lora", identitiesPerBatch: 4 }, /LoRA adapters train one identity per batch/],
    [{ identifier: "two words" }, /identifier must be one word/],
  ];
  for (const [override, message] of cases) assert.throws(() => resolveConfig({ ...base, ...override }), (error: Error) => error instanceof TrainingConfigError && message.test(error.message));
  const lidb = resolveConfig(base);
  assert.deepEqual([lidb.adapter, lidb.rank, lidb.lidbA, lidb.lidbB, lidb.trainTextEncoder], ["lidb", 1, 100, 50, true], "the paper's LiDB, text encoder on");
  const lora = resolveConfig({ ...base, adapter: "lora" });
  assert.deepEqual([lora.rank, lora.learningRate], [4, 1e-4], "diffusers' DreamBooth-LoRA defaults");
});

test("augmentation: no flip and a full crop is the identity; a flip mirrors; a crop zooms in", () => {
  tidy(() => {
    const pixels = randn([2, 3, 8, 8], { generator: new Generator("cpu", 0) });
    const none = tensor([[0.9, 0, 0, 0], [0.9, 0.5, 0.5, 0.5]]);
    assert.equal(augment(pixels, none, { flip: 0.5, cropScale: null }).sub(pixels).abs().max().item(), 0);
    assert.equal(augment(pixels, none, { flip: 0.5, cropScale: 1 }).sub(pixels).abs().max().item(), 0);
    const flipped = augment(pixels, tensor([[0.1, 0, 0, 0], [0.9, 0, 0, 0]]), { flip: 0.5, cropScale: null });
    assert.equal(flipped.narrow(0, 0, 1).sub(pixels.narrow(0, 0, 1).flip(3)).abs().max().item(), 0);
    assert.equal(flipped.narrow(0, 1, 1).sub(pixels.narrow(0, 1, 1)).abs().max().item(), 0);
    // Area 1/4 at the top-left: a 4×4 crop upsampled to 8×8, whose corner pixel is the source's corner.
    const zoomed = augment(pixels, tensor([[0.9, 0, 0, 0]]).expand(2, 4).contiguous(), { flip: 0, cropScale: 0.25 });
    assert.deepEqual(zoomed.shape, [2, 3, 8, 8]);
    assert.ok(zoomed.sub(pixels).abs().max().item() > 0.1);
    assert.equal(zoomed.index(0, 0, 0, 0).item(), pixels.index(0, 0, 0, 0).item());
  });
});

