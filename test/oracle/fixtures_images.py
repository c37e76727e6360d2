"""Oracle for src/pipeline/images.ts: diffusers' VaeImageProcessor post- and pre-processing."""
import json
import pathlib

import numpy as np
import torch
from diffusers.image_processor import VaeImageProcessor
from safetensors.torch import save_file

INPUTS: list[str] = []


def generate(out_dir: pathlib.Path) -> None:
    g = torch.Generator().manual_seed(7)
    # Values beyond [-1, 1] exercise the clamp; exact halves exercise round-half-to-even.
    decoded = torch.rand(2, 3, 5, 7, generator=g) * 2.4 - 1.2
    decoded[0, 0, 0, :4] = torch.tensor([-1.0, 1.0, 1 / 255 - 1, 0.0])
    processor = VaeImageProcessor(vae_scale_factor=1)
    pil = processor.postprocess(decoded, output_type="pil")
    pixels = torch.from_numpy(np.stack([np.asarray(im) for im in pil]))
    # Preprocess of those PIL images back to [-1, 1] (vae_scale_factor=1: no resizing).
    back = processor.preprocess(pil, height=5, width=7)
    save_file({"decoded": decoded, "pixels": pixels.contiguous(), "preprocessed": back.float().contiguous()}, out_dir / "images.safetensors")
    (out_dir / "manifest.json").write_text(json.dumps({"note": "VaeImageProcessor defaults"}))
