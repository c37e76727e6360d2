"""Oracle for the optimisers, gradient clipping, learning-rate schedules and end-to-end training parity
(test/engine/optim-*.test.ts and training-parity.test.ts).

Writes:
  optim.json       fixed parameters and 10 steps of fixed gradients; for each optimiser configuration
                   (two parameter groups with their own hyper-parameters) the parameters after every step
                   and the final per-parameter state. Single-tensor implementations (foreach=False).
  clip.json        clip_grad_norm_(foreach=False) for several norm types and max norms.
  schedules.json   diffusers.optimization.get_scheduler learning rates, step by step, for two groups.
  mlp.json         a small MLP trained 50 steps with AdamW: data, initial weights, loss per step, final weights.
  transformer.json a tiny GPT-like transformer trained 50 steps with AdamW (two groups), gradient clipping and
                   warmup + cosine: data, initial weights, loss and gradient norm per step, final weights.
The models are built right after torch.manual_seed(seed) with the same parameter creation order as the
TypeScript models, so the seed gives both the same initial weights.
Tensors are {"dtype", "shape", "data": base64 of the little-endian bytes}, so values round-trip exactly.
"""
from __future__ import annotations

import base64
import json
import pathlib

import torch
import torch.nn.functional as F
from torch import nn
from diffusers.optimization import get_scheduler

from tiny_transformer import TinyTransformer

INPUTS: list[str] = ["test/oracle/tiny_transformer.py"]


def encode(t: torch.Tensor) -> dict:
    t = t.detach().contiguous().cpu()
    name = {torch.float32: "float32", torch.int64: "int64", torch.float64: "float64"}[t.dtype]
    return {"dtype": name, "shape": list(t.shape), "data": base64.b64encode(t.numpy().tobytes()).decode()}


# ---- optimisers -------------------------------------------------------------------------------------------

OPTIM_STEPS = 10
SHAPES = [(4, 3), (3,), (2, 5)]
# Parameter 1 gets no gradient at this step (the optimisers must skip it).
NO_GRAD_STEP = 3

OPTIM_CONFIGS = {
    "adamw": ("AdamW", {"lr": 0.01, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.01},
              {"lr": 0.05, "betas": (0.8, 0.95), "weight_decay": 0.0}),
    "adamw_amsgrad_maximize": ("AdamW", {"lr": 0.02, "weight_decay": 0.1, "amsgrad": True},
                               {"lr": 0.003, "eps": 1e-6, "maximize": True}),
    "adam_l2": ("Adam", {"lr": 0.01, "weight_decay": 0.05}, {"lr": 0.1, "weight_decay": 0.0}),
    "sgd_momentum": ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01},
                     {"lr": 0.05, "momentum": 0.8, "dampening": 0.0, "nesterov": True}),
    "sgd_plain": ("SGD", {"lr": 0.1}, {"lr": 0.02, "weight_decay": 0.1, "maximize": True}),
}


def optim_fixture() -> dict:
    g = torch.Generator().manual_seed(11)
    initial = [torch.randn(shape, generator=g) for shape in SHAPES]
    grads = [[torch.randn(shape, generator=g) for shape in SHAPES] for _ in range(OPTIM_STEPS)]
    configs = {}
    for name, (cls_name, first, second) in OPTIM_CONFIGS.items():
        params = [p.clone().requires_grad_(True) for p in initial]
        cls = getattr(torch.optim, cls_name)
        optimizer = cls([{"params": params[:2]}, {"params": params[2:], **second}], foreach=False, **first)
        history = []
        for step in range(OPTIM_STEPS):
            for i, p in enumerate(params):
                p.grad = None if (i == 1 and step == NO_GRAD_STEP) else grads[step][i].clone()
            optimizer.step()
            history.append([encode(p) for p in params])
        state = {}
        for index, p in enumerate(params):
            for key, value in optimizer.state[p].items():
                if key == "step":
                    state[f"{index}.step"] = float(value)
                elif value is not None:
                    state[f"{index}.{key}"] = encode(value)
        configs[name] = {"optimizer": cls_name, "first": first, "second": second, "history": history, "state": state}
    return {
        "initial": [encode(p) for p in initial],
        "grads": [[encode(x) for x in step] for step in grads],
        "no_grad_step": NO_GRAD_STEP,
        "configs": configs,
    }


# ---- clipping -------------------------------------------------------------------------------------------

def clip_fixture() -> dict:
    g = torch.Generator().manual_seed(3)
    grads = [torch.randn(shape, generator=g) * scale for shape, scale in [((5, 4), 1.0), ((7,), 3.0), ((2, 3, 2), 0.1)]]
    cases = []
    for norm_type in [2.0, 1.0, 3.0, float("inf")]:
        for max_norm in [0.5, 1e4]:
            params = [torch.zeros_like(x, requires_grad=True) for x in grads]
            for p, x in zip(params, grads):
                p.grad = x.clone()
            total = torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type, foreach=False)
            cases.append({
                "norm_type": "inf" if norm_type == float("inf") else norm_type,
                "max_norm": max_norm,
                "total_norm": encode(total),
                "clipped": [encode(p.grad) for p in params],
            })
    return {"grads": [encode(x) for x in grads], "cases": cases}


# ---- schedules ------------------------------------------------------------------------------------------

SCHEDULES = [
    ("constant", None, None, 12),
    ("constant_with_warmup", 4, None, 12),
    ("linear", 3, 10, 14),
    ("linear", 0, 7, 9),
    ("cosine", 5, 50, 55),
    ("cosine", 0, 20, 22),
    ("cosine_with_restarts", 2, 20, 22),
]


def schedules_fixture() -> list[dict]:
    cases = []
    for name, warmup, total, steps in SCHEDULES:
        param_a = torch.zeros(1, requires_grad=True)
        param_b = torch.zeros(1, requires_grad=True)
        optimizer = torch.optim.SGD([{"params": [param_a], "lr": 0.1}, {"params": [param_b], "lr": 0.03}])
        scheduler = get_scheduler(name, optimizer, num_warmup_steps=warmup, num_training_steps=total)
        lrs = [scheduler.get_last_lr()]
        for _ in range(steps):
            optimizer.step()
            scheduler.step()
            lrs.append(scheduler.get_last_lr())
        cases.append({"name": name, "warmup": warmup, "total": total, "lrs": lrs})
    return cases


# ---- training parity: a small MLP --------------------------------------------------------------------------

TRAIN_STEPS = 50


def mlp_fixture() -> dict:
    g = torch.Generator().manual_seed(21)
    inputs = torch.randn(64, 16, generator=g)
    labels = torch.randint(0, 4, (64,), generator=g)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 32), nn.SiLU(), nn.Linear(32, 4))
    initial = {k: encode(v) for k, v in model.state_dict().items()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.01, foreach=False)
    losses = []
    for _ in range(TRAIN_STEPS):
        loss = F.cross_entropy(model(inputs), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return {
        "seed": 0, "inputs": encode(inputs), "labels": encode(labels), "initial": initial, "losses": losses,
        "final": {k: encode(v) for k, v in model.state_dict().items()},
    }


# ---- training parity: a tiny transformer (tiny_transformer.py mirrors test/engine/tiny-transformer.ts) ----

TRANSFORMER = {"vocab_size": 24, "block_size": 12, "dim": 32, "heads": 4, "layers": 2}
TRAINING = {"lr": 3e-3, "betas": [0.9, 0.95], "weight_decay": 0.1, "warmup_steps": 5, "max_grad_norm": 1.0, "batch_size": 8}


def transformer_data(g: torch.Generator) -> torch.Tensor:
    """64 sequences of block_size + 1 tokens counting up (mod vocab) from a random start by a random stride."""
    vocab, length = TRANSFORMER["vocab_size"], TRANSFORMER["block_size"] + 1
    starts = torch.randint(0, vocab, (64, 1), generator=g)
    strides = torch.randint(1, 4, (64, 1), generator=g)
    return (starts + strides * torch.arange(length)) % vocab


def transformer_fixture() -> dict:
    data = transformer_data(torch.Generator().manual_seed(8))
    torch.manual_seed(42)
    model = TinyTransformer(**TRANSFORMER)
    initial = {k: encode(v) for k, v in model.state_dict().items()}
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": TRAINING["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=TRAINING["lr"], betas=tuple(TRAINING["betas"]), foreach=False,
    )
    scheduler = get_scheduler("cosine", optimizer, num_warmup_steps=TRAINING["warmup_steps"], num_training_steps=TRAIN_STEPS)
    batch = TRAINING["batch_size"]
    losses, grad_norms, lrs = [], [], []
    for step in range(TRAIN_STEPS):
        start = (step * batch) % data.shape[0]
        chunk = data[start:start + batch]
        tokens, targets = chunk[:, :-1], chunk[:, 1:]
        logits = model(tokens)
        loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), TRAINING["max_grad_norm"], foreach=False)
        lrs.append(scheduler.get_last_lr())
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
        grad_norms.append(norm.item())
    return {
        "seed": 42, "config": TRANSFORMER, "training": TRAINING, "steps": TRAIN_STEPS, "data": encode(data),
        "initial": initial, "losses": losses, "grad_norms": grad_norms, "lrs": lrs,
        "final": {k: encode(v) for k, v in model.state_dict().items()},
    }


def generate(out_dir: pathlib.Path) -> None:
    (out_dir / "optim.json").write_text(json.dumps(optim_fixture()))
    (out_dir / "clip.json").write_text(json.dumps(clip_fixture()))
    (out_dir / "schedules.json").write_text(json.dumps(schedules_fixture()))
    (out_dir / "mlp.json").write_text(json.dumps(mlp_fixture()))
    (out_dir / "transformer.json").write_text(json.dumps(transformer_fixture()))
