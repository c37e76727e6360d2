"""Noise-scheduler fixtures: what diffusers' schedulers compute, for the TypeScript ports to match.

For each case (a scheduler class, a scheduler_config.json and how it is loaded) this records the resolved
config, alphas_cumprod, the timesteps/sigmas/init_noise_sigma after set_timesteps(n) for several n, and a
sampling loop whose "model" is a fixed function both sides compute with the same torch operations:

    model_output_i = 0.3 * scale_model_input(x, t_i) + 0.7 * E[i]      (E saved in the fixture)

with seeded torch.Generator("cpu") noise for the stochastic samplers. DDPM cases also record add_noise,
get_velocity and training_utils.compute_snr at random timesteps; sigma schedulers record add_noise at
timesteps of their schedule.

Files: cases.json (configs, schedules) and <case>.safetensors (tensors), plus sd15/ and sd2/ holding the real
Stable Diffusion 1.5 and 2.1 scheduler_config.json files.
"""
from __future__ import annotations

import json
import math
import pathlib

import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    PNDMScheduler,
)
from diffusers.training_utils import compute_snr
from diffusers.utils import logging
from safetensors.torch import save_file

INPUTS: list[str] = []

CLASSES = {c.__name__: c for c in [DDPMScheduler, DDIMScheduler, PNDMScheduler, EulerDiscreteScheduler,
                                   EulerAncestralDiscreteScheduler, DPMSolverMultistepScheduler]}

# runwayml/stable-diffusion-v1-5 scheduler/scheduler_config.json
SD15 = {
    "_class_name": "PNDMScheduler", "_diffusers_version": "0.6.0", "beta_end": 0.012, "beta_schedule": "scaled_linear",
    "beta_start": 0.00085, "num_train_timesteps": 1000, "set_alpha_to_one": False, "skip_prk_steps": True,
    "steps_offset": 1, "trained_betas": None, "clip_sample": False,
}
# stabilityai/stable-diffusion-2-1 scheduler/scheduler_config.json
SD2 = {
    "_class_name": "DDIMScheduler", "_diffusers_version": "0.8.0", "beta_end": 0.012, "beta_schedule": "scaled_linear",
    "beta_start": 0.00085, "clip_sample": False, "num_train_timesteps": 1000, "prediction_type": "v_prediction",
    "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None,
}
SHAPE = (2, 4, 8, 8)

# name, base config, extra keys, classes it is swapped to in turn with from_config (none: its _class_name), schedule sizes,
# loop steps (None: no loop), loop seed (None, an int or a list: one generator per batch item), step kwargs
CASES = [
    ("ddpm_sd15", SD15, {}, ["DDPMScheduler"], [1, 7, 10, 50, 1000], 10, [7, 8], {}),
    ("ddpm_default", {"_class_name": "DDPMScheduler"}, {}, [], [10, 13, 333], 10, 5, {}),
    ("ddpm_sd2_trailing_log", SD2, {"timestep_spacing": "trailing", "variance_type": "fixed_small_log"},
     ["DDPMScheduler"], [7, 10, 30], 10, 11, {}),
    ("ddpm_linspace_large_cos", {"_class_name": "DDPMScheduler"},
     {"timestep_spacing": "linspace", "variance_type": "fixed_large", "beta_schedule": "squaredcos_cap_v2",
      "prediction_type": "sample"}, [], [7, 10, 50], 10, 12, {}),
    ("ddim_sd15", SD15, {}, ["DDIMScheduler"], [1, 7, 10, 25, 50, 999], 10, None, {}),
    ("ddim_sd15_eta", SD15, {}, ["DDIMScheduler"], [10], 10, 3, {"eta": 0.5}),
    ("ddim_sd2", SD2, {}, [], [7, 10, 50], 10, None, {}),
    ("ddim_linspace_rescale", SD15,
     {"timestep_spacing": "linspace", "rescale_betas_zero_snr": True, "set_alpha_to_one": True, "clip_sample": True,
      "clip_sample_range": 1.5}, ["DDIMScheduler"], [7, 10, 50], 10, 4, {"eta": 0.8}),
    # (eta 0.8, not 1: at eta = 1 the first step from zero terminal SNR takes sqrt(1 - a_prev - std^2) of an exact
    # zero, and float rounding makes it -6e-8 on some CPUs, so diffusers' own output is NaN there)
    ("ddim_trailing_sample", SD2, {"timestep_spacing": "trailing", "prediction_type": "sample"}, [],
     [7, 10, 30], 10, None, {}),
    ("pndm_sd15", SD15, {}, [], [1, 2, 10, 50], 10, None, {}),
    ("pndm_sd2_trailing", SD2, {"timestep_spacing": "trailing"}, ["PNDMScheduler"], [7, 10], 10, None, {}),
    ("pndm_linspace", SD15, {"timestep_spacing": "linspace"}, [], [7, 10, 50], 12, None, {}),
    ("euler_sd15_leading", SD15, {"timestep_spacing": "leading"}, ["EulerDiscreteScheduler"], [1, 7, 10, 30], 10, None, {}),
    ("euler_sd15_json", SD15, {}, ["EulerDiscreteScheduler"], [1, 7, 10, 30, 1000], 10, None, {}),
    ("euler_karras", SD15, {"use_karras_sigmas": True}, ["EulerDiscreteScheduler"], [2, 5, 10, 25, 50, 999],
     10, None, {}),
    ("euler_karras_minmax", SD15, {"use_karras_sigmas": True, "sigma_min": 0.05, "sigma_max": 10.0},
     ["EulerDiscreteScheduler"], [10], 10, None, {}),
    ("euler_sd2_trailing", SD2, {"timestep_spacing": "trailing", "final_sigmas_type": "sigma_min"},
     ["EulerDiscreteScheduler"], [7, 10, 30], 10, None, {}),
    ("euler_churn_rescale", SD15, {"rescale_betas_zero_snr": True, "timestep_spacing": "trailing"},
     ["EulerDiscreteScheduler"], [10], 10, 21, {"s_churn": 0.5, "s_tmin": 0.5, "s_tmax": 10.0}),
    ("euler_a_sd15", SD15, {}, ["EulerAncestralDiscreteScheduler"], [1, 7, 10, 30], 10, 9, {}),
    ("euler_a_sd2_leading", SD2, {"timestep_spacing": "leading"}, ["EulerAncestralDiscreteScheduler"], [7, 10], 10, [1, 2], {}),
    ("dpm_sd15", SD15, {}, ["DPMSolverMultistepScheduler"], [1, 2, 7, 10, 20, 25, 50, 999], 10, None, {}),
    ("dpm_sd15_leading", SD15, {"lower_order_final": False, "final_sigmas_type": "sigma_min", "timestep_spacing": "leading"},
     ["DPMSolverMultistepScheduler"], [10, 20], 20, None, {}),
    ("dpm_karras", SD15, {"use_karras_sigmas": True}, ["DPMSolverMultistepScheduler"], [5, 10, 20, 25, 50],
     10, None, {}),
    ("dpm_sd2_karras", SD2, {"use_karras_sigmas": True}, ["DPMSolverMultistepScheduler"], [10, 25], 10, None, {}),
    ("dpm_3_heun_sde", SD15, {"solver_order": 3, "algorithm_type": "sde-dpmsolver++", "solver_type": "heun"},
     ["DPMSolverMultistepScheduler"], [10], 10, 17, {}),
    ("dpm_3_trailing", SD2, {"solver_order": 3, "timestep_spacing": "trailing", "euler_at_final": True},
     ["DPMSolverMultistepScheduler"], [7, 10, 30], 16, None, {}),
    ("dpm_sde_midpoint", SD15, {"algorithm_type": "sde-dpmsolver++", "prediction_type": "sample"},
     ["DPMSolverMultistepScheduler"], [10], 10, 23, {}),
    ("euler_via_ddpm", SD15, {"timestep_spacing": "trailing", "foo": 3},
     ["DDPMScheduler", "EulerDiscreteScheduler"], [7, 10], 10, None, {}),
    ("dpm_cos_karras_clipped", {"_class_name": "DPMSolverMultistepScheduler"},
     {"beta_schedule": "squaredcos_cap_v2", "use_karras_sigmas": True, "lambda_min_clipped": -5.1, "solver_order": 1},
     [], [10, 25], None, None, {}),
    ("dpm_cos_clipped_linspace", {"_class_name": "DPMSolverMultistepScheduler"},
     {"beta_schedule": "squaredcos_cap_v2", "lambda_min_clipped": -5.1, "rescale_betas_zero_snr": True}, [],
     [10, 25], 10, None, {}),
]


def plain(value):
    """JSON-safe values: tensors and numpy scalars to numbers, infinities kept as floats (json writes -Infinity)."""
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value


def build(raw: dict, chain: list[str]):
    """As a pipeline loads its scheduler, then swaps it: Other.from_config(pipe.scheduler.config)."""
    sched = CLASSES[raw["_class_name"]].from_config(raw)
    for name in chain:
        sched = CLASSES[name].from_config(sched.config)
    return sched


def generators(seed):
    if seed is None:
        return None
    if isinstance(seed, list):
        return [torch.Generator("cpu").manual_seed(s) for s in seed]
    return torch.Generator("cpu").manual_seed(seed)


def run_case(name, base, extra, chain, sizes, loop_steps, seed, kwargs, out_dir):
    raw = {**base, **extra}
    sched = build(raw, chain)
    tensors: dict[str, torch.Tensor] = {"alphas_cumprod": sched.alphas_cumprod.clone()}
    record = {
        "name": name, "raw": raw, "chain": chain,
        "class": type(sched).__name__,
        "resolved": {k: plain(v) for k, v in sched.config.items()},
        "schedules": [], "loop": {"steps": loop_steps, "seed": seed, "kwargs": kwargs},
    }
    for n in sizes:
        sched.set_timesteps(n)
        entry = {"n": n, "timesteps": sched.timesteps.tolist()}
        if hasattr(sched, "sigmas"):
            entry["sigmas"] = sched.sigmas.tolist()
        entry["init_noise_sigma"] = float(sched.init_noise_sigma)
        record["schedules"].append(entry)

    if loop_steps is None:  # schedules only (Karras on the cosine schedule repeats timesteps; diffusers' loop fails)
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(out_dir / f"{name}.safetensors"))
        return record

    # the sampling loop
    sched.set_timesteps(loop_steps)
    x0 = torch.randn(SHAPE, generator=torch.Generator("cpu").manual_seed(0))
    steps = len(sched.timesteps)
    eps = torch.randn((steps, *SHAPE), generator=torch.Generator("cpu").manual_seed(1))
    tensors["x0"], tensors["eps"] = x0, eps

    if hasattr(sched, "sigmas") and not isinstance(sched, DDPMScheduler):
        idx = [1, min(4, steps - 1)]
        t = sched.timesteps[idx]
        noise = torch.randn(SHAPE, generator=torch.Generator("cpu").manual_seed(2))
        tensors["an_t"], tensors["an_noise"] = t.clone(), noise
        tensors["an_out"] = sched.add_noise(x0, noise, t)

    x = x0 * sched.init_noise_sigma
    g = generators(seed)
    scaled, prev, pred = [], [], []
    for i, t in enumerate(sched.timesteps):
        inp = sched.scale_model_input(x, t)
        model_output = 0.3 * inp + 0.7 * eps[i]
        extra_args = dict(kwargs)
        if g is not None:
            extra_args["generator"] = g
        out = sched.step(model_output, t, x, **extra_args)
        x = out.prev_sample
        scaled.append(inp)
        prev.append(x)
        if getattr(out, "pred_original_sample", None) is not None:
            pred.append(out.pred_original_sample)
    tensors["scaled"] = torch.stack(scaled)
    tensors["prev"] = torch.stack(prev)
    if pred:
        tensors["pred"] = torch.stack(pred)

    if isinstance(sched, (DDPMScheduler, DDIMScheduler)):
        g = torch.Generator("cpu").manual_seed(3)
        t = torch.randint(0, sched.config.num_train_timesteps, (SHAPE[0],), generator=g)
        noise = torch.randn(SHAPE, generator=g)
        tensors["an_t"], tensors["an_noise"] = t, noise
        tensors["an_out"] = sched.add_noise(x0, noise, t)
        tensors["vel_out"] = sched.get_velocity(x0, noise, t)
        snr_t = torch.randint(0, sched.config.num_train_timesteps, (16,), generator=g)
        if isinstance(sched, DDPMScheduler):
            tensors["snr_t"], tensors["snr_out"] = snr_t, compute_snr(sched, snr_t)

    save_file({k: v.contiguous() for k, v in tensors.items()}, str(out_dir / f"{name}.safetensors"))
    return record


def generate(out_dir: pathlib.Path) -> None:
    logging.set_verbosity_error()  # the "foo" case's unexpected-key warnings are intended
    records = [run_case(*case, out_dir) for case in CASES]
    (out_dir / "cases.json").write_text(json.dumps(records, indent=1))
    for folder, config in (("sd15", SD15), ("sd2", SD2)):
        (out_dir / folder).mkdir()
        (out_dir / folder / "scheduler_config.json").write_text(json.dumps(config, indent=2))
    # a DPM-Solver config as diffusers saves it (lambda_min_clipped = -inf is written as -Infinity)
    dpm = DPMSolverMultistepScheduler.from_config(SD15)
    (out_dir / "dpm_saved").mkdir()
    dpm.save_config(out_dir / "dpm_saved")
    assert math.isinf(json.loads((out_dir / "dpm_saved" / "scheduler_config.json").read_text())["lambda_min_clipped"])
