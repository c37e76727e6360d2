/**
 * Noise schedulers for Stable Diffusion, matching diffusers 0.42.1 numerically: DDPM (training and ancestral
 * sampling), DDIM, PNDM (PLMS), Euler, Euler ancestral and DPM-Solver++ (multistep).
 *
 * `schedulerFromConfig(config, override?)` builds one from a `scheduler/scheduler_config.json`, and swaps
 * schedulers like diffusers' `Other.from_config(pipe.scheduler.config)`.
 */
import { Scheduler } from "./base.js";
import {
  isSchedulerClassName, resolveConfig, SCHEDULER_CLASS_NAMES, SchedulerError,
  type ConfigOf, type RawSchedulerConfig, type SchedulerClassName, type SchedulerConfig,
} from "./config.js";
import { DDIMScheduler } from "./ddim.js";
import { DDPMScheduler } from "./ddpm.js";
import { DPMSolverMultistepScheduler } from "./dpm-solver.js";
import { EulerAncestralDiscreteScheduler } from "./euler-ancestral.js";
import { EulerDiscreteScheduler } from "./euler.js";
import { PNDMScheduler } from "./pndm.js";

export { Scheduler, type StepOptions, type StepOutput, type Timestep } from "./base.js";
export { SigmaScheduler } from "./sigma.js";
export * from "./config.js";
export { DDPMScheduler, computeSnr, minSnrWeights, truncatedMinSnrWeights } from "./ddpm.js";
export { DDIMScheduler, type DDIMStepOptions } from "./ddim.js";
export { PNDMScheduler } from "./pndm.js";
export { EulerDiscreteScheduler, type EulerStepOptions } from "./euler.js";
export { EulerAncestralDiscreteScheduler } from "./euler-ancestral.js";
export { DPMSolverMultistepScheduler } from "./dpm-solver.js";
export { randnTensor, type RandnOptions } from "./numeric.js";

type AnyScheduler =
  | DDPMScheduler | DDIMScheduler | PNDMScheduler | EulerDiscreteScheduler | EulerAncestralDiscreteScheduler
  | DPMSolverMultistepScheduler;

const constructors: { [N in SchedulerClassName]: (config: ConfigOf<N>) => AnyScheduler } = {
  DDPMScheduler: (c) => new DDPMScheduler(c),
  DDIMScheduler: (c) => new DDIMScheduler(c),
  PNDMScheduler: (c) => new PNDMScheduler(c),
  EulerDiscreteScheduler: (c) => new EulerDiscreteScheduler(c),
  EulerAncestralDiscreteScheduler: (c) => new EulerAncestralDiscreteScheduler(c),
  DPMSolverMultistepScheduler: (c) => new DPMSolverMultistepScheduler(c),
};

/** Short names accepted by schedulerFromConfig's override, besides the diffusers class names. */
export const SCHEDULER_ALIASES: Record<string, SchedulerClassName> = {
  ddpm: "DDPMScheduler",
  ddim: "DDIMScheduler",
  pndm: "PNDMScheduler",
  plms: "PNDMScheduler",
  euler: "EulerDiscreteScheduler",
  "euler-ancestral": "EulerAncestralDiscreteScheduler",
  euler_a: "EulerAncestralDiscreteScheduler",
  "dpm-solver": "DPMSolverMultistepScheduler",
  "dpmsolver++": "DPMSolverMultistepScheduler",
  "dpm++2m": "DPMSolverMultistepScheduler",
};

/** The diffusers class name for a class name or alias (case-insensitive); a clear error for anything else. */
export function schedulerClassName(name: string): SchedulerClassName {
  if (isSchedulerClassName(name)) return name;
  const lower = name.toLowerCase();
  const byClass = SCHEDULER_CLASS_NAMES.find((c) => c.toLowerCase() === lower);
  const found = byClass ?? SCHEDULER_ALIASES[lower];
  if (!found) {
    throw new SchedulerError(
      `unknown scheduler '${name}'; expected one of ${SCHEDULER_CLASS_NAMES.join(", ")} or ${Object.keys(SCHEDULER_ALIASES).join(", ")}`,
    );
  }
  return found;
}

/**
 * A scheduler from a diffusers scheduler config (a parsed `scheduler_config.json`, or another scheduler's
 * `config`). Without `override` the config's `_class_name` decides; with it (a class name such as
 * "EulerDiscreteScheduler" or an alias such as "euler") that scheduler is built from the same options, as
 * diffusers' `Other.from_config(pipe.scheduler.config)`: options the config set carry over, options it left at
 * its class's defaults take the new class's defaults. Unknown classes and unsupported option values are
 * errors naming them.
 */
export function schedulerFromConfig<N extends SchedulerClassName>(config: RawSchedulerConfig | SchedulerConfig, override: N): Extract<AnyScheduler, { className: N }>;
export function schedulerFromConfig(config: RawSchedulerConfig | SchedulerConfig, override?: string): AnyScheduler;
export function schedulerFromConfig(config: RawSchedulerConfig | SchedulerConfig, override?: string): AnyScheduler {
  const raw = config as RawSchedulerConfig;
  const source = raw._class_name;
  if (override === undefined) {
    if (source === undefined) throw new SchedulerError("scheduler config has no _class_name; pass the scheduler to build");
    if (!isSchedulerClassName(source)) {
      throw new SchedulerError(`unknown scheduler class ${JSON.stringify(source)} in scheduler config; expected one of ${SCHEDULER_CLASS_NAMES.join(", ")}`);
    }
  }
  return build(override === undefined ? (source as SchedulerClassName) : schedulerClassName(override), raw);
}

function build<N extends SchedulerClassName>(name: N, raw: RawSchedulerConfig): AnyScheduler {
  return constructors[name](resolveConfig(name, raw));
}

/** Whether a value is one of this module's schedulers. */
export function isScheduler(value: unknown): value is Scheduler {
  return value instanceof Scheduler;
}
