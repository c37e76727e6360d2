"""PyTorch side of bench/engine: the same small-transformer training step as run.ts, driven over stdin/stdout.

Protocol (one JSON object per line): {"cmd": "steps", "n": k} -> {"times": [seconds...], "losses": [...]};
{"cmd": "overhead", "n": N} -> {"us_per_op": ...}; {"cmd": "quit"}. The orchestrator (run.ts) interleaves
blocks of steps between this process and the TypeScript one, so both see the same machine state.
"""
import json
import sys
import time

import pathlib

import torch
import torch.nn.functional as F

# The model is the one the training-parity test uses (test/oracle/tiny_transformer.py).
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "test" / "oracle"))
from tiny_transformer import TinyTransformer  # noqa: E402


def main():
    config = json.loads(sys.argv[1])
    torch.set_num_threads(config["threads"])
    device = config["device"]
    torch.manual_seed(config["seed"])
    model = TinyTransformer(**config["model"]).to(device)
    data = torch.randint(0, config["model"]["vocab_size"], (config["batch"], config["model"]["block_size"] + 1)).to(device)
    idx, targets = data[:, :-1], data[:, 1:]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def step():
        logits = model(idx)
        loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.reshape(-1))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    print(json.dumps({"ready": True, "params": sum(p.numel() for p in model.parameters()),
                      "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "device_name": torch.cuda.get_device_name(0) if device.startswith("cuda") else "cpu"}), flush=True)
    for line in sys.stdin:
        msg = json.loads(line)
        if msg["cmd"] == "quit":
            break
        if msg["cmd"] == "steps":
            times, losses = [], []
            for _ in range(msg["n"]):
                sync()
                t0 = time.perf_counter()
                loss = step()
                sync()
                times.append(time.perf_counter() - t0)
                losses.append(loss.item())
            print(json.dumps({"times": times, "losses": losses}), flush=True)
        elif msg["cmd"] == "overhead":
            a = torch.ones(1)
            b = torch.ones(1)
            n = msg["n"]
            for _ in range(n // 10):
                a + b
            t0 = time.perf_counter()
            for _ in range(n):
                a + b
            print(json.dumps({"us_per_op": (time.perf_counter() - t0) / n * 1e6}), flush=True)


if __name__ == "__main__":
    main()
