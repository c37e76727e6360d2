"""Oracle for the photo metrics of HyperDreamBooth §5 at Stable Diffusion scale (test/models/vit.test.ts,
test/evaluation/photo-metrics.test.ts): transformers 5.23's ViTModel and ViTImageProcessorPil (the DINO metric on
facebook/dino-vits16, as DreamBooth computes it: the CLS token of last_hidden_state after the final layernorm),
CLIPVisionModelWithProjection (CLIP-I: image_embeds) and CLIPTextModelWithProjection (CLIP-T: text_embeds of the
prompt without the identifier) loaded out of one full CLIPModel folder, as openai/clip-vit-large-patch14 ships.

Writes into test/fixtures/generated/photo_metrics/:
  models/dino/         a tiny random ViTModel without pooler (add_pooling_layer=False, as facebook/dino-vits16),
                       dino-vits16's config scaled down (hidden 32, 2 layers, 4 heads, patch 16, image 64),
                       save_pretrained (the checkpoint's legacy key names), and dino-vits16's preprocessor_config.json
                       form (ViTFeatureExtractor, size 64 as an int, resample 2 = bilinear, ImageNet mean/std);
  models/vit_pooled/   a ViTModel with its pooler (gelu_new, qkv_bias false, eps 1e-6, patch 8 of image 32);
  models/clip/         a tiny full CLIPModel (text and vision towers, both projections, logit_scale; CLIPConfig with
                       openai's legacy eos_token_id 2) + CLIPImageProcessorPil's preprocessor_config.json (shortest
                       edge 40, crop 32) + the tokenizer fixture's vocabulary (vocab.json, merges.txt, configs);
  processors/dino_vits16/preprocessor_config.json   facebook/dino-vits16's, verbatim (size 224);
  images/*.png         photo-like test images: reference.png and three generated ones of other sizes;
  expected.safetensors "vit/<case>/{pixel_values,last,pooled,hidden.<i>}"; per image "image/<name>" (uint8 HWC),
                       "<processor>/<name>/{transformers,torch_aa}" pixel values (transformers' PIL resize, and the
                       same pipeline with torch's antialiased uint8 resize, the kernel the TypeScript processors call);
                       "dino/<name>/{transformers,torch_aa}" CLS features, "clip/<name>/{transformers,torch_aa}"
                       image_embeds; "clip/text/{input_ids,text_embeds}";
  meta.json            cases, the prompt and its identifier-free text, the cosines against the reference
                       (per pipeline), ViTConfig's defaults, dino-vits16's module tree (meta device, checkpoint names).
"""
from __future__ import annotations

import json
import pathlib
import shutil

import numpy as np
import torch
import torch.nn.functional as F

INPUTS = ["test/oracle/fixtures_tokenizer.py", "test/oracle/fixtures_vision.py", "test/fixtures/prompts.txt"]

PROMPT = "a sks face as a pencil sketch"
TEXT_PROMPT = "a face as a pencil sketch"

DINO_CONFIG = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, image_size=64,
                   patch_size=16, hidden_act="gelu", layer_norm_eps=1e-12, qkv_bias=True, initializer_range=0.3)
POOLED_CONFIG = dict(hidden_size=24, num_hidden_layers=2, num_attention_heads=2, intermediate_size=40, image_size=32,
                     patch_size=8, hidden_act="gelu_new", layer_norm_eps=1e-6, qkv_bias=False, initializer_range=0.3)
# (initializer_range / initializer_factor larger than the defaults: with them the tiny random towers' features hardly
# depend on the image, and every cosine would be ≈ 1.)
# facebook/dino-vits16's config.json and preprocessor_config.json.
DINO_VITS16 = {"architectures": ["ViTModel"], "attention_probs_dropout_prob": 0.0, "hidden_act": "gelu",
               "hidden_dropout_prob": 0.0, "hidden_size": 384, "image_size": 224, "initializer_range": 0.02,
               "intermediate_size": 1536, "layer_norm_eps": 1e-12, "model_type": "vit", "num_attention_heads": 6,
               "num_channels": 3, "num_hidden_layers": 12, "patch_size": 16, "qkv_bias": True,
               "torch_dtype": "float32", "transformers_version": "4.13.0.dev0"}
DINO_VITS16_PROCESSOR = {"do_normalize": True, "do_resize": True, "feature_extractor_type": "ViTFeatureExtractor",
                         "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225], "resample": 2,
                         "size": 224}
CLIP_TEXT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                 max_position_embeddings=77, projection_dim=24, hidden_act="quick_gelu", bos_token_id=0,
                 eos_token_id=2, pad_token_id=1, initializer_factor=4.0)
CLIP_VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=32,
                   patch_size=8, projection_dim=24, hidden_act="quick_gelu", initializer_factor=4.0)
# name: (height, width, seed). The reference photo and three "generated" images.
IMAGES = {"reference": (96, 80, 1), "similar": (96, 80, 1), "other": (120, 90, 2), "square": (64, 64, 3)}


def perturb(model, seed: int) -> None:
    """Non-trivial norms, biases and tokens, so that every parameter matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, p in model.named_parameters():
            if "norm" in key or key.endswith(".bias"):
                p.add_(torch.randn(p.shape, generator=g) * 0.1)
            elif key.endswith(("cls_token", "class_embedding")):
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)


def torch_resize(self, image, size, resample=None, **kwargs):
    """The PIL backend's resize done by torch's antialiased uint8 interpolation (bilinear or bicubic) instead."""
    from transformers.image_transforms import get_resize_output_image_size
    from transformers.image_utils import ChannelDimension
    height, width = image.shape[-2:]
    if size.shortest_edge:
        new = get_resize_output_image_size(image, size=size.shortest_edge, default_to_square=False,
                                           input_data_format=ChannelDimension.FIRST)
    else:
        new = (size.height, size.width)
    if tuple(new) == (height, width):
        return image
    mode = {2: "bilinear", 3: "bicubic"}[int(resample if resample is not None else 2)]
    t = torch.from_numpy(np.ascontiguousarray(image))[None]
    return F.interpolate(t, size=tuple(new), mode=mode, antialias=True, align_corners=False)[0].numpy()


def both(processor, image) -> dict[str, torch.Tensor]:
    """transformers' pixel values (PIL resize) and the same pipeline with torch's uint8 resize."""
    from PIL import Image
    out = {"transformers": processor(Image.fromarray(image), return_tensors="pt")["pixel_values"]}
    original = processor.resize
    processor.resize = torch_resize.__get__(processor)
    out["torch_aa"] = processor(Image.fromarray(image), return_tensors="pt")["pixel_values"]
    processor.resize = original
    return out


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(F.cosine_similarity(a.double(), b.double(), dim=-1).item())


def vit_models(models_dir: pathlib.Path, expected: dict, meta: dict) -> None:
    from transformers import ViTConfig, ViTModel
    g = torch.Generator().manual_seed(5)

    def case(name: str, folder: str, model, pixels, interpolate: bool = False) -> None:
        expected[f"vit/{name}/pixel_values"] = pixels
        with torch.no_grad():
            out = model(pixels, output_hidden_states=True, interpolate_pos_encoding=interpolate)
        expected[f"vit/{name}/last"] = out.last_hidden_state
        if out.pooler_output is not None:
            expected[f"vit/{name}/pooled"] = out.pooler_output
        for i, h in enumerate(out.hidden_states):
            expected[f"vit/{name}/hidden.{i}"] = h
        meta["vit_cases"].append({"name": name, "folder": folder, "interpolate": interpolate,
                                  "pooled": out.pooler_output is not None, "layers": model.config.num_hidden_layers})

    meta["vit_cases"] = []
    torch.manual_seed(11)
    dino = ViTModel(ViTConfig(**DINO_CONFIG), add_pooling_layer=False).eval()
    assert dino.config._attn_implementation == "sdpa", dino.config._attn_implementation
    perturb(dino, 12)
    dino.save_pretrained(str(models_dir / "dino"))
    from safetensors import safe_open
    with safe_open(str(models_dir / "dino" / "model.safetensors"), "pt") as f:
        keys = sorted(f.keys())
    assert "encoder.layer.0.attention.attention.query.weight" in keys and "encoder.layer.1.output.dense.bias" in keys, keys
    assert not any(k.startswith("pooler.") for k in keys), keys
    meta["dino_keys"] = keys
    processor = dict(DINO_VITS16_PROCESSOR, size=64)
    (models_dir / "dino" / "preprocessor_config.json").write_text(json.dumps(processor, indent=2) + "\n", encoding="utf-8")
    meta["scales"] = {"dino": dino.layers[0].attention.scaling}
    case("dino/trained", "dino", dino, torch.randn(2, 3, 64, 64, generator=g))
    case("dino/interpolated", "dino", dino, torch.randn(1, 3, 96, 80, generator=g), interpolate=True)

    torch.manual_seed(13)
    pooled = ViTModel(ViTConfig(**POOLED_CONFIG)).eval()
    perturb(pooled, 14)
    pooled.save_pretrained(str(models_dir / "vit_pooled"))
    meta["scales"]["vit_pooled"] = pooled.layers[0].attention.scaling
    case("pooled/trained", "vit_pooled", pooled, torch.randn(2, 3, 32, 32, generator=g))
    case("pooled/interpolated", "vit_pooled", pooled, torch.randn(1, 3, 48, 48, generator=g), interpolate=True)

    defaults = ViTConfig().to_dict()
    meta["vit_defaults"] = {k: defaults[k] for k in (
        "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act",
        "hidden_dropout_prob", "attention_probs_dropout_prob", "layer_norm_eps", "image_size", "patch_size",
        "num_channels", "qkv_bias", "encoder_stride", "pooler_output_size", "pooler_act")}
    from transformers.core_model_loading import revert_weight_conversion
    with torch.device("meta"):
        real = ViTModel(ViTConfig(**DINO_VITS16), add_pooling_layer=False)
    state = revert_weight_conversion(real, dict(real.named_parameters()))
    meta["dino_vits16"] = {"config": DINO_VITS16, "parameters": [[k, list(v.shape)] for k, v in state.items()],
                           "parameter_count": sum(p.numel() for p in real.parameters())}


def clip_model(models_dir: pathlib.Path, out_dir: pathlib.Path, expected: dict, meta: dict) -> None:
    from fixtures_tokenizer import build_vocab, write_clip_folder
    from transformers import (CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPTextConfig, CLIPTextModelWithProjection,
                              CLIPTokenizer, CLIPVisionModelWithProjection)
    vocab, merges = build_vocab()
    folder = models_dir / "clip"
    torch.manual_seed(21)
    text = CLIPTextConfig(vocab_size=len(vocab), **CLIP_TEXT)
    full = CLIPModel(CLIPConfig(text_config=text.to_dict(), vision_config=CLIP_VISION, projection_dim=24,
                                initializer_factor=4.0)).eval()
    perturb(full, 22)
    full.save_pretrained(str(folder))
    CLIPImageProcessorPil(size={"shortest_edge": 40}, crop_size={"height": 32, "width": 32}).save_pretrained(str(folder))
    staging = out_dir / ".tokenizer"
    write_clip_folder(staging, vocab, merges, "<|endoftext|>")
    for file in staging.iterdir():
        shutil.move(str(file), str(folder / file.name))
    staging.rmdir()

    vision, info = CLIPVisionModelWithProjection.from_pretrained(str(folder), output_loading_info=True)
    assert not info["missing_keys"], info
    textual, info = CLIPTextModelWithProjection.from_pretrained(str(folder), output_loading_info=True)
    assert not info["missing_keys"], info
    vision.eval()
    textual.eval()
    tokenizer = CLIPTokenizer.from_pretrained(str(folder))
    batch = tokenizer([TEXT_PROMPT], padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                      return_tensors="pt")
    with torch.no_grad():
        text_embeds = textual(batch["input_ids"]).text_embeds
        assert torch.allclose(text_embeds, full.get_text_features(batch["input_ids"]).pooler_output, atol=1e-6)
    expected["clip/text/input_ids"] = batch["input_ids"]
    expected["clip/text/text_embeds"] = text_embeds
    meta["clip_text"] = {"prompt": PROMPT, "text": TEXT_PROMPT, "ids": batch["input_ids"][0].tolist()}
    return vision, text_embeds


def generate(out_dir: pathlib.Path) -> None:
    from PIL import Image
    from safetensors.torch import save_file
    from transformers import CLIPImageProcessorPil, ViTImageProcessorPil, ViTModel
    from fixtures_vision import test_image

    models_dir = out_dir / "models"
    expected: dict[str, torch.Tensor] = {}
    meta: dict = {"prompt": PROMPT, "text_prompt": TEXT_PROMPT, "images": list(IMAGES)}
    vit_models(models_dir, expected, meta)
    vision, text_embeds = clip_model(models_dir, out_dir, expected, meta)

    processors = out_dir / "processors" / "dino_vits16"
    processors.mkdir(parents=True)
    (processors / "preprocessor_config.json").write_text(json.dumps(DINO_VITS16_PROCESSOR, indent=2) + "\n", encoding="utf-8")

    dino = ViTModel.from_pretrained(str(models_dir / "dino"), add_pooling_layer=False).eval()
    dino_processor = ViTImageProcessorPil.from_pretrained(str(models_dir / "dino"))
    assert dino_processor.size["height"] == 64 and dino_processor.size["width"] == 64 and dino_processor.resample == 2
    vits16_processor = ViTImageProcessorPil.from_pretrained(str(processors))
    clip_processor = CLIPImageProcessorPil.from_pretrained(str(models_dir / "clip"))
    images_dir = out_dir / "images"
    images_dir.mkdir()
    features: dict[str, dict[str, dict[str, torch.Tensor]]] = {"dino": {}, "clip": {}}
    for name, (height, width, seed) in IMAGES.items():
        pixels = test_image(height, width, 300 + seed)
        if name == "similar":  # the reference with a brighter patch: close to it, not equal
            pixels = pixels.copy()
            pixels[10:40, 20:60] = np.clip(pixels[10:40, 20:60].astype(np.int32) + 40, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(images_dir / f"{name}.png")
        # Read back as every reader of the file will see it.
        pixels = np.asarray(Image.open(images_dir / f"{name}.png").convert("RGB"))
        expected[f"image/{name}"] = torch.from_numpy(pixels.copy())
        for processor_name, processor in (("dino", dino_processor), ("dino_vits16", vits16_processor), ("clip", clip_processor)):
            for pipeline, values in both(processor, pixels).items():
                expected[f"{processor_name}/{name}/{pipeline}"] = values
        for pipeline in ("transformers", "torch_aa"):
            with torch.no_grad():
                cls = dino(expected[f"dino/{name}/{pipeline}"]).last_hidden_state[:, 0]
                embeds = vision(expected[f"clip/{name}/{pipeline}"]).image_embeds
            expected[f"dino/{name}/cls/{pipeline}"] = cls
            expected[f"clip/{name}/image_embeds/{pipeline}"] = embeds
            features["dino"].setdefault(pipeline, {})[name] = cls
            features["clip"].setdefault(pipeline, {})[name] = embeds

    meta["cosines"] = {}
    for pipeline in ("transformers", "torch_aa"):
        dino_ref = features["dino"][pipeline]["reference"]
        clip_ref = features["clip"][pipeline]["reference"]
        meta["cosines"][pipeline] = {name: {
            "dino": cosine(features["dino"][pipeline][name], dino_ref),
            "clipI": cosine(features["clip"][pipeline][name], clip_ref),
            "clipT": cosine(features["clip"][pipeline][name], text_embeds),
        } for name in IMAGES}
    save_file({k: v.detach().clone().contiguous() for k, v in expected.items()}, str(out_dir / "expected.safetensors"))
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
