"""Oracle for the CLIP text encoder (test/models/clip-text-encoder.test.ts): transformers 5.23's CLIPTextModel.

    generate(out_dir)                                     (run by generate.py) the fixtures below
    python fixtures_text_encoder.py reference OUT DIR...  loads each DIR (a text_encoder folder) with
                                                          transformers, runs it on two padded prompts and
                                                          writes inputs and outputs to OUT (used by the test
                                                          for the tiny_sd pipelines)

Writes into test/fixtures/generated/text_encoder/:
  models/<name>/   tiny CLIPTextModels saved with save_pretrained (safetensors; transformers 5 key layout,
                   without "text_model."): sd1 (quick_gelu, legacy eos_token_id 2, pad = end token), sd2 (gelu,
                   pad 0, 3 heads of 16), modern (eos_token_id 500 = "first position of the end token", eps 1e-6,
                   gelu_pytorch_tanh, sequences shorter than max_position_embeddings);
                   sd1_prefixed (sd1's weights with the keys of real SD checkpoints, "text_model." and the int64
                   "text_model.embeddings.position_ids" buffer, as transformers 4 wrote them);
                   sd2_fp16 (sd2's weights saved only as the variant="fp16" file);
                   projection (a CLIPTextModelWithProjection, sd1's config with projection_dim 24).
  expected.safetensors  reference tensors: "<model>/<case>/last", ".../pooled", ".../hidden.<i>",
                   ".../clip_skip_<k>" (diffusers' encode_prompt: hidden_states[-(k+1)] → final_layer_norm),
                   the inputs "<model>/<case>/input_ids" and ".../attention_mask", the gradient check "grad/...",
                   and activations "act/<name>" of "act/input".
  meta.json        cases, the scale transformers uses per model, transformers' CLIPTextConfig defaults, and the
                   module trees of SD1.5's and SD2.1's real text-encoder configs ([name, shape] per parameter,
                   built on the meta device, "text_model." prefixed as in their checkpoints).
"""
from __future__ import annotations

import json
import pathlib
import sys

import torch
import torch.nn.functional as F

INPUTS: list[str] = []

VOCAB = 1000
BOS, EOS = 998, 999
CLIP_SKIPS = (1, 2)

# runwayml/stable-diffusion-v1-5 text_encoder/config.json and stabilityai/stable-diffusion-2-1's.
SD15_TEXT_CONFIG = {
    "_name_or_path": "openai/clip-vit-large-patch14", "architectures": ["CLIPTextModel"], "attention_dropout": 0.0,
    "bos_token_id": 0, "dropout": 0.0, "eos_token_id": 2, "hidden_act": "quick_gelu", "hidden_size": 768,
    "initializer_factor": 1.0, "initializer_range": 0.02, "intermediate_size": 3072, "layer_norm_eps": 1e-05,
    "max_position_embeddings": 77, "model_type": "clip_text_model", "num_attention_heads": 12,
    "num_hidden_layers": 12, "pad_token_id": 1, "projection_dim": 768, "torch_dtype": "float32",
    "transformers_version": "4.22.0.dev0", "vocab_size": 49408,
}
SD21_TEXT_CONFIG = {
    "_name_or_path": "hf-models/stable-diffusion-v2-768x768/text_encoder", "architectures": ["CLIPTextModel"],
    "attention_dropout": 0.0, "bos_token_id": 0, "dropout": 0.0, "eos_token_id": 2, "hidden_act": "gelu",
    "hidden_size": 1024, "initializer_factor": 1.0, "initializer_range": 0.02, "intermediate_size": 4096,
    "layer_norm_eps": 1e-05, "max_position_embeddings": 77, "model_type": "clip_text_model",
    "num_attention_heads": 16, "num_hidden_layers": 23, "pad_token_id": 1, "projection_dim": 512,
    "torch_dtype": "float32", "transformers_version": "4.25.0.dev0", "vocab_size": 49408,
}

CONFIGS = {
    "sd1": dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
                max_position_embeddings=16, hidden_act="quick_gelu", bos_token_id=0, eos_token_id=2, pad_token_id=1),
    "sd2": dict(vocab_size=VOCAB, hidden_size=48, intermediate_size=96, num_hidden_layers=4, num_attention_heads=3,
                max_position_embeddings=16, hidden_act="gelu", bos_token_id=0, eos_token_id=2, pad_token_id=1),
    "modern": dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=2,
                   max_position_embeddings=20, hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6,
                   bos_token_id=BOS, eos_token_id=500, pad_token_id=500),
}
SEEDS = {"sd1": 11, "sd2": 22, "modern": 33, "projection": 44}
ACTIVATIONS = ["quick_gelu", "gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "silu", "swish"]


def make_ids(g: torch.Generator, lengths: list[int], time: int, end: int, pad: int, low: int = 2, high: int = 990):
    """Rows of [start, tokens…, end, pad…] and the matching 1/0 attention mask (1 up to the end token)."""
    ids = torch.full((len(lengths), time), pad, dtype=torch.int64)
    mask = torch.zeros((len(lengths), time), dtype=torch.int64)
    for row, n in enumerate(lengths):
        ids[row, 0] = BOS
        ids[row, 1:n + 1] = torch.randint(low, high, (n,), generator=g)
        ids[row, n + 1] = end
        mask[row, :n + 2] = 1
    return ids, mask


def left_padded(ids: torch.Tensor, mask: torch.Tensor):
    """The same rows with the padding moved to the front (fully masked first query rows)."""
    out_ids, out_mask = torch.empty_like(ids), torch.empty_like(mask)
    for row in range(ids.shape[0]):
        n = int(mask[row].sum())
        out_ids[row] = torch.cat([ids[row, n:], ids[row, :n]])
        out_mask[row] = torch.cat([mask[row, n:], mask[row, :n]])
    return out_ids, out_mask


def run_case(model, ids: torch.Tensor, mask: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """Everything the TypeScript model returns, computed by transformers (and diffusers' clip-skip rule)."""
    with torch.no_grad():
        out = model(ids, attention_mask=mask, output_hidden_states=True)
        result = {"last": out.last_hidden_state, "pooled": out.pooler_output}
        for i, h in enumerate(out.hidden_states):
            result[f"hidden.{i}"] = h
        for k in CLIP_SKIPS:
            # diffusers StableDiffusionPipeline.encode_prompt with clip_skip=k
            # (transformers 5's CLIPTextModel holds final_layer_norm itself, transformers 4's under .text_model)
            result[f"clip_skip_{k}"] = model.final_layer_norm(out.hidden_states[-(k + 1)])
    return result


def build(name: str, **overrides):
    from transformers import CLIPTextConfig, CLIPTextModel
    torch.manual_seed(SEEDS[name])
    model = CLIPTextModel(CLIPTextConfig(**CONFIGS[name], **overrides)).eval()
    assert model.config._attn_implementation == "sdpa", model.config._attn_implementation
    # Non-trivial LayerNorm affines and biases, so that every parameter matters.
    g = torch.Generator().manual_seed(SEEDS[name] + 1)
    with torch.no_grad():
        for key, p in model.named_parameters():
            if "norm" in key or key.endswith(".bias"):
                p.add_(torch.randn(p.shape, generator=g) * 0.1)
    return model


def save_prefixed(model, folder: pathlib.Path) -> None:
    """The layout of real SD checkpoints: "text_model." keys and the position_ids buffer (transformers 4)."""
    from safetensors.torch import save_file
    folder.mkdir(parents=True)
    state = {"text_model." + k: v.contiguous() for k, v in model.state_dict().items()}
    state["text_model.embeddings.position_ids"] = torch.arange(model.config.max_position_embeddings).unsqueeze(0)
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    model.config.to_json_file(str(folder / "config.json"))


def gradient_check(model, ids, mask, expected: dict) -> dict:
    """d(sum(last_hidden_state * g)) w.r.t. every parameter and a LoRA-like pair on layer 1's q_proj."""
    g = torch.Generator().manual_seed(5)
    dim = model.config.hidden_size
    lora_a = (torch.randn(2, dim, generator=g) * 0.3).requires_grad_()
    lora_b = (torch.randn(dim, 2, generator=g) * 0.3).requires_grad_()
    weights = torch.randn(ids.shape[0], ids.shape[1], dim, generator=g)
    q_proj = model.encoder.layers[1].self_attn.q_proj
    original = q_proj.forward
    q_proj.forward = lambda x: F.linear(x, q_proj.weight, q_proj.bias) + 0.5 * F.linear(F.linear(x, lora_a), lora_b)
    try:
        model.zero_grad()
        out = model(ids, attention_mask=mask)
        (out.last_hidden_state * weights).sum().backward()
    finally:
        q_proj.forward = original
    expected["grad/weights"] = weights
    expected["grad/lora_a"] = lora_a.detach()
    expected["grad/lora_b"] = lora_b.detach()
    expected["grad/d_lora_a"] = lora_a.grad
    expected["grad/d_lora_b"] = lora_b.grad
    names = []
    for key, p in model.named_parameters():
        expected[f"grad/d/text_model.{key}"] = p.grad
        names.append(f"text_model.{key}")
    model.zero_grad()
    return {"model": "sd1", "case": "masked", "parameters": names, "lora_layer": 1, "lora_scale": 0.5}


def module_tree(config: dict) -> dict:
    from transformers import CLIPTextConfig, CLIPTextModel
    with torch.device("meta"):
        model = CLIPTextModel(CLIPTextConfig(**config))
    params = [["text_model." + k, list(p.shape)] for k, p in model.named_parameters()]
    buffers = [["text_model." + k, list(b.shape)] for k, b in model.named_buffers()]
    return {"config": config, "parameters": params, "buffers": buffers,
            "parameter_count": sum(p.numel() for p in model.parameters())}


def generate(out_dir: pathlib.Path) -> None:
    from safetensors.torch import save_file
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection
    from transformers.activations import ACT2FN

    models_dir = out_dir / "models"
    expected: dict[str, torch.Tensor] = {}
    meta: dict = {"cases": [], "scales": {}}
    g = torch.Generator().manual_seed(1234)

    models = {name: build(name) for name in CONFIGS}
    for name, model in models.items():
        model.save_pretrained(str(models_dir / name), safe_serialization=True)
        meta["scales"][name] = model.encoder.layers[0].self_attn.scale

    # SD-style rows of 16 tokens: short, medium, full (no padding).
    ids_sd1, mask_sd1 = make_ids(g, [5, 9, 14], 16, EOS, EOS)
    ids_sd2, mask_sd2 = make_ids(g, [3, 12, 14], 16, EOS, 0)
    # Non-legacy end token 500 with higher ids around it (argmax would pick another position); 12 of 20 positions.
    ids_modern, mask_modern = make_ids(g, [4, 7, 10], 12, 500, 500, low=501, high=990)
    inputs = {"sd1": (ids_sd1, mask_sd1), "sd2": (ids_sd2, mask_sd2), "modern": (ids_modern, mask_modern)}

    def add_case(model_name: str, folder: str, case: str, ids, mask, model) -> None:
        prefix = f"{folder}/{case}"
        expected[f"{prefix}/input_ids"] = ids
        if mask is not None:
            expected[f"{prefix}/attention_mask"] = mask
        for key, value in run_case(model, ids, mask).items():
            expected[f"{prefix}/{key}"] = value
        meta["cases"].append({"model": model_name, "folder": folder, "case": case, "mask": mask is not None,
                              "layers": model.config.num_hidden_layers})

    for name, model in models.items():
        ids, mask = inputs[name]
        add_case(name, name, "plain", ids, None, model)
        add_case(name, name, "masked", ids, mask, model)
        add_case(name, name, "ones", ids, torch.ones_like(mask), model)
        if name != "modern":
            left_ids, left_mask = left_padded(ids, mask)
            add_case(name, name, "left", left_ids, left_mask, model)

    # transformers-4 key layout (what every real SD text_encoder has): must load to the same model.
    save_prefixed(models["sd1"], models_dir / "sd1_prefixed")
    reloaded = CLIPTextModel.from_pretrained(str(models_dir / "sd1_prefixed")).eval()
    for a, b in zip(reloaded.state_dict().values(), models["sd1"].state_dict().values()):
        assert torch.equal(a, b)
    add_case("sd1", "sd1_prefixed", "masked", ids_sd1, mask_sd1, reloaded)

    # fp16 weights (variant file only), computed in fp32 as from_pretrained(dtype=float32) does.
    models["sd2"].half().save_pretrained(str(models_dir / "sd2_fp16"), variant="fp16", safe_serialization=True)
    models["sd2"].float()
    fp16 = CLIPTextModel.from_pretrained(str(models_dir / "sd2_fp16"), variant="fp16", dtype=torch.float32).eval()
    assert fp16.dtype == torch.float32
    add_case("sd2", "sd2_fp16", "masked", ids_sd2, mask_sd2, fp16)

    # CLIPTextModelWithProjection.
    torch.manual_seed(SEEDS["projection"])
    projection = CLIPTextModelWithProjection(CLIPTextConfig(**CONFIGS["sd1"], projection_dim=24)).eval()
    projection.save_pretrained(str(models_dir / "projection"), safe_serialization=True)
    with torch.no_grad():
        out = projection(ids_sd1, attention_mask=mask_sd1)
    expected["projection/masked/input_ids"] = ids_sd1
    expected["projection/masked/attention_mask"] = mask_sd1
    expected["projection/masked/text_embeds"] = out.text_embeds
    expected["projection/masked/last"] = out.last_hidden_state

    meta["gradient"] = gradient_check(models["sd1"], ids_sd1, mask_sd1, expected)

    # Activations of ACT2FN on values spanning the interesting range.
    x = torch.cat([torch.linspace(-12, 12, 97), torch.randn(64, generator=g) * 3])
    expected["act/input"] = x
    for act in ACTIVATIONS:
        expected[f"act/{act}"] = ACT2FN[act](x)

    defaults = CLIPTextConfig().to_dict()
    meta["defaults"] = {k: defaults[k] for k in (
        "vocab_size", "hidden_size", "intermediate_size", "projection_dim", "num_hidden_layers", "num_attention_heads",
        "max_position_embeddings", "hidden_act", "layer_norm_eps", "attention_dropout", "pad_token_id",
        "bos_token_id", "eos_token_id")}
    meta["trees"] = {"sd15": module_tree(SD15_TEXT_CONFIG), "sd21": module_tree(SD21_TEXT_CONFIG)}

    save_file({k: v.detach().clone().contiguous() for k, v in expected.items()}, str(out_dir / "expected.safetensors"))
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")


def reference(out_path: str, folders: list[str]) -> None:
    """transformers' outputs for saved text_encoder folders (plain, and the fp16 variant where present), on two
    77-token prompts padded as the SD tokenizer pads them: [start, words…, end, pad…]. Writes, per folder i,
    "i/input_ids", "i/attention_mask" and "i/<plain|fp16>/<output>"."""
    from safetensors.torch import save_file
    from transformers import CLIPTextModel
    out: dict[str, torch.Tensor] = {}
    for i, folder in enumerate(folders):
        config = json.loads((pathlib.Path(folder) / "config.json").read_text(encoding="utf-8"))
        bos, eos, pad = config["bos_token_id"], config["eos_token_id"], config["pad_token_id"]
        ids = torch.full((2, 77), pad, dtype=torch.int64)
        mask = torch.zeros((2, 77), dtype=torch.int64)
        for row, n in enumerate((5, 20)):
            ids[row, 0] = bos
            ids[row, 1:n + 1] = 10 + (torch.arange(1, n + 1) * 37) % 900
            ids[row, n + 1] = eos
            mask[row, :n + 2] = 1
        out[f"{i}/input_ids"], out[f"{i}/attention_mask"] = ids, mask
        variants = [None] + (["fp16"] if any(pathlib.Path(folder).glob("model.fp16*.safetensors")) else [])
        for variant in variants:
            model = CLIPTextModel.from_pretrained(folder, variant=variant, dtype=torch.float32).eval()
            for key, value in run_case(model, ids, mask).items():
                out[f"{i}/{variant or 'plain'}/{key}"] = value.clone().contiguous()
    save_file(out, out_path)


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "reference":
        reference(sys.argv[2], sys.argv[3:])
    else:
        sys.exit(f"usage: {sys.argv[0]} reference OUT.safetensors TEXT_ENCODER_DIR...")
