// Loading safetensors weights from diffusers/transformers component folders (single, variant, sharded) into
// a Module, on the tiny pipelines of test/oracle/fixtures_tiny_sd.py; and the errors for broken folders.
import assert from "node:assert/strict";
import { copyFileSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { saveSafetensors, tidy, zeros, type DType, type Tensor } from "../../src/engine/index.js";
import { Module, Parameter } from "../../src/engine/nn/index.js";
import {
  addVariant, componentVariant, findWeightFiles, loadPretrainedStateDict, loadPretrainedWeights, ModelLoadingError,
  readComponentConfig,
} from "../../src/models/index.js";

const FIXTURES = resolve(fileURLToPath(import.meta.url), "../../../../test/fixtures/generated/tiny_sd");
const skip = !existsSync(join(FIXTURES, "manifest.json"));

type Entry = [key: string, shape: number[], dtype: DType];
interface Manifest {
  pipelines: Record<string, { components: Record<string, { stateDict?: Entry[]; config?: Record<string, unknown> }> }>;
}
const manifest = skip ? undefined : (JSON.parse(readFileSync(join(FIXTURES, "manifest.json"), "utf8")) as Manifest);
const entriesOf = (pipeline: string, component: string): Entry[] => manifest!.pipelines[pipeline]!.components[component]!.stateDict!;

/**
 * A module whose parameters are registered by dotted name from a key list: stands in for the real UNet/VAE/
 * text encoder, with exactly their state-dict keys and shapes, so loading is tested before those exist.
 */
class KeyedModule extends Module {
  define(path: string[], shape: number[], dtype: DType): void {
    const [head, ...rest] = path;
    if (rest.length === 0) {
      if (dtype.startsWith("float")) this.registerParameter(head!, Parameter.empty(shape, { dtype }));
      else tidy(() => void this.registerBuffer(head!, zeros(shape, { dtype }))); // position_ids (int64); the buffer keeps its own handle
      return;
    }
    let child = this.namedChildren().find(([name]) => name === head)?.[1] as KeyedModule | undefined;
    child ??= this.registerModule(head!, new KeyedModule());
    child.define(rest, shape, dtype);
  }

  static fromEntries(entries: Entry[], dtype?: DType): KeyedModule {
    const module = new KeyedModule();
    for (const [key, shape, entryDType] of entries) module.define(key.split("."), shape, dtype && entryDType.startsWith("float") ? dtype : entryDType);
    return module;
  }
}

const temporary: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "hdb-loading-"));
  temporary.push(dir);
  return dir;
}
after(() => {
  for (const dir of temporary) rmSync(dir, { recursive: true, force: true });
});

/** Max |a - b| over every key (both in float32), and the key sets must match. */
function maxDifference(a: Map<string, Tensor>, b: Map<string, Tensor>): number {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  let worst = 0;
  tidy(() => {
    for (const [key, value] of a) {
      const other = b.get(key)!;
      assert.deepEqual(value.shape, other.shape, key);
      if (value.numel === 0) continue;
      worst = Math.max(worst, value.to("float32").sub(other.to("float32")).abs().max().item());
    }
  });
  return worst;
}

function assertThrowsLoading(fn: () => unknown, ...patterns: (string | RegExp)[]): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ModelLoadingError, `expected a ModelLoadingError, got ${String(error)}`);
    for (const pattern of patterns) {
      if (typeof pattern === "string") assert.ok(error.message.includes(pattern), `message lacks "${pattern}":\n${error.message}`);
      else assert.match(error.message, pattern);
    }
    return true;
  });
}

test("variant names follow diffusers' _add_variant", () => {
  assert.equal(addVariant("diffusion_pytorch_model.safetensors", "fp16"), "diffusion_pytorch_model.fp16.safetensors");
  assert.equal(addVariant("diffusion_pytorch_model.safetensors.index.json", "fp16"), "diffusion_pytorch_model.safetensors.index.fp16.json");
  assert.equal(addVariant("model.safetensors"), "model.safetensors");
});

test("loads each component of both tiny pipelines with the exact saved values", { skip }, () => {
  for (const pipeline of ["sd1", "sd2"]) {
    for (const component of ["unet", "vae", "text_encoder"]) {
      const dir = join(FIXTURES, pipeline, component);
      using module = KeyedModule.fromEntries(entriesOf(pipeline, component));
      const result = loadPretrainedWeights(module, dir);
      assert.deepEqual(result.files, [join(dir, component === "text_encoder" ? "model.safetensors" : "diffusion_pytorch_model.safetensors")]);
      assert.deepEqual([result.missing, result.unexpected], [[], []]);
      const raw = loadPretrainedStateDict(dir);
      try {
        assert.equal(maxDifference(module.stateDict(), raw), 0, `${pipeline}/${component}`);
      } finally {
        for (const tensor of raw.values()) tensor.dispose();
      }
    }
  }
});

test("sharded weights load to exactly the unsharded state dict, plain and fp16 variant", { skip }, () => {
  const sharded = join(FIXTURES, "unet-sharded");
  const found = findWeightFiles(sharded);
  assert.equal(found.index, join(sharded, "diffusion_pytorch_model.safetensors.index.json"));
  assert.ok(found.files.length >= 2, `expected several shards, got ${found.files.length}`);
  const foundFp16 = findWeightFiles(sharded, "fp16");
  assert.equal(foundFp16.index, join(sharded, "diffusion_pytorch_model.safetensors.index.fp16.json"));
  assert.ok(foundFp16.files.every((file) => file.includes(".fp16-")));

  using fromShards = KeyedModule.fromEntries(entriesOf("sd1", "unet"));
  const result = loadPretrainedWeights(fromShards, sharded);
  assert.deepEqual(result.files, found.files);
  using single = KeyedModule.fromEntries(entriesOf("sd1", "unet"));
  loadPretrainedWeights(single, join(FIXTURES, "sd1", "unet"));
  assert.equal(maxDifference(fromShards.stateDict(), single.stateDict()), 0);

  // fp16 shards into an fp32 module: the fp32 values rounded to fp16.
  using fromFp16Shards = KeyedModule.fromEntries(entriesOf("sd1", "unet"));
  loadPretrainedWeights(fromFp16Shards, sharded, { variant: "fp16" });
  const rounded = tidy(() => new Map([...single.stateDict()].map(([key, value]) => [key, value.to("float16").to("float32")])));
  try {
    assert.equal(maxDifference(fromFp16Shards.stateDict(), rounded), 0);
  } finally {
    for (const tensor of rounded.values()) tensor.dispose();
  }
});

test("fp16 variant files load into an fp32 module, and dtype/device options cast the module", { skip }, () => {
  for (const component of ["unet", "vae", "text_encoder"]) {
    const dir = join(FIXTURES, "sd1-fp16", component);
    const entries = entriesOf("sd1", component);
    using plain = KeyedModule.fromEntries(entries);
    loadPretrainedWeights(plain, dir);
    using fromFp16 = KeyedModule.fromEntries(entries);
    const result = loadPretrainedWeights(fromFp16, dir, { variant: "fp16" });
    assert.ok(result.files[0]!.endsWith(component === "text_encoder" ? "model.fp16.safetensors" : "diffusion_pytorch_model.fp16.safetensors"));
    for (const [key, tensor] of fromFp16.stateDict()) assert.equal(tensor.dtype, key.endsWith("position_ids") ? "int64" : "float32", key);
    const rounded = tidy(() => new Map([...plain.stateDict()].map(([key, value]) => [key, value.to(value.dtype === "float32" ? "float16" : value.dtype).to(value.dtype)])));
    try {
      assert.equal(maxDifference(fromFp16.stateDict(), rounded), 0, component);
      // Not the same as the fp32 weights: the variant really was read.
      assert.ok(maxDifference(fromFp16.stateDict(), plain.stateDict()) > 0, component);
    } finally {
      for (const tensor of rounded.values()) tensor.dispose();
    }
    using cast = KeyedModule.fromEntries(entries);
    loadPretrainedWeights(cast, dir, { variant: "fp16", dtype: "float16", device: "cpu" });
    for (const [key, tensor] of cast.stateDict()) assert.equal(tensor.dtype, key.endsWith("position_ids") ? "int64" : "float16", key);
  }
});

test("componentVariant falls back per component, as diffusers pipelines do", { skip }, () => {
  assert.equal(componentVariant(join(FIXTURES, "sd1-fp16", "unet"), "fp16"), "fp16");
  assert.equal(componentVariant(join(FIXTURES, "sd1", "unet"), "fp16"), undefined);
  assert.equal(componentVariant(join(FIXTURES, "unet-sharded"), "fp16"), "fp16");
  assert.equal(componentVariant(join(FIXTURES, "sd1", "unet")), undefined);
});

test("a missing variant, a missing folder and pickle-only folders are errors naming what was looked for", { skip }, () => {
  using module = KeyedModule.fromEntries(entriesOf("sd1", "vae"));
  const vae = join(FIXTURES, "sd1", "vae");
  assertThrowsLoading(() => loadPretrainedWeights(module, vae, { variant: "fp16" }),
    vae, "diffusion_pytorch_model.fp16.safetensors", "model.fp16.safetensors", "diffusion_pytorch_model.safetensors.index.fp16.json",
    "the folder holds: config.json, diffusion_pytorch_model.safetensors", "load without a variant");
  assertThrowsLoading(() => loadPretrainedWeights(module, join(FIXTURES, "sd1", "nothing-here")), "component folder", "does not exist");

  const pickle = tempDir();
  writeFileSync(join(pickle, "diffusion_pytorch_model.bin"), "not read");
  assertThrowsLoading(() => findWeightFiles(pickle), "diffusion_pytorch_model.bin", "pickle", "convert them to safetensors");

  const onlyFp16 = tempDir();
  copyFileSync(join(FIXTURES, "sd1-fp16", "vae", "diffusion_pytorch_model.fp16.safetensors"), join(onlyFp16, "diffusion_pytorch_model.fp16.safetensors"));
  assertThrowsLoading(() => findWeightFiles(onlyFp16), 'pass variant "fp16"');
});

test("wrong shapes, missing and unexpected keys name the key, both shapes and the file", { skip }, () => {
  const entries = entriesOf("sd1", "vae");
  const vae = join(FIXTURES, "sd1", "vae");
  const changed: Entry[] = entries.map(([key, shape, dtype]) =>
    key === "decoder.conv_out.weight" ? [key, [shape[0]!, shape[1]! + 1, ...shape.slice(2)], dtype] : [key, shape, dtype]);
  using wrongShape = KeyedModule.fromEntries(changed);
  const before = tidy(() => wrongShape.stateDict().get("encoder.conv_in.weight")!.clone());
  try {
    assertThrowsLoading(() => loadPretrainedWeights(wrongShape, vae),
      'shape mismatch for "decoder.conv_out.weight" in diffusion_pytorch_model.safetensors', "the module has [3, 33, 3, 3], the file has [3, 32, 3, 3]", vae);
    // Nothing was copied: problems are found before any tensor is read. Compared as bytes: the module's tensors
    // are uninitialised memory and may hold NaN, which a numeric difference would not call equal.
    const bytes = (t: Tensor): Buffer => Buffer.from(t.contiguous().data().buffer);
    assert.ok(tidy(() => bytes(wrongShape.stateDict().get("encoder.conv_in.weight")!).equals(bytes(before))), "a weight changed");
  } finally {
    before.dispose();
  }

  using fewer = KeyedModule.fromEntries(entries.filter(([key]) => key !== "quant_conv.bias"));
  assertThrowsLoading(() => loadPretrainedWeights(fewer, vae), 'unexpected keys (1): "quant_conv.bias" (diffusion_pytorch_model.safetensors)');
  const lenient = loadPretrainedWeights(fewer, vae, { strict: false });
  assert.deepEqual(lenient.unexpected, ["quant_conv.bias"]);
  const ignoring = loadPretrainedWeights(fewer, vae, { ignoreUnexpected: [/^quant_conv\.bias$/] });
  assert.deepEqual(ignoring.unexpected, []);

  using more = KeyedModule.fromEntries([...entries, ["extra.weight", [2], "float32"]]);
  assertThrowsLoading(() => loadPretrainedWeights(more, vae), 'missing keys (1): "extra.weight"');
  assert.deepEqual(loadPretrainedWeights(more, vae, { strict: false }).missing, ["extra.weight"]);
});

test("broken shard indexes: invalid JSON, no weight_map, missing shard, key in the wrong shard", { skip }, () => {
  const entries = entriesOf("sd1", "unet");
  using module = KeyedModule.fromEntries(entries);
  const indexName = "diffusion_pytorch_model.safetensors.index.json";
  const copy = (): string => {
    const dir = tempDir();
    cpSync(join(FIXTURES, "unet-sharded"), dir, { recursive: true });
    return dir;
  };
  const invalid = copy();
  writeFileSync(join(invalid, indexName), '{"weight_map": {"conv_in.weight": ');
  assertThrowsLoading(() => loadPretrainedWeights(module, invalid), join(invalid, indexName), "not valid JSON");

  const noMap = copy();
  writeFileSync(join(noMap, indexName), '{"metadata": {}}');
  assertThrowsLoading(() => loadPretrainedWeights(module, noMap), join(noMap, indexName), 'no "weight_map" object', "keys: metadata");

  const escaping = copy();
  writeFileSync(join(escaping, indexName), JSON.stringify({ weight_map: { "conv_in.weight": "../elsewhere.safetensors" } }));
  assertThrowsLoading(() => loadPretrainedWeights(module, escaping), 'weight_map["conv_in.weight"]', "inside the folder");

  const missingShard = copy();
  rmSync(join(missingShard, "diffusion_pytorch_model-00002-of-00004.safetensors"));
  assertThrowsLoading(() => loadPretrainedWeights(module, missingShard), join(missingShard, indexName),
    /missing: diffusion_pytorch_model-00002-of-00004\.safetensors \(\d+ keys\)/);

  const moved = copy();
  const index = JSON.parse(readFileSync(join(moved, indexName), "utf8")) as { weight_map: Record<string, string> };
  const firstShard = index.weight_map["conv_in.weight"]!;
  const otherShard = Object.values(index.weight_map).find((shard) => shard !== firstShard)!;
  index.weight_map["conv_in.weight"] = otherShard;
  writeFileSync(join(moved, indexName), JSON.stringify(index));
  assertThrowsLoading(() => loadPretrainedWeights(module, moved), `weight_map puts "conv_in.weight" in ${otherShard}, but it is in ${firstShard}`);

  const duplicated = copy();
  tidy(() => saveSafetensors(join(duplicated, "diffusion_pytorch_model-00004-of-00004.safetensors"),
    loadPretrainedStateDict(join(FIXTURES, "sd1", "unet"))));
  assertThrowsLoading(() => loadPretrainedWeights(module, duplicated), "is stored twice");
});

test("a corrupt safetensors file is reported with its path", { skip }, () => {
  const dir = tempDir();
  writeFileSync(join(dir, "model.safetensors"), Buffer.from([255, 255, 255, 255, 0, 0, 0, 0, 123]));
  using module = KeyedModule.fromEntries([["a", [1], "float32"]]);
  assert.throws(() => loadPretrainedWeights(module, dir), (error: Error) => error.message.includes(join(dir, "model.safetensors")));
});

test("readComponentConfig parses configs and names the file on errors", { skip }, () => {
  const config = readComponentConfig(join(FIXTURES, "sd2", "unet"));
  assert.deepEqual(config.attention_head_dim, [2, 4]);
  assert.equal(config._class_name, "UNet2DConditionModel");
  assert.equal(readComponentConfig(join(FIXTURES, "sd1", "scheduler"), "scheduler_config.json")._class_name, "PNDMScheduler");
  const dir = tempDir();
  assertThrowsLoading(() => readComponentConfig(dir), `no config.json in ${dir}`, "the folder holds: nothing");
  writeFileSync(join(dir, "config.json"), "{ not json");
  assertThrowsLoading(() => readComponentConfig(dir), join(dir, "config.json"), "not valid JSON");
  writeFileSync(join(dir, "config.json"), "[1, 2]");
  assertThrowsLoading(() => readComponentConfig(dir), "must hold a JSON object, found an array");
  writeFileSync(join(dir, "config.json"), '{"lambda_min_clipped": -Infinity}');
  assert.equal(readComponentConfig(dir).lambda_min_clipped, -Infinity);
  assertThrowsLoading(() => readComponentConfig(join(dir, "absent")), "does not exist");
});
