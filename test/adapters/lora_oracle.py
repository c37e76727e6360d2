"""Oracle for test/adapters/export-oracle.test.ts: diffusers' own LoRA loading applied to our exported files.

Usage: lora_oracle.py <spec.json>. The spec lists cases {"name", "pipeline" (folder), "lora" (file or null),
"prompt", "seed", "steps", "guidance"}, an "inputs" safetensors file (per pipeline kind: "<kind>.sample",
"<kind>.timestep", "<kind>.encoder_hidden_states", "<kind>.input_ids") and an "out" path. For each case the
pipeline is loaded fresh, `pipe.load_lora_weights(lora)` applied (diffusers converts kohya keys itself; peft
does the LoRA), and the UNet output, the text encoder's last hidden state and a txt2img image (output_type
"np", in [0, 1]) for a fixed seed are saved as "<name>.unet", "<name>.text", "<name>.image".
"""
import json
import sys

import torch
from diffusers import StableDiffusionPipeline
from diffusers.utils import logging as df_logging
from safetensors.torch import load_file, save_file
from transformers.utils import logging as hf_logging


def main() -> None:
    spec = json.loads(open(sys.argv[1], encoding="utf-8").read())
    df_logging.set_verbosity_error()
    hf_logging.set_verbosity_error()
    torch.set_num_threads(1)
    inputs = load_file(spec["inputs"])
    out = {}
    for case in spec["cases"]:
        pipe = StableDiffusionPipeline.from_pretrained(case["pipeline"], safety_checker=None)
        pipe.set_progress_bar_config(disable=True)
        if case["lora"] is not None:
            pipe.load_lora_weights(case["lora"])
        kind = case["kind"]
        with torch.no_grad():
            unet = pipe.unet(inputs[f"{kind}.sample"], inputs[f"{kind}.timestep"], inputs[f"{kind}.encoder_hidden_states"]).sample
            text = pipe.text_encoder(inputs[f"{kind}.input_ids"])[0]
        image = pipe(prompt=case["prompt"], num_inference_steps=case["steps"], guidance_scale=case["guidance"],
                     generator=torch.Generator("cpu").manual_seed(case["seed"]), output_type="np").images
        name = case["name"]
        out[f"{name}.unet"] = unet.contiguous()
        out[f"{name}.text"] = text.contiguous()
        out[f"{name}.image"] = torch.from_numpy(image).contiguous()
    save_file(out, spec["out"])


if __name__ == "__main__":
    main()
