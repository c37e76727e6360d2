"""Tiny random Stable Diffusion pipelines saved by diffusers/transformers, for loading and parity tests.

Nothing is downloaded: each model is built from a small config with seeded random weights and saved with
`save_pretrained` (safetensors), so the folders have exactly the files, names and key layouts of the real
checkpoints. Written into test/fixtures/generated/tiny_sd/:

  sd1/           SD1.x-style StableDiffusionPipeline folder: model_index.json, unet/ (CrossAttnDownBlock2D,
                 DownBlock2D, UNetMidBlock2DCrossAttn, UpBlock2D, CrossAttnUpBlock2D; attention_head_dim an int;
                 conv projections), vae/ (AutoencoderKL, 2 blocks), text_encoder/ (CLIPTextModel, quick_gelu),
                 tokenizer/ (the tokenizer fixture's vocabulary, pad "<|endoftext|>", files as in SD1.5),
                 scheduler/ (SD1.5's real PNDMScheduler config). safety_checker/feature_extractor are null.
                 The text encoder's keys are those of real checkpoints ("text_model.…", see
                 prefix_text_encoder_keys), with "text_model.embeddings.position_ids" in sd1 and not in sd2.
  sd2/           SD2.x-style: attention_head_dim a list per block, linear projections, upcast_attention, gelu text
                 encoder, tokenizer padding with "!", SD2.1's real v_prediction DDIMScheduler config.
  sd1-fp16/      sd1's weights twice per model: the plain fp32 files and the `variant="fp16"` files (`.half()`),
                 as the real runwayml repository has them.
  unet-sharded/  sd1's UNet saved with a small max_shard_size (≥ 2 shards), in fp32 and as the fp16 variant
                 (diffusion_pytorch_model.safetensors.index.json / .index.fp16.json and their shards).
  hf-cache/      a Hugging Face hub cache holding sd1 as repository "tiny/sd1": models--tiny--sd1/ with blobs/
                 (content-addressed), snapshots/<commit>/... (relative symlinks into blobs/), refs/main; plus
                 refs/partial → a second snapshot with only model_index.json and the scheduler (an incomplete
                 download, for the missing-files error).
  manifest.json  per pipeline and component: class, config, and the state dict as [key, shape, dtype] in order;
                 the cache's repository id and commits; the image/latent sizes.

Shapes: latents 4×16×16, VAE scale factor 2 (two VAE levels), so images are 32×32; prompts 77 tokens; text
hidden size 32 = the UNet's cross_attention_dim.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import pathlib
import shutil
import sys

INPUTS = ["test/oracle/fixtures_tokenizer.py", "test/fixtures/prompts.txt"]

# runwayml/stable-diffusion-v1-5 scheduler/scheduler_config.json
SD15_SCHEDULER = {
    "_class_name": "PNDMScheduler", "_diffusers_version": "0.6.0", "beta_end": 0.012, "beta_schedule": "scaled_linear",
    "beta_start": 0.00085, "num_train_timesteps": 1000, "set_alpha_to_one": False, "skip_prk_steps": True,
    "steps_offset": 1, "trained_betas": None, "clip_sample": False,
}
# stabilityai/stable-diffusion-2-1 scheduler/scheduler_config.json
SD21_SCHEDULER = {
    "_class_name": "DDIMScheduler", "_diffusers_version": "0.8.0", "beta_end": 0.012, "beta_schedule": "scaled_linear",
    "beta_start": 0.00085, "clip_sample": False, "num_train_timesteps": 1000, "prediction_type": "v_prediction",
    "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None,
}

UNET_SD1 = dict(
    sample_size=16, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(32, 64),
    down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
    mid_block_type="UNetMidBlock2DCrossAttn", cross_attention_dim=32, attention_head_dim=8, norm_num_groups=32,
    use_linear_projection=False, upcast_attention=False,
)
UNET_SD2 = dict(
    UNET_SD1, layers_per_block=1, attention_head_dim=(2, 4), use_linear_projection=True, upcast_attention=True,
    norm_num_groups=16,
)
VAE = dict(
    sample_size=32, in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(32, 64), layers_per_block=1,
    down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"), up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
    norm_num_groups=32, scaling_factor=0.18215,
)
TEXT = dict(
    hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=77,
    layer_norm_eps=1e-5, projection_dim=32,
)
SAFETENSORS_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64"}
CACHE_REPO = "tiny/sd1"
CACHE_COMMIT = "0123456789abcdef0123456789abcdef01234567"
PARTIAL_COMMIT = "fedcba9876543210fedcba9876543210fedcba98"


def build_pipeline(kind: str, vocab: dict[str, int]):
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    pad = "<|endoftext|>" if kind == "sd1" else "!"
    seed = 0 if kind == "sd1" else 1
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**(UNET_SD1 if kind == "sd1" else UNET_SD2))
    torch.manual_seed(seed + 100)
    vae = AutoencoderKL(**VAE)
    torch.manual_seed(seed + 200)
    text_config = CLIPTextConfig(
        **TEXT, vocab_size=len(vocab), hidden_act="quick_gelu" if kind == "sd1" else "gelu",
        bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"], pad_token_id=vocab[pad],
    )
    text_encoder = CLIPTextModel(text_config)
    scheduler = (PNDMScheduler if kind == "sd1" else DDIMScheduler).from_config(SD15_SCHEDULER if kind == "sd1" else SD21_SCHEDULER)
    return StableDiffusionPipeline(
        vae=vae.eval(), text_encoder=text_encoder.eval(), tokenizer=None, unet=unet.eval(), scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    ), CLIPTokenizer, pad


def save_pipeline(pipe, folder: pathlib.Path, kind: str, vocab, merges, pad: str, write_clip_folder) -> None:
    """save_pretrained, then the scheduler config and tokenizer folder exactly as in the real repositories."""
    pipe.save_pretrained(str(folder), safe_serialization=True)
    prefix_text_encoder_keys(folder / "text_encoder", position_ids=kind == "sd1")
    (folder / "scheduler" / "scheduler_config.json").write_text(
        json.dumps(SD15_SCHEDULER if kind == "sd1" else SD21_SCHEDULER, indent=2), encoding="utf-8")
    shutil.rmtree(folder / "tokenizer", ignore_errors=True)
    write_clip_folder(folder / "tokenizer", vocab, merges, pad)
    index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    index["tokenizer"] = ["transformers", "CLIPTokenizer"]  # save_pretrained skipped it: tokenizer=None above
    (folder / "model_index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def prefix_text_encoder_keys(folder: pathlib.Path, position_ids: bool) -> None:
    """Rewrites text_encoder/model*.safetensors with the keys real Stable Diffusion checkpoints have.

    transformers 5 flattened CLIPTextModel (its keys lost the "text_model." prefix; its loader adds a prefix
    change for old files), but every real SD 1.x/2.x text_encoder file, and every LoRA tool, uses
    "text_model.embeddings...". The checkpoints of SD 1.5 also hold the int64 buffer
    "text_model.embeddings.position_ids" ([1, 77]) that transformers ignores on load: kept for sd1, left out
    for sd2 (as a recent re-save has it), so loaders meet both.
    """
    import torch
    from safetensors.torch import load_file, save_file
    for path in sorted(folder.glob("model*.safetensors")):
        tensors = load_file(str(path))
        out = {}
        for key, value in tensors.items():
            out["text_model." + key] = value
            if key == "embeddings.position_embedding.weight" and position_ids:
                out["text_model.embeddings.position_ids"] = torch.arange(value.shape[0]).unsqueeze(0)
        save_file(out, str(path), metadata={"format": "pt"})


def text_encoder_entries(module, position_ids: bool) -> list:
    entries = []
    for key, shape, dtype in state_dict_entries(module):
        entries.append(["text_model." + key, shape, dtype])
        if key == "embeddings.position_embedding.weight" and position_ids:
            entries.append(["text_model.embeddings.position_ids", [1, shape[0]], "int64"])
    return entries


def state_dict_entries(module) -> list:
    return [[key, list(value.shape), str(value.dtype).removeprefix("torch.")] for key, value in module.state_dict().items()]


def saved_entries(folder: pathlib.Path) -> list:
    """[key, shape, dtype] of what was written (all files, sorted by key), from the safetensors headers."""
    from safetensors import safe_open
    entries = []
    for path in sorted(folder.glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():
                sl = f.get_slice(key)
                entries.append([key, list(sl.get_shape()), SAFETENSORS_DTYPES[sl.get_dtype()]])
    return sorted(entries)


def write_cache(cache: pathlib.Path, source: pathlib.Path) -> dict:
    """The hub cache layout (huggingface_hub ≥ 0.10): blobs by content hash, snapshots as relative symlinks."""
    repo = cache / ("models--" + CACHE_REPO.replace("/", "--"))
    blobs = repo / "blobs"
    blobs.mkdir(parents=True)
    files = sorted(p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file())

    def snapshot(commit: str, names: list[str]) -> None:
        for name in names:
            data = (source / name).read_bytes()
            blob = hashlib.sha256(data).hexdigest()
            (blobs / blob).write_bytes(data)
            link = repo / "snapshots" / commit / name
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.path.relpath(blobs / blob, link.parent), link)

    snapshot(CACHE_COMMIT, files)
    partial = ["model_index.json", "scheduler/scheduler_config.json"]
    snapshot(PARTIAL_COMMIT, partial)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(CACHE_COMMIT)  # written without a newline, as huggingface_hub does
    (repo / "refs" / "partial").write_text(PARTIAL_COMMIT)
    return {"repoId": CACHE_REPO, "main": CACHE_COMMIT, "partial": PARTIAL_COMMIT, "partialFiles": partial, "files": files}


def generate(out_dir: pathlib.Path) -> None:
    import torch
    from transformers.utils import logging as hf_logging
    from diffusers.utils import logging as df_logging

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    from fixtures_tokenizer import build_vocab, write_clip_folder

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    df_logging.set_verbosity_error()
    torch.set_num_threads(1)
    vocab, merges = build_vocab()
    manifest: dict = {"latentShape": [4, 16, 16], "imageSize": 32, "vaeScaleFactor": 2, "vocabSize": len(vocab),
                      "pipelines": {}}
    for kind in ("sd1", "sd2"):
        pipe, tokenizer_cls, pad = build_pipeline(kind, vocab)
        folder = out_dir / kind
        save_pipeline(pipe, folder, kind, vocab, merges, pad, write_clip_folder)
        tokenizer = tokenizer_cls.from_pretrained(str(folder / "tokenizer"))
        assert tokenizer.pad_token_id == pipe.text_encoder.config.pad_token_id
        assert tokenizer.eos_token_id == pipe.text_encoder.config.eos_token_id
        components = {}
        for name in ("unet", "vae", "text_encoder"):
            model = getattr(pipe, name)
            entries = text_encoder_entries(model, kind == "sd1") if name == "text_encoder" else state_dict_entries(model)
            assert sorted(entries) == saved_entries(folder / name), f"{kind}/{name}: saved keys differ from the state dict"
            components[name] = {"class": type(model).__name__,
                                "config": json.loads((folder / name / "config.json").read_text(encoding="utf-8")),
                                "stateDict": entries}
        components["tokenizer"] = {"class": "CLIPTokenizer", "pad": pad, "padId": tokenizer.pad_token_id,
                                   "bos": tokenizer.bos_token_id, "eos": tokenizer.eos_token_id}
        components["scheduler"] = {"class": (SD15_SCHEDULER if kind == "sd1" else SD21_SCHEDULER)["_class_name"],
                                   "config": SD15_SCHEDULER if kind == "sd1" else SD21_SCHEDULER}
        manifest["pipelines"][kind] = {
            "modelIndex": json.loads((folder / "model_index.json").read_text(encoding="utf-8")), "components": components}

        if kind == "sd1":
            # fp16 variant next to the plain fp32 files (fp16 first: the fp32 save then leaves fp32 configs).
            fp16 = out_dir / "sd1-fp16"
            shutil.copytree(folder, fp16)
            # Half copies: .half() then .float() would leave the fp32 weights rounded.
            for name in ("unet", "vae", "text_encoder"):
                copy.deepcopy(getattr(pipe, name)).half().save_pretrained(str(fp16 / name), variant="fp16", safe_serialization=True)
                getattr(pipe, name).save_pretrained(str(fp16 / name), safe_serialization=True)
            prefix_text_encoder_keys(fp16 / "text_encoder", position_ids=True)
            # Sharded UNet: about a third of the weights per shard, in fp32 and as the fp16 variant.
            sharded = out_dir / "unet-sharded"
            total = sum(t.numel() * 4 for t in pipe.unet.state_dict().values())
            # fp32 first: a plain save deletes every "diffusion_pytorch_model*-0000i-of-0000n" file, fp16 shards included.
            pipe.unet.save_pretrained(str(sharded), max_shard_size=total // 3, safe_serialization=True)
            copy.deepcopy(pipe.unet).half().save_pretrained(str(sharded), variant="fp16", max_shard_size=total // 6, safe_serialization=True)
            shards = sorted(p.name for p in sharded.glob("*.safetensors"))
            assert sum("fp16" not in s for s in shards) >= 2 and sum("fp16" in s for s in shards) >= 2, shards
            manifest["unetSharded"] = {"files": sorted(p.name for p in sharded.iterdir())}
            manifest["hfCache"] = write_cache(out_dir / "hf-cache", folder)
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    print(f"oracle tiny_sd: vocab {len(vocab)}, unet-sharded {manifest['unetSharded']['files']}", file=sys.stderr)
