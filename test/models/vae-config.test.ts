// AutoencoderKL's config (diffusers' defaults, clear errors for unsupported values), its structure for Stable
// Diffusion 1.5's real VAE config (every parameter name and shape as diffusers builds it), loading options and
// errors, and the posterior's API beyond what the parity test covers. Fixtures: test/oracle/fixtures_vae.py.
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { cat, Generator, loadSafetensors, memory, noGrad, randn, tidy } from "../../src/engine/index.js";
import { ModelLoadingError } from "../../src/models/loading/index.js";
import {
  AUTOENCODER_KL_DEFAULTS, AutoencoderKL, AutoencoderKLConfigError, DiagonalGaussianDistribution, renameDeprecatedAttentionKey,
  resolveAutoencoderKLConfig,
} from "../../src/models/vae/index.js";

const ROOT = resolve(fileURLToPath(import.meta.url), "../../../..");
const FIXTURES = resolve(ROOT, "test/fixtures/generated/vae");
if (!existsSync(resolve(FIXTURES, "sd15_structure.json"))) {
  throw new Error(`VAE fixtures missing: run .venv/bin/python test/oracle/generate.py vae (looked in ${FIXTURES})`);
}
interface Structure {
  config: Record<string, unknown>;
  resolved: Record<string, unknown>;
  defaults: Record<string, unknown>;
  parameters: [string, number[]][];
  parameter_count: number;
}
const structure = JSON.parse(readFileSync(resolve(FIXTURES, "sd15_structure.json"), "utf8")) as Structure;
const withoutBookkeeping = (config: Record<string, unknown>): Record<string, unknown> =>
  Object.fromEntries(Object.entries(config).filter(([key]) => !key.startsWith("_")));

const temporary: string[] = [];
after(() => {
  for (const dir of temporary) rmSync(dir, { recursive: true, force: true });
});
function copyOfFixture(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), "hdb-vae-"));
  temporary.push(dir);
  cpSync(resolve(FIXTURES, name), dir, { recursive: true });
  return dir;
}

test("config: defaults and Stable Diffusion 1.5's VAE config resolve as in diffusers", () => {
  assert.deepEqual(resolveAutoencoderKLConfig({}), withoutBookkeeping(structure.defaults));
  assert.deepEqual({ ...AUTOENCODER_KL_DEFAULTS }, withoutBookkeeping(structure.defaults));
  assert.deepEqual(resolveAutoencoderKLConfig(structure.config), withoutBookkeeping(structure.resolved));
  const config = resolveAutoencoderKLConfig({ sample_size: [64, 48], shift_factor: 0.0609, latents_mean: [0, 1, 2, 3], latents_std: [1, 1, 1, 1], unknown_key: 1 });
  assert.deepEqual(config.sample_size, [64, 48]);
  assert.equal(config.shift_factor, 0.0609);
  assert.deepEqual(config.latents_mean, [0, 1, 2, 3]);
  assert.equal((config as unknown as Record<string, unknown>).unknown_key, undefined, "keys AutoencoderKL does not take are ignored");
  assert.equal(resolveAutoencoderKLConfig({ act_fn: "swish" }).act_fn, "swish");
});

test("config: unsupported or invalid values are one clear error naming the key and value", () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ act_fn: "gelu" }, /act_fn="gelu" is not supported .*supported: "silu", "swish"/],
    [{ down_block_types: ["AttnDownEncoderBlock2D"] }, /down_block_types\[0\]="AttnDownEncoderBlock2D" is not supported/],
    [{ up_block_types: ["AttnUpDecoderBlock2D"] }, /up_block_types\[0\]="AttnUpDecoderBlock2D" is not supported/],
    [{ block_out_channels: [32, 64] }, /down_block_types must be one entry per block_out_channels entry \(2\), got \["DownEncoderBlock2D"\]/],
    [{ block_out_channels: [] }, /block_out_channels must be a non-empty list of positive integers, got \[\]/],
    [{ block_out_channels: [48], norm_num_groups: 32 }, /norm_num_groups must be a divisor of every block_out_channels entry \(48 .*got 32/],
    [{ _class_name: "AutoencoderTiny" }, /_class_name must be "AutoencoderKL", got "AutoencoderTiny"/],
    [{ shift_factor: "0.1" }, /shift_factor must be a number or null, got "0.1"/],
    [{ scaling_factor: null }, /scaling_factor must be a non-zero number, got null/],
    [{ latents_mean: [0, 1] }, /latents_mean must be null or a list of 4 numbers .*got \[0,1\]/],
    [{ use_quant_conv: "yes" }, /use_quant_conv must be true or false, got "yes"/],
    [{ layers_per_block: 1.5 }, /layers_per_block must be a positive integer, got 1.5/],
    [{ sample_size: [64] }, /sample_size must be a positive integer or \[height, width\], got \[64\]/],
  ];
  for (const [raw, message] of cases) {
    assert.throws(() => resolveAutoencoderKLConfig(raw), (error: Error) => error instanceof AutoencoderKLConfigError && message.test(error.message), JSON.stringify(raw));
  }
  assert.throws(() => new AutoencoderKL({ act_fn: "mish" }), AutoencoderKLConfigError);
});

test("structure: Stable Diffusion 1.5's VAE has diffusers' parameter names, shapes and order", () => {
  // The shared blocks (ResnetBlock2D, Attention, Down/Upsample2D) take no device option yet, so this builds on
  // the CPU (335 MB for half a second) rather than on the meta device; it is freed right away.
  const before = memory().tensors;
  const vae = new AutoencoderKL(structure.config);
  try {
    const actual = [...vae.stateDict()].map(([key, tensor]) => [key, [...tensor.shape]]);
    assert.deepEqual(actual, structure.parameters);
    assert.equal(vae.parameterCount(), structure.parameter_count);
    assert.equal(vae.scalingFactor, 0.18215);
    assert.equal(vae.shiftFactor, null);
    assert.equal(vae.config.force_upcast, true);
    const keys = new Set(actual.map(([key]) => key));
    for (const key of [
      "encoder.down_blocks.0.resnets.0.norm1.weight", "encoder.mid_block.attentions.0.to_q.weight", "quant_conv.weight",
      "decoder.up_blocks.0.upsamplers.0.conv.weight", "encoder.down_blocks.0.downsamplers.0.conv.weight",
      "decoder.mid_block.attentions.0.to_out.0.bias", "decoder.up_blocks.3.resnets.2.conv2.weight", "post_quant_conv.bias",
    ]) assert.ok(keys.has(key), key);
  } finally {
    vae.dispose();
  }
  assert.equal(memory().tensors, before);
});

test("structure: without mid-block attention or quant convs those parameters are absent", () => {
  const vae = new AutoencoderKL({ block_out_channels: [8], norm_num_groups: 4, mid_block_add_attention: false, use_quant_conv: false, use_post_quant_conv: false });
  try {
    const keys = [...vae.stateDict().keys()];
    assert.ok(!keys.some((key) => key.includes("attentions") || key.includes("quant_conv")), keys.join(", "));
    assert.ok(!keys.some((key) => key.includes("downsamplers") || key.includes("upsamplers")), "one level: no resampling");
    assert.equal(vae.quantConv, null);
    assert.equal(vae.decoder.upBlocks.at(0).resnets.length, 2, "decoder blocks have layers_per_block + 1 resnets");
  } finally {
    vae.dispose();
  }
});

test("renameDeprecatedAttentionKey maps diffusers < 0.14 mid-block attention names only", () => {
  assert.equal(renameDeprecatedAttentionKey("encoder.mid_block.attentions.0.query.weight"), "encoder.mid_block.attentions.0.to_q.weight");
  assert.equal(renameDeprecatedAttentionKey("decoder.mid_block.attentions.0.proj_attn.bias"), "decoder.mid_block.attentions.0.to_out.0.bias");
  assert.equal(renameDeprecatedAttentionKey("decoder.mid_block.attentions.0.value.bias"), "decoder.mid_block.attentions.0.to_v.bias");
  assert.equal(renameDeprecatedAttentionKey("encoder.mid_block.attentions.0.group_norm.weight"), "encoder.mid_block.attentions.0.group_norm.weight");
  assert.equal(renameDeprecatedAttentionKey("encoder.down_blocks.0.key.weight"), "encoder.down_blocks.0.key.weight");
});

test("fromPretrained: dtype converts the weights (float64 agrees with diffusers' float32 outputs)", () => {
  const { tensors } = loadSafetensors(resolve(FIXTURES, "two_blocks.safetensors"));
  for (const name of ["two_blocks", "legacy_attention_names"]) {
    const vae = AutoencoderKL.fromPretrained(resolve(FIXTURES, name), { dtype: "float64" });
    try {
      for (const parameter of vae.parameters()) assert.equal(parameter.dtype, "float64", name);
      if (name === "two_blocks") {
        noGrad(() => tidy(() => {
          const decoded = vae.decode(tensors.get("z")!.to("float64"));
          assert.equal(decoded.dtype, "float64");
          const error = decoded.sub(tensors.get("decoded")!.to("float64")).abs().max().item();
          assert.ok(error < 1e-4, `float64 decode differs from diffusers' float32 by ${error}`);
        }));
      }
    } finally {
      vae.dispose();
    }
  }
  for (const t of tensors.values()) t.dispose();
});

test("fromPretrained: a mismatched config or a missing variant is one error naming the keys or files", () => {
  const dir = copyOfFixture("two_blocks");
  const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as Record<string, unknown>;
  writeFileSync(join(dir, "config.json"), JSON.stringify({ ...config, latent_channels: 3 }));
  assert.throws(() => AutoencoderKL.fromPretrained(dir), (error: Error) =>
    // One line: the first few mismatches with both shapes, and how many there are (latent_channels changes 7 tensors).
    error instanceof ModelLoadingError && /shape mismatch for "encoder.conv_out.weight".*\[6, 16, 3, 3\].*\[8, 16, 3, 3\].*\(7 shape mismatches in all/.test(error.message) &&
    !error.message.includes("\n"));
  const legacy = copyOfFixture("legacy_attention_names");
  writeFileSync(join(legacy, "config.json"), JSON.stringify({ ...config, mid_block_add_attention: false }));
  assert.throws(() => AutoencoderKL.fromPretrained(legacy), (error: Error) =>
    error instanceof ModelLoadingError && error.message.includes(legacy) &&
    /after renaming deprecated attention names.*unexpected keys: "decoder.mid_block.attentions.0.group_norm.bias"/s.test(error.message));
  assert.throws(() => AutoencoderKL.fromPretrained(resolve(FIXTURES, "two_blocks"), { variant: "fp16" }), /no "fp16" variant safetensors weights/);
  assert.throws(() => AutoencoderKL.fromPretrained(resolve(FIXTURES, "fp16")), /pass variant "fp16"/);
});

test("encode/decode: wrong input shapes are clear errors; slicing a batch of one is the plain path", () => {
  const vae = new AutoencoderKL({ block_out_channels: [8, 8], norm_num_groups: 4, down_block_types: ["DownEncoderBlock2D", "DownEncoderBlock2D"], up_block_types: ["UpDecoderBlock2D", "UpDecoderBlock2D"] });
  try {
    tidy(() => {
      assert.throws(() => vae.encode(randn([1, 4, 8, 8])), /AutoencoderKL.encode: expected a \(B, 3, H, W\) tensor \(in_channels = 3\), got shape \[1, 4, 8, 8\]/);
      assert.throws(() => vae.decode(randn([4, 4, 4])), /AutoencoderKL.decode: expected a \(B, 4, H, W\) tensor \(latent_channels = 4\), got shape \[4, 4, 4\]/);
      const z = randn([1, 4, 3, 5]);
      const plain = vae.decode(z);
      assert.deepEqual(plain.shape, [1, 3, 6, 10]);
      vae.enableSlicing();
      assert.equal(vae.useSlicing, true);
      assert.equal(vae.decode(z).sub(plain).abs().max().item(), 0);
      vae.disableSlicing();
      const posterior = vae.encode(randn([2, 3, 7, 9]));
      assert.deepEqual(posterior.mean.shape, [2, 4, 3, 4], "odd sizes round down (asymmetric pad, then a stride-2 conv)");
    });
  } finally {
    vae.dispose();
  }
});

test("DiagonalGaussianDistribution: list of generators, deterministic mode, and flat memory", () => {
  tidy(() => {
    const parameters = randn([2, 6, 3, 3], { generator: new Generator("cpu", 3) });
    const posterior = new DiagonalGaussianDistribution(parameters);
    const perItem = posterior.sample({ generator: [new Generator("cpu", 10), new Generator("cpu", 11)] });
    const noise = cat([randn([1, 3, 3, 3], { generator: new Generator("cpu", 10) }), randn([1, 3, 3, 3], { generator: new Generator("cpu", 11) })]);
    assert.equal(perItem.sub(posterior.mean.add(posterior.std.mul(noise))).abs().max().item(), 0);
    assert.throws(() => posterior.sample({ generator: [new Generator("cpu", 1), new Generator("cpu", 2), new Generator("cpu", 3)] }), /3 generators for a batch of 2/);

    const point = new DiagonalGaussianDistribution(parameters, true);
    assert.equal(point.std.abs().max().item(), 0);
    assert.equal(point.var.abs().max().item(), 0);
    assert.equal(point.sample().sub(point.mean).abs().max().item(), 0);
    assert.deepEqual(point.kl().toArray(), [0]);
    assert.throws(() => new DiagonalGaussianDistribution(randn([1, 3, 2, 2])), /even channel dim 1, got shape \[1, 3, 2, 2\]/);
  });

  const vae = new AutoencoderKL({ block_out_channels: [8], norm_num_groups: 4 });
  try {
    const x = randn([1, 3, 8, 8]);
    const step = (): void => {
      const posterior = vae.encode(x);
      const sample = posterior.sample();
      posterior.dispose();
      const decoded = vae.decode(sample);
      sample.dispose();
      decoded.dispose();
    };
    noGrad(step);
    const before = memory();
    for (let i = 0; i < 3; i++) noGrad(step);
    assert.deepEqual(memory(), before, "encode → sample → decode frees every intermediate without a tidy scope");
    x.dispose();
  } finally {
    vae.dispose();
  }
});
