"""Small CNN classifier on the emoji data (train split), used as the feature network for
class accuracy and a Frechet distance (FID-like) on generated samples.

Usage: python classifier.py  -> runs/classifier.pt, prints held-out accuracy.
"""
import argparse
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import emoji_data

HERE = os.path.dirname(os.path.abspath(__file__))
PATH = os.path.join(HERE, "runs", "classifier.pt")
FEATURES = 64


class Classifier(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.c1 = nn.Conv2d(3, 16, 3, padding=1); self.c2 = nn.Conv2d(16, 16, 3, padding=1)
        self.c3 = nn.Conv2d(16, 32, 3, padding=1); self.c4 = nn.Conv2d(32, 32, 3, padding=1)
        self.c5 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc = nn.Linear(64, FEATURES)
        self.out = nn.Linear(FEATURES, num_classes)

    def features(self, x):
        """x [B,3,32,32] in [-1,1] -> penultimate features [B, 64]."""
        x = F.max_pool2d(F.relu(self.c2(F.relu(self.c1(x)))), 2)
        x = F.max_pool2d(F.relu(self.c4(F.relu(self.c3(x)))), 2)
        x = F.relu(self.c5(x)).mean(dim=(2, 3))
        return F.relu(self.fc(x))

    def forward(self, x):
        return self.out(self.features(x))


def augment(x, g):
    """Random shifts up to 2 px and small brightness jitter (flips would change flags/text)."""
    B = x.shape[0]
    pad = F.pad(x, (2, 2, 2, 2), mode="replicate")
    dx = torch.randint(0, 5, (B,), generator=g); dy = torch.randint(0, 5, (B,), generator=g)
    out = torch.stack([pad[i, :, dy[i]:dy[i] + 32, dx[i]:dx[i] + 32] for i in range(B)])
    return out * (1 + 0.1 * (torch.rand(B, 1, 1, 1, generator=g) - 0.5))


def train(epochs=60, seed=0, threads=2):
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    x, y, holdout, classes = emoji_data.load()
    xtr, ytr = torch.from_numpy(x[~holdout]), torch.from_numpy(y[~holdout])
    xte, yte = torch.from_numpy(x[holdout]), torch.from_numpy(y[holdout])
    counts = np.bincount(ytr.numpy(), minlength=len(classes))
    class_w = torch.tensor((counts.sum() / (len(classes) * counts)) ** 0.5, dtype=torch.float32)
    net = Classifier(len(classes))
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    g = torch.Generator().manual_seed(seed)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=epochs * ((len(ytr) + 63) // 64))
    for ep in range(epochs):
        net.train()
        perm = torch.randperm(len(ytr), generator=g)
        for i in range(0, len(ytr), 64):
            idx = perm[i:i + 64]
            loss = F.cross_entropy(net(augment(xtr[idx], g)), ytr[idx], weight=class_w)
            opt.zero_grad(); loss.backward(); opt.step(); sched.step()
        if ep % 10 == 9 or ep == epochs - 1:
            acc = accuracy(net, xte, yte)
            print(f"epoch {ep + 1} loss {loss.item():.3f} held-out acc {acc:.3f}")
    os.makedirs(os.path.dirname(PATH), exist_ok=True)
    torch.save({"state": net.state_dict(), "classes": classes}, PATH)
    acc = accuracy(net, xte, yte)
    print(f"held-out accuracy {acc:.4f} on {len(yte)} images -> {PATH}")
    return acc


def accuracy(net, x, y):
    net.eval()
    with torch.no_grad():
        return (net(x).argmax(1) == y).float().mean().item()


def load():
    ck = torch.load(PATH, weights_only=False)
    net = Classifier(len(ck["classes"])); net.load_state_dict(ck["state"]); net.eval()
    return net


if __name__ == "__main__":
    ap = argparse.ArgumentParser(); ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    train(a.epochs, threads=a.threads)
