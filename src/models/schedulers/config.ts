/**
 * Scheduler configuration: the fields of a diffusers `scheduler/scheduler_config.json`, typed per scheduler,
 * with diffusers 0.42.1's defaults and a validation that names any option or value this port does not support.
 *
 * Keys keep diffusers' snake_case spelling so that a config round-trips through JSON unchanged.
 */
import { readFileSync } from "node:fs";
import { parsePythonJson } from "../../util/json.js";

/** Python's JSON dialect (bare NaN, ±Infinity): src/util/json.ts, re-exported where scheduler configs are read. */
export { parsePythonJson };

export type SchedulerClassName =
  | "DDPMScheduler"
  | "DDIMScheduler"
  | "PNDMScheduler"
  | "EulerDiscreteScheduler"
  | "EulerAncestralDiscreteScheduler"
  | "DPMSolverMultistepScheduler";

export type BetaSchedule = "linear" | "scaled_linear" | "squaredcos_cap_v2";
export type PredictionType = "epsilon" | "v_prediction" | "sample";
export type TimestepSpacing = "leading" | "trailing" | "linspace";

/** Fields every scheduler here has. */
export interface BaseSchedulerConfig {
  _class_name: SchedulerClassName;
  num_train_timesteps: number;
  beta_start: number;
  beta_end: number;
  beta_schedule: BetaSchedule;
  trained_betas: number[] | null;
  prediction_type: PredictionType;
  timestep_spacing: TimestepSpacing;
  steps_offset: number;
  /** Options that took the class's default (not carried over when the config builds another scheduler). */
  _use_default_values?: string[];
}

interface Thresholding {
  /** Dynamic thresholding (Imagen); must be false here. */
  thresholding: false;
  dynamic_thresholding_ratio: number;
  sample_max_value: number;
}

export interface DDPMConfig extends BaseSchedulerConfig, Thresholding {
  _class_name: "DDPMScheduler";
  variance_type: "fixed_small" | "fixed_small_log" | "fixed_large";
  clip_sample: boolean;
  clip_sample_range: number;
  rescale_betas_zero_snr: boolean;
}

export interface DDIMConfig extends BaseSchedulerConfig, Thresholding {
  _class_name: "DDIMScheduler";
  clip_sample: boolean;
  clip_sample_range: number;
  set_alpha_to_one: boolean;
  rescale_betas_zero_snr: boolean;
}

export interface PNDMConfig extends BaseSchedulerConfig {
  _class_name: "PNDMScheduler";
  prediction_type: "epsilon" | "v_prediction";
  /** Must be true: only the PLMS steps are implemented (as Stable Diffusion's config asks). */
  skip_prk_steps: true;
  set_alpha_to_one: boolean;
}

export interface EulerConfig extends BaseSchedulerConfig {
  _class_name: "EulerDiscreteScheduler";
  interpolation_type: "linear";
  use_karras_sigmas: boolean;
  use_exponential_sigmas: false;
  use_beta_sigmas: false;
  sigma_min: number | null;
  sigma_max: number | null;
  timestep_type: "discrete";
  rescale_betas_zero_snr: boolean;
  final_sigmas_type: "zero" | "sigma_min";
}

export interface EulerAncestralConfig extends BaseSchedulerConfig {
  _class_name: "EulerAncestralDiscreteScheduler";
  prediction_type: "epsilon" | "v_prediction";
  rescale_betas_zero_snr: boolean;
}

export interface DPMSolverConfig extends BaseSchedulerConfig, Thresholding {
  _class_name: "DPMSolverMultistepScheduler";
  solver_order: 1 | 2 | 3;
  algorithm_type: "dpmsolver++" | "sde-dpmsolver++";
  solver_type: "midpoint" | "heun";
  lower_order_final: boolean;
  euler_at_final: boolean;
  use_karras_sigmas: boolean;
  use_exponential_sigmas: false;
  use_beta_sigmas: false;
  use_lu_lambdas: false;
  use_flow_sigmas: false;
  flow_shift: number;
  final_sigmas_type: "zero" | "sigma_min";
  lambda_min_clipped: number;
  variance_type: null;
  rescale_betas_zero_snr: boolean;
  use_dynamic_shifting: false;
  time_shift_type: "exponential";
}

export type SchedulerConfig = DDPMConfig | DDIMConfig | PNDMConfig | EulerConfig | EulerAncestralConfig | DPMSolverConfig;
export type ConfigOf<N extends SchedulerClassName> = Extract<SchedulerConfig, { _class_name: N }>;

/** A config as read from JSON: any subset of fields, possibly with other classes' keys. */
export type RawSchedulerConfig = Record<string, unknown>;

type Value = number | string | boolean | null | number[];

const common = {
  num_train_timesteps: 1000, beta_start: 0.0001, beta_end: 0.02, beta_schedule: "linear", trained_betas: null,
} satisfies Record<string, Value>;
const thresholding = { thresholding: false, dynamic_thresholding_ratio: 0.995, sample_max_value: 1.0 };

/** Each class's constructor defaults in diffusers 0.42.1 (every keyword of its `__init__`). */
export const SCHEDULER_DEFAULTS: Record<SchedulerClassName, Record<string, Value>> = {
  DDPMScheduler: {
    ...common, variance_type: "fixed_small", clip_sample: true, prediction_type: "epsilon", ...thresholding,
    clip_sample_range: 1.0, timestep_spacing: "leading", steps_offset: 0, rescale_betas_zero_snr: false,
  },
  DDIMScheduler: {
    ...common, clip_sample: true, set_alpha_to_one: true, steps_offset: 0, prediction_type: "epsilon", ...thresholding,
    clip_sample_range: 1.0, timestep_spacing: "leading", rescale_betas_zero_snr: false,
  },
  PNDMScheduler: {
    ...common, skip_prk_steps: false, set_alpha_to_one: false, prediction_type: "epsilon", timestep_spacing: "leading",
    steps_offset: 0,
  },
  EulerDiscreteScheduler: {
    ...common, prediction_type: "epsilon", interpolation_type: "linear", use_karras_sigmas: false,
    use_exponential_sigmas: false, use_beta_sigmas: false, sigma_min: null, sigma_max: null, timestep_spacing: "linspace",
    timestep_type: "discrete", steps_offset: 0, rescale_betas_zero_snr: false, final_sigmas_type: "zero",
  },
  EulerAncestralDiscreteScheduler: {
    ...common, prediction_type: "epsilon", timestep_spacing: "linspace", steps_offset: 0, rescale_betas_zero_snr: false,
  },
  DPMSolverMultistepScheduler: {
    ...common, solver_order: 2, prediction_type: "epsilon", ...thresholding, algorithm_type: "dpmsolver++",
    solver_type: "midpoint", lower_order_final: true, euler_at_final: false, use_karras_sigmas: false,
    use_exponential_sigmas: false, use_beta_sigmas: false, use_lu_lambdas: false, use_flow_sigmas: false, flow_shift: 1.0,
    final_sigmas_type: "zero", lambda_min_clipped: -Infinity, variance_type: null, timestep_spacing: "linspace",
    steps_offset: 0, rescale_betas_zero_snr: false, use_dynamic_shifting: false, time_shift_type: "exponential",
  },
};

export const SCHEDULER_CLASS_NAMES = Object.keys(SCHEDULER_DEFAULTS) as SchedulerClassName[];

export function isSchedulerClassName(name: unknown): name is SchedulerClassName {
  return typeof name === "string" && Object.hasOwn(SCHEDULER_DEFAULTS, name);
}

/** A problem with a scheduler config or call: it names the scheduler, option and value. */
export class SchedulerError extends Error {
  override name = "SchedulerError";
}

/** What values an option may take: diffusers' own set, and the subset this port implements. */
interface Rule {
  kind: "int" | "number" | "bool" | "enum" | "betas" | "nullable-number";
  /** Values this port supports (for enums and booleans restricted to one value). */
  supported?: readonly Value[];
  /** Values diffusers silently replaces (e.g. algorithm_type "deis" becomes "dpmsolver++"). */
  aliases?: Record<string, Value>;
}

const betaSchedules = ["linear", "scaled_linear", "squaredcos_cap_v2"];
const spacings = ["leading", "trailing", "linspace"];
const alphaPredictions = ["epsilon", "sample", "v_prediction"];
const onlyFalse: Rule = { kind: "bool", supported: [false] };

const commonRules: Record<string, Rule> = {
  num_train_timesteps: { kind: "int" }, beta_start: { kind: "number" }, beta_end: { kind: "number" },
  beta_schedule: { kind: "enum", supported: betaSchedules }, trained_betas: { kind: "betas" },
  timestep_spacing: { kind: "enum", supported: spacings }, steps_offset: { kind: "int" },
  rescale_betas_zero_snr: { kind: "bool" }, thresholding: onlyFalse, dynamic_thresholding_ratio: { kind: "number" },
  sample_max_value: { kind: "number" }, clip_sample: { kind: "bool" }, clip_sample_range: { kind: "number" },
  set_alpha_to_one: { kind: "bool" }, prediction_type: { kind: "enum", supported: alphaPredictions },
};

const classRules: Record<SchedulerClassName, Record<string, Rule>> = {
  DDPMScheduler: { variance_type: { kind: "enum", supported: ["fixed_small", "fixed_small_log", "fixed_large"] } },
  DDIMScheduler: {},
  PNDMScheduler: {
    skip_prk_steps: { kind: "bool", supported: [true] },
    prediction_type: { kind: "enum", supported: ["epsilon", "v_prediction"] },
  },
  EulerDiscreteScheduler: {
    interpolation_type: { kind: "enum", supported: ["linear"] }, use_karras_sigmas: { kind: "bool" },
    use_exponential_sigmas: onlyFalse, use_beta_sigmas: onlyFalse, sigma_min: { kind: "nullable-number" },
    sigma_max: { kind: "nullable-number" }, timestep_type: { kind: "enum", supported: ["discrete"] },
    final_sigmas_type: { kind: "enum", supported: ["zero", "sigma_min"] },
  },
  EulerAncestralDiscreteScheduler: { prediction_type: { kind: "enum", supported: ["epsilon", "v_prediction"] } },
  DPMSolverMultistepScheduler: {
    solver_order: { kind: "enum", supported: [1, 2, 3] },
    algorithm_type: { kind: "enum", supported: ["dpmsolver++", "sde-dpmsolver++"], aliases: { deis: "dpmsolver++" } },
    solver_type: {
      kind: "enum", supported: ["midpoint", "heun"], aliases: { logrho: "midpoint", bh1: "midpoint", bh2: "midpoint" },
    },
    lower_order_final: { kind: "bool" }, euler_at_final: { kind: "bool" }, use_karras_sigmas: { kind: "bool" },
    use_exponential_sigmas: onlyFalse, use_beta_sigmas: onlyFalse, use_lu_lambdas: onlyFalse, use_flow_sigmas: onlyFalse,
    flow_shift: { kind: "number" }, final_sigmas_type: { kind: "enum", supported: ["zero", "sigma_min"] },
    lambda_min_clipped: { kind: "number" }, variance_type: { kind: "enum", supported: [null] },
    use_dynamic_shifting: onlyFalse, time_shift_type: { kind: "enum", supported: ["exponential"] },
  },
};

const show = (value: unknown): string => (typeof value === "number" && !Number.isFinite(value) ? String(value) : JSON.stringify(value));

function check(className: SchedulerClassName, key: string, value: unknown, rule: Rule): Value {
  const bad = (expected: string): SchedulerError =>
    new SchedulerError(`${className}: option '${key}' must be ${expected}, got ${show(value)}`);
  switch (rule.kind) {
    case "int":
      if (typeof value !== "number" || !Number.isInteger(value) || value < 0) throw bad("an integer >= 0");
      break;
    case "number":
      if (typeof value !== "number" || Number.isNaN(value)) throw bad("a number");
      break;
    case "nullable-number":
      if (value !== null && (typeof value !== "number" || !(value > 0))) throw bad("a positive number or null");
      break;
    case "bool":
      if (typeof value !== "boolean") throw bad("true or false");
      break;
    case "betas":
      if (value !== null && (!Array.isArray(value) || !value.every((b) => typeof b === "number"))) throw bad("an array of numbers or null");
      break;
    case "enum":
      break;
  }
  let result = value as Value;
  if (typeof result === "string" && rule.aliases && Object.hasOwn(rule.aliases, result)) result = rule.aliases[result]!;
  if (rule.supported && !rule.supported.includes(result)) {
    throw new SchedulerError(
      `${className}: ${key}=${show(value)} is not supported by this implementation (supported: ${rule.supported.map(show).join(", ")})`,
    );
  }
  return result;
}

/**
 * The complete, validated config of `className` from `raw`, as diffusers' `from_config` builds it: the class's
 * options take their values from `raw` where given (null meaning "the default" for non-nullable options) and
 * the class's defaults otherwise, listed in `_use_default_values`. Keys in raw's own `_use_default_values` count
 * as not given, so defaults of one scheduler never leak into another when swapping. Other keys (other
 * schedulers' options, `_diffusers_version`) are carried along unused, as diffusers keeps them.
 */
export function resolveConfig<N extends SchedulerClassName>(className: N, raw: RawSchedulerConfig): ConfigOf<N> {
  const defaults = SCHEDULER_DEFAULTS[className];
  const rules = { ...commonRules, ...classRules[className] };
  const usedDefaults = new Set(Array.isArray(raw._use_default_values) ? (raw._use_default_values as unknown[]).map(String) : []);
  const given = Object.fromEntries(Object.entries(raw).filter(([k]) => !usedDefaults.has(k) && k !== "_use_default_values" && k !== "_class_name"));
  const out: Record<string, unknown> = { ...given, _class_name: className };
  const defaulted: string[] = [];
  for (const [key, fallback] of Object.entries(defaults)) {
    let value: unknown = given[key];
    if (value === undefined || (value === null && fallback !== null)) {
      value = fallback;
      defaulted.push(key);
    }
    const rule = rules[key];
    out[key] = rule ? check(className, key, value, rule) : value;
  }
  if (defaulted.length > 0) out._use_default_values = defaulted;
  const config = out as unknown as ConfigOf<N>;
  const betas = config.trained_betas;
  if (betas !== null && betas.length !== config.num_train_timesteps) {
    throw new SchedulerError(
      `${className}: trained_betas has ${betas.length} values but num_train_timesteps is ${config.num_train_timesteps}`,
    );
  }
  if (config.num_train_timesteps < 2) throw new SchedulerError(`${className}: num_train_timesteps must be at least 2`);
  return config;
}

/**
 * Reads a `scheduler_config.json`. Python's json writes -Infinity / Infinity / NaN bare (DPM-Solver's
 * `lambda_min_clipped` is -inf by default); they are read as the numbers they mean.
 */
export function loadSchedulerConfig(path: string): RawSchedulerConfig {
  return parseSchedulerConfig(readFileSync(path, "utf8"), path);
}

export function parseSchedulerConfig(text: string, source = "scheduler config"): RawSchedulerConfig {
  let parsed: unknown;
  try {
    parsed = parsePythonJson(text, source);
  } catch (error) {
    throw new SchedulerError((error as Error).message);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new SchedulerError(`${source}: expected a JSON object`);
  }
  return parsed as RawSchedulerConfig;
}
