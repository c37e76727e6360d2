"""PyTorch side of bench/gpu/parity.ts: the reference computations, on the device the TypeScript side uses.

Driven over stdin/stdout by parity.ts (one JSON object per line, as bench/harness.ts's PythonWorker speaks).
Start: argv[1] = {"device": "cuda:0"|"cpu", "threads": int, "tiny": <tiny SD1 pipeline folder>}; the worker
answers {"ready": true, "torch": ..., "diffusers": ..., "transformers": ..., "device_name": ...}.
Every command answers one line: its result, or {"error": "<type>: <message>", "traceback": ...}.

  {"cmd": "ops", "dir": D}      test/oracle/fixtures_ops.py's generate(D, device): the operator table's
                                inputs (drawn on the CPU), outputs and gradients computed on the device
  {"cmd": "model", "model": M, "mode": "fp32"|"fp16"|"bf16", "inputs": F, "out": O, "params": [...]}
                                M = unet | vae_encode | vae_decode | clip | unet_backward on the inputs of F
                                (fp32 models, fp16/bf16 under torch.autocast); the outputs, as float32, into O
  {"cmd": "txt2img", "dtype": "float32"|"float16", "prompt": P, "seed": S, "steps": N, "guidance": G, "out": O}
                                diffusers' StableDiffusionPipeline: the final latents and the uint8 pixels
"""
import json
import pathlib
import platform
import sys
import time
import traceback

import diffusers
import numpy as np
import torch
import transformers
from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
from safetensors.torch import load_file, save_file
from transformers import CLIPTextModel

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "test" / "oracle"))
import fixtures_ops  # noqa: E402  (the operator table's oracle, run here on the device)

AUTOCAST = {"fp16": torch.float16, "bf16": torch.bfloat16}


class Oracle:
    def __init__(self, device: str, tiny: str):
        self.device = device
        self.device_type = torch.device(device).type
        self.tiny = pathlib.Path(tiny)
        self.models = {}

    def model(self, name):
        """The tiny pipeline's component `name` in float32 on the device, loaded once."""
        if name not in self.models:
            folder = self.tiny / name
            cls = {"unet": UNet2DConditionModel, "vae": AutoencoderKL, "text_encoder": CLIPTextModel}[name]
            self.models[name] = cls.from_pretrained(folder).to(self.device).eval()
        return self.models[name]

    def ops(self, msg):
        started = time.perf_counter()
        fixtures_ops.generate(pathlib.Path(msg["dir"]), self.device)
        manifest = json.loads((pathlib.Path(msg["dir"]) / "manifest.json").read_text())
        failed = [c["case"]["name"] for c in manifest["cases"] if "error" in c]
        return {"seconds": time.perf_counter() - started, "cases": len(manifest["cases"]), "torch_failed": failed}

    def run_model(self, msg):
        x = {k: v.to(self.device) for k, v in load_file(msg["inputs"]).items()}
        name, mode = msg["model"], msg["mode"]
        enabled = mode != "fp32"
        with torch.autocast(self.device_type, dtype=AUTOCAST.get(mode, torch.bfloat16), enabled=enabled):
            if name == "unet_backward":
                unet = self.model("unet")
                unet.zero_grad(set_to_none=True)
                out = unet(x["unet.sample"], msg["timestep"], x["unet.text"]).sample
                loss = out.square().mean()
                loss.backward()
                params = dict(unet.named_parameters())
                outs = {"loss": loss.reshape(1), **{p: params[p].grad for p in msg["params"]}}
                unet.zero_grad(set_to_none=True)
            else:
                with torch.no_grad():
                    outs = {"output": self.forward(name, x, msg)}
        answer = {"dtypes": {k: str(v.dtype).replace("torch.", "") for k, v in outs.items()}}
        if enabled and name != "unet_backward":  # what autocast itself changes: the scale a wrong cast would show at
            with torch.no_grad():
                full = self.forward(name, x, msg).float()
            effect = (outs["output"].float() - full).abs().max() / full.abs().max().clamp(min=1)
            answer["autocast_effect"] = effect.item()
        save_file({k: v.detach().float().cpu().contiguous() for k, v in outs.items()}, msg["out"])
        return answer

    def forward(self, name, x, msg):
        if name == "unet":
            return self.model("unet")(x["unet.sample"], msg["timestep"], x["unet.text"]).sample
        if name == "vae_encode":
            return self.model("vae").encode(x["vae.image"]).latent_dist.mean
        if name == "vae_decode":
            return self.model("vae").decode(x["vae.latents"]).sample
        if name == "clip":
            return self.model("text_encoder")(x["clip.ids"]).last_hidden_state
        raise ValueError(f"unknown model {name}")

    def txt2img(self, msg):
        dtype = getattr(torch, msg["dtype"])
        pipe = StableDiffusionPipeline.from_pretrained(self.tiny, dtype=dtype, safety_checker=None).to(self.device)
        pipe.set_progress_bar_config(disable=True)
        kwargs = dict(prompt=msg["prompt"], num_inference_steps=msg["steps"], guidance_scale=msg["guidance"])
        latents = pipe(**kwargs, generator=torch.Generator("cpu").manual_seed(msg["seed"]), output_type="latent").images
        pil = pipe(**kwargs, generator=torch.Generator("cpu").manual_seed(msg["seed"]), output_type="pil").images
        pixels = torch.from_numpy(np.stack([np.asarray(image) for image in pil]))
        save_file({"latents": latents.float().cpu().contiguous(), "pixels": pixels.contiguous()}, msg["out"])
        return {"latents_dtype": str(latents.dtype).replace("torch.", "")}


def tf32_flags():
    """PyTorch's TF32 switches as this process sees them (libtorch's defaults, like our engine's)."""
    try:
        return {"matmul": torch.backends.cuda.matmul.allow_tf32, "cudnn": torch.backends.cudnn.allow_tf32}
    except Exception as error:  # noqa: BLE001 - informational only
        return f"unknown ({error})"


def main():
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    cfg = json.loads(sys.argv[1])
    torch.set_num_threads(cfg["threads"])
    device = cfg["device"]
    oracle = Oracle(device, cfg["tiny"])
    on_cuda = device.startswith("cuda")
    print(json.dumps({
        "ready": True, "torch": torch.__version__, "diffusers": diffusers.__version__,
        "transformers": transformers.__version__, "numpy": np.__version__, "python": platform.python_version(),
        "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version() if on_cuda else None,
        "device_name": torch.cuda.get_device_name(torch.device(device)) if on_cuda else platform.processor() or "cpu",
        "threads": torch.get_num_threads(),
        "tf32": tf32_flags(),
    }), flush=True)
    handlers = {"ops": oracle.ops, "model": oracle.run_model, "txt2img": oracle.txt2img}
    for line in sys.stdin:
        msg = json.loads(line)
        if msg["cmd"] == "quit":
            break
        try:
            answer = handlers[msg["cmd"]](msg)
        except Exception as error:  # noqa: BLE001 - every failure goes back to parity.ts, which records it
            answer = {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
