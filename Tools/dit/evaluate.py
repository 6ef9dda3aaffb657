"""Scores generated samples with the emoji classifier: class accuracy and a Frechet distance
on its 64-d penultimate features against the held-out real images (an FID-like score with
our own feature network; lower is better).

Usage: python evaluate.py GRID.png [GRID2.png ...]   (grids from `effterm diffuse --grid K`:
row r holds class r, tiles 32x32, no padding; an --upscale'd grid is detected and reduced).
Prints one JSON object per grid. Reference: real training images in the same grid shape, scored the same way.
"""
import json
import sys

import numpy as np
import torch
from PIL import Image

import classifier
import emoji_data


def frechet(f1, f2):
    """|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2), via symmetric eigendecompositions."""
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    w, v = np.linalg.eigh(s1)
    r1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = r1 @ s2 @ r1
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt)


def features_and_predictions(net, x):
    with torch.no_grad():
        f = net.features(torch.from_numpy(x).float())
        return f.numpy().astype(np.float64), net.out(f).argmax(1).numpy()


def load_grid(path, tile=32, rows=None):
    img = np.asarray(Image.open(path).convert("RGB"))
    H, W, _ = img.shape
    if rows is not None and H != rows * tile:
        k = H // (rows * tile)
        img = img[::k, ::k]
        H, W, _ = img.shape
    r, c = H // tile, W // tile
    tiles = img[:r * tile, :c * tile].reshape(r, tile, c, tile, 3).transpose(0, 2, 4, 1, 3)
    x = tiles.reshape(r * c, 3, tile, tile).astype(np.float32) / 127.5 - 1
    y = np.repeat(np.arange(r), c)
    return x, y


def score(net, x, y, ref_feats):
    f, pred = features_and_predictions(net, x)
    per_class = {int(c): float((pred[y == c] == c).mean()) for c in np.unique(y)}
    return {"images": int(len(y)), "accuracy": float((pred == y).mean()),
            "per_class_accuracy": per_class, "frechet": frechet(f, ref_feats)}


def main(paths):
    torch.set_num_threads(1)
    net = classifier.load()
    x, labels, holdout, classes = emoji_data.load()
    ref_f, ref_pred = features_and_predictions(net, x[holdout])
    out = {"classifier_heldout_accuracy": float((ref_pred == labels[holdout]).mean()),
           "heldout_images": int(holdout.sum())}
    print(json.dumps(out))
    for p in paths:
        gx, gy = load_grid(p, rows=len(classes))
        s = score(net, gx, gy, ref_f)
        # Reference for this grid shape: K real *training* images per class (drawn with
        # replacement where a class has fewer), scored the same way against held-out. Not a
        # strict floor: the classifier was fitted on these images, so their features sit
        # tighter than unseen ones would.
        k = int(len(gy) // len(classes))
        rng = np.random.default_rng(k)   # the same reference draw for every grid of this shape
        idx = np.concatenate([rng.choice(np.flatnonzero(~holdout & (labels == c)), size=k,
                                         replace=k > int((~holdout & (labels == c)).sum()))
                              for c in range(len(classes))])
        s["real_train_reference"] = score(net, x[idx], labels[idx], ref_f)
        s["real_train_reference"].pop("per_class_accuracy")
        s["grid"] = p
        s["per_class_accuracy"] = {classes[k]: v for k, v in s["per_class_accuracy"].items()}
        print(json.dumps(s))


if __name__ == "__main__":
    main(sys.argv[1:])
