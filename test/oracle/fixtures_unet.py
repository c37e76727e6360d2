"""UNet oracle: diffusers' UNet2DConditionModel and its building blocks on small seeded weights and inputs.

For the TypeScript ports in src/models/blocks/ and src/models/unet/ (tests: test/models/blocks.test.ts,
test/models/unet-blocks.test.ts, test/models/unet.test.ts). Every case is built with diffusers 0.42.1 after
torch.manual_seed, its parameters nudged by small seeded noise (so that zero-initialised biases and unit
norm scales matter too), and run in eval mode in float32.

Files:
  cases.json                 per case: name, kind (the diffusers class), kwargs (constructor arguments,
                             snake_case as diffusers takes them), call (forward arguments that are not tensors)
                             and the names of the tensors below.
  <case>.safetensors         "param.<key>": the module's state dict; "input.<name>": forward inputs;
                             "output" (or "output.<i>" for tuples); "grad_output": g; "grad.<name>": the
                             gradient of sum(output · g) w.r.t. each floating input (and "grad.param.<key>"
                             for the parameters listed in the case).
  structures.json            the real SD1.5 and SD2.1 UNet configs, with the state dict (keys and shapes in
                             order) and parameter count diffusers builds from them (on the meta device).
  unet_<config>/             save_pretrained folders of tiny UNets (config.json + weights; sd1_fp16 holds the
                             fp16 variant), and unet_<config>.safetensors with inputs, outputs and gradients.
  tiny_sd_<name>.safetensors outputs of the tiny pipelines' UNets (test/fixtures/generated/tiny_sd/{sd1,sd2},
                             written by fixtures_tiny_sd.py) on seeded inputs.
"""
from __future__ import annotations

import json
import pathlib

import torch
from diffusers import UNet2DConditionModel
from diffusers.models.attention import BasicTransformerBlock, FeedForward
from diffusers.models.attention_processor import Attention
from diffusers.models.downsampling import Downsample2D
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.resnet import ResnetBlock2D
from diffusers.models.transformers.transformer_2d import Transformer2DModel
from diffusers.models.unets.unet_2d_blocks import (
    CrossAttnDownBlock2D,
    CrossAttnUpBlock2D,
    DownBlock2D,
    UNetMidBlock2DCrossAttn,
    UpBlock2D,
)
from diffusers.models.upsampling import Upsample2D
from diffusers.utils import logging
from safetensors.torch import save_file

ROOT = pathlib.Path(__file__).resolve().parents[2]
TINY_SD = ROOT / "test" / "fixtures" / "generated" / "tiny_sd"
# The tiny pipelines are generated first (generate.py runs generators in name order: tiny_sd < unet).
INPUTS = ["test/oracle/fixtures_tiny_sd.py", "test/oracle/fixtures_tokenizer.py", "test/fixtures/prompts.txt"]

CLASSES = {c.__name__: c for c in [
    ResnetBlock2D, Downsample2D, Upsample2D, Attention, Timesteps, TimestepEmbedding, FeedForward,
    BasicTransformerBlock, Transformer2DModel, CrossAttnDownBlock2D, DownBlock2D, UNetMidBlock2DCrossAttn,
    UpBlock2D, CrossAttnUpBlock2D,
]}
# Constructor arguments only the Python side takes (they do not change the computation the port replicates).
PYTHON_ONLY = {"name", "upcast_softmax", "_from_deprecated_attn_block"}


def nudge(module: torch.nn.Module, g: torch.Generator, scale: float = 0.1) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale)


def mask_bias(keep: torch.Tensor) -> torch.Tensor:
    """diffusers' conversion of a (B, S) keep-mask into an additive (B, 1, S) bias."""
    return ((1 - keep.to(torch.float32)) * -10000.0).unsqueeze(1)


class Recorder:
    def __init__(self, out_dir: pathlib.Path):
        self.out_dir = out_dir
        self.cases: list[dict] = []
        self.g = torch.Generator().manual_seed(2024)

    def randn(self, *shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=self.g)

    def case(self, name: str, kind: str, kwargs: dict, inputs: dict, call: dict | None = None,
             forward=None, grad_params: tuple[str, ...] = ()) -> None:
        """Builds CLASSES[kind](**kwargs), runs forward(module, **inputs) (default: module(**inputs, **call))."""
        call = call or {}
        torch.manual_seed(len(self.cases))
        module = CLASSES[kind](**kwargs).eval()
        nudge(module, self.g)
        tensors = {f"param.{k}": v.detach().clone().contiguous() for k, v in module.state_dict().items()}
        leaves = {}
        wrt = {}

        def leaf(key: str, value: torch.Tensor) -> torch.Tensor:
            tensors[f"input.{key}"] = value.detach().clone().contiguous()
            if value.is_floating_point() and not key.endswith("mask") and key != "timesteps":
                value = value.clone().requires_grad_(True)
                wrt[key] = value
            return value

        for key, value in inputs.items():
            if isinstance(value, tuple):
                leaves[key] = tuple(leaf(f"{key}.{i}", v) for i, v in enumerate(value))
            else:
                leaves[key] = leaf(key, value) if isinstance(value, torch.Tensor) else value
        run = forward or (lambda m, **kw: m(**kw, **call))
        out = run(module, **leaves)
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        flat: list[torch.Tensor] = []
        for o in outs:
            flat.extend(o if isinstance(o, (tuple, list)) else [o])
        if len(flat) == 1:
            tensors["output"] = flat[0].detach().clone().contiguous()
        else:
            for i, o in enumerate(flat):
                tensors[f"output.{i}"] = o.detach().clone().contiguous()
        grad_outputs = [self.randn(*o.shape) for o in flat]
        loss = sum((o * gout).sum() for o, gout in zip(flat, grad_outputs))
        for i, gout in enumerate(grad_outputs):
            tensors["grad_output" if len(flat) == 1 else f"grad_output.{i}"] = gout
        params = dict(module.named_parameters())
        targets = list(wrt.values()) + [params[p] for p in grad_params]
        grads = torch.autograd.grad(loss, targets, allow_unused=True) if targets else []
        for key, grad in zip(list(wrt) + [f"param.{p}" for p in grad_params], grads):
            if grad is not None:
                tensors[f"grad.{key}"] = grad.contiguous()
        save_file(tensors, str(self.out_dir / f"{name}.safetensors"))
        self.cases.append({
            "name": name, "kind": kind,
            "kwargs": {k: v for k, v in kwargs.items() if k not in PYTHON_ONLY},
            "call": call, "outputs": len(flat), "grad_params": list(grad_params),
        })


def block_cases(r: Recorder) -> None:
    # ResnetBlock2D: with a timestep embedding and a channel-changing shortcut; without (the VAE's form);
    # a forced 1×1 shortcut with separate output groups.
    r.case("resnet_temb_shortcut", "ResnetBlock2D",
           dict(in_channels=8, out_channels=16, temb_channels=12, groups=4, eps=1e-6),
           dict(input_tensor=r.randn(2, 8, 6, 5), temb=r.randn(2, 12)))
    r.case("resnet_no_temb", "ResnetBlock2D",
           dict(in_channels=8, out_channels=8, temb_channels=None, groups=4, eps=1e-6, output_scale_factor=2.0),
           dict(input_tensor=r.randn(2, 8, 4, 4), temb=None))
    r.case("resnet_in_shortcut", "ResnetBlock2D",
           dict(in_channels=8, out_channels=8, temb_channels=6, groups=4, groups_out=2, eps=1e-5, use_in_shortcut=True),
           dict(input_tensor=r.randn(1, 8, 3, 4), temb=r.randn(1, 6)))
    # Resampling: strided conv (odd input), the VAE's padding-0 conv with its asymmetric pad, average pool;
    # nearest ×2 + conv, and to an explicit output size (what the UNet does for odd latents).
    r.case("downsample_conv", "Downsample2D", dict(channels=8, use_conv=True, out_channels=12, padding=1, name="op"),
           dict(hidden_states=r.randn(2, 8, 7, 7)))
    r.case("downsample_conv_pad0", "Downsample2D", dict(channels=8, use_conv=True, padding=0, name="op"),
           dict(hidden_states=r.randn(2, 8, 6, 6)))
    r.case("downsample_avg", "Downsample2D", dict(channels=8, use_conv=False, padding=1, name="op"),
           dict(hidden_states=r.randn(2, 8, 6, 4)))
    r.case("upsample_conv", "Upsample2D", dict(channels=8, use_conv=True, out_channels=6),
           dict(hidden_states=r.randn(2, 8, 3, 4)))
    r.case("upsample_output_size", "Upsample2D", dict(channels=8, use_conv=True),
           dict(hidden_states=r.randn(1, 8, 4, 3)), call=dict(output_size=[7, 5]))
    # Attention: self; cross with a padding mask (converted to a bias as the UNet does) and upcast; cross with
    # a 2-D mask given directly; the VAE's form (4-D input, group norm, residual, biases).
    keep = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    r.case("attention_self", "Attention", dict(query_dim=16, heads=2, dim_head=8),
           dict(hidden_states=r.randn(2, 10, 16)))
    r.case("attention_cross_mask", "Attention",
           dict(query_dim=16, cross_attention_dim=12, heads=4, dim_head=4, upcast_attention=True),
           dict(hidden_states=r.randn(2, 10, 16), encoder_hidden_states=r.randn(2, 5, 12), attention_mask=mask_bias(keep)))
    r.case("attention_cross_mask_2d", "Attention",
           dict(query_dim=16, cross_attention_dim=12, heads=2, dim_head=6, bias=True),
           dict(hidden_states=r.randn(2, 7, 16), encoder_hidden_states=r.randn(2, 5, 12),
                attention_mask=(1 - keep.float()) * -10000.0))
    r.case("attention_spatial", "Attention",
           dict(query_dim=16, heads=1, dim_head=16, rescale_output_factor=1.0, eps=1e-6, norm_num_groups=4,
                residual_connection=True, bias=True, upcast_softmax=True, _from_deprecated_attn_block=True),
           dict(hidden_states=r.randn(2, 16, 3, 4)))
    # Embeddings.
    r.case("timesteps_flip", "Timesteps", dict(num_channels=10, flip_sin_to_cos=True, downscale_freq_shift=0),
           dict(timesteps=torch.tensor([0.0, 1.0, 37.5, 999.0])))
    r.case("timesteps_odd", "Timesteps", dict(num_channels=9, flip_sin_to_cos=False, downscale_freq_shift=1, scale=2),
           dict(timesteps=torch.tensor([3, 250, 981])))
    r.case("timestep_embedding", "TimestepEmbedding", dict(in_channels=8, time_embed_dim=20, act_fn="silu"),
           dict(sample=r.randn(3, 8)))
    # Transformer parts.
    r.case("feed_forward", "FeedForward", dict(dim=12, dropout=0.0, activation_fn="geglu"),
           dict(hidden_states=r.randn(2, 5, 12)))
    r.case("transformer_block", "BasicTransformerBlock",
           dict(dim=16, num_attention_heads=2, attention_head_dim=8, cross_attention_dim=12),
           dict(hidden_states=r.randn(2, 9, 16), encoder_hidden_states=r.randn(2, 5, 12),
                encoder_attention_mask=mask_bias(keep)))
    r.case("transformer_block_only_cross", "BasicTransformerBlock",
           dict(dim=16, num_attention_heads=4, attention_head_dim=4, cross_attention_dim=12, only_cross_attention=True,
                upcast_attention=True),
           dict(hidden_states=r.randn(2, 9, 16), encoder_hidden_states=r.randn(2, 5, 12)))
    r.case("transformer2d_conv", "Transformer2DModel",
           dict(num_attention_heads=2, attention_head_dim=8, in_channels=16, num_layers=1, cross_attention_dim=12,
                norm_num_groups=4),
           dict(hidden_states=r.randn(2, 16, 3, 4), encoder_hidden_states=r.randn(2, 5, 12)),
           forward=lambda m, **kw: m(**kw, return_dict=False)[0])
    r.case("transformer2d_linear", "Transformer2DModel",
           dict(num_attention_heads=4, attention_head_dim=4, in_channels=16, num_layers=2, cross_attention_dim=12,
                norm_num_groups=8, use_linear_projection=True, upcast_attention=True),
           dict(hidden_states=r.randn(2, 16, 4, 2), encoder_hidden_states=r.randn(2, 5, 12),
                encoder_attention_mask=keep.float()),
           forward=lambda m, **kw: m(**kw, return_dict=False)[0])


def unet_block_cases(r: Recorder) -> None:
    keep = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    common = dict(temb_channels=20, resnet_eps=1e-5, resnet_act_fn="silu", resnet_groups=4)
    r.case("cross_attn_down_block", "CrossAttnDownBlock2D",
           dict(common, in_channels=8, out_channels=16, num_layers=2, transformer_layers_per_block=[1, 2],
                num_attention_heads=2, cross_attention_dim=12, add_downsample=True, downsample_padding=1),
           dict(hidden_states=r.randn(2, 8, 6, 5), temb=r.randn(2, 20), encoder_hidden_states=r.randn(2, 6, 12),
                encoder_attention_mask=mask_bias(keep)))
    r.case("down_block", "DownBlock2D",
           dict(common, in_channels=8, out_channels=8, num_layers=2, add_downsample=True, downsample_padding=1),
           dict(hidden_states=r.randn(2, 8, 5, 5), temb=r.randn(2, 20)))
    r.case("down_block_last", "DownBlock2D",
           dict(common, in_channels=16, out_channels=8, num_layers=1, add_downsample=False),
           dict(hidden_states=r.randn(2, 16, 3, 3), temb=r.randn(2, 20)))
    r.case("mid_block", "UNetMidBlock2DCrossAttn",
           dict(common, in_channels=16, num_attention_heads=4, cross_attention_dim=12, use_linear_projection=True,
                upcast_attention=True, output_scale_factor=1.5),
           dict(hidden_states=r.randn(2, 16, 3, 2), temb=r.randn(2, 20), encoder_hidden_states=r.randn(2, 6, 12),
                encoder_attention_mask=mask_bias(keep)))
    r.case("up_block", "UpBlock2D",
           dict(common, in_channels=8, prev_output_channel=16, out_channels=12, num_layers=3, add_upsample=True),
           dict(hidden_states=r.randn(2, 16, 3, 3), res_hidden_states_tuple=(r.randn(2, 8, 3, 3), r.randn(2, 12, 3, 3), r.randn(2, 12, 3, 3)),
                temb=r.randn(2, 20)), call=dict(upsample_size=[5, 6]))
    r.case("cross_attn_up_block", "CrossAttnUpBlock2D",
           dict(common, in_channels=8, prev_output_channel=16, out_channels=16, num_layers=2, num_attention_heads=2,
                cross_attention_dim=12, add_upsample=False, only_cross_attention=True),
           dict(hidden_states=r.randn(2, 16, 4, 3), res_hidden_states_tuple=(r.randn(2, 8, 4, 3), r.randn(2, 16, 4, 3)),
                temb=r.randn(2, 20), encoder_hidden_states=r.randn(2, 6, 12)))


def main_unet_configs() -> dict[str, dict]:
    base = dict(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(16, 32, 32), layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=24, attention_head_dim=2, norm_num_groups=8,
    )
    return {
        # SD1.x-style: attention_head_dim an int (the number of heads, by diffusers' legacy rule), conv projections.
        "sd1": base,
        # SD2.x-style: a head count per block, linear projections, upcast attention.
        "sd2": dict(base, attention_head_dim=(2, 4, 4), use_linear_projection=True, upcast_attention=True),
        # Less common options: per-block lists, only-cross-attention, shifted frequencies, 1×1 in/out convs.
        "misc": dict(base, layers_per_block=(1, 2, 1), transformer_layers_per_block=(2, 1, 1),
                     only_cross_attention=(True, False, False), center_input_sample=True, flip_sin_to_cos=False,
                     freq_shift=1, mid_block_scale_factor=1.5, conv_in_kernel=1, conv_out_kernel=1,
                     time_embedding_dim=48, cross_attention_dim=(24, 24, 24)),
    }


class LoraQuery(torch.nn.Module):
    """to_q(x) + x @ A @ B: the LoRA-like extra parameter of the gradient test."""

    def __init__(self, base: torch.nn.Linear, a: torch.Tensor, b: torch.Tensor):
        super().__init__()
        self.base = base
        self.a = torch.nn.Parameter(a)
        self.b = torch.nn.Parameter(b)

    def forward(self, x):
        return self.base(x) + x @ self.a @ self.b


def unet_cases(r: Recorder, out_dir: pathlib.Path) -> dict:
    meta = {}
    for name, config in main_unet_configs().items():
        torch.manual_seed(100)
        unet = UNet2DConditionModel(**config).eval()
        nudge(unet, r.g, 0.05)
        folder = out_dir / f"unet_{name}"
        unet.save_pretrained(folder)
        tensors = {}
        runs = []
        enc = r.randn(2, 6, 24)
        keep = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
        tensors["encoder_hidden_states"] = enc
        tensors["encoder_attention_mask"] = keep.to(torch.float32)
        for i, (timestep, size, masked) in enumerate([
            (999, (8, 8), False), (torch.tensor([10.0, 500.0]), (8, 8), True), (37.5, (10, 6), False),
            (torch.tensor(250), (8, 8), True),
        ]):
            sample = r.randn(2, 4, *size)
            with torch.no_grad():
                out = unet(sample, timestep, enc, encoder_attention_mask=keep if masked else None).sample
            tensors[f"run{i}.sample"] = sample
            tensors[f"run{i}.output"] = out
            if isinstance(timestep, torch.Tensor):
                tensors[f"run{i}.timestep"] = timestep.to(torch.float32)
            runs.append({"timestep": timestep if not isinstance(timestep, torch.Tensor) else None,
                         "timestep_shape": list(timestep.shape) if isinstance(timestep, torch.Tensor) else None,
                         "masked": masked})
        if name == "sd1":
            # The same weights as an fp16 variant; the reference computes in fp32 on the fp16-rounded weights.
            half = UNet2DConditionModel(**config)
            half.load_state_dict(unet.state_dict())
            half = half.half()
            half.save_pretrained(out_dir / "unet_sd1_fp16", variant="fp16")
            wide = half.float().eval()
            sample = r.randn(2, 4, 8, 8)
            with torch.no_grad():
                out = wide(sample, 640, enc, encoder_attention_mask=keep).sample
            save_file({"sample": sample, "output": out.contiguous()}, str(out_dir / "unet_sd1_fp16.safetensors"))
        # Gradients of sum(out · g) w.r.t. the sample, the encoder states and a LoRA-like A, B on one to_q.
        attn = unet.down_blocks[0].attentions[0].transformer_blocks[0].attn2
        a = r.randn(16, 3) * 0.2
        b = r.randn(3, 16) * 0.2
        attn.to_q = LoraQuery(attn.to_q, a, b)
        sample = r.randn(2, 4, 8, 8).requires_grad_(True)
        enc_leaf = enc.clone().requires_grad_(True)
        out = unet(sample, 321, enc_leaf, encoder_attention_mask=keep).sample
        g = r.randn(*out.shape)
        loss = (out * g).sum()
        conv_in_weight = unet.conv_in.weight
        mid_q = unet.mid_block.attentions[0].transformer_blocks[0].attn1.to_q.weight
        grads = torch.autograd.grad(loss, [sample, enc_leaf, attn.to_q.a, attn.to_q.b, conv_in_weight, mid_q])
        tensors.update({
            "grad.sample": sample.detach(), "grad.output": out.detach(), "grad.g": g, "grad.a": a, "grad.b": b,
            "grad.d_sample": grads[0], "grad.d_encoder_hidden_states": grads[1], "grad.d_a": grads[2],
            "grad.d_b": grads[3], "grad.d_conv_in_weight": grads[4], "grad.d_mid_attn1_to_q_weight": grads[5],
        })
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(out_dir / f"unet_{name}.safetensors"))
        meta[name] = {"runs": runs, "grad_timestep": 321}
    return meta


_SD_BLOCKS = dict(
    down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
)
# runwayml/stable-diffusion-v1-5 unet/config.json (the same object is written in test/models/unet.test.ts).
SD15_UNET_CONFIG = {
    "_class_name": "UNet2DConditionModel", "_diffusers_version": "0.6.0", "act_fn": "silu", "attention_head_dim": 8,
    "block_out_channels": [320, 640, 1280, 1280], "center_input_sample": False, "cross_attention_dim": 768,
    **_SD_BLOCKS, "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4,
    "layers_per_block": 2, "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32, "out_channels": 4,
    "sample_size": 64,
}
# stabilityai/stable-diffusion-2-1 unet/config.json (the 768-pixel v-prediction model).
SD21_UNET_CONFIG = {
    "_class_name": "UNet2DConditionModel", "_diffusers_version": "0.10.0.dev0", "act_fn": "silu",
    "attention_head_dim": [5, 10, 20, 20], "block_out_channels": [320, 640, 1280, 1280], "center_input_sample": False,
    "cross_attention_dim": 1024, **_SD_BLOCKS, "downsample_padding": 1, "dual_cross_attention": False,
    "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4, "layers_per_block": 2, "mid_block_scale_factor": 1,
    "norm_eps": 1e-05, "norm_num_groups": 32, "num_class_embeds": None, "only_cross_attention": False,
    "out_channels": 4, "sample_size": 96, "upcast_attention": True, "use_linear_projection": True,
}


def structures() -> dict:
    """The real SD1.5/SD2.1 UNets' state dict (key, shape, in order) and parameter count, built on the meta device."""
    result = {}
    for name, config in [("sd15", SD15_UNET_CONFIG), ("sd21", SD21_UNET_CONFIG)]:
        with torch.device("meta"):
            unet = UNet2DConditionModel.from_config(config)
        result[name] = {
            "config": config,
            "state": [[k, list(v.shape)] for k, v in unet.state_dict().items()],
            "parameters": sum(p.numel() for p in unet.parameters()),
        }
    return result


def tiny_sd_cases(r: Recorder, out_dir: pathlib.Path) -> list[str]:
    names = []
    for name in ["sd1", "sd2"]:
        folder = TINY_SD / name / "unet"
        if not (folder / "config.json").exists():
            continue
        unet = UNet2DConditionModel.from_pretrained(folder).eval()
        cross = unet.config.cross_attention_dim
        size = unet.config.sample_size
        sample = r.randn(2, unet.config.in_channels, size, size)
        enc = r.randn(2, 7, cross)
        with torch.no_grad():
            out = unet(sample, torch.tensor([5, 870]), enc).sample
        save_file({"sample": sample, "encoder_hidden_states": enc, "timestep": torch.tensor([5.0, 870.0]), "output": out},
                  str(out_dir / f"tiny_sd_{name}.safetensors"))
        names.append(name)
    return names


def generate(out_dir: pathlib.Path) -> None:
    logging.set_verbosity_error()
    torch.set_num_threads(2)
    r = Recorder(out_dir)
    block_cases(r)
    unet_block_cases(r)
    unet_meta = unet_cases(r, out_dir)
    tiny = tiny_sd_cases(r, out_dir)
    (out_dir / "cases.json").write_text(json.dumps({
        "cases": r.cases,
        "unets": {name: {"config": {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}, **unet_meta[name]}
                  for name, config in main_unet_configs().items()},
        "tiny_sd": tiny,
    }, indent=1))
    (out_dir / "structures.json").write_text(json.dumps(structures()))
