// The scheduler API around the numerics: config loading and swapping, clear errors, and memory that stays
// flat over a 1,000-step loop (parity with diffusers is in schedulers.test.ts).
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { Generator, memory, randn, tidy, type Tensor } from "../../src/engine/index.js";
import {
  DPMSolverMultistepScheduler, EulerDiscreteScheduler, loadSchedulerConfig, parseSchedulerConfig, schedulerFromConfig,
  SchedulerError, SCHEDULER_CLASS_NAMES, type RawSchedulerConfig, type Scheduler,
} from "../../src/models/schedulers/index.js";
import { skipOutsideCI } from "../prerequisites.js";

const FIXTURES = resolve(fileURLToPath(import.meta.url), "../../../../test/fixtures/generated/schedulers");

const SD15: RawSchedulerConfig = {
  _class_name: "PNDMScheduler", _diffusers_version: "0.6.0", beta_end: 0.012, beta_schedule: "scaled_linear",
  beta_start: 0.00085, num_train_timesteps: 1000, set_alpha_to_one: false, skip_prk_steps: true, steps_offset: 1,
  trained_betas: null, clip_sample: false,
};

function withScheduler<T>(config: RawSchedulerConfig, name: string | undefined, fn: (s: Scheduler) => T): T {
  const scheduler = schedulerFromConfig(config, name);
  try {
    return fn(scheduler);
  } finally {
    scheduler.dispose();
  }
}

test("reads the real Stable Diffusion configs, and diffusers' -Infinity", { skip: skipOutsideCI(existsSync(FIXTURES) ? false : "the generated fixtures are missing: run .venv/bin/python test/oracle/generate.py") }, () => {
  const sd15 = loadSchedulerConfig(resolve(FIXTURES, "sd15/scheduler_config.json"));
  withScheduler(sd15, undefined, (s) => assert.equal(s.className, "PNDMScheduler"));
  const sd2 = loadSchedulerConfig(resolve(FIXTURES, "sd2/scheduler_config.json"));
  withScheduler(sd2, undefined, (s) => {
    assert.equal(s.className, "DDIMScheduler");
    assert.equal(s.config.prediction_type, "v_prediction");
  });
  const saved = loadSchedulerConfig(resolve(FIXTURES, "dpm_saved/scheduler_config.json"));
  assert.equal(saved.lambda_min_clipped, -Infinity);
  withScheduler(saved, undefined, (s) => assert.ok(s instanceof DPMSolverMultistepScheduler));
  assert.deepEqual(parseSchedulerConfig('{"a": "-Infinity", "b": NaN, "c": [Infinity]}'), { a: "-Infinity", b: NaN, c: [Infinity] });
});

test("swapping schedulers carries set options, not the old class's defaults (as diffusers' from_config)", () => {
  withScheduler(SD15, "euler", (euler) => {
    assert.equal(euler.className, "EulerDiscreteScheduler");
    assert.equal(euler.config.steps_offset, 1);
    assert.equal(euler.config.timestep_spacing, "linspace"); // PNDM's "leading" was a default
    withScheduler(euler.config as unknown as RawSchedulerConfig, "DDIMScheduler", (ddim) => {
      assert.equal(ddim.config.timestep_spacing, "leading");
      assert.equal((ddim.config as unknown as RawSchedulerConfig).skip_prk_steps, true); // carried along unused
    });
  });
  for (const name of ["ddpm", "DDIM", "plms", "euler_a", "dpm++2m", ...SCHEDULER_CLASS_NAMES]) {
    withScheduler(SD15, name, (s) => assert.ok(SCHEDULER_CLASS_NAMES.includes(s.className)));
  }
});

test("unknown schedulers and unsupported options are errors that name them", () => {
  assert.throws(() => schedulerFromConfig(SD15, "heun"), (e: Error) => e instanceof SchedulerError && /unknown scheduler 'heun'/.test(e.message));
  assert.throws(() => schedulerFromConfig({ _class_name: "LMSDiscreteScheduler" }), /unknown scheduler class "LMSDiscreteScheduler"/);
  assert.throws(() => schedulerFromConfig({}), /no _class_name/);
  const cases: [RawSchedulerConfig, string, RegExp][] = [
    [{ thresholding: true }, "ddpm", /DDPMScheduler: thresholding=true is not supported/],
    [{ beta_schedule: "sigmoid" }, "ddpm", /beta_schedule="sigmoid" is not supported.*"linear", "scaled_linear", "squaredcos_cap_v2"/],
    [{ variance_type: "learned_range" }, "ddpm", /variance_type="learned_range" is not supported/],
    [{ prediction_type: "flow_prediction" }, "dpm++2m", /prediction_type="flow_prediction"/],
    [{ algorithm_type: "dpmsolver" }, "dpm++2m", /algorithm_type="dpmsolver" is not supported.*"dpmsolver\+\+", "sde-dpmsolver\+\+"/],
    [{ use_exponential_sigmas: true }, "euler", /use_exponential_sigmas=true/],
    [{ timestep_spacing: "uniform" }, "ddim", /timestep_spacing="uniform"/],
    [{ skip_prk_steps: false }, "pndm", /PNDMScheduler: skip_prk_steps=false/],
    [{ prediction_type: "sample" }, "euler_a", /EulerAncestralDiscreteScheduler: prediction_type="sample"/],
    [{ num_train_timesteps: "1000" }, "ddim", /DDIMScheduler: num_train_timesteps must be an integer >= 2, got "1000"/],
    [{ clip_sample: "no" }, "ddim", /DDIMScheduler: clip_sample must be true or false, got "no"/],
    [{ trained_betas: [0.1, 0.2] }, "ddim", /trained_betas must be null or num_train_timesteps \(1000\) numbers, got \[0\.1,0\.2\]/],
  ];
  for (const [options, name, message] of cases) {
    assert.throws(() => schedulerFromConfig({ ...SD15, ...options }, name), message, `${JSON.stringify(options)} on ${name}`);
  }
  // diffusers' own substitutions are kept
  withScheduler({ ...SD15, algorithm_type: "deis", solver_type: "bh2" }, "dpm++2m", (s) => {
    assert.equal((s as DPMSolverMultistepScheduler).config.algorithm_type, "dpmsolver++");
    assert.equal((s as DPMSolverMultistepScheduler).config.solver_type, "midpoint");
  });
});

test("step before setTimesteps, timesteps outside the schedule and out-of-order steps are clear errors", () => {
  const before = memory().tensors;
  for (const name of SCHEDULER_CLASS_NAMES) {
    withScheduler(SD15, name, (s) => {
      tidy(() => {
        const x = randn([1, 4, 2, 2]);
        assert.throws(() => s.step(x, 999, x), new RegExp(`${name}\\.step: call setTimesteps\\(numInferenceSteps\\) first`));
        assert.throws(() => s.timesteps, /call setTimesteps/);
        s.setTimesteps(10);
        assert.throws(() => s.step(x, 500.5, x), new RegExp(`${name}\\.\\w+: timestep 500.5 is not in the schedule set by setTimesteps\\(10\\)`));
        assert.throws(() => s.setTimesteps(0), /numInferenceSteps must be an integer >= 1/);
        assert.throws(() => s.setTimesteps(1001), /cannot be larger than num_train_timesteps 1000/);
      });
    });
  }
  withScheduler(SD15, "euler", (s) => {
    tidy(() => {
      s.setTimesteps(5);
      const x = randn([1, 4, 2, 2]);
      const [t0, t1, t2] = s.timestepList;
      s.step(x, t0!, x);
      assert.throws(() => s.step(x, t2!, x), /timestep 499\.5 is not the schedule's step 1 \(749\.25\); steps must follow scheduler\.timesteps in order/);
      s.step(x, s.timesteps.select(0, 1), x); // a 0-d tensor timestep works too
      void t1;
    });
  });
  assert.equal(memory().tensors, before);
});

function loopMemory(scheduler: Scheduler, steps: number): number[] {
  const generator = new Generator("cpu", 0);
  scheduler.setTimesteps(steps);
  let x = tidy(() => randn([1, 4, 8, 8], { generator }).mul(scheduler.initNoiseSigma));
  const counts: number[] = [];
  for (const t of scheduler.timestepList) {
    const next: Tensor = tidy(() => {
      const input = scheduler.scaleModelInput(x, t);
      const eps = input.mul(0.1).add(randn(x.shape, { generator }));
      return scheduler.step(eps, t, x, { generator }).prevSample;
    });
    x.dispose();
    x = next;
    counts.push(memory().tensors);
  }
  x.dispose();
  return counts;
}

test("a 1,000-step loop keeps memory flat, and dispose frees everything", () => {
  const before = memory().tensors;
  const configs: [string, RawSchedulerConfig][] = [
    ["ddpm", {}], ["ddim", {}], ["pndm", {}], ["euler", { use_karras_sigmas: true }], ["euler_a", {}],
    ["dpm++2m", { solver_order: 3, algorithm_type: "sde-dpmsolver++" }],
  ];
  for (const [name, extra] of configs) {
    // (steps_offset 0: with SD's offset of 1, 1,000 "leading" steps would reach timestep 1000)
    const scheduler = schedulerFromConfig({ ...SD15, steps_offset: 0, ...extra }, name);
    const owned = memory().tensors;
    const counts = loopMemory(scheduler, 1000);
    const steady = counts[10]!;
    // multistep schedulers fill their history during the first few steps; after that nothing may grow
    const tail = counts.slice(10);
    assert.ok(tail.every((c) => c === steady), `${name}: live tensors vary over the loop (${Math.min(...tail)}..${Math.max(...tail)})`);
    assert.ok(Math.max(...counts) <= steady, `${name}: more live tensors during warm-up than after`);
    assert.ok(steady - owned <= 8, `${name}: ${steady - owned} tensors held beyond the scheduler's own`);
    scheduler.dispose();
    assert.equal(memory().tensors, before, `${name}: dispose frees every tensor`);
  }
});

test("Euler's initNoiseSigma and scaleModelInput follow the sigmas", () => {
  withScheduler(SD15, "euler", (s) => {
    const euler = s as EulerDiscreteScheduler;
    euler.setTimesteps(20);
    assert.equal(euler.initNoiseSigma, euler.sigmaList[0]);
    tidy(() => {
      const x = randn([1, 4, 2, 2]);
      const scaled = euler.scaleModelInput(x, euler.timestepList[0]!);
      const sigma = euler.sigmaList[0]!;
      assert.ok(Math.abs(scaled.div(x).mean().item() - 1 / Math.sqrt(sigma * sigma + 1)) < 1e-6);
    });
  });
});
