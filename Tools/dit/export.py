"""Exports a trained run: fp16 safetensors + config JSON + class list into the Swift
resources, and reference tensors (forward pass, one sampler trajectory) as test fixtures.

Usage: python export.py --run runs/base --name dit-base [--fixtures]
The fixtures are computed with the exported fp16 weights (read back as f32), so Swift and
PyTorch evaluate exactly the same parameters.
"""
import argparse
import json
import os

import numpy as np
import torch
from safetensors.torch import load_file, save_file

import emoji_data
import sampling
from model import DiT, DiTConfig

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
RESOURCES = os.path.join(REPO, "Sources", "EffDiffusion", "Resources")
FIXTURES = os.path.join(REPO, "Tests", "EffDiffusionTests", "Fixtures")


def load_ema(run):
    ck = torch.load(os.path.join(run, "ckpt.pt"), weights_only=False)
    cfg = DiTConfig(**ck["config"])
    model = DiT(cfg); model.load_state_dict(ck["ema"]); model.eval()
    return model, ck


def export_weights(model, ck, name, out_dir=None):
    out_dir = out_dir or RESOURCES
    os.makedirs(out_dir, exist_ok=True)
    tensors = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    meta = {"step": str(ck["step"]), "images_seen": str(ck["images"]),
            "train_minutes": f'{ck["seconds"] / 60:.1f}', "prediction": model.cfg.prediction}
    path = os.path.join(out_dir, f"{name}.safetensors")
    save_file(tensors, path, metadata=meta)
    with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
        json.dump({**model.cfg.to_dict(), "training": meta}, f, indent=1)
    with open(os.path.join(out_dir, "classes.json"), "w") as f:
        json.dump(emoji_data.class_list(), f, indent=1)
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")
    return path


def load_exported(name):
    """The exported fp16 weights read back into an f32 model (what Swift sees)."""
    with open(os.path.join(RESOURCES, f"{name}.json")) as f:
        d = json.load(f)
    d.pop("training", None)
    model = DiT(DiTConfig(**d))
    sd = {k: v.float() for k, v in load_file(os.path.join(RESOURCES, f"{name}.safetensors")).items()}
    model.load_state_dict(sd); model.eval()
    return model


def export_fixtures(name):
    model = load_exported(name)
    g = torch.Generator().manual_seed(7)
    cfg = model.cfg
    x = torch.randn((2, cfg.channels, cfg.image_size, cfg.image_size), generator=g)
    tau = torch.tensor([999.0, 412.5]); labels = torch.tensor([3, cfg.num_classes])
    with torch.no_grad():
        out = model(x, tau, labels)
    steps, guidance, cls = 4, 3.0, 5   # 4 steps: first order, 2M twice, lower-order final
    noise = torch.randn((1, cfg.channels, cfg.image_size, cfg.image_size), generator=g)
    trace = []
    final = sampling.sample(model, torch.tensor([cls]), steps, "dpmpp2m", guidance, noise=noise, trace=trace)
    tensors = {
        "forward.x": x, "forward.tau": tau, "forward.labels": labels.float(), "forward.out": out,
        "trajectory.noise": noise[0], "trajectory.final": final[0],
        "trajectory.x0": torch.stack([t[1][0] for t in trace]),
        "trajectory.tau": torch.tensor([t[0] for t in trace], dtype=torch.float64).float(),
    }
    os.makedirs(FIXTURES, exist_ok=True)
    path = os.path.join(FIXTURES, f"{name}-reference.safetensors")
    save_file({k: v.float().contiguous() for k, v in tensors.items()}, path,
              metadata={"model": name, "sampler": "dpmpp2m", "steps": str(steps),
                        "guidance": str(guidance), "class": str(cls)})
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", default=os.path.join(HERE, "runs", "base"))
    ap.add_argument("--name", default="dit-base")
    ap.add_argument("--fixtures", action="store_true")
    ap.add_argument("--out-dir", default=None, help="write weights here instead of the Swift resources")
    a = ap.parse_args()
    model, ck = load_ema(a.run)
    export_weights(model, ck, a.name, a.out_dir)
    if a.fixtures and not a.out_dir:
        export_fixtures(a.name)
