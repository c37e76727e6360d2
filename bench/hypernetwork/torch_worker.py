"""PyTorch side of bench/hypernetwork: a reference HyperNetwork written from src/hypernetwork/hypernetwork.ts in
torch (diffusers' own BasicTransformerBlock, which ours ports), loading OUR weights, and transformers'
CLIPVisionModel[WithProjection] for the prediction timing. Driven over stdin/stdout by run.ts (one JSON object
per line).

Start: argv[1] = {"threads": int, "config": <the HyperNetwork's config.json, snake_case>, "weights": str,
"inputs": str}. `weights` holds our network's state dict plus "initial" (θ_0, a non-persistent buffer, passed
explicitly); `inputs` holds "features" (B, T, encoder_hidden_size) and "targets" (B, L, a, b): the training
step's fixed batch. Answers {"ready": ...}.

Commands:
  {"cmd": "forward", "out": path, "rounds": s}   θ_s of the features (eval, no grad) saved to `out` as "theta"
  {"cmd": "train", "n": k}                        k training steps; {"times", "cpu_times", "losses", "grad_norms"}
  {"cmd": "encoder", "config": {...}, "with_projection": bool, "dir": path, "seed": int}
                                                  a random CLIP vision tower of that config, saved to `dir`
                                                  (save_pretrained, safetensors) for run.ts to load the same weights
  {"cmd": "predict_output", "pixels": path, "out": path}
                                                  encoder hidden state [layer] and θ_s for "pixels", saved to `out`
  {"cmd": "predict", "n": k}                      k timed predictions of the saved pixels; {"times", "cpu_times"}
  {"cmd": "threads", "n": t}                      torch.set_num_threads(t)
  {"cmd": "quit"}

The training step is what src/hypernetwork/train.ts does with the weight loss alone (β = 1): θ̂ = network(f),
C = A_train · B_train per layer, Σ_i ‖C_i − C̃_i‖² / ‖C̃_i‖², backward, clip_grad_norm_(1.0) (the training loop's
maxGradNorm), AdamW (PyTorch's default on CPU: the single-tensor path, which ours replicates), zero_grad.
"""
import json
import sys
import time

import torch
import torch.nn as nn
from diffusers.models.attention import BasicTransformerBlock
from safetensors.torch import load_file, save_file
from transformers import CLIPVisionConfig, CLIPVisionModel, CLIPVisionModelWithProjection
from transformers.utils import logging as hf_logging


class ReferenceHyperNetwork(nn.Module):
    """src/hypernetwork/hypernetwork.ts in torch, with the same registered names."""

    def __init__(self, config):
        super().__init__()
        layers = len(config["layers"])
        values = config["lidb_rank"] * (config["lidb_a"] + config["lidb_b"])
        d = config["hidden_size"]
        self.config = config
        self.feature_norm = nn.LayerNorm(config["encoder_hidden_size"])
        self.input_projection = nn.Linear(values, d)
        self.layer_embedding = nn.Parameter(torch.zeros(layers, d))
        self.decoder = nn.ModuleList([
            BasicTransformerBlock(d, config["num_heads"], config["head_dim"], cross_attention_dim=config["encoder_hidden_size"], activation_fn="gelu")
            for _ in range(config["num_layers"])
        ])
        self.output_norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, values)
        self.output_gain = nn.Parameter(torch.ones(layers, values))
        self.output_offset = nn.Parameter(torch.zeros(layers, values))
        self.register_buffer("initial", torch.zeros(layers, values), persistent=False)

    def forward(self, features, rounds=None):
        rounds = rounds or self.config["rounds"]
        batch = features.shape[0]
        layers, values = self.initial.shape
        context = self.feature_norm(features)
        theta = self.initial.to(features.dtype).unsqueeze(0).expand(batch, layers, values)
        for _ in range(rounds):
            hidden = self.input_projection(theta) + self.layer_embedding
            for block in self.decoder:
                hidden = block(hidden, encoder_hidden_states=context)
            delta = self.head(self.output_norm(hidden)) * self.output_gain + self.output_offset
            theta = theta + delta
        return theta

    def split(self, theta):
        a, b, r = self.config["lidb_a"], self.config["lidb_b"], self.config["lidb_rank"]
        batch, layers = theta.shape[:2]
        return theta[:, :, : a * r].reshape(batch, layers, a, r), theta[:, :, a * r: a * r + r * b].reshape(batch, layers, r, b)


def main():
    cfg = json.loads(sys.argv[1])
    torch.set_num_threads(cfg["threads"])
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    config = cfg["config"]
    weights = load_file(cfg["weights"])
    initial = weights.pop("initial")
    network = ReferenceHyperNetwork(config)
    missing, unexpected = network.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise SystemExit(f"reference HyperNetwork: missing {missing}, unexpected {unexpected}")
    with torch.no_grad():
        network.initial.copy_(initial)
    inputs = load_file(cfg["inputs"])
    features, targets = inputs["features"], inputs["targets"]
    params = list(network.parameters())
    optimizer = torch.optim.AdamW(params, lr=cfg.get("lr", 1e-3), weight_decay=cfg.get("weight_decay", 1e-2))
    encoder = None
    encoder_layer = config.get("encoder_layer", -2)
    pixels = None

    def train_step():
        network.train()
        theta = network(features)
        a_train, b_train = network.split(theta)
        losses = (a_train @ b_train - targets).square().sum((1, 2, 3)) / targets.square().sum((1, 2, 3))
        loss = losses.sum()
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad()
        return loss.item(), norm.item()

    def predict(pixel_values):
        with torch.no_grad():
            out = encoder(pixel_values=pixel_values, output_hidden_states=True)
            feats = out.hidden_states[encoder_layer].float()
            return feats, network(feats)

    print(json.dumps({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "parameters": sum(p.numel() for p in params)}), flush=True)
    for line in sys.stdin:
        msg = json.loads(line)
        cmd = msg["cmd"]
        if cmd == "quit":
            break
        if cmd == "threads":
            torch.set_num_threads(msg["n"])
            print(json.dumps({"threads": torch.get_num_threads()}), flush=True)
        elif cmd == "forward":
            network.eval()
            with torch.no_grad():
                theta = network(features, msg.get("rounds"))
            save_file({"theta": theta.contiguous()}, msg["out"])
            print(json.dumps({"ok": True}), flush=True)
        elif cmd == "train":
            times, cpu_times, losses, norms = [], [], [], []
            for _ in range(msg["n"]):
                t0, c0 = time.perf_counter(), time.process_time()
                loss, norm = train_step()
                times.append(time.perf_counter() - t0)
                cpu_times.append(time.process_time() - c0)
                losses.append(loss)
                norms.append(norm)
            print(json.dumps({"times": times, "cpu_times": cpu_times, "losses": losses, "grad_norms": norms}), flush=True)
        elif cmd == "encoder":
            torch.manual_seed(msg.get("seed", 0))
            vision_config = CLIPVisionConfig(**msg["config"])
            model_class = CLIPVisionModelWithProjection if msg["with_projection"] else CLIPVisionModel
            encoder = model_class(vision_config).eval()
            encoder.save_pretrained(msg["dir"], safe_serialization=True)
            network.eval()
            print(json.dumps({"ok": True, "parameters": sum(p.numel() for p in encoder.parameters())}), flush=True)
        elif cmd == "predict_output":
            pixels = load_file(msg["pixels"])["pixels"]
            feats, theta = predict(pixels)
            save_file({"features": feats.contiguous(), "theta": theta.contiguous()}, msg["out"])
            print(json.dumps({"ok": True}), flush=True)
        elif cmd == "predict":
            times, cpu_times = [], []
            for _ in range(msg["n"]):
                t0, c0 = time.perf_counter(), time.process_time()
                predict(pixels)
                times.append(time.perf_counter() - t0)
                cpu_times.append(time.process_time() - c0)
            print(json.dumps({"times": times, "cpu_times": cpu_times}), flush=True)
        elif cmd == "drop_encoder":
            encoder = None
            pixels = None
            print(json.dumps({"ok": True}), flush=True)
        else:
            raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
