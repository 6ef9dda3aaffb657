#!/usr/bin/env bash
# Runs llama.cpp's llama-bench and `effterm bench` INTERLEAVED on the same GGUF, same
# thread count, and prints effterm/llama.cpp ratios against issue 3's targets.
# Builds nothing: pass a llama.cpp build dir (with bin/llama-bench) and an effterm binary.
#
#   Tools/bench/compare-llama.sh LLAMA_BUILD_DIR [EFFTERM_BIN] [MODEL]
#   env: THREADS (2), ROUNDS (3), DEPTH (4096), BATCHED=1 also runs llama-batched-bench
#
# Each round runs, alternating tools: pp512, tg128, tg128 at depth DEPTH. The median over
# rounds is reported (these shared VMs vary by +-15% between runs, so the tools are timed
# side by side rather than in separate sessions). r(8) comes from effterm's batched bench.
set -euo pipefail
LLAMA_DIR=${1:?usage: compare-llama.sh LLAMA_BUILD_DIR [EFFTERM_BIN] [MODEL]}
EFFTERM=${2:-.build/release/effterm}
MODEL=${3:-${EFFTERM_MODEL:-${XDG_CACHE_HOME:-$HOME/.cache}/effterm/models/SmolLM2-135M-Instruct.Q4_1.gguf}}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
DEPTH=${DEPTH:-4096}
LB="$LLAMA_DIR/bin/llama-bench"
[ -x "$LB" ] || { echo "no llama-bench at $LB" >&2; exit 1; }
[ -x "$EFFTERM" ] || { echo "no effterm at $EFFTERM (swift build -c release)" >&2; exit 1; }
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

llama() {  # name, extra args
  local name=$1; shift
  "$LB" -m "$MODEL" -t "$THREADS" -r 1 -o json "$@" 2>/dev/null > "$OUT/llama-$name-$round.json"
}
eff() {  # name, extra args
  local name=$1; shift
  "$EFFTERM" bench --model "$MODEL" --threads "$THREADS" --reps 1 --json "$@" > "$OUT/eff-$name-$round.json"
}

for round in $(seq 1 "$ROUNDS"); do
  echo "round $round/$ROUNDS ..." >&2
  llama pp512 -p 512 -n 0
  eff pp512 --only prefill --prefill 512
  eff tg128 --only decode --depths 0
  llama tg128 -p 0 -n 128
  llama tgdeep -p 0 -n 128 -d "$DEPTH"
  eff tgdeep --only decode --depths "$DEPTH"
done
"$EFFTERM" bench --model "$MODEL" --threads "$THREADS" --reps 3 --json --only batched > "$OUT/eff-batched.json"
if [ "${BATCHED:-0}" = 1 ]; then
  "$LLAMA_DIR/bin/llama-batched-bench" -m "$MODEL" -t "$THREADS" -c 2048 -b 512 -ub 512 \
    -npp 64 -ntg 32 -npl 1,2,4,8 2>/dev/null | grep -E '^\|' > "$OUT/llama-batched.md" || true
fi

python3 - "$OUT" "$ROUNDS" "$DEPTH" "$THREADS" <<'PY'
import json, statistics, sys
out, rounds, depth, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
def llama(name):
    return [json.load(open(f"{out}/llama-{name}-{r}.json"))[0]["avg_ts"] for r in range(1, rounds + 1)]
def eff(name, key):
    vals = []
    for r in range(1, rounds + 1):
        j = json.load(open(f"{out}/eff-{name}-{r}.json"))
        vals.append(j[key][0]["tok_s"])
    return vals
rows = [
    ("pp512", llama("pp512"), eff("pp512", "prefill"), 0.8, 1.0),
    ("tg128", llama("tg128"), eff("tg128", "decode"), 1.0, 1.25),
    (f"tg128 @ d{depth}", llama("tgdeep"), eff("tgdeep", "decode"), 0.8, 1.0),
]
print(f"threads={threads} rounds={rounds} (median tok/s per tool; runs interleaved)")
print(f"{'test':<16}{'llama.cpp':>11}{'effterm':>11}{'ratio':>8}  target")
for name, l, e, target, aim in rows:
    ml, me = statistics.median(l), statistics.median(e)
    ok = "ok" if me / ml >= target else "MISSED"
    print(f"{name:<16}{ml:>11.1f}{me:>11.1f}{me/ml:>8.2f}  >= {target} (aim {aim}) {ok}")
b = json.load(open(f"{out}/eff-batched.json"))
for row in b["batched"]:
    print(f"effterm batched B={row['streams']}: r(B) = {row['step_ratio']:.2f}, {row['tok_s']:.1f} tok/s"
          + ("  target r(8) <= 3: " + ("ok" if row["step_ratio"] <= 3 else "MISSED") if row["streams"] == 8 else ""))
print("machine:", json.dumps(b["machine"]))
try:
    print(open(f"{out}/llama-batched.md").read().strip())
except FileNotFoundError:
    pass
PY
