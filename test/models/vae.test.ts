// Parity of AutoencoderKL with diffusers 0.42.1 (fixtures from test/oracle/fixtures_vae.py): each tiny VAE is
// loaded from its save_pretrained folder with AutoencoderKL.fromPretrained, and the posterior (mean, logvar,
// std, var, mode, seeded sample, kl, nll), decode, forward (mode and sampled), slicing, and the gradients
// w.r.t. the latents and the input image are compared with diffusers' on the same weights and inputs.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { Generator, grad, loadSafetensors, memory, noGrad, tidy, type Tensor } from "../../src/engine/index.js";
import { AutoencoderKL } from "../../src/models/vae/index.js";

const ROOT = resolve(fileURLToPath(import.meta.url), "../../../..");
const FIXTURES = resolve(ROOT, "test/fixtures/generated/vae");
/** The bar: max |actual - expected| in float32. */
const TOLERANCE = 1e-4;

interface Case {
  name: string;
  model_dir: string;
  variant: string | null;
  resolved: Record<string, unknown>;
  seed: number;
  sample_seed: number;
  gradients: boolean;
  slicing: boolean;
}

if (!existsSync(resolve(FIXTURES, "cases.json"))) {
  throw new Error(`VAE fixtures missing: run .venv/bin/python test/oracle/generate.py vae (looked in ${FIXTURES})`);
}
const cases = JSON.parse(readFileSync(resolve(FIXTURES, "cases.json"), "utf8")) as Case[];

/** The worst error per kind of output over every case, and how many comparisons were bit-identical. */
const worst = new Map<string, { error: number; where: string; compared: number; exact: number }>();

function maxAbsError(actual: Tensor, expected: Tensor): number {
  return tidy(() => actual.sub(expected).abs().max().item());
}

function compare(actual: Tensor, expected: Tensor, caseName: string, what: string): void {
  assert.deepEqual(actual.shape, expected.shape, `${caseName} ${what}: shape`);
  assert.equal(actual.dtype, "float32", `${caseName} ${what}: dtype`);
  const error = maxAbsError(actual, expected);
  const entry = worst.get(what) ?? { error: 0, where: "", compared: 0, exact: 0 };
  entry.compared++;
  if (error === 0) entry.exact++;
  if (error > entry.error || entry.where === "") Object.assign(entry, { error, where: caseName });
  worst.set(what, entry);
  assert.ok(error <= TOLERANCE, `${caseName} ${what}: max |diff| ${error.toExponential(3)} > ${TOLERANCE}`);
}

for (const c of cases) {
  test(`${c.name}: AutoencoderKL matches diffusers`, () => {
    const { tensors } = loadSafetensors(resolve(FIXTURES, `${c.name}.safetensors`));
    const before = memory().tensors;
    const get = (name: string): Tensor => {
      const t = tensors.get(name);
      assert.ok(t, `fixture tensor ${name}`);
      return t;
    };
    const vae = AutoencoderKL.fromPretrained(resolve(ROOT, c.model_dir), c.variant === null ? {} : { variant: c.variant });
    try {
      assert.equal(vae.training, false, "fromPretrained returns the model in eval mode");
      for (const [key, value] of Object.entries(c.resolved)) {
        if (!key.startsWith("_")) assert.deepEqual((vae.config as unknown as Record<string, unknown>)[key], value, `config.${key}`);
      }
      assert.equal(vae.scalingFactor, c.resolved.scaling_factor);
      assert.equal(vae.shiftFactor, c.resolved.shift_factor);
      for (const parameter of vae.parameters()) assert.equal(parameter.dtype, "float32");
      const x = get("x");
      const z = get("z");

      noGrad(() => tidy(() => {
        const posterior = vae.encode(x);
        compare(posterior.mean, get("mean"), c.name, "mean");
        compare(posterior.logvar, get("logvar"), c.name, "logvar");
        compare(posterior.std, get("std"), c.name, "std");
        compare(posterior.var, get("var"), c.name, "var");
        compare(posterior.mode(), get("mode"), c.name, "mode");
        const sample = posterior.sample({ generator: new Generator("cpu", c.sample_seed) });
        compare(sample, get("sample"), c.name, "sample");
        compare(posterior.kl(), get("kl"), c.name, "kl");
        if (tensors.has("nll")) compare(posterior.nll(get("sample")), get("nll"), c.name, "nll");
        posterior.dispose();

        compare(vae.decode(z), get("decoded"), c.name, "decode");
        compare(vae.forward(x), get("forward_mode"), c.name, "forward (mode)");
        const sampled = vae.forward(x, { samplePosterior: true, generator: new Generator("cpu", c.sample_seed) });
        compare(sampled, get("forward_sample"), c.name, "forward (sampled)");
        if (c.slicing) {
          vae.enableSlicing();
          compare(vae.decode(z), get("sliced_decoded"), c.name, "decode (slicing)");
          compare(vae.encode(x).mean, get("sliced_mean"), c.name, "mean (slicing)");
          vae.disableSlicing();
        }
      }));

      if (c.gradients) {
        tidy(() => {
          const zLeaf = z.clone().requiresGrad_();
          const [gradZ] = grad(vae.decode(zLeaf).mul(get("g_decoded")).sum(), [zLeaf]);
          compare(gradZ!, get("grad_z"), c.name, "d decode / d z");
          const xLeaf = x.clone().requiresGrad_();
          const posterior = vae.encode(xLeaf);
          const [gradX] = grad(posterior.mean.mul(get("g_mean")).sum(), [xLeaf]);
          posterior.dispose();
          compare(gradX!, get("grad_x"), c.name, "d mean / d x");
        });
      }
    } finally {
      vae.dispose();
    }
    assert.equal(memory().tensors, before, "every tensor freed");
    for (const t of tensors.values()) t.dispose();
  });
}

test("summary: max abs error against diffusers per output", (t) => {
  assert.ok(worst.size > 0);
  for (const [what, { error, where, compared, exact }] of worst) {
    t.diagnostic(`${what}: max ${error.toExponential(2)} (${where}); ${exact} of ${compared} cases bit-identical`);
  }
});
