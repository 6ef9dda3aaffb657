"""Builds the 32x32 emoji data set from Noto Color Emoji, labelled by emoji-test.txt groups.

Run: python emoji_data.py  ->  data/emoji32.npz (never committed; rebuilt by this script).

Classes are chosen for visual uniformity (measured: uniform classes become recognizable far
sooner than mixed ones such as animals or food on a CPU training budget). Each class is a
merge of emoji-test.txt subgroups, optionally filtered by name.
"""
import hashlib
import json
import os
import re
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
EMOJI_TEST = "/usr/share/unicode/emoji/emoji-test.txt"
SIZE = 32                      # output resolution
FONT_SIZE = 109                # the only size the CBDT bitmap font renders at
BACKGROUND = (20, 20, 24)      # dark terminal-like background
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "data", "emoji32.npz")
HOLDOUT_FRACTION = 0.15
SEED = 1234

YELLOW_FACES = ["face-smiling", "face-affection", "face-tongue", "face-hand",
                "face-neutral-skeptical", "face-sleepy", "face-unwell", "face-hat",
                "face-glasses", "face-concerned"]
CLOCK_RE = re.compile(r"(o’clock|-thirty)$")
MOON_NAMES = {"new moon", "waxing crescent moon", "first quarter moon", "waxing gibbous moon",
              "full moon", "waning gibbous moon", "last quarter moon", "waning crescent moon",
              "crescent moon", "new moon face", "first quarter moon face",
              "last quarter moon face", "full moon face"}


def _animal_face(sub, name):
    return sub in ("cat-face", "monkey-face") or (
        sub.startswith("animal-") and name.endswith(" face"))


# (class name, why, predicate(subgroup, name) -> bool). Order = class id.
CLASSES = [
    ("face", "round yellow smiley faces", lambda s, n: s in YELLOW_FACES),
    ("animal face", "round animal heads", _animal_face),
    ("heart", "heart shapes of many colours", lambda s, n: s == "heart"),
    ("hand", "hand gestures, all skin tones", lambda s, n: s in (
        "hand-fingers-open", "hand-fingers-partial", "hand-single-finger",
        "hand-fingers-closed", "hands")),
    ("person", "head-and-shoulders people, all skin tones and hair", lambda s, n: s == "person"),
    ("flag", "rectangular flags", lambda s, n: s in ("flag", "country-flag", "subdivision-flag")),
    ("clock", "clock faces at the hour and half hour", lambda s, n: s == "time" and CLOCK_RE.search(n)),
    ("moon", "moon phases", lambda s, n: s == "sky & weather" and n in MOON_NAMES),
    ("sign tile", "square tiles with a symbol: keycaps, arrows, media, letters, zodiac",
     lambda s, n: s in ("keycap", "arrow", "av-symbol", "alphanum", "zodiac")),
    ("shape", "coloured circles, squares, diamonds", lambda s, n: s == "geometric"),
    ("ball", "sport balls", lambda s, n: s == "sport" and ("ball" in n or n == "tennis")),
    ("warning sign", "warning and prohibition signs", lambda s, n: s == "warning"),
]


def parse_emoji_test(path=EMOJI_TEST):
    """Returns [(codepoint string, subgroup, name)] for fully-qualified entries."""
    rows, sub = [], None
    pat = re.compile(r"([0-9A-F ]+);\s*(\S+)\s*#\s*\S+\s*E[\d.]+\s*(.*)")
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("# subgroup:"):
                sub = line.split(":", 1)[1].strip()
            elif line.strip() and not line.startswith("#"):
                m = pat.match(line)
                if m and m.group(2) == "fully-qualified":
                    s = "".join(chr(int(h, 16)) for h in m.group(1).split())
                    rows.append((s, sub, m.group(3).strip()))
    return rows


def rasterize(font, text):
    """Renders one emoji at 109 px, centres it on a square dark canvas, downsamples to 32x32.

    Returns uint8 [32, 32, 3] or None when the font cannot draw it as a single glyph.
    """
    left, top, right, bottom = font.getbbox(text)
    if right - left > 140 or right <= 0:  # not shaped into one glyph (missing ligature)
        return None
    layer = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
    ImageDraw.Draw(layer).text((0, 0), text, font=font, embedded_color=True)
    box = layer.getbbox()
    if box is None:
        return None
    glyph = layer.crop(box)
    side = max(glyph.size) + 8
    canvas = Image.new("RGBA", (side, side), BACKGROUND + (255,))
    canvas.alpha_composite(glyph, ((side - glyph.size[0]) // 2, (side - glyph.size[1]) // 2))
    img = canvas.convert("RGB").resize((SIZE, SIZE), Image.Resampling.LANCZOS)
    return np.asarray(img, dtype=np.uint8)


def build(out=OUT):
    font = ImageFont.truetype(FONT, FONT_SIZE, layout_engine=ImageFont.Layout.RAQM)
    images, labels, names, seen = [], [], [], set()
    for text, sub, name in parse_emoji_test():
        cls = next((i for i, (_, _, pred) in enumerate(CLASSES) if pred(sub, name)), None)
        if cls is None:
            continue
        img = rasterize(font, text)
        if img is None:
            continue
        digest = hashlib.sha1(img.tobytes()).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        images.append(img); labels.append(cls); names.append(name)
    images = np.stack(images); labels = np.array(labels, dtype=np.int64)
    # Stratified held-out split (at least one per class).
    rng = np.random.default_rng(SEED)
    holdout = np.zeros(len(labels), dtype=bool)
    for c in range(len(CLASSES)):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        holdout[idx[:max(1, int(round(len(idx) * HOLDOUT_FRACTION)))]] = True
    os.makedirs(os.path.dirname(out), exist_ok=True)
    np.savez_compressed(out, images=images, labels=labels, holdout=holdout,
                        names=np.array(names), classes=np.array([c[0] for c in CLASSES]))
    for c, (cname, why, _) in enumerate(CLASSES):
        n = int((labels == c).sum()); h = int((holdout & (labels == c)).sum())
        print(f"{c:2d} {cname:13s} {n:4d} images ({h} held out)  {why}")
    print(f"total {len(labels)} images -> {out}")
    return out


def load(path=OUT):
    """Returns images float32 [N,3,32,32] in [-1,1], labels int64 [N], holdout bool [N]."""
    d = np.load(path)
    x = d["images"].astype(np.float32).transpose(0, 3, 1, 2) / 127.5 - 1.0
    return x, d["labels"], d["holdout"], [str(c) for c in d["classes"]]


def class_list():
    return [{"id": i, "name": n, "description": why} for i, (n, why, _) in enumerate(CLASSES)]


if __name__ == "__main__":
    build(sys.argv[1] if len(sys.argv) > 1 else OUT)
