"""Oracle for the image encoders and their processors (test/models/clip-vision-encoder.test.ts,
test/models/dinov2.test.ts): transformers 5.23's CLIPVisionModel, CLIPVisionModelWithProjection, Dinov2Model,
CLIPImageProcessorPil and BitImageProcessorPil (the PIL backends: torchvision is not installed, and PIL is what
transformers' processors have always resized with).

Writes into test/fixtures/generated/vision/:
  models/<name>/   tiny random models in the folder layouts real checkpoints come in (config.json,
                   model.safetensors, preprocessor_config.json where a real repository has one):
                   clip_projection  CLIPVisionModelWithProjection (quick_gelu, 5×5 patches), save_pretrained
                                    ("vision_model." keys + visual_projection);
                   clip_vision      CLIPVisionModel (gelu, eps 1e-6, 3 heads of 16), save_pretrained (transformers
                                    5's layout, no prefix);
                   clip_vision_prefixed  clip_vision's weights with transformers 4's keys ("vision_model." and the
                                    int64 position_ids buffer);
                   clip_full        a full CLIPModel (text and vision towers, projections, logit_scale) with a
                                    CLIPConfig, as openai/clip-vit-large-patch14 and laion/CLIP-ViT-H-14 ship;
                   clip_fp16_sharded  clip_projection's weights in fp16, variant "fp16", in shards + index;
                   dinov2           Dinov2Model (gelu MLP, random LayerScale, mask token), 4×4 patches of 7;
                   dinov2_swiglu    Dinov2Model with use_swiglu_ffn (weights_in/weights_out) and qkv_bias false.
  processors/<name>/preprocessor_config.json
                   clip_legacy (openai/clip-vit-large-patch14's legacy CLIPFeatureExtractor form: size 224 as an
                   int), clip (CLIPImageProcessorPil's defaults as transformers 5 saves them), dinov2
                   (facebook/dinov2-base's BitImageProcessor: shortest edge 256, crop 224, ImageNet mean/std).
  expected.safetensors
                   "<case>/pixel_values" inputs and "<case>/{last,pooled,image_embeds,hidden.<i>}" outputs;
                   "<case>/bool_masked_pos" for the masked DINOv2 case; "image/<name>" uint8 [H, W, 3] test images
                   and "proc/<processor>/<image>/{transformers,torch_aa}": transformers' pixel_values, and the same
                   pipeline with the resize done by torch's antialiased bicubic on uint8 (the ATen kernel the
                   TypeScript processor calls) instead of PIL.
  meta.json        cases, attention scales, transformers' config defaults, and the module trees of ViT-L/14,
                   ViT-H/14, DINOv2-base and DINOv2-giant ([name, shape] per checkpoint key, meta device).
"""
from __future__ import annotations

import json
import pathlib

import numpy as np
import torch
import torch.nn.functional as F

INPUTS: list[str] = []

CLIP_CONFIGS = {
    "quick": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4, image_size=30,
                  patch_size=6, projection_dim=24, hidden_act="quick_gelu"),
    "gelu": dict(hidden_size=48, intermediate_size=80, num_hidden_layers=2, num_attention_heads=3, image_size=28,
                 patch_size=7, projection_dim=20, hidden_act="gelu", layer_norm_eps=1e-6),
}
DINO_CONFIGS = {
    "dinov2": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, mlp_ratio=4, image_size=28, patch_size=7),
    "dinov2_swiglu": dict(hidden_size=24, num_hidden_layers=2, num_attention_heads=2, mlp_ratio=4, image_size=20,
                          patch_size=5, use_swiglu_ffn=True, qkv_bias=False, layer_norm_eps=1e-5),
}

# The vision towers of openai/clip-vit-large-patch14 (ViT-L/14) and laion/CLIP-ViT-H-14-laion2B-s32B-b79K
# (ViT-H/14, the paper's encoder), nested in a CLIPConfig as those repositories ship them.
VIT_L14 = {"model_type": "clip", "projection_dim": 768, "vision_config": {
    "hidden_size": 1024, "intermediate_size": 4096, "num_attention_heads": 16, "num_hidden_layers": 24,
    "image_size": 224, "patch_size": 14, "projection_dim": 768, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5,
    "model_type": "clip_vision_model"}}
VIT_H14 = {"model_type": "clip", "projection_dim": 1024, "vision_config": {
    "hidden_size": 1280, "intermediate_size": 5120, "num_attention_heads": 16, "num_hidden_layers": 32,
    "image_size": 224, "patch_size": 14, "projection_dim": 1024, "hidden_act": "gelu", "layer_norm_eps": 1e-5,
    "model_type": "clip_vision_model"}}
# facebook/dinov2-base and facebook/dinov2-giant (SwiGLU).
DINOV2_BASE = {"model_type": "dinov2", "hidden_size": 768, "num_attention_heads": 12, "num_hidden_layers": 12,
               "image_size": 518, "patch_size": 14, "mlp_ratio": 4, "layer_norm_eps": 1e-6, "hidden_act": "gelu",
               "layerscale_value": 1.0, "use_swiglu_ffn": False, "qkv_bias": True}
DINOV2_GIANT = {**DINOV2_BASE, "hidden_size": 1536, "num_attention_heads": 24, "num_hidden_layers": 40, "use_swiglu_ffn": True}

LEGACY_CLIP_PROCESSOR = {
    "crop_size": 224, "do_center_crop": True, "do_normalize": True, "do_resize": True,
    "feature_extractor_type": "CLIPFeatureExtractor", "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3, "size": 224,
}
DINOV2_PROCESSOR = {
    "crop_size": {"height": 224, "width": 224}, "do_center_crop": True, "do_convert_rgb": True, "do_normalize": True,
    "do_rescale": True, "do_resize": True, "image_mean": [0.485, 0.456, 0.406], "image_processor_type": "BitImageProcessor",
    "image_std": [0.229, 0.224, 0.225], "resample": 3, "rescale_factor": 0.00392156862745098, "size": {"shortest_edge": 256},
}
# name: (height, width). "exact*" are already at a processor's resize size (no resampling: exact arithmetic).
IMAGES = {"landscape": (300, 400), "portrait": (401, 257), "small": (90, 100), "exact224": (224, 300), "exact256": (331, 256)}


def perturb(model, seed: int) -> None:
    """Non-trivial norms, biases, LayerScales and tokens, so that every parameter matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, p in model.named_parameters():
            if "norm" in key or key.endswith(".bias") or "lambda1" in key:
                p.add_(torch.randn(p.shape, generator=g) * 0.1)
            elif key.endswith(("cls_token", "mask_token", "class_embedding")):
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)


def outputs(model, pixel_values, **kwargs) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        out = model(pixel_values, output_hidden_states=True, **kwargs)
    result = {"last": out.last_hidden_state}
    if getattr(out, "image_embeds", None) is not None:
        # CLIPVisionModelWithProjection does not return its tower's pooler_output; the TypeScript model does.
        result["image_embeds"] = out.image_embeds
        with torch.no_grad():
            result["pooled"] = model.vision_model(pixel_values, **kwargs).pooler_output
    else:
        result["pooled"] = out.pooler_output
    for i, h in enumerate(out.hidden_states):
        result[f"hidden.{i}"] = h
    return result


def tree(model, prefix: str = "") -> list:
    """[checkpoint key, shape] per parameter, as save_pretrained names them (transformers 5 maps some back)."""
    from transformers.core_model_loading import revert_weight_conversion
    state = revert_weight_conversion(model, {k: v for k, v in model.named_parameters()})
    return [[prefix + k, list(v.shape)] for k, v in state.items()]


def clip_models(models_dir: pathlib.Path, expected: dict, meta: dict) -> None:
    from safetensors.torch import save_file
    from transformers import (CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPTextConfig, CLIPVisionConfig,
                              CLIPVisionModel, CLIPVisionModelWithProjection)
    g = torch.Generator().manual_seed(7)

    def case(name: str, folder: str, model, pixels, interpolate: bool = False) -> None:
        expected[f"{name}/pixel_values"] = pixels
        kwargs = {"interpolate_pos_encoding": True} if interpolate else {}
        for key, value in outputs(model, pixels, **kwargs).items():
            expected[f"{name}/{key}"] = value
        meta["cases"].append({"name": name, "folder": folder, "interpolate": interpolate, "layers": model.config.num_hidden_layers,
                              "projection": isinstance(model, CLIPVisionModelWithProjection)})

    torch.manual_seed(1)
    projection = CLIPVisionModelWithProjection(CLIPVisionConfig(**CLIP_CONFIGS["quick"])).eval()
    assert projection.config._attn_implementation == "sdpa", projection.config._attn_implementation
    perturb(projection, 2)
    projection.save_pretrained(str(models_dir / "clip_projection"))
    processor = CLIPImageProcessorPil(size={"shortest_edge": 30}, crop_size={"height": 30, "width": 30})
    processor.save_pretrained(str(models_dir / "clip_projection"))
    meta["scales"]["quick"] = projection.vision_model.encoder.layers[0].self_attn.scale
    case("projection", "clip_projection", projection, torch.randn(2, 3, 30, 30, generator=g))
    case("projection_interpolated", "clip_projection", projection, torch.randn(1, 3, 42, 36, generator=g), interpolate=True)

    torch.manual_seed(3)
    vision = CLIPVisionModel(CLIPVisionConfig(**CLIP_CONFIGS["gelu"])).eval()
    perturb(vision, 4)
    vision.save_pretrained(str(models_dir / "clip_vision"))
    meta["scales"]["gelu"] = vision.encoder.layers[0].self_attn.scale
    gelu_pixels = torch.randn(2, 3, 28, 28, generator=g)
    case("vision", "clip_vision", vision, gelu_pixels)
    # hidden_states: the encoder's input (after pre_layrnorm), then each layer; the last is last_hidden_state.
    out = vision(gelu_pixels, output_hidden_states=True)
    assert len(out.hidden_states) == 3 and torch.equal(out.hidden_states[-1], out.last_hidden_state)
    assert torch.equal(out.hidden_states[0], vision.pre_layrnorm(vision.embeddings(gelu_pixels)))

    # transformers 4's keys, as in every real checkpoint: must load into the same model.
    prefixed = models_dir / "clip_vision_prefixed"
    prefixed.mkdir(parents=True)
    state = {"vision_model." + k: v.contiguous() for k, v in vision.state_dict().items()}
    state["vision_model.embeddings.position_ids"] = torch.arange(17).unsqueeze(0)
    save_file(state, str(prefixed / "model.safetensors"), metadata={"format": "pt"})
    vision.config.to_json_file(str(prefixed / "config.json"))
    reloaded = CLIPVisionModel.from_pretrained(str(prefixed)).eval()
    for a, b in zip(reloaded.state_dict().values(), vision.state_dict().values()):
        assert torch.equal(a, b)
    case("vision_prefixed", "clip_vision_prefixed", reloaded, gelu_pixels)

    # A full CLIPModel: the vision tower (and visual_projection) loaded out of it, the text tower ignored.
    torch.manual_seed(5)
    text = CLIPTextConfig(vocab_size=99, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                          max_position_embeddings=8, projection_dim=24)
    full = CLIPModel(CLIPConfig(text_config=text.to_dict(), vision_config=CLIP_CONFIGS["quick"], projection_dim=24)).eval()
    perturb(full, 6)
    full.save_pretrained(str(models_dir / "clip_full"))
    processor.save_pretrained(str(models_dir / "clip_full"))
    from_full, info = CLIPVisionModelWithProjection.from_pretrained(str(models_dir / "clip_full"), output_loading_info=True)
    assert not info["missing_keys"], info
    assert torch.equal(from_full.visual_projection.weight, full.visual_projection.weight)
    full_pixels = torch.randn(2, 3, 30, 30, generator=g)
    case("full_projection", "clip_full", from_full.eval(), full_pixels)
    vision_from_full, info = CLIPVisionModel.from_pretrained(str(models_dir / "clip_full"), output_loading_info=True)
    assert not info["missing_keys"], info
    case("full_vision", "clip_full", vision_from_full.eval(), full_pixels)
    with torch.no_grad():
        assert torch.equal(full.get_image_features(full_pixels).pooler_output, expected["full_projection/image_embeds"])

    # fp16 weights in shards (variant file names), computed in fp32 as from_pretrained(dtype=float32) does.
    projection.half().save_pretrained(str(models_dir / "clip_fp16_sharded"), variant="fp16", max_shard_size="40KB")
    projection.float()
    shards = sorted(p.name for p in (models_dir / "clip_fp16_sharded").glob("*.safetensors"))
    assert len(shards) >= 2, shards
    meta["shards"] = shards
    fp16 = CLIPVisionModelWithProjection.from_pretrained(str(models_dir / "clip_fp16_sharded"), variant="fp16", dtype=torch.float32).eval()
    case("fp16_sharded", "clip_fp16_sharded", fp16, expected["projection/pixel_values"])

    defaults = CLIPVisionConfig().to_dict()
    meta["clip_defaults"] = {k: defaults[k] for k in (
        "hidden_size", "intermediate_size", "projection_dim", "num_hidden_layers", "num_attention_heads", "num_channels",
        "image_size", "patch_size", "hidden_act", "layer_norm_eps", "attention_dropout")}
    meta["trees"] = {}
    for name, config in (("vit_l14", VIT_L14), ("vit_h14", VIT_H14)):
        with torch.device("meta"):
            model = CLIPVisionModelWithProjection(CLIPVisionConfig(**config["vision_config"]))
        meta["trees"][name] = {"config": config, "parameters": tree(model),
                               "parameter_count": sum(p.numel() for p in model.parameters())}


def dino_models(models_dir: pathlib.Path, expected: dict, meta: dict) -> None:
    from transformers import BitImageProcessorPil, Dinov2Config, Dinov2Model
    g = torch.Generator().manual_seed(8)

    def case(name: str, folder: str, model, pixels, masked=None) -> None:
        expected[f"{name}/pixel_values"] = pixels
        kwargs = {}
        if masked is not None:
            expected[f"{name}/bool_masked_pos"] = masked
            kwargs["bool_masked_pos"] = masked
        for key, value in outputs(model, pixels, **kwargs).items():
            expected[f"{name}/{key}"] = value
        meta["dino_cases"].append({"name": name, "folder": folder, "masked": masked is not None, "layers": model.config.num_hidden_layers})

    meta["dino_cases"] = []
    for seed, (name, config) in enumerate(DINO_CONFIGS.items(), start=20):
        torch.manual_seed(seed)
        model = Dinov2Model(Dinov2Config(**config)).eval()
        assert model.config._attn_implementation == "sdpa"
        perturb(model, seed + 100)
        model.save_pretrained(str(models_dir / name))
        meta["scales"][name] = model.encoder.layer[0].attention.scaling
        side, patch = config["image_size"], config["patch_size"]
        if name == "dinov2":
            BitImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 28, "width": 28}).save_pretrained(str(models_dir / name))
        # The trained size (no interpolation), a larger non-square grid and a smaller square one (interpolated).
        case(f"{name}/trained", name, model, torch.randn(2, 3, side, side, generator=g))
        case(f"{name}/wide", name, model, torch.randn(2, 3, 6 * patch, 5 * patch, generator=g))
        case(f"{name}/small", name, model, torch.randn(1, 3, 3 * patch + 2, 3 * patch + 2, generator=g))
        if name == "dinov2":
            pixels = torch.randn(2, 3, side, side, generator=g)
            case(f"{name}/masked", name, model, pixels, masked=torch.rand(2, (side // patch) ** 2, generator=g) < 0.4)
            out = model(pixels, output_hidden_states=True)
            assert len(out.hidden_states) == 3 and torch.equal(out.hidden_states[0], model.embeddings(pixels))

    defaults = Dinov2Config().to_dict()
    meta["dino_defaults"] = {k: defaults[k] for k in (
        "hidden_size", "num_hidden_layers", "num_attention_heads", "mlp_ratio", "hidden_act", "hidden_dropout_prob",
        "attention_probs_dropout_prob", "layer_norm_eps", "image_size", "patch_size", "num_channels", "qkv_bias",
        "layerscale_value", "drop_path_rate", "use_swiglu_ffn", "use_mask_token")}
    for name, config in (("dinov2_base", DINOV2_BASE), ("dinov2_giant", DINOV2_GIANT)):
        with torch.device("meta"):
            model = Dinov2Model(Dinov2Config(**config))
        meta["trees"][name] = {"config": config, "parameters": tree(model),
                               "parameter_count": sum(p.numel() for p in model.parameters())}


def test_image(height: int, width: int, seed: int) -> np.ndarray:
    """A photo-like 8-bit RGB image: smooth colour fields, a sharp-edged disc and noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    fields = [127 + 100 * np.sin(x / (5 + 3 * c) + c) * np.cos(y / (9 - 2 * c)) for c in range(3)]
    image = np.stack(fields, axis=-1) + rng.normal(0, 12, (height, width, 3))
    disc = (x - width / 3) ** 2 + (y - height / 2) ** 2 < (min(height, width) / 4) ** 2
    image[disc] = [240, 30, 60]
    return image.clip(0, 255).round().astype(np.uint8)


def processors(out_dir: pathlib.Path, expected: dict, meta: dict) -> None:
    from PIL import Image
    from transformers import BitImageProcessorPil, CLIPImageProcessorPil

    def torch_resize(self, image, size, resample=None, **kwargs):
        """The PIL backend's resize with torch's antialiased bicubic on uint8 [C, H, W] instead of PIL."""
        height, width = image.shape[-2:]
        if size.shortest_edge:
            from transformers.image_transforms import get_resize_output_image_size
            from transformers.image_utils import ChannelDimension
            new = get_resize_output_image_size(image, size=size.shortest_edge, default_to_square=False,
                                               input_data_format=ChannelDimension.FIRST)
        else:
            new = (size.height, size.width)
        if tuple(new) == (height, width):
            return image
        t = torch.from_numpy(np.ascontiguousarray(image))[None]
        return F.interpolate(t, size=tuple(new), mode="bicubic", antialias=True, align_corners=False)[0].numpy()

    folders = {}
    for name, config in (("clip_legacy", LEGACY_CLIP_PROCESSOR), ("dinov2", DINOV2_PROCESSOR)):
        folders[name] = out_dir / "processors" / name
        folders[name].mkdir(parents=True)
        (folders[name] / "preprocessor_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    folders["clip"] = out_dir / "processors" / "clip"
    CLIPImageProcessorPil().save_pretrained(str(folders["clip"]))

    for i, (image_name, (height, width)) in enumerate(IMAGES.items()):
        pixels = test_image(height, width, 40 + i)
        expected[f"image/{image_name}"] = torch.from_numpy(pixels)
        for name, folder in folders.items():
            cls = BitImageProcessorPil if name == "dinov2" else CLIPImageProcessorPil
            processor = cls.from_pretrained(str(folder))
            expected[f"proc/{name}/{image_name}/transformers"] = processor(Image.fromarray(pixels), return_tensors="pt")["pixel_values"]
            processor.resize = torch_resize.__get__(processor)
            expected[f"proc/{name}/{image_name}/torch_aa"] = processor(Image.fromarray(pixels), return_tensors="pt")["pixel_values"]
    meta["processors"] = {"images": list(IMAGES), "configs": list(folders),
                          "std": {name: cls.from_pretrained(str(folder)).image_std for name, folder in folders.items()
                                  for cls in [BitImageProcessorPil if name == "dinov2" else CLIPImageProcessorPil]}}


def generate(out_dir: pathlib.Path) -> None:
    from safetensors.torch import save_file
    models_dir = out_dir / "models"
    expected: dict[str, torch.Tensor] = {}
    meta: dict = {"cases": [], "scales": {}}
    clip_models(models_dir, expected, meta)
    dino_models(models_dir, expected, meta)
    processors(out_dir, expected, meta)
    save_file({k: v.detach().clone().contiguous() for k, v in expected.items()}, str(out_dir / "expected.safetensors"))
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
