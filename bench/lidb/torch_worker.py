"""PyTorch side of bench/lidb: diffusers' DreamBooth-LoRA training step (examples/dreambooth/train_dreambooth_lora.py)
on the tiny pipeline, driven over stdin/stdout by run.ts (one JSON object per line).

Start: argv[1] = {"pipeline": str, "threads": int, "rank": int, "batch": int, "resolution": int}. The worker
loads the pipeline, adds peft LoRA (rank r, alpha r, the script's targets: UNet to_q/to_k/to_v/to_out.0 and
the text encoder's q/k/v/out_proj, trained jointly as with --train_text_encoder), an AdamW over the LoRA
parameters, and answers {"ready": ...}. Commands {"cmd": "train" | "train_cached", "n": k} -> {"times": [...]}:
"train" is the script's step (VAE encode of the batch, latent sample × scaling factor, noise, timesteps, text
encoder, UNet, MSE, backward, clip_grad_norm_(1.0), AdamW step, zero_grad); "train_cached" is the same from a
posterior computed once (what our trainer does without augmentation), the like-for-like comparison.
"""
import json
import sys
import time

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, StableDiffusionPipeline
from diffusers.utils import logging as df_logging
from peft import LoraConfig
from transformers import CLIPTokenizer
from transformers.utils import logging as hf_logging


def main():
    cfg = json.loads(sys.argv[1])
    torch.set_num_threads(cfg["threads"])
    df_logging.set_verbosity_error()
    df_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    pipe = StableDiffusionPipeline.from_pretrained(cfg["pipeline"], safety_checker=None)
    tokenizer = CLIPTokenizer.from_pretrained(cfg["pipeline"] + "/tokenizer")
    unet, text_encoder, vae = pipe.unet, pipe.text_encoder, pipe.vae
    noise_scheduler = DDPMScheduler.from_pretrained(cfg["pipeline"], subfolder="scheduler")
    for model in (unet, text_encoder, vae):
        model.requires_grad_(False)
    rank = cfg["rank"]
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=["to_k", "to_q", "to_v", "to_out.0"]))
    text_encoder.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=["q_proj", "k_proj", "v_proj", "out_proj"]))
    unet.train()
    text_encoder.train()
    params = [p for m in (unet, text_encoder) for p in m.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), weight_decay=1e-2, eps=1e-8)
    g = torch.Generator().manual_seed(0)
    batch, size = cfg["batch"], cfg["resolution"]
    pixels = torch.rand(batch, 3, size, size, generator=g) * 2 - 1
    input_ids = tokenizer(["a sks face"] * batch, padding="max_length", max_length=tokenizer.model_max_length,
                          truncation=True, return_tensors="pt").input_ids
    with torch.no_grad():
        posterior = vae.encode(pixels).latent_dist

    def step(cached: bool):
        if cached:
            latents = posterior.sample() * vae.config.scaling_factor
        else:
            with torch.no_grad():
                latents = vae.encode(pixels).latent_dist.sample() * vae.config.scaling_factor
        noise = torch.randn_like(latents)
        timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (batch,)).long()
        noisy = noise_scheduler.add_noise(latents, noise, timesteps)
        encoder_hidden_states = text_encoder(input_ids)[0]
        model_pred = unet(noisy, timesteps, encoder_hidden_states).sample
        loss = F.mse_loss(model_pred.float(), noise.float(), reduction="mean")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad()

    print(json.dumps({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "lora_parameters": sum(p.numel() for p in params)}), flush=True)
    for line in sys.stdin:
        msg = json.loads(line)
        if msg["cmd"] == "quit":
            break
        cached = msg["cmd"] == "train_cached"
        times = []
        for _ in range(msg["n"]):
            t0 = time.perf_counter()
            step(cached)
            times.append(time.perf_counter() - t0)
        print(json.dumps({"times": times}), flush=True)


if __name__ == "__main__":
    main()
