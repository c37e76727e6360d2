"""Oracle for src/pipeline/stable-diffusion.ts: diffusers' StableDiffusionPipeline on the tiny pipelines.

For sd1 (PNDM from its folder; Euler ancestral swapped in) and sd2 (v-prediction DDIM; DPM-Solver++ 2M with
Karras sigmas swapped in), two seeds each: the final latents, the decoded images in [-1, 1] and the 8-bit
pixels diffusers' output_type="pil" gives, plus a negative-prompt + batch case and a no-guidance case.
(diffusers 0.42.1's clip_skip path needs `text_encoder.text_model`, which transformers 5 removed, so clip
skip is checked at the text-encoder level.)
"""
import json
import pathlib

import numpy as np
import torch
from diffusers import (DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler, StableDiffusionPipeline)
from safetensors.torch import save_file

INPUTS = ["test/oracle/fixtures_tiny_sd.py"]
ROOT = pathlib.Path(__file__).resolve().parents[2]
TINY = ROOT / "test" / "fixtures" / "generated" / "tiny_sd"

CASES = [
    {"name": "sd1_pndm_s0", "pipeline": "sd1", "scheduler": None, "seed": 0, "prompt": "a sks face", "steps": 6},
    {"name": "sd1_pndm_s42", "pipeline": "sd1", "scheduler": None, "seed": 42, "prompt": "a sks face", "steps": 6},
    {"name": "sd1_euler_a_s0", "pipeline": "sd1", "scheduler": "euler_a", "seed": 0, "prompt": "a photo of a cat", "steps": 5},
    {"name": "sd1_euler_a_s7", "pipeline": "sd1", "scheduler": "euler_a", "seed": 7, "prompt": "a photo of a cat", "steps": 5},
    {"name": "sd2_ddim_s0", "pipeline": "sd2", "scheduler": None, "seed": 0, "prompt": "a sks face as a statue", "steps": 5},
    {"name": "sd2_ddim_s3", "pipeline": "sd2", "scheduler": None, "seed": 3, "prompt": "a sks face as a statue", "steps": 5},
    {"name": "sd2_dpm_karras_s0", "pipeline": "sd2", "scheduler": "dpm++2m-karras", "seed": 0, "prompt": "pencil sketch", "steps": 5},
    {"name": "sd2_dpm_karras_s5", "pipeline": "sd2", "scheduler": "dpm++2m-karras", "seed": 5, "prompt": "pencil sketch", "steps": 5},
    {"name": "sd1_negative_batch", "pipeline": "sd1", "scheduler": None, "seed": 11, "prompt": ["a face", "a red hat"],
     "negative": ["blurry", "ugly"], "per_prompt": 2, "guidance": 5.0, "steps": 4},
    {"name": "sd1_no_guidance", "pipeline": "sd1", "scheduler": None, "seed": 1, "prompt": "a face", "guidance": 1.0, "steps": 3},
]


def scheduler_for(folder_scheduler, name):
    """The folder's scheduler, or another class built from its config (diffusers' from_config)."""
    if name is None:
        return folder_scheduler
    if name == "euler_a":
        return EulerAncestralDiscreteScheduler.from_config(folder_scheduler.config)
    if name == "dpm++2m-karras":
        return DPMSolverMultistepScheduler.from_config(folder_scheduler.config, use_karras_sigmas=True)
    raise ValueError(name)


def generate(out_dir: pathlib.Path) -> None:
    tensors = {}
    pipes = {name: StableDiffusionPipeline.from_pretrained(TINY / name, safety_checker=None) for name in ("sd1", "sd2")}
    folder_schedulers = {name: pipe.scheduler for name, pipe in pipes.items()}
    for pipe in pipes.values():
        pipe.set_progress_bar_config(disable=True)
    for case in CASES:
        pipe = pipes[case["pipeline"]]
        pipe.scheduler = scheduler_for(folder_schedulers[case["pipeline"]], case["scheduler"])
        kwargs = dict(prompt=case["prompt"], negative_prompt=case.get("negative"), num_inference_steps=case["steps"],
                      guidance_scale=case.get("guidance", 7.5), num_images_per_prompt=case.get("per_prompt", 1),
                      clip_skip=case.get("clip_skip"))
        latents = pipe(**kwargs, generator=torch.Generator("cpu").manual_seed(case["seed"]), output_type="latent").images
        with torch.no_grad():
            decoded = pipe.vae.decode(latents / pipe.vae.config.scaling_factor).sample
        pil = pipe(**kwargs, generator=torch.Generator("cpu").manual_seed(case["seed"]), output_type="pil").images
        pixels = torch.from_numpy(np.stack([np.asarray(im) for im in pil]))
        tensors[f"{case['name']}.latents"] = latents.contiguous()
        tensors[f"{case['name']}.decoded"] = decoded.contiguous()
        tensors[f"{case['name']}.pixels"] = pixels.contiguous()
    save_file(tensors, out_dir / "txt2img.safetensors")
    (out_dir / "cases.json").write_text(json.dumps(CASES, indent=1))
