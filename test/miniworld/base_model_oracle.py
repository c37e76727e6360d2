"""Oracle for test/miniworld/base-model.test.ts: diffusers and transformers on the exported mini-world base model.

Usage: base_model_oracle.py <spec.json>. The spec gives "pipeline" (the <out>/base folder written by
`hdb miniworld build`), "inputs" (a safetensors file with "unet.sample", "unet.timestep",
"unet.encoder_hidden_states", "text.input_ids" and the EMA case "ema.value.<k>.<i>"), "prompts", "seed", "steps",
"guidance", "ema_decay" and "out". The pipeline is loaded with
`StableDiffusionPipeline.from_pretrained(folder, torch_dtype=torch.float32)` (the float16 files cast up, as our
loader does), and the oracle writes:

    unet              the UNet's output on the given inputs
    text              the text encoder's last hidden state for the given ids; text_pooled its pooled output
    prompt_ids        diffusers' own tokenization of the prompts (max_length padding), to compare with ours
    image             the txt2img images of all prompts in one call (output_type "np", in [0, 1], N × H × W × 3)
    ema.shadow.<k>.<i> diffusers' EMAModel shadows after update k of the parameters "ema.value.<k>.<i>"

and a JSON file "<out>.json" with the loaded scheduler's class name.
"""
import json
import sys

import torch
from diffusers import StableDiffusionPipeline
from diffusers.training_utils import EMAModel
from diffusers.utils import logging as df_logging
from safetensors.torch import load_file, save_file
from transformers.utils import logging as hf_logging


def ema_shadows(inputs: dict, decay: float) -> dict:
    """diffusers' EMAModel (default warm-up, foreach off) fed the parameter values of the spec, update by update."""
    updates = sorted({int(name.split(".")[2]) for name in inputs if name.startswith("ema.value.")})
    count = len({name.split(".")[3] for name in inputs if name.startswith("ema.value.0.")})
    parameters = [torch.nn.Parameter(inputs[f"ema.initial.{i}"].clone()) for i in range(count)]
    ema = EMAModel(parameters, decay=decay)
    out = {}
    for k in updates:
        with torch.no_grad():
            for i, p in enumerate(parameters):
                p.copy_(inputs[f"ema.value.{k}.{i}"])
        ema.step(parameters)
        for i, shadow in enumerate(ema.shadow_params):
            out[f"ema.shadow.{k}.{i}"] = shadow.detach().clone().contiguous()
    return out


def main() -> None:
    spec = json.loads(open(sys.argv[1], encoding="utf-8").read())
    df_logging.set_verbosity_error()
    hf_logging.set_verbosity_error()
    torch.set_num_threads(1)
    inputs = load_file(spec["inputs"])
    pipe = StableDiffusionPipeline.from_pretrained(spec["pipeline"], torch_dtype=torch.float32, safety_checker=None)
    pipe.set_progress_bar_config(disable=True)
    out = {}
    with torch.no_grad():
        out["unet"] = pipe.unet(inputs["unet.sample"], inputs["unet.timestep"], inputs["unet.encoder_hidden_states"]).sample
        text = pipe.text_encoder(inputs["text.input_ids"])
        out["text"] = text.last_hidden_state
        out["text_pooled"] = text.pooler_output
    ids = pipe.tokenizer(spec["prompts"], padding="max_length", max_length=pipe.tokenizer.model_max_length,
                         truncation=True, return_tensors="pt").input_ids
    out["prompt_ids"] = ids.to(torch.int64)
    image = pipe(prompt=spec["prompts"], num_inference_steps=spec["steps"], guidance_scale=spec["guidance"],
                 generator=torch.Generator("cpu").manual_seed(spec["seed"]), output_type="np").images
    out["image"] = torch.from_numpy(image)
    out.update(ema_shadows(inputs, spec["ema_decay"]))
    save_file({name: t.contiguous() for name, t in out.items()}, spec["out"])
    with open(spec["out"] + ".json", "w", encoding="utf-8") as f:
        json.dump({"scheduler": type(pipe.scheduler).__name__}, f)


if __name__ == "__main__":
    main()
