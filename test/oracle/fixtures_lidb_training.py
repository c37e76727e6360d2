"""One DreamBooth-LoRA training step in diffusers/peft, the reference for test/dreambooth/oracle.test.ts.

For each case, on a tiny pipeline of the tiny_sd fixtures, as diffusers' examples/dreambooth/train_dreambooth_lora.py
does it: peft LoRA (rank R, alpha R) on the UNet's to_q/to_k/to_v/to_out.0 and the text encoder's
q/k/v/out_proj, trained jointly; DDPMScheduler.from_pretrained(<pipeline>/scheduler) as the noise scheduler;
latents = vae.encode(pixels).latent_dist.sample() * scaling_factor; noise ~ N(0, 1); timesteps uniform in
[0, num_train_timesteps); text = text_encoder(input_ids)[0]; noisy = add_noise; target = noise (epsilon) or
get_velocity (v_prediction); with prior preservation the batch is [instance..., class...] and
loss = mse(instance) + w * mse(class); min-SNR-gamma weights min(snr, gamma) / snr (epsilon) or
/ (snr + 1) (v_prediction) on the instance samples (Hang et al. 2023; diffusers' train_text_to_image.py);
then backward, clip_grad_norm_(1.0) over the LoRA parameters and one AdamW step.

The LoRA factors are set to seeded random values (lora_B is zero in peft's init, which would leave lora_A
without a gradient). Written to test/fixtures/generated/lidb_training/training_step.safetensors, keys per case:
  <case>.latents / .noise / .timesteps / .input_ids (the instance and class prompts) / .loss
  <case>.init.<layer>.lora_A (r, in) / .lora_B (out, r)      <layer> as our layer names ("unet.<path>",
  <case>.grad.<layer>.lora_A / .lora_B                          "text_encoder.text_model.<path>")
  <case>.updated.<layer>.lora_A / .lora_B                     after clipping and the AdamW step
and case settings (JSON) in the metadata under "cases".
"""
from __future__ import annotations

import json
import pathlib

INPUTS = ["test/oracle/fixtures_tiny_sd.py", "test/oracle/fixtures_tokenizer.py"]

ROOT = pathlib.Path(__file__).resolve().parents[2]
TINY = ROOT / "test" / "fixtures" / "generated" / "tiny_sd"

CASES = {
    # SD1 (epsilon): one instance photo and one class image, prior loss weight 0.5, min-SNR gamma 5.
    "sd1_prior_snr": dict(pipeline="sd1", rank=4, batch=1, prior=True, prior_loss_weight=0.5, snr_gamma=5.0,
                          instance_prompt="a sks face", class_prompt="a face", seed=11),
    # SD2 (v-prediction): two instance photos, no prior preservation, min-SNR gamma 5.
    "sd2_vpred": dict(pipeline="sd2", rank=2, batch=2, prior=False, prior_loss_weight=1.0, snr_gamma=5.0,
                      instance_prompt="a sks face", class_prompt="a face", seed=12),
}
LEARNING_RATE = 1e-3
WEIGHT_DECAY = 1e-2
MAX_GRAD_NORM = 1.0


def our_layer_name(component: str, module_path: str) -> str:
    if component == "text_encoder" and not module_path.startswith("text_model."):
        module_path = "text_model." + module_path  # transformers 5 dropped the prefix our checkpoints keep
    return f"{component}.{module_path}"


def lora_parameters(model, component: str) -> dict:
    """{(our layer name, "lora_A"|"lora_B"): parameter} of a peft-adapted model."""
    found = {}
    for name, param in model.named_parameters():
        for kind in ("lora_A", "lora_B"):
            marker = f".{kind}.default.weight"
            if name.endswith(marker):
                found[(our_layer_name(component, name[: -len(marker)]), kind)] = param
    return found


def tiny_pipelines(scratch: pathlib.Path) -> pathlib.Path:
    """The tiny_sd fixture folder, or (generate.py runs generators alphabetically, so on a fresh checkout this
    one runs before tiny_sd) the same deterministic pipelines built into `scratch` by fixtures_tiny_sd."""
    if all((TINY / kind / "model_index.json").exists() for kind in ("sd1", "sd2")):
        return TINY
    import fixtures_tiny_sd
    fixtures_tiny_sd.generate(scratch)
    return scratch


def run_case(name: str, case: dict, tiny: pathlib.Path) -> tuple[dict, dict]:
    import torch
    import torch.nn.functional as F
    from diffusers import DDPMScheduler, StableDiffusionPipeline
    from diffusers.training_utils import compute_snr
    from peft import LoraConfig
    from transformers import CLIPTokenizer

    folder = tiny / case["pipeline"]
    pipe = StableDiffusionPipeline.from_pretrained(str(folder), safety_checker=None)
    tokenizer = CLIPTokenizer.from_pretrained(str(folder / "tokenizer"))
    unet, text_encoder, vae = pipe.unet, pipe.text_encoder, pipe.vae
    noise_scheduler = DDPMScheduler.from_pretrained(str(folder), subfolder="scheduler")
    for model in (unet, text_encoder, vae):
        model.requires_grad_(False)
    rank = case["rank"]
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
                                target_modules=["to_k", "to_q", "to_v", "to_out.0"]))
    text_encoder.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
                                        target_modules=["q_proj", "k_proj", "v_proj", "out_proj"]))
    unet.train()
    text_encoder.train()
    params = {**lora_parameters(unet, "unet"), **lora_parameters(text_encoder, "text_encoder")}
    g = torch.Generator().manual_seed(case["seed"])
    with torch.no_grad():
        for key in sorted(params):
            params[key].copy_(torch.randn(params[key].shape, generator=g) * 0.05)
    out = {f"init.{layer}.{kind}": p.detach().clone() for (layer, kind), p in params.items()}

    batch = case["batch"]
    samples = 2 * batch if case["prior"] else batch
    pixels = torch.rand(samples, 3, 32, 32, generator=g) * 2 - 1
    ids = tokenizer([case["instance_prompt"], case["class_prompt"]], padding="max_length",
                    max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt").input_ids
    rows = [0] * batch + ([1] * batch if case["prior"] else [])
    input_ids = ids[rows]
    with torch.no_grad():
        latents = vae.encode(pixels).latent_dist.sample(generator=g) * vae.config.scaling_factor
    noise = torch.randn(latents.shape, generator=g)
    timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (samples,), generator=g).long()

    encoder_hidden_states = text_encoder(input_ids)[0]
    noisy = noise_scheduler.add_noise(latents, noise, timesteps)
    model_pred = unet(noisy, timesteps, encoder_hidden_states).sample
    if noise_scheduler.config.prediction_type == "epsilon":
        target = noise
    else:
        target = noise_scheduler.get_velocity(latents, noise, timesteps)
    instance_timesteps = timesteps
    if case["prior"]:
        model_pred, model_pred_prior = torch.chunk(model_pred, 2, dim=0)
        target, target_prior = torch.chunk(target, 2, dim=0)
        instance_timesteps = timesteps[:batch]
        prior_loss = F.mse_loss(model_pred_prior.float(), target_prior.float(), reduction="mean")
    snr = compute_snr(noise_scheduler, instance_timesteps)
    weights = torch.stack([snr, case["snr_gamma"] * torch.ones_like(instance_timesteps)], dim=1).min(dim=1)[0]
    weights = weights / snr if noise_scheduler.config.prediction_type == "epsilon" else weights / (snr + 1)
    loss = F.mse_loss(model_pred.float(), target.float(), reduction="none")
    loss = (loss.mean(dim=list(range(1, len(loss.shape)))) * weights).mean()
    if case["prior"]:
        loss = loss + case["prior_loss_weight"] * prior_loss
    loss.backward()

    ordered = [params[key] for key in sorted(params)]
    for (layer, kind), p in params.items():
        out[f"grad.{layer}.{kind}"] = p.grad.detach().clone()
    torch.nn.utils.clip_grad_norm_(ordered, MAX_GRAD_NORM)
    optimizer = torch.optim.AdamW(ordered, lr=LEARNING_RATE, betas=(0.9, 0.999), weight_decay=WEIGHT_DECAY, eps=1e-8)
    optimizer.step()
    for (layer, kind), p in params.items():
        out[f"updated.{layer}.{kind}"] = p.detach().clone()
    out.update(latents=latents, noise=noise, timesteps=timesteps, input_ids=ids, loss=loss.detach().reshape([]))
    settings = {**case, "prediction_type": noise_scheduler.config.prediction_type, "rows": rows, "learning_rate": LEARNING_RATE,
                "weight_decay": WEIGHT_DECAY, "max_grad_norm": MAX_GRAD_NORM}
    return {f"{name}.{k}": v.contiguous() for k, v in out.items()}, settings


def generate(out_dir: pathlib.Path) -> None:
    import torch
    from diffusers.utils import logging as df_logging
    from safetensors.torch import save_file
    from transformers.utils import logging as hf_logging

    df_logging.set_verbosity_error()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    df_logging.disable_progress_bar()
    torch.set_num_threads(1)
    import tempfile
    tensors: dict = {}
    settings: dict = {}
    with tempfile.TemporaryDirectory() as scratch:
        tiny = tiny_pipelines(pathlib.Path(scratch))
        for name, case in CASES.items():
            case_tensors, case_settings = run_case(name, case, tiny)
            tensors.update(case_tensors)
            settings[name] = case_settings
    save_file(tensors, str(out_dir / "training_step.safetensors"), metadata={"cases": json.dumps(settings)})
