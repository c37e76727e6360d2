"""safetensors oracle: the reference Python package writes files for the TypeScript reader, and checks
files the TypeScript writer made.

    generate(out_dir)                       (run by generate.py)  reference files + expected.json
    python fixtures_safetensors.py write OUT_DIR                  the same, into OUT_DIR
    python fixtures_safetensors.py check FILE EXPECTED_JSON       read a TS-written file and compare
    python fixtures_safetensors.py accepts DIR                    which files in DIR the reference loads

expected.json maps each file to {"metadata": {...} | null, "tensors": {name: {dtype, shape, hex[, values]}}}
where hex is the tensor's raw little-endian bytes, so every dtype is compared bit for bit.
"""
from __future__ import annotations

import json
import pathlib
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load, load_file, save, save_file

INPUTS: list[str] = []

NAMES = {
    torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}


def raw_hex(t: torch.Tensor) -> str:
    return t.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes().hex()


def describe(t: torch.Tensor, with_values: bool = False) -> dict:
    out = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "hex": raw_hex(t)}
    if with_values:
        out["values"] = t.reshape(-1).tolist()
    return out


def sample(dtype: torch.dtype, shape: list[int], g: torch.Generator) -> torch.Tensor:
    """Deterministic values that exercise each dtype: specials for floats, extremes for integers."""
    n = 1
    for s in shape:
        n *= s
    if dtype == torch.bool:
        return (torch.rand(n, generator=g) > 0.5).reshape(shape)
    if dtype.is_floating_point:
        values = torch.randn(n, generator=g, dtype=torch.float64) * 100
        specials = [float("nan"), float("inf"), float("-inf"), -0.0, 1e-40, 65504.0]
        for i, v in enumerate(specials[: max(0, n - 1)]):
            values[i] = v
        return values.to(dtype).reshape(shape)
    info = torch.iinfo(dtype)
    values = torch.randint(info.min, info.max, (n,), generator=g, dtype=dtype)
    if n >= 2:
        values[0], values[1] = info.min, info.max
    return values.reshape(shape)


def build() -> dict[str, tuple[dict[str, torch.Tensor], dict[str, str] | None]]:
    g = torch.Generator().manual_seed(1234)
    dtypes = {}
    for dtype, name in NAMES.items():
        dtypes[f"{name}.matrix"] = sample(dtype, [3, 5], g)
        dtypes[f"{name}.scalar"] = sample(dtype, [], g)
        dtypes[f"{name}.empty"] = sample(dtype, [2, 0, 3], g)
    dtypes["f32.values"] = torch.arange(12, dtype=torch.float32).reshape(2, 2, 3) / 4
    names = {
        "é": torch.tensor([1.5]), "名前.weight": torch.tensor([[1, 2], [3, 4]], dtype=torch.int32),
        "emoji 🙂": torch.tensor([True, False]), 'quote" back\\slash': torch.tensor([7], dtype=torch.int8),
        "new\nline\ttab": torch.tensor([2.0], dtype=torch.float64), "__proto__": torch.tensor([3], dtype=torch.int64),
        "constructor": torch.tensor([4], dtype=torch.uint8), "": torch.tensor([5], dtype=torch.int16),
    }
    return {
        "dtypes.safetensors": (dtypes, {"format": "pt", "note": "héllo ✓ 名前", "empty": "", "__proto__": "kept"}),
        "names.safetensors": (names, {"ключ": "значение"}),
        "no_metadata.safetensors": ({"w": torch.ones(4, 4, dtype=torch.bfloat16)}, None),
        "nothing.safetensors": ({}, None),
        "only_metadata.safetensors": ({}, {"a": "1"}),
    }


def generate(out_dir: pathlib.Path) -> None:
    expected = {}
    for file, (tensors, metadata) in build().items():
        save_file(tensors, str(out_dir / file), metadata=metadata)
        expected[file] = {
            "metadata": metadata,
            "tensors": {k: describe(v, with_values=(k == "f32.values")) for k, v in tensors.items()},
        }
    (out_dir / "expected.json").write_text(json.dumps(expected, ensure_ascii=False, indent=1))


def check(file: str, expected_path: str) -> None:
    """Reads a TS-written file with the reference reader; fails loudly on any difference."""
    expected = json.loads(pathlib.Path(expected_path).read_text())
    tensors = load_file(file)
    with safe_open(file, "pt") as f:
        metadata = f.metadata()
    if set(tensors) != set(expected["tensors"]):
        raise SystemExit(f"names differ: {sorted(tensors)} vs {sorted(expected['tensors'])}")
    for name, want in expected["tensors"].items():
        got = describe(tensors[name])
        for key in ("dtype", "shape", "hex"):
            if got[key] != want[key]:
                raise SystemExit(f"tensor {name!r}: {key} differs: {got[key]!r} vs {want[key]!r}")
    if (metadata or None) != (expected["metadata"] or None):
        raise SystemExit(f"metadata differs: {metadata!r} vs {expected['metadata']!r}")
    data = pathlib.Path(file).read_bytes()
    # The reference writer orders tensors the same way; with at most one metadata key (its metadata is a
    # HashMap, so several keys come out in random order) the bytes must then be identical.
    identical = save(tensors, metadata=expected["metadata"]) == data
    print(json.dumps({"ok": True, "identical": identical}))


def accepts(folder: str) -> None:
    """One line of JSON: {file name: true when the reference loads it}."""
    result = {}
    for path in sorted(pathlib.Path(folder).iterdir()):
        try:
            load(path.read_bytes())
            result[path.name] = True
        except Exception:  # noqa: BLE001 - any refusal counts as a rejection
            result[path.name] = False
    print(json.dumps(result))


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "write":
        out = pathlib.Path(args[0])
        out.mkdir(parents=True, exist_ok=True)
        generate(out)
    elif command == "check":
        check(*args)
    elif command == "accepts":
        accepts(*args)
    else:
        raise SystemExit(f"unknown command {command}")
