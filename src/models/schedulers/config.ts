/**
 * Scheduler configuration: the fields of a diffusers `scheduler/scheduler_config.json`, one zod schema per
 * scheduler (src/util/schema.ts) giving its type, diffusers 0.42.1's defaults and errors that name the
 * scheduler, the option and the value, and any value this port does not support.
 *
 * Keys keep diffusers' snake_case spelling so that a config round-trips through JSON unchanged.
 */
import { readFileSync } from "node:fs";
import { z } from "zod";
import { parsePythonJson } from "../../util/json.js";
import { addFieldIssue, extendedNumber, parseWithSchema, schemaDefaults, supported, whenFieldsValid } from "../../util/schema.js";

/** Python's JSON dialect (bare NaN, ±Infinity): src/util/json.ts, re-exported where scheduler configs are read. */
export { parsePythonJson };

/** A problem with a scheduler config or call: it names the scheduler, option and value. */
export class SchedulerError extends Error {
  override name = "SchedulerError";
}

const BETA_SCHEDULES = ["linear", "scaled_linear", "squaredcos_cap_v2"] as const;
const TIMESTEP_SPACINGS = ["leading", "trailing", "linspace"] as const;
export type BetaSchedule = (typeof BETA_SCHEDULES)[number];
export type PredictionType = "epsilon" | "v_prediction" | "sample";
export type TimestepSpacing = (typeof TIMESTEP_SPACINGS)[number];

/*
 * Every option takes its default through its own schema (`prefault`): a default this port does not support
 * is refused like a given value (PNDM's skip_prk_steps defaults to false, and only the PLMS steps are here).
 */
const count = (fallback: number) => z.number({ error: "an integer >= 0" }).int().nonnegative().prefault(fallback);
const real = (fallback: number) => extendedNumber().prefault(fallback);
const flag = (fallback: boolean) => z.boolean().prefault(fallback);
/** An option of which this port implements `false` only (Imagen's thresholding, other sigma schedules). */
const onlyFalse = () => z.boolean().pipe(supported([false])).prefault(false);
/** Values of an option this port supports; diffusers' own substitutions (`aliases`) are made first. */
const oneOf = <const T extends readonly (string | number | null)[]>(values: T, fallback: T[number], aliases: Record<string, T[number]> = {}) =>
  z.unknown().transform((value) => (typeof value === "string" && Object.hasOwn(aliases, value) ? aliases[value] : value))
    .pipe(supported(values)).prefault(fallback);
const predictionType = <const T extends readonly PredictionType[]>(values: T) => oneOf(values, "epsilon");

/** The training noise schedule: the options of every scheduler here. */
const noiseSchedule = {
  num_train_timesteps: z.number({ error: "an integer >= 2" }).int().min(2).prefault(1000),
  beta_start: real(0.0001),
  beta_end: real(0.02),
  beta_schedule: oneOf(BETA_SCHEDULES, "linear"),
  trained_betas: z.array(extendedNumber(), { error: "an array of numbers or null" }).nullable().prefault(null),
};
/** Dynamic thresholding (Imagen): its options are accepted, thresholding itself must stay off. */
const thresholding = {
  thresholding: onlyFalse(),
  dynamic_thresholding_ratio: real(0.995),
  sample_max_value: real(1.0),
};
const spacing = (fallback: TimestepSpacing) => oneOf(TIMESTEP_SPACINGS, fallback);
const finalSigmasType = () => oneOf(["zero", "sigma_min"], "zero");

/**
 * Each class's options in the order of its `__init__`, with diffusers 0.42.1's defaults. The order matters:
 * options a config did not set are added in it (and listed in it in `_use_default_values`).
 */
const SHAPES = {
  DDPMScheduler: {
    ...noiseSchedule, variance_type: oneOf(["fixed_small", "fixed_small_log", "fixed_large"], "fixed_small"), clip_sample: flag(true),
    prediction_type: predictionType(["epsilon", "sample", "v_prediction"]), ...thresholding, clip_sample_range: real(1.0),
    timestep_spacing: spacing("leading"), steps_offset: count(0), rescale_betas_zero_snr: flag(false),
  },
  DDIMScheduler: {
    ...noiseSchedule, clip_sample: flag(true), set_alpha_to_one: flag(true), steps_offset: count(0),
    prediction_type: predictionType(["epsilon", "sample", "v_prediction"]), ...thresholding, clip_sample_range: real(1.0),
    timestep_spacing: spacing("leading"), rescale_betas_zero_snr: flag(false),
  },
  PNDMScheduler: {
    /** Must be true: only the PLMS steps are implemented (as Stable Diffusion's config asks). */
    ...noiseSchedule, skip_prk_steps: z.boolean().pipe(supported([true])).prefault(false), set_alpha_to_one: flag(false),
    prediction_type: predictionType(["epsilon", "v_prediction"]), timestep_spacing: spacing("leading"), steps_offset: count(0),
  },
  EulerDiscreteScheduler: {
    ...noiseSchedule, prediction_type: predictionType(["epsilon", "sample", "v_prediction"]), interpolation_type: oneOf(["linear"], "linear"),
    use_karras_sigmas: flag(false), use_exponential_sigmas: onlyFalse(), use_beta_sigmas: onlyFalse(),
    sigma_min: z.number({ error: "a positive number or null" }).positive().nullable().prefault(null),
    sigma_max: z.number({ error: "a positive number or null" }).positive().nullable().prefault(null),
    timestep_spacing: spacing("linspace"), timestep_type: oneOf(["discrete"], "discrete"), steps_offset: count(0),
    rescale_betas_zero_snr: flag(false), final_sigmas_type: finalSigmasType(),
  },
  EulerAncestralDiscreteScheduler: {
    ...noiseSchedule, prediction_type: predictionType(["epsilon", "v_prediction"]), timestep_spacing: spacing("linspace"),
    steps_offset: count(0), rescale_betas_zero_snr: flag(false),
  },
  DPMSolverMultistepScheduler: {
    ...noiseSchedule, solver_order: oneOf([1, 2, 3], 2), prediction_type: predictionType(["epsilon", "sample", "v_prediction"]),
    ...thresholding, algorithm_type: oneOf(["dpmsolver++", "sde-dpmsolver++"], "dpmsolver++", { deis: "dpmsolver++" }),
    solver_type: oneOf(["midpoint", "heun"], "midpoint", { logrho: "midpoint", bh1: "midpoint", bh2: "midpoint" }),
    lower_order_final: flag(true), euler_at_final: flag(false), use_karras_sigmas: flag(false), use_exponential_sigmas: onlyFalse(),
    use_beta_sigmas: onlyFalse(), use_lu_lambdas: onlyFalse(), use_flow_sigmas: onlyFalse(), flow_shift: real(1.0),
    final_sigmas_type: finalSigmasType(), lambda_min_clipped: real(-Infinity), variance_type: oneOf([null], null),
    timestep_spacing: spacing("linspace"), steps_offset: count(0), rescale_betas_zero_snr: flag(false),
    use_dynamic_shifting: onlyFalse(), time_shift_type: oneOf(["exponential"], "exponential"),
  },
};

export type SchedulerClassName = keyof typeof SHAPES;
export const SCHEDULER_CLASS_NAMES = Object.keys(SHAPES) as SchedulerClassName[];

export function isSchedulerClassName(name: unknown): name is SchedulerClassName {
  return typeof name === "string" && Object.hasOwn(SHAPES, name);
}

/** The checks between options: diffusers' constructors' own. */
function schedulerSchema<N extends SchedulerClassName>(className: N) {
  return z.object(SHAPES[className] as (typeof SHAPES)[N]).superRefine((config, ctx) => {
    const { trained_betas: betas, num_train_timesteps: steps } = config as { trained_betas: number[] | null; num_train_timesteps: number };
    if (betas !== null && betas.length !== steps) addFieldIssue(ctx, "trained_betas", betas, `null or num_train_timesteps (${steps}) numbers`);
  }, { when: whenFieldsValid });
}

const SCHEMAS = Object.fromEntries(SCHEDULER_CLASS_NAMES.map((name) => [name, schedulerSchema(name)])) as {
  [N in SchedulerClassName]: ReturnType<typeof schedulerSchema<N>>;
};

/** The bookkeeping diffusers' `from_config` adds to every config. */
interface Bookkeeping<N extends SchedulerClassName> {
  _class_name: N;
  /** Options that took the class's default (not carried over when the config builds another scheduler). */
  _use_default_values?: string[];
}
type ConfigFor<N extends SchedulerClassName> = Bookkeeping<N> & z.output<(typeof SCHEMAS)[N]>;

/** Fields every scheduler here has. */
export type BaseSchedulerConfig = Bookkeeping<SchedulerClassName> & z.output<z.ZodObject<typeof noiseSchedule>> & {
  prediction_type: PredictionType;
  timestep_spacing: TimestepSpacing;
  steps_offset: number;
};
export type DDPMConfig = ConfigFor<"DDPMScheduler">;
export type DDIMConfig = ConfigFor<"DDIMScheduler">;
export type PNDMConfig = ConfigFor<"PNDMScheduler">;
export type EulerConfig = ConfigFor<"EulerDiscreteScheduler">;
export type EulerAncestralConfig = ConfigFor<"EulerAncestralDiscreteScheduler">;
export type DPMSolverConfig = ConfigFor<"DPMSolverMultistepScheduler">;

export type SchedulerConfig = DDPMConfig | DDIMConfig | PNDMConfig | EulerConfig | EulerAncestralConfig | DPMSolverConfig;
export type ConfigOf<N extends SchedulerClassName> = Extract<SchedulerConfig, { _class_name: N }>;

/** A config as read from JSON: any subset of fields, possibly with other classes' keys. */
export type RawSchedulerConfig = Record<string, unknown>;

/** Each class's constructor defaults in diffusers 0.42.1 (every keyword of its `__init__`), from its schema. */
export const SCHEDULER_DEFAULTS = Object.fromEntries(
  SCHEDULER_CLASS_NAMES.map((name) => [name, schemaDefaults(SCHEMAS[name])]),
) as Record<SchedulerClassName, Record<string, unknown>>;

/**
 * The complete, validated config of `className` from `raw`, as diffusers' `from_config` builds it: the class's
 * options take their values from `raw` where given (null meaning "the default" for non-nullable options) and
 * the class's defaults otherwise, listed in `_use_default_values`. Keys in raw's own `_use_default_values` count
 * as not given, so defaults of one scheduler never leak into another when swapping. Other keys (other
 * schedulers' options, `_diffusers_version`) are carried along unused, as diffusers keeps them, in raw's order.
 */
export function resolveConfig<N extends SchedulerClassName>(className: N, raw: RawSchedulerConfig): ConfigOf<N> {
  const defaults = SCHEDULER_DEFAULTS[className];
  const usedDefaults = new Set(Array.isArray(raw._use_default_values) ? (raw._use_default_values as unknown[]).map(String) : []);
  const given = Object.fromEntries(Object.entries(raw).filter(([k]) => !usedDefaults.has(k) && k !== "_use_default_values" && k !== "_class_name"));
  const takesDefault = (key: string): boolean => given[key] === undefined || (given[key] === null && defaults[key] !== null);
  const defaulted = Object.keys(defaults).filter(takesDefault);
  const options = Object.fromEntries(Object.entries(given).filter(([key]) => !(Object.hasOwn(defaults, key) && takesDefault(key))));
  const resolved = parseWithSchema(SCHEMAS[className], options, { source: className, error: SchedulerError });
  // Spread over `given`, the options keep raw's order (diffusers' too); those it lacked follow in __init__'s.
  const config: Record<string, unknown> = { ...given, _class_name: className, ...resolved };
  if (defaulted.length > 0) config._use_default_values = defaulted;
  return config as unknown as ConfigOf<N>;
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
