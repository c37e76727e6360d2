"""AutoencoderKL fixtures: what diffusers 0.42.1's VAE computes, for the TypeScript port to match.

Each case builds a tiny AutoencoderKL from a small config (seeded; GroupNorm scales and shifts randomised so
that they matter), saves it with save_pretrained into <case>/ and records, in <case>.safetensors:

    x                  input images in [-1, 1]
    mean, logvar, std, var, mode
                       the posterior of encode(x) (logvar clamped to [-30, 20] by diffusers)
    kl, nll            posterior.kl() and posterior.nll(sample) (no nll where logvar is clamped: there the
                       tiny variance turns the rounding of sample - mean into large differences)
    sample             posterior.sample(generator=torch.Generator("cpu").manual_seed(sample_seed))
    z, decoded         random latents and decode(z).sample
    forward_mode       forward(x).sample (the posterior's mode is decoded)
    forward_sample     forward(x, sample_posterior=True, generator=Generator("cpu").manual_seed(sample_seed))
    g_decoded, grad_z  d sum(decode(z) * g_decoded) / dz
    g_mean, grad_x     d sum(mean * g_mean) / dx
    sliced_decoded     decode(z) with enable_slicing() (cases with "slicing")

The "fp16" case is saved in float16 (variant "fp16"); its references are computed in float32 from the
float16-rounded weights, which is what loading fp16 weights into a float32 model gives. The "clamped" case
pushes logvar past both clamp limits through quant_conv's bias. "legacy_attention_names" is saved with the
mid-block attention names older checkpoints use (query, key, value, proj_attn). The tiny Stable Diffusion pipelines' VAEs
(test/fixtures/generated/tiny_sd/{sd1,sd2,sd1-fp16}/vae, when that generator exists) get cases that point at them.

cases.json lists every case: name, model_dir (repo-relative), variant, the config passed to diffusers, the
config diffusers resolved (vae.config), seeds and which checks apply. sd15_structure.json holds Stable
Diffusion 1.5's real VAE config and every parameter name and shape diffusers gives it (built on the meta
device, so nothing is allocated), and the config of AutoencoderKL() with every default.
"""
from __future__ import annotations

import json
import pathlib

import torch
from diffusers import AutoencoderKL
from diffusers.utils import logging
from safetensors.torch import save_file

ROOT = pathlib.Path(__file__).resolve().parents[2]
TINY_SD = ROOT / "test" / "fixtures" / "generated" / "tiny_sd"
INPUTS: list[str] = ["test/oracle/fixtures_tiny_sd.py"]

# runwayml/stable-diffusion-v1-5 vae/config.json
SD15_VAE = {
    "_class_name": "AutoencoderKL", "_diffusers_version": "0.6.0", "act_fn": "silu",
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
    "in_channels": 3, "latent_channels": 4, "layers_per_block": 2, "norm_num_groups": 32, "out_channels": 3,
    "sample_size": 512,
    "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
}

TWO = {"down_block_types": ["DownEncoderBlock2D"] * 2, "up_block_types": ["UpDecoderBlock2D"] * 2}
THREE = {"down_block_types": ["DownEncoderBlock2D"] * 3, "up_block_types": ["UpDecoderBlock2D"] * 3}

# name, config, image shape, options
CASES = [
    ("two_blocks", {**TWO, "block_out_channels": [8, 16], "layers_per_block": 1, "norm_num_groups": 4,
                    "sample_size": 16}, (2, 3, 16, 16), {"slicing": True}),
    ("three_blocks_no_attention", {**THREE, "block_out_channels": [8, 16, 16], "layers_per_block": 2,
                                   "norm_num_groups": 4, "latent_channels": 3, "mid_block_add_attention": False,
                                   "scaling_factor": 0.5, "shift_factor": 0.1}, (1, 3, 16, 12), {}),
    ("three_blocks_attention", {**THREE, "block_out_channels": [8, 8, 16], "layers_per_block": 1,
                                "norm_num_groups": 2, "in_channels": 4, "out_channels": 2}, (2, 4, 12, 20), {}),
    ("no_quant_conv", {**TWO, "block_out_channels": [8, 16], "layers_per_block": 1, "norm_num_groups": 4,
                       "use_quant_conv": False, "use_post_quant_conv": False, "force_upcast": False},
     (2, 3, 8, 8), {}),
    ("fp16", {**TWO, "block_out_channels": [8, 16], "layers_per_block": 2, "norm_num_groups": 4},
     (1, 3, 16, 16), {"fp16": True}),
    ("legacy_attention_names", {**TWO, "block_out_channels": [8, 16], "layers_per_block": 1, "norm_num_groups": 4},
     (1, 3, 8, 8), {"legacy": True}),
    ("clamped", {**TWO, "block_out_channels": [8, 16], "layers_per_block": 1, "norm_num_groups": 4},
     (1, 3, 8, 8), {"clamp": True}),
]


def randomise_norms(vae: AutoencoderKL, g: torch.Generator) -> None:
    """GroupNorm defaults (scale 1, shift 0) would hide a mix-up of those parameters: draw them instead."""
    with torch.no_grad():
        for module in vae.modules():
            if isinstance(module, torch.nn.GroupNorm):
                module.weight.copy_(1 + 0.2 * torch.randn(module.weight.shape, generator=g))
                module.bias.copy_(0.2 * torch.randn(module.bias.shape, generator=g))


LEGACY_NAMES = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}


def save_with_legacy_attention_names(vae: AutoencoderKL, model_dir: pathlib.Path) -> None:
    """Rewrites the saved weights with the mid-block attention names of diffusers < 0.14 (query, key, value,
    proj_attn), as older checkpoints such as Stable Diffusion 1.5's VAE still have them; diffusers renames them
    on load. Checks that diffusers loads the rewritten folder into the very same weights."""
    state = {}
    for key, value in vae.state_dict().items():
        for new, old in LEGACY_NAMES.items():
            if ".attentions." in key and f".{new}." in key:
                key = key.replace(f".{new}.", f".{old}.")
        state[key] = value.contiguous()
    assert any(".proj_attn." in key for key in state)
    save_file(state, str(model_dir / "diffusion_pytorch_model.safetensors"))
    reloaded = AutoencoderKL.from_pretrained(model_dir).state_dict()
    assert reloaded.keys() == vae.state_dict().keys()
    assert all(torch.equal(reloaded[k], v) for k, v in vae.state_dict().items())


def references(vae: AutoencoderKL, shape: tuple[int, ...], seed: int, options: dict) -> dict[str, torch.Tensor]:
    """Every tensor the TypeScript test compares, for inputs drawn from `seed`."""
    g = torch.Generator().manual_seed(seed)
    sample_seed = seed + 1000
    config = vae.config
    x = torch.rand(shape, generator=g) * 2 - 1
    down = 2 ** (len(config.block_out_channels) - 1)
    latent_shape = (shape[0], config.latent_channels, shape[2] // down, shape[3] // down)
    z = torch.randn(latent_shape, generator=g)
    out: dict[str, torch.Tensor] = {"x": x, "z": z}
    with torch.no_grad():
        posterior = vae.encode(x).latent_dist
        out.update(mean=posterior.mean, logvar=posterior.logvar, std=posterior.std, var=posterior.var,
                   mode=posterior.mode())
        out["sample"] = posterior.sample(generator=torch.Generator("cpu").manual_seed(sample_seed))
        out["kl"] = posterior.kl()
        if not options.get("clamp"):
            out["nll"] = posterior.nll(out["sample"])
        out["decoded"] = vae.decode(z).sample
        out["forward_mode"] = vae(x).sample
        out["forward_sample"] = vae(x, sample_posterior=True,
                                    generator=torch.Generator("cpu").manual_seed(sample_seed)).sample
        if options.get("slicing"):
            vae.enable_slicing()
            out["sliced_decoded"] = vae.decode(z).sample
            out["sliced_mean"] = vae.encode(x).latent_dist.mean
            vae.disable_slicing()
    if not options.get("clamp"):
        g_decoded = torch.randn(out["decoded"].shape, generator=g)
        z_leaf = z.clone().requires_grad_(True)
        (grad_z,) = torch.autograd.grad((vae.decode(z_leaf).sample * g_decoded).sum(), z_leaf)
        g_mean = torch.randn(out["mean"].shape, generator=g)
        x_leaf = x.clone().requires_grad_(True)
        (grad_x,) = torch.autograd.grad((vae.encode(x_leaf).latent_dist.mean * g_mean).sum(), x_leaf)
        out.update(g_decoded=g_decoded, grad_z=grad_z, g_mean=g_mean, grad_x=grad_x)
    return {k: v.detach().clone().contiguous() for k, v in out.items()}


def jsonable(config) -> dict:
    return json.loads(json.dumps({k: v for k, v in dict(config).items() if k != "_name_or_path"}))


def generate(out_dir: pathlib.Path) -> None:
    logging.set_verbosity_error()
    torch.set_grad_enabled(True)
    cases = []
    for index, (name, config, shape, options) in enumerate(CASES):
        seed = 100 + index
        torch.manual_seed(seed)
        vae = AutoencoderKL(**config).eval()
        randomise_norms(vae, torch.Generator().manual_seed(seed))
        if options.get("clamp"):
            with torch.no_grad():
                latent = vae.config.latent_channels
                vae.quant_conv.bias[latent] += 40.0  # logvar channel 0 above 20
                vae.quant_conv.bias[latent + 1] -= 60.0  # logvar channel 1 below -30
        variant = None
        if options.get("fp16"):
            variant = "fp16"
            vae.to(torch.float16).save_pretrained(out_dir / name, variant=variant)
            vae.to(torch.float32)
        else:
            vae.save_pretrained(out_dir / name)
        if options.get("legacy"):
            save_with_legacy_attention_names(vae, out_dir / name)
        save_file(references(vae, shape, seed, options), str(out_dir / f"{name}.safetensors"))
        cases.append({"name": name, "model_dir": f"test/fixtures/generated/vae/{name}", "variant": variant,
                      "config": config, "resolved": jsonable(vae.config), "seed": seed, "sample_seed": seed + 1000,
                      "gradients": not options.get("clamp"), "slicing": bool(options.get("slicing"))})

    for flavour, variant in (("sd1", None), ("sd2", None), ("sd1-fp16", "fp16")):
        model_dir = TINY_SD / flavour / "vae"
        if not (model_dir / "config.json").exists():
            continue
        vae = AutoencoderKL.from_pretrained(model_dir, variant=variant).eval().float()
        seed = 200 + len(cases)
        down = 2 ** (len(vae.config.block_out_channels) - 1)
        size = vae.config.sample_size if isinstance(vae.config.sample_size, int) else vae.config.sample_size[0]
        size = max(down, min(size, 16))
        name = "tiny_sd_" + flavour.replace("-", "_")
        save_file(references(vae, (1, vae.config.in_channels, size, size), seed, {}), str(out_dir / f"{name}.safetensors"))
        cases.append({"name": name, "model_dir": str(model_dir.relative_to(ROOT)), "variant": variant,
                      "config": None, "resolved": jsonable(vae.config), "seed": seed, "sample_seed": seed + 1000,
                      "gradients": True, "slicing": False})

    (out_dir / "cases.json").write_text(json.dumps(cases, indent=1))

    with torch.device("meta"):
        sd15 = AutoencoderKL(**{k: v for k, v in SD15_VAE.items() if not k.startswith("_")})
        defaults = AutoencoderKL()
    structure = {
        "defaults": jsonable(defaults.config),
        "config": SD15_VAE,
        "resolved": jsonable(sd15.config),
        "parameters": [[k, list(v.shape)] for k, v in sd15.state_dict().items()],
        "parameter_count": sum(p.numel() for p in sd15.parameters()),
    }
    (out_dir / "sd15_structure.json").write_text(json.dumps(structure, indent=1))
