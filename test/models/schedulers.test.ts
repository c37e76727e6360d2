// Parity of the noise schedulers with diffusers 0.42.1 (fixtures from test/oracle/fixtures_schedulers.py):
// resolved configs, alphas_cumprod, timesteps/sigmas/init_noise_sigma for several step counts, every step of a
// sampling loop (scaled input, prev_sample, pred_original_sample), add_noise, get_velocity and compute_snr.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { Generator, loadSafetensors, memory, tidy, type Tensor } from "../../src/engine/index.js";
import {
  computeSnr, DDIMScheduler, DDPMScheduler, parsePythonJson, schedulerFromConfig, SigmaScheduler,
  type RawSchedulerConfig, type Scheduler,
} from "../../src/models/schedulers/index.js";

const ROOT = resolve(fileURLToPath(import.meta.url), "../../../..");
const FIXTURES = resolve(ROOT, "test/fixtures/generated/schedulers");
/** Largest |actual - expected| allowed, relative to max |expected| (float32 round-off). */
const TOLERANCE = 1e-5;

interface Case {
  name: string;
  raw: RawSchedulerConfig;
  /** Classes the scheduler is swapped to in turn with from_config (empty: the config's _class_name). */
  chain: string[];
  class: string;
  resolved: Record<string, unknown>;
  schedules: { n: number; timesteps: number[]; sigmas?: number[]; init_noise_sigma: number }[];
  loop: { steps: number | null; seed: number | number[] | null; kwargs: Record<string, number> };
}

if (!existsSync(resolve(FIXTURES, "cases.json"))) {
  throw new Error(`scheduler fixtures missing: run .venv/bin/python test/oracle/generate.py schedulers (looked in ${FIXTURES})`);
}
const cases = parsePythonJson(readFileSync(resolve(FIXTURES, "cases.json"), "utf8")) as Case[];

/** Exactness statistics over every compared tensor, reported at the end. */
const stats = { tensors: 0, exact: 0, worst: 0, worstWhat: "" };

function compare(actual: Tensor, expected: Tensor, what: string): void {
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  assert.equal(actual.dtype, expected.dtype, `${what}: dtype`);
  const a = actual.data() as Float32Array;
  const e = expected.data() as Float32Array;
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < e.length; i++) {
    // a NaN in the fixture means the case sits on a rounding edge of diffusers itself: fix the case, not this check
    assert.ok(Number.isFinite(e[i]!), `${what}: the fixture holds ${e[i]} at ${i} (regenerate with a case that avoids it)`);
    maxDiff = Math.max(maxDiff, Math.abs(a[i]! - e[i]!));
    maxRef = Math.max(maxRef, Math.abs(e[i]!));
  }
  const rel = maxDiff / Math.max(maxRef, 1e-30);
  stats.tensors++;
  if (maxDiff === 0) stats.exact++;
  if (rel > stats.worst) {
    stats.worst = rel;
    stats.worstWhat = what;
  }
  assert.ok(rel <= TOLERANCE, `${what}: max |diff| ${maxDiff} is ${rel.toExponential(2)} of max |expected| ${maxRef}`);
}

const stepKwargs = (kwargs: Record<string, number>): Record<string, number> => {
  const names: Record<string, string> = { eta: "eta", s_churn: "sChurn", s_tmin: "sTmin", s_tmax: "sTmax", s_noise: "sNoise" };
  return Object.fromEntries(Object.entries(kwargs).map(([k, v]) => [names[k] ?? k, v]));
};

function generators(seed: number | number[] | null): Generator | Generator[] | undefined {
  if (seed === null) return undefined;
  return Array.isArray(seed) ? seed.map((s) => new Generator("cpu", s)) : new Generator("cpu", seed);
}

for (const c of cases) {
  test(`${c.name}: ${c.class} matches diffusers`, () => {
    const { tensors } = loadSafetensors(resolve(FIXTURES, `${c.name}.safetensors`));
    // (measured after loading: the safetensors reader keeps one bounce-buffer tensor for the process)
    const before = memory().tensors - tensors.size;
    const get = (name: string): Tensor => {
      const t = tensors.get(name);
      assert.ok(t, `fixture tensor ${name}`);
      return t;
    };
    let scheduler: Scheduler = schedulerFromConfig(c.raw, c.chain[0]);
    for (const name of c.chain.slice(1)) {
      const next = schedulerFromConfig(scheduler.config, name);
      scheduler.dispose();
      scheduler = next;
    }
    try {
      assert.equal(scheduler.className, c.class);
      const config = scheduler.config as unknown as Record<string, unknown>;
      const sorted = (v: unknown): unknown => (Array.isArray(v) ? [...(v as string[])].sort() : v);
      for (const [key, value] of Object.entries(c.resolved)) {
        assert.deepEqual(sorted(config[key]), sorted(value), `config.${key}`);
      }
      assert.deepEqual(Object.keys(config).sort(), Object.keys(c.resolved).sort(), "config keys");
      compare(scheduler.alphasCumprod, get("alphas_cumprod"), "alphas_cumprod");

      for (const s of c.schedules) {
        scheduler.setTimesteps(s.n);
        assert.deepEqual(scheduler.timestepList, s.timesteps, `timesteps for n=${s.n}`);
        assert.deepEqual(Array.from(scheduler.timesteps.data() as ArrayLike<number | bigint>, Number), s.timesteps);
        if (s.sigmas) {
          assert.ok(scheduler instanceof SigmaScheduler);
          assert.deepEqual(scheduler.sigmaList, s.sigmas, `sigmas for n=${s.n}`);
        }
        assert.equal(scheduler.initNoiseSigma, s.init_noise_sigma, `init_noise_sigma for n=${s.n}`);
      }
      if (c.loop.steps !== null) runLoop(c, scheduler, get);
    } finally {
      scheduler.dispose();
      for (const t of tensors.values()) t.dispose();
    }
    assert.equal(memory().tensors, before, "every tensor freed");
  });
}

function runLoop(c: Case, scheduler: Scheduler, get: (name: string) => Tensor): void {
  scheduler.setTimesteps(c.loop.steps!);
  const x0 = get("x0");
  const eps = get("eps");
  if (scheduler instanceof SigmaScheduler) {
    tidy(() => compare(scheduler.addNoise(x0, get("an_noise"), get("an_t")), get("an_out"), `${c.name} add_noise`));
  }
  const generator = generators(c.loop.seed);
  const kwargs = stepKwargs(c.loop.kwargs);
  let x = x0.mul(scheduler.initNoiseSigma);
  const timesteps = scheduler.timestepList;
  assert.equal(eps.size(0), timesteps.length);
  timesteps.forEach((t, i) => {
    const next = tidy(() => {
      const input = scheduler.scaleModelInput(x, t);
      compare(input, get("scaled").select(0, i), `${c.name} scaled input ${i}`);
      const modelOutput = input.mul(0.3).add(eps.select(0, i).mul(0.7));
      const out = scheduler.step(modelOutput, t, x, { generator, ...kwargs });
      compare(out.prevSample, get("prev").select(0, i), `${c.name} prev_sample ${i} (t=${t})`);
      if (out.predOriginalSample) compare(out.predOriginalSample, get("pred").select(0, i), `${c.name} pred_original_sample ${i}`);
      return out.prevSample;
    });
    x.dispose();
    x = next;
  });
  x.dispose();

  if (scheduler instanceof DDPMScheduler || scheduler instanceof DDIMScheduler) {
    tidy(() => {
      const t = get("an_t");
      compare(scheduler.addNoise(x0, get("an_noise"), t), get("an_out"), `${c.name} add_noise`);
      compare(scheduler.getVelocity(x0, get("an_noise"), t), get("vel_out"), `${c.name} get_velocity`);
    });
  }
  if (scheduler instanceof DDPMScheduler) {
    tidy(() => compare(computeSnr(scheduler, get("snr_t")), get("snr_out"), `${c.name} compute_snr`));
  }
}

test("summary: exactness against diffusers", (t) => {
  t.diagnostic(`${stats.exact} of ${stats.tensors} compared tensors are bit-identical; worst relative error ${stats.worst.toExponential(2)} (${stats.worstWhat || "none"})`);
  assert.ok(stats.tensors > 0);
});
