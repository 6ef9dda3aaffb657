#!/usr/bin/env bash
# Rebuilds everything the DiT side ships, from scratch, with one command:
#   data set -> classifier -> DiT (base, then small) -> export weights + fixtures -> scores.
# Usage: Tools/dit/rebuild.sh [MINUTES_BASE] [MINUTES_SMALL]   (CPU time budgets, default 100 / 30)
set -euo pipefail
cd "$(dirname "$0")"
MIN_BASE=${1:-100}; MIN_SMALL=${2:-30}
if [ ! -x .venv/bin/python ]; then
  python3.11 -m venv .venv
  .venv/bin/pip install /opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl
  .venv/bin/pip install -r <(grep -v '^torch' requirements.txt | grep -v '^#')
fi
PY=".venv/bin/python"
export OMP_WAIT_POLICY=PASSIVE
$PY emoji_data.py                       # data/emoji32.npz (needs fonts-noto-color-emoji, unicode-data)
$PY classifier.py --epochs 60           # runs/classifier.pt, prints held-out accuracy
$PY train.py --config base --run runs/base --minutes "$MIN_BASE"
$PY train.py --config small --run runs/small --minutes "$MIN_SMALL"
$PY export.py --run runs/base --name dit-base --fixtures
$PY export.py --run runs/small --name dit-small
echo "Now build effterm (swift build -c release) and score its samples:"
echo "  .build/release/effterm diffuse --grid 20 --sampler dpmpp2m --steps 20 --out /tmp/dpm20.png"
echo "  .build/release/effterm diffuse --grid 20 --sampler ddim --steps 250 --out /tmp/ddim250.png"
echo "  $PY Tools/dit/evaluate.py /tmp/dpm20.png /tmp/ddim250.png"
