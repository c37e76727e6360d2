"""PyTorch side of bench/unet: diffusers' UNet2DConditionModel forward and forward+backward, and txt2img on
the tiny pipeline, driven over stdin/stdout by run.ts (one JSON object per line).

Start: argv[1] = {"config": {...}, "weights_dir": str, "batch": int, "latent": int, "threads": int,
"device": str, "dtype": str, "tiny_pipeline": str, "txt2img_steps": int}. The worker builds the UNet from the
config with torch.manual_seed(0), saves it to weights_dir (the TypeScript side loads the same weights) and
answers {"ready": ...}. Commands: {"cmd": "forward"|"train"|"txt2img", "n": k} -> {"times": [...]};
{"cmd": "output"} -> the forward output's sum and abs-sum (a check that both sides compute the same thing).
"""
import json
import sys
import time

import torch
from diffusers import StableDiffusionPipeline, UNet2DConditionModel


def main():
    cfg = json.loads(sys.argv[1])
    torch.set_num_threads(cfg["threads"])
    device = cfg["device"]
    dtype = getattr(torch, cfg["dtype"])
    torch.manual_seed(0)
    unet = UNet2DConditionModel(**cfg["config"])
    unet.save_pretrained(cfg["weights_dir"], safe_serialization=True)
    unet = unet.to(device=device, dtype=dtype)
    g = torch.Generator().manual_seed(1)
    b, s = cfg["batch"], cfg["latent"]
    sample = torch.randn(b, cfg["config"]["in_channels"], s, s, generator=g).to(device, dtype)
    text = torch.randn(b, 77, cfg["config"]["cross_attention_dim"], generator=g).to(device, dtype)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    pipe = None
    if cfg.get("tiny_pipeline"):
        pipe = StableDiffusionPipeline.from_pretrained(cfg["tiny_pipeline"], safety_checker=None)
        pipe.set_progress_bar_config(disable=True)

    def forward():
        with torch.no_grad():
            return unet(sample, 500, text).sample

    def train():
        out = unet(sample, 500, text).sample
        out.float().square().mean().backward()
        unet.zero_grad(set_to_none=True)

    def txt2img():
        pipe("a sks face", num_inference_steps=cfg["txt2img_steps"], generator=torch.Generator("cpu").manual_seed(0),
             output_type="np")

    jobs = {"forward": forward, "train": train, "txt2img": txt2img}
    print(json.dumps({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "parameters": sum(p.numel() for p in unet.parameters()),
                      "device_name": torch.cuda.get_device_name(0) if device.startswith("cuda") else "cpu"}), flush=True)
    for line in sys.stdin:
        msg = json.loads(line)
        if msg["cmd"] == "quit":
            break
        if msg["cmd"] == "output":
            out = forward().float()
            print(json.dumps({"sum": out.sum().item(), "abs_sum": out.abs().sum().item()}), flush=True)
            continue
        job = jobs[msg["cmd"]]
        times = []
        for _ in range(msg["n"]):
            sync()
            t0 = time.perf_counter()
            job()
            sync()
            times.append(time.perf_counter() - t0)
        print(json.dumps({"times": times}), flush=True)


if __name__ == "__main__":
    main()
