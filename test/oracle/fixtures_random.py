"""Random-number parity fixtures: PyTorch's numbers for the random table of test/engine/parity-cases.ts.

For each case and each of its seeds: torch.manual_seed(seed), g = torch.Generator().manual_seed(seed + 1),
then the case's expression (with torch, F and g) is evaluated; its tensors are saved as
`<case>/<seed>/y<i>` in tensors.safetensors. The TypeScript side must reproduce them bit for bit.
"""
from __future__ import annotations

import json
import pathlib

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from fixtures_ops import as_list, load_cases, saved

INPUTS = ["test/engine/parity-cases.ts", "test/oracle/fixtures_ops.py"]


def generate(out_dir: pathlib.Path) -> None:
    tensors: dict[str, torch.Tensor] = {}
    manifest = []
    state = torch.get_rng_state()
    try:
        for case in load_cases("random"):
            counts = {}
            for seed in case["seeds"]:
                torch.manual_seed(int(seed))
                g = torch.Generator().manual_seed(int(seed) + 1)
                outs = as_list(eval(case["torch"], {"torch": torch, "F": F, "g": g}))
                for i, o in enumerate(outs):
                    tensors[f"{case['name']}/{seed}/y{i}"] = saved(o)
                counts[seed] = len(outs)
            manifest.append({"case": case, "outputs": counts})
    finally:
        torch.set_rng_state(state)
    save_file(tensors, str(out_dir / "tensors.safetensors"), metadata={"torch": torch.__version__})
    (out_dir / "manifest.json").write_text(json.dumps({"torch": torch.__version__, "cases": manifest}, indent=1) + "\n")
