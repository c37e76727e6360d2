"""PyTorch side of bench/gpu/sd15: diffusers with Stable Diffusion 1.5's real shapes and random weights, driven
over stdin/stdout by sd15.ts (one JSON object per line). Speed depends on shapes, not on weight values.

Start: argv[1] = {"dir": str, "tokenizer": str, "device": str, "make": bool, "shapes": "sd15"|"mini"}. With "make", the worker builds
SD1.5's UNet, VAE and CLIP text encoder from their published configs (runwayml/stable-diffusion-v1-5) with
torch.manual_seed(0) on the device, and saves them in float16 with SD1.5's PNDM scheduler config and the given
(small) tokenizer as a diffusers pipeline folder at "dir"; the TypeScript side loads the same files. Then it
answers {"ready": ...}. Commands, each answering one line:
  {"cmd": "load", "dtype": "float16"|"bfloat16"}     the pipeline in that dtype (as torch_dtype= does)
  {"cmd": "unet", "batch": B, "n": k}                k timed UNet forwards at 64×64 latents (no grad)
  {"cmd": "unet_output", "batch": B}                 sum and abs-sum of that forward (same-work check)
  {"cmd": "txt2img", "batch": B, "steps": S, "size": px, "n": k}  k timed generations (512 px), guidance 7.5, B images
  {"cmd": "train_setup", "dtype": D, "batch": B, "rank": r, "size": px}
        diffusers' DreamBooth-LoRA script set-up (examples/dreambooth/train_dreambooth_lora.py with
        --train_text_encoder --mixed_precision): frozen weights cast to D, peft LoRA on the UNet's
        to_q/k/v/out.0 and the text encoder's q/k/v/out_proj kept in float32, AdamW, autocast(D) for the
        forward, a GradScaler for float16 (as accelerate); the batch's VAE posterior computed once
  {"cmd": "train", "n": k}                           k timed training steps from that posterior
Timed answers are {"times": [...seconds], "peak_allocated": bytes, "peak_reserved": bytes}, peaks over the
block (torch.cuda.max_memory_allocated after reset_peak_memory_stats).
"""
import gc
import json
import sys
import time

import torch
import torch.nn.functional as F
import diffusers
from diffusers import AutoencoderKL, DDPMScheduler, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from diffusers.utils import logging as df_logging
from peft import LoraConfig
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer
from transformers.utils import logging as hf_logging

# runwayml/stable-diffusion-v1-5: unet/config.json, vae/config.json, text_encoder/config.json, scheduler_config.json
UNET = dict(
    sample_size=64, in_channels=4, out_channels=4, center_input_sample=False, flip_sin_to_cos=True, freq_shift=0,
    down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    block_out_channels=[320, 640, 1280, 1280], layers_per_block=2, downsample_padding=1, mid_block_scale_factor=1,
    act_fn="silu", norm_num_groups=32, norm_eps=1e-5, cross_attention_dim=768, attention_head_dim=8,
)
VAE = dict(
    in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
    block_out_channels=[128, 256, 512, 512], layers_per_block=2, act_fn="silu", latent_channels=4, norm_num_groups=32,
    sample_size=512,
)
TEXT = dict(
    vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
    max_position_embeddings=77, hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=768,
    bos_token_id=0, eos_token_id=2, pad_token_id=1,
)
SCHEDULER = dict(
    beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
    set_alpha_to_one=False, skip_prk_steps=True, steps_offset=1, clip_sample=False,
)
PROMPT = "a photo of a sks face"
# "mini": the same code paths at toy widths, for a dry run of the whole script on a CPU (not a benchmark).
MINI = dict(
    unet=dict(UNET, sample_size=16, block_out_channels=[32, 32, 64, 64], attention_head_dim=2),
    vae=dict(VAE, block_out_channels=[32, 32, 32, 32], sample_size=128),
    text=dict(TEXT, hidden_size=768, intermediate_size=256, num_hidden_layers=2),
)


def make(cfg):
    torch.manual_seed(0)
    shapes = MINI if cfg["shapes"] == "mini" else dict(unet=UNET, vae=VAE, text=TEXT)
    with torch.device(cfg["device"]):  # random init on the GPU: seconds instead of minutes
        unet, vae = UNet2DConditionModel(**shapes["unet"]), AutoencoderKL(**shapes["vae"])
        text = CLIPTextModel(CLIPTextConfig(**shapes["text"]))
    pipe = StableDiffusionPipeline(
        vae=vae.half(), text_encoder=text.half(), tokenizer=CLIPTokenizer.from_pretrained(cfg["tokenizer"]), unet=unet.half(),
        scheduler=PNDMScheduler.from_config(SCHEDULER), safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(cfg["dir"], safe_serialization=True)
    counts = {name: sum(p.numel() for p in m.parameters()) for name, m in (("unet", unet), ("vae", vae), ("text_encoder", text))}
    del pipe, unet, vae, text
    return counts


def main():
    cfg = json.loads(sys.argv[1])
    df_logging.set_verbosity_error()
    df_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    device = cfg["device"]
    cuda = device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    parameters = make(cfg) if cfg["make"] else None
    state = {}

    def inputs(batch):
        g = torch.Generator().manual_seed(1)
        dtype = state["pipe"].unet.dtype
        size = state["pipe"].unet.config.sample_size
        sample = torch.randn(batch, 4, size, size, generator=g).to(device, dtype)
        text = torch.randn(batch, 77, 768, generator=g).to(device, dtype)
        return sample, text

    def timed(job, n):
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        times = []
        for _ in range(n):
            sync()
            t0 = time.perf_counter()
            job()
            sync()
            times.append(time.perf_counter() - t0)
        peaks = {"peak_allocated": torch.cuda.max_memory_allocated(), "peak_reserved": torch.cuda.max_memory_reserved()} if cuda else {}
        return {"times": times, **peaks}

    def free():
        state.clear()
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()

    def load(msg):
        free()
        pipe = StableDiffusionPipeline.from_pretrained(cfg["dir"], torch_dtype=getattr(torch, msg["dtype"]), safety_checker=None)
        pipe.set_progress_bar_config(disable=True)
        state["pipe"] = pipe.to(device)
        return {"loaded": msg["dtype"]}

    def unet_job(batch):
        sample, text = inputs(batch)
        unet = state["pipe"].unet

        def forward():
            with torch.no_grad():
                return unet(sample, 500, text).sample
        return forward

    def txt2img(msg):
        def job():
            state["pipe"](PROMPT, num_inference_steps=msg["steps"], guidance_scale=7.5, height=msg["size"], width=msg["size"],
                          num_images_per_prompt=msg["batch"], generator=torch.Generator("cpu").manual_seed(0), output_type="np")
        return timed(job, msg["n"])

    def train_setup(msg):
        free()
        weight_dtype = getattr(torch, msg["dtype"])
        pipe = StableDiffusionPipeline.from_pretrained(cfg["dir"], torch_dtype=torch.float32, safety_checker=None)
        unet, text_encoder, vae = pipe.unet, pipe.text_encoder, pipe.vae
        for model in (unet, text_encoder, vae):
            model.requires_grad_(False)
            model.to(device, dtype=weight_dtype)
        rank = msg["rank"]
        unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=["to_k", "to_q", "to_v", "to_out.0"]))
        text_encoder.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=["q_proj", "k_proj", "v_proj", "out_proj"]))
        params = [p for m in (unet, text_encoder) for p in m.parameters() if p.requires_grad]
        for p in params:  # the script's cast_training_params(models, dtype=torch.float32)
            p.data = p.data.float()
        unet.train()
        text_encoder.train()
        optimizer = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), weight_decay=1e-2, eps=1e-8)
        scaler = torch.amp.GradScaler("cuda") if msg["dtype"] == "float16" else None
        scheduler = DDPMScheduler.from_pretrained(cfg["dir"], subfolder="scheduler")
        batch = msg["batch"]
        g = torch.Generator().manual_seed(0)
        size = msg["size"]
        pixels = (torch.rand(batch, 3, size, size, generator=g) * 2 - 1).to(device, weight_dtype)
        ids = pipe.tokenizer([PROMPT] * batch, padding="max_length", max_length=pipe.tokenizer.model_max_length,
                             truncation=True, return_tensors="pt").input_ids.to(device)
        with torch.no_grad():
            posterior = vae.encode(pixels).latent_dist

        def step():
            latents = posterior.sample() * vae.config.scaling_factor
            noise = torch.randn_like(latents)
            timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (batch,), device=device).long()
            noisy = scheduler.add_noise(latents, noise, timesteps)
            # float32: the script's --mixed_precision no (no autocast); otherwise autocast(D)
            with torch.autocast(device.split(":")[0], dtype=weight_dtype, enabled=weight_dtype != torch.float32):
                hidden = text_encoder(ids)[0]
                pred = unet(noisy, timesteps, hidden).sample
                loss = F.mse_loss(pred.float(), noise.float(), reduction="mean")
            if scaler:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
            optimizer.zero_grad()

        state.update(train=step, pipe=pipe)
        return {"lora_parameters": sum(p.numel() for p in params)}

    commands = {
        "load": load,
        "unet": lambda m: timed(unet_job(m["batch"]), m["n"]),
        "unet_output": lambda m: (lambda out: {"sum": out.sum().item(), "abs_sum": out.abs().sum().item()})(unet_job(m["batch"])().float()),
        "txt2img": txt2img,
        "train_setup": train_setup,
        "train": lambda m: timed(state["train"], m["n"]),
    }
    print(json.dumps({"ready": True, "torch": torch.__version__, "diffusers": diffusers.__version__, "parameters": parameters,
                      "device_name": torch.cuda.get_device_name(0) if cuda else "cpu"}), flush=True)
    for line in sys.stdin:
        msg = json.loads(line)
        if msg["cmd"] == "quit":
            break
        print(json.dumps(commands[msg["cmd"]](msg)), flush=True)


if __name__ == "__main__":
    main()
