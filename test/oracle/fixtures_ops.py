"""Operator parity fixtures: PyTorch's outputs and gradients for every case of test/engine/parity-cases.ts.

The cases come from the compiled table (`node dist/test/engine/parity-cases.js` prints them as JSON). For each
case, with a seed derived from its name:
  - inputs are drawn with NumPy (float32 normal/uniform values, int64 indices, boolean masks) and cast to the
    spec's dtype; those marked `grad` require grad;
  - the case's Python expression is evaluated with torch, F, math, np and x (the inputs) after
    torch.manual_seed(seed) when the case has a seed;
  - for every output that requires grad, g is a fixed random tensor of its shape, and the gradients of
    sum(output * g) w.r.t. every input that requires grad are computed (zeros where unused).
With `device` (bench/gpu/parity_worker.py passes e.g. "cuda:0"), the same inputs are drawn on the CPU and
moved to the device, the expression runs there (tensors it creates are made there too) and every saved tensor is
moved back to the CPU; a case that PyTorch itself cannot run on the device is recorded with its "error".
Written: tensors.safetensors (`<case>/x<i>` inputs, `<case>/y<i>` outputs, `<case>/g<i>` and `<case>/dx<i>`)
and manifest.json (per case: its spec as printed, which outputs require grad, which inputs got gradients).
"""
from __future__ import annotations

import json
import math
import pathlib
import subprocess
import zlib

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

ROOT = pathlib.Path(__file__).resolve().parents[2]
INPUTS = ["test/engine/parity-cases.ts"]

CASES_TS = ROOT / "test" / "engine" / "parity-cases.ts"
CASES_JS = ROOT / "dist" / "test" / "engine" / "parity-cases.js"

DTYPES = {
    "float32": torch.float32, "float64": torch.float64, "float16": torch.float16, "bfloat16": torch.bfloat16,
    "int64": torch.int64, "int32": torch.int32, "int16": torch.int16, "int8": torch.int8, "uint8": torch.uint8,
    "bool": torch.bool,
}


def load_cases(table: str) -> list[dict]:
    """One table ("ops" or "random") of the compiled case list; rebuilds the TypeScript when it is stale."""
    if not CASES_JS.exists() or CASES_JS.stat().st_mtime < CASES_TS.stat().st_mtime:
        # A full (non-incremental) build rewrites every output, so the check below then holds.
        subprocess.run(["npx", "tsc", "-p", "tsconfig.json"], cwd=ROOT, check=False)
        if not CASES_JS.exists() or CASES_JS.stat().st_mtime < CASES_TS.stat().st_mtime:
            raise RuntimeError(f"{CASES_JS.relative_to(ROOT)} is missing or older than its source: run `npx tsc -p tsconfig.json`")
    done = subprocess.run(["node", str(CASES_JS)], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"node {CASES_JS.relative_to(ROOT)} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])[table]  # the table is the last line


def case_seed(name: str) -> int:
    return zlib.crc32(name.encode())


def make_input(spec: dict, rng: np.random.Generator, device: str = "cpu") -> torch.Tensor:
    shape = tuple(spec["shape"])
    kind = spec["kind"]
    if kind == "normal":
        values = np.asarray(rng.standard_normal(shape), dtype=np.float32)
    elif kind == "uniform":
        values = np.asarray(rng.uniform(spec["low"], spec["high"], shape), dtype=np.float32)
    elif kind == "int":
        values = np.asarray(rng.integers(spec["low"], spec["high"], shape), dtype=np.int64)
    elif kind == "mask":
        values = np.asarray(rng.random(shape) < spec["p"])
    else:
        raise ValueError(f"unknown input kind {kind}")
    x = torch.from_numpy(values).to(DTYPES[spec["dtype"]])
    if device != "cpu":
        x = x.to(device)
    if spec["grad"]:
        x.requires_grad_(True)
    return x


def as_list(value) -> list[torch.Tensor]:
    items = list(value) if isinstance(value, (tuple, list)) else [value]
    for item in items:
        if not isinstance(item, torch.Tensor):
            raise TypeError(f"a case expression returned {type(item).__name__}, not a tensor")
    return items


def saved(t: torch.Tensor) -> torch.Tensor:
    """A detached, contiguous CPU copy with its own storage (safetensors refuses shared or strided tensors)."""
    return t.detach().cpu().clone().contiguous()


def generate(out_dir: pathlib.Path, device: str = "cpu") -> None:
    tensors: dict[str, torch.Tensor] = {}
    manifest = []
    for case in load_cases("ops"):
        if device == "cpu":
            tensors.update(run_case(case, manifest, device))
            continue
        try:
            with torch.device(device):  # tensors the expression creates are made on the device, as x are
                tensors.update(run_case(case, manifest, device))
        except Exception as error:  # noqa: BLE001 - recorded for the TypeScript side, which reports it
            manifest.append({"case": case, "outputs": 0, "requiresGrad": [], "gradInputs": [],
                             "error": f"{type(error).__name__}: {error}"})
    save_file(tensors, str(out_dir / "tensors.safetensors"), metadata={"torch": torch.__version__})
    (out_dir / "manifest.json").write_text(json.dumps({"torch": torch.__version__, "cases": manifest}, indent=1) + "\n")


def run_case(case: dict, manifest: list, device: str) -> dict[str, torch.Tensor]:
    """One case's tensors (inputs, outputs, g, gradients) on the CPU; appends its manifest entry."""
    tensors: dict[str, torch.Tensor] = {}
    name = case["name"]
    rng = np.random.default_rng(case_seed(name))
    xs = [make_input(spec, rng, device) for spec in case["inputs"]]
    for i, x in enumerate(xs):
        tensors[f"{name}/x{i}"] = saved(x)  # before the expression runs: in-place cases change inputs
    if case["seed"] is not None:
        torch.manual_seed(case["seed"])
    outs = as_list(eval(case["torch"], {"torch": torch, "F": F, "math": math, "np": np, "x": xs}))
    requires = [bool(o.requires_grad) for o in outs]
    for i, o in enumerate(outs):
        tensors[f"{name}/y{i}"] = saved(o)
    wrt = [i for i, x in enumerate(xs) if x.requires_grad]
    diff = [o for o in outs if o.requires_grad]
    with_grad = case["grad"] and bool(diff) and bool(wrt)
    if with_grad:
        gs = [torch.from_numpy(np.asarray(rng.standard_normal(tuple(o.shape)), dtype=np.float32)).to(o.dtype) for o in diff]
        gs_on = gs if device == "cpu" else [g.to(o.device) for g, o in zip(gs, diff)]
        grads = torch.autograd.grad(diff, [xs[i] for i in wrt], gs_on, allow_unused=True, materialize_grads=True)
        for i, g in enumerate(gs):
            tensors[f"{name}/g{i}"] = saved(g)
        for i, dx in zip(wrt, grads):
            tensors[f"{name}/dx{i}"] = saved(dx)
    manifest.append({
        "case": case,
        "outputs": len(outs),
        "requiresGrad": requires,
        "gradInputs": wrt if with_grad else [],
    })
    return tensors
