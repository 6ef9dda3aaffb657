"""Trains the DiT on the emoji data set: deterministic seed, resumable, EMA, time budget.

Usage: python train.py --config base --run runs/base --until 20:35 [--threads 2]
Writes runs/NAME/{ckpt.pt, log.txt, config.json}; re-running the same command resumes.
"""
import argparse
import datetime as dt
import json
import os
import time

import numpy as np
import torch

import emoji_data
from model import CONFIGS, DiT, cosine_alphas_cumprod


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--config", default="base", choices=sorted(CONFIGS))
    p.add_argument("--run", default=None)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--ema", type=float, default=0.998)
    p.add_argument("--label-drop", type=float, default=0.1)
    p.add_argument("--max-steps", type=int, default=10 ** 9)
    p.add_argument("--minutes", type=float, default=None, help="time budget for this invocation")
    p.add_argument("--until", default=None, help="stop at this UTC wall time HH:MM")
    p.add_argument("--threads", type=int, default=1)  # 2 threads spun ~8x less efficiently on a loaded 2-core box
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ckpt-every-s", type=float, default=300)
    return p.parse_args()


def deadline(args):
    ends = []
    if args.minutes is not None:
        ends.append(time.time() + args.minutes * 60)
    if args.until:
        now = dt.datetime.now(dt.timezone.utc)
        hh, mm = map(int, args.until.split(":"))
        end = now.replace(hour=hh, minute=mm, second=0, microsecond=0)
        ends.append(end.timestamp())
    return min(ends) if ends else float("inf")


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    run = args.run or os.path.join(os.path.dirname(__file__), "runs", args.config)
    os.makedirs(run, exist_ok=True)
    cfg = CONFIGS[args.config]
    x_all, labels, holdout, classes = emoji_data.load()
    assert len(classes) == cfg.num_classes
    x_train = torch.from_numpy(x_all[~holdout]); y_train = torch.from_numpy(labels[~holdout])
    # Class sampling probability proportional to sqrt(class size): rare classes seen more often.
    counts = np.bincount(y_train.numpy(), minlength=cfg.num_classes).astype(np.float64)
    w = (np.sqrt(counts) / counts)[y_train.numpy()]
    weights = torch.from_numpy(w / w.sum())

    torch.manual_seed(args.seed)
    model = DiT(cfg)
    ema = DiT(cfg); ema.load_state_dict(model.state_dict()); ema.requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    abar = cosine_alphas_cumprod(cfg.timesteps).float()
    gen = torch.Generator().manual_seed(args.seed)
    step, images_seen, train_seconds = 0, 0, 0.0
    ckpt_path = os.path.join(run, "ckpt.pt")
    if os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path, weights_only=False)
        model.load_state_dict(ck["model"]); ema.load_state_dict(ck["ema"]); opt.load_state_dict(ck["opt"])
        gen.set_state(ck["gen"]); step = ck["step"]; images_seen = ck["images"]; train_seconds = ck["seconds"]
        print(f"resumed at step {step}")
    with open(os.path.join(run, "config.json"), "w") as f:
        json.dump({**cfg.to_dict(), "train_args": vars(args)}, f, indent=1)

    def save():
        tmp = ckpt_path + ".tmp"
        torch.save({"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                    "gen": gen.get_state(), "step": step, "images": images_seen,
                    "seconds": train_seconds, "config": cfg.to_dict()}, tmp)
        os.replace(tmp, ckpt_path)

    log = open(os.path.join(run, "log.txt"), "a")
    end = deadline(args)
    last_ckpt = time.time(); window, t_window = [], time.time()
    while step < args.max_steps and time.time() < end:
        t0 = time.time()
        idx = torch.multinomial(weights, args.batch, replacement=True, generator=gen)
        x0 = x_train[idx]; y = y_train[idx].clone()
        y[torch.rand(args.batch, generator=gen) < args.label_drop] = cfg.num_classes
        t = torch.randint(0, cfg.timesteps, (args.batch,), generator=gen)
        eps = torch.randn(x0.shape, generator=gen)
        a = abar[t].sqrt()[:, None, None, None]; s = (1 - abar[t]).sqrt()[:, None, None, None]
        xt = a * x0 + s * eps
        v = a * eps - s * x0
        lr = args.lr * min(1.0, (step + 1) / args.warmup)
        for g in opt.param_groups:
            g["lr"] = lr
        loss = (model(xt, t.float(), y) - v).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1; images_seen += args.batch
        decay = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.lerp_(pm, 1 - decay)
        train_seconds += time.time() - t0
        window.append(loss.item())
        if step % 25 == 0:
            now = time.time()
            msg = (f"{dt.datetime.now(dt.timezone.utc):%H:%M:%S} step {step} loss {np.mean(window):.4f} "
                   f"img/s {25 * args.batch / (now - t_window):.1f} train_min {train_seconds / 60:.1f}")
            print(msg, file=log, flush=True)
            window, t_window = [], now
        if time.time() - last_ckpt > args.ckpt_every_s:
            save(); last_ckpt = time.time()
    save()
    print(f"done step {step} images {images_seen} train_min {train_seconds / 60:.1f}", file=log, flush=True)


if __name__ == "__main__":
    main()
