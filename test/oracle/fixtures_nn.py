"""Oracle for the nn layers (test/engine/nn-layers.test.ts): default initialisation and forward passes.

Writes `layers.json`:
  init      every layer built after torch.manual_seed(INIT_SEED), in this order, with its state dict
            (the TypeScript test builds the same layers in the same order and expects identical bits);
  forward   per case: the module's state (affine parameters randomised so they matter), an input and
            PyTorch's output;
  init_functions  torch.nn.init functions applied one after another to (6, 3, 2, 2) tensors after
            torch.manual_seed(INIT_SEED);
  dropout   torch.manual_seed(DROPOUT_SEED) then Dropout(p) in training mode on ones.
Tensors are {"dtype", "shape", "data": base64 of the little-endian bytes}, so values round-trip exactly.
"""
from __future__ import annotations

import base64
import json
import pathlib

import torch
from torch import nn

INIT_SEED = 1234
DROPOUT_SEED = 77


def encode(t: torch.Tensor) -> dict:
    t = t.detach().contiguous().cpu()
    name = {torch.float32: "float32", torch.int64: "int64", torch.float64: "float64"}[t.dtype]
    return {"dtype": name, "shape": list(t.shape), "data": base64.b64encode(t.numpy().tobytes()).decode()}


def state(module: nn.Module) -> dict:
    return {k: encode(v) for k, v in module.state_dict().items()}


def init_layers() -> list[tuple[str, nn.Module]]:
    """The layers of the init case, in construction order (the RNG draws depend on it)."""
    return [
        ("linear", nn.Linear(5, 7)),
        ("linear_no_bias", nn.Linear(6, 3, bias=False)),
        ("linear_wide", nn.Linear(300, 2)),
        ("conv", nn.Conv2d(3, 6, 3, stride=2, padding=1)),
        ("conv_grouped", nn.Conv2d(4, 8, (3, 1), groups=2, dilation=(2, 1), padding=(2, 0))),
        ("conv_no_bias", nn.Conv2d(2, 4, 1, bias=False)),
        ("group_norm", nn.GroupNorm(2, 6)),
        ("layer_norm", nn.LayerNorm(7)),
        ("embedding", nn.Embedding(10, 4)),
        ("embedding_padded", nn.Embedding(6, 3, padding_idx=2)),
        ("sequential", nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 2))),
    ]


def randomise_affine(module: nn.Module, g: torch.Generator) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g))


def generate(out_dir: pathlib.Path) -> None:
    torch.manual_seed(INIT_SEED)
    init = [{"name": name, "state": state(module)} for name, module in init_layers()]

    torch.manual_seed(INIT_SEED)
    shape = (6, 3, 2, 2)
    init_functions = {
        "kaiming_uniform_default": nn.init.kaiming_uniform_(torch.empty(shape)),
        "kaiming_uniform_fan_out_relu": nn.init.kaiming_uniform_(torch.empty(shape), mode="fan_out", nonlinearity="relu"),
        "kaiming_normal_leaky": nn.init.kaiming_normal_(torch.empty(shape), a=0.2),
        "xavier_uniform_tanh": nn.init.xavier_uniform_(torch.empty(shape), gain=nn.init.calculate_gain("tanh")),
        "xavier_normal": nn.init.xavier_normal_(torch.empty(shape)),
        "normal": nn.init.normal_(torch.empty(shape), mean=0.5, std=2.0),
        "uniform": nn.init.uniform_(torch.empty(shape), -2.0, 3.0),
    }

    g = torch.Generator().manual_seed(5)
    cases = []

    def case(name: str, module: nn.Module, x: torch.Tensor, randomise: bool = False) -> None:
        if randomise:
            randomise_affine(module, g)
        with torch.no_grad():
            y = module(x)
        cases.append({"name": name, "state": state(module), "input": encode(x), "output": encode(y)})

    torch.manual_seed(0)
    case("linear", nn.Linear(5, 7), torch.randn(2, 4, 5, generator=g))
    case("linear_no_bias", nn.Linear(6, 3, bias=False), torch.randn(3, 6, generator=g))
    case("conv", nn.Conv2d(3, 6, 3, stride=2, padding=1), torch.randn(2, 3, 9, 9, generator=g))
    case("conv_grouped", nn.Conv2d(4, 8, (3, 1), groups=2, dilation=(2, 1), padding=(2, 0)), torch.randn(1, 4, 7, 6, generator=g))
    case("conv_same", nn.Conv2d(3, 4, 3, padding="same"), torch.randn(1, 3, 5, 5, generator=g))
    case("group_norm", nn.GroupNorm(2, 6), torch.randn(2, 6, 5, 5, generator=g), randomise=True)
    case("group_norm_no_affine", nn.GroupNorm(3, 6, eps=1e-3, affine=False), torch.randn(2, 6, 4, generator=g))
    case("layer_norm", nn.LayerNorm(7), torch.randn(3, 5, 7, generator=g), randomise=True)
    case("layer_norm_2d", nn.LayerNorm([4, 7], eps=1e-6), torch.randn(3, 4, 7, generator=g), randomise=True)
    case("embedding", nn.Embedding(10, 4), torch.randint(0, 10, (3, 5), generator=g))
    case("silu", nn.SiLU(), torch.randn(4, 9, generator=g))
    case("gelu", nn.GELU(), torch.randn(4, 9, generator=g))
    case("gelu_tanh", nn.GELU(approximate="tanh"), torch.randn(4, 9, generator=g))
    case("sequential", nn.Sequential(nn.Linear(4, 8), nn.SiLU(), nn.Linear(8, 2)), torch.randn(5, 4, generator=g))

    torch.manual_seed(DROPOUT_SEED)
    dropout = nn.Dropout(0.3).train()
    dropped = dropout(torch.ones(1000))

    result = {
        "init_seed": INIT_SEED,
        "init": init,
        "init_functions": {name: encode(t) for name, t in init_functions.items()},
        "forward": cases,
        "dropout": {"seed": DROPOUT_SEED, "p": 0.3, "output": encode(dropped)},
    }
    (out_dir / "layers.json").write_text(json.dumps(result))
