#!/usr/bin/env bash
# Fidelity benchmark: infermeter's measurements against the llama.cpp tools they reproduce, built
# from the same llama.cpp and run interleaved (A B B A ...) on the same machine:
#   llama-bench          vs  infermeter bench     (pp and tg, single request)
#   llama-batched-bench  vs  infermeter parallel  (lockstep, same -npp/-ntg/-npl)
# Prints `ratio <test> <infermeter/anchor>` per comparison and `min_ratio`: for bench the medians of
# all repetitions of all rounds, for the parallel sweep the medians over rounds (one run each).
#
# Usage: bench/parity.sh MODEL [engine flags passed to all four tools, e.g. -t 2 -ngl 99 -fa on]
# Environment: ROUNDS (5), REPS (5), PP (128), TG (128), NPP (128), NTG (128), NPL (1,2,4,8),
#              BIN (build/bin), OUT (a folder for the raw outputs; default a temporary one)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-$root/build/bin}
[[ $# -ge 1 ]] || { echo "usage: bench/parity.sh MODEL [engine flags]" >&2; exit 2; }
model_ref=$1; shift
extra=("$@")
rounds=${ROUNDS:-5}; reps=${REPS:-5}
pp=${PP:-128}; tg=${TG:-128}; npp=${NPP:-128}; ntg=${NTG:-128}; npl=${NPL:-1,2,4,8}
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"

model=$("$bin/infermeter" model info "$model_ref" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["path"])')
max_npl=$(python3 -c "print(max(int(x) for x in '$npl'.split(',')))")
per_seq=$(( (npp + ntg + 255) / 256 * 256 ))
ctx=$(( max_npl * per_seq ))   # batched-bench: one context; per-sequence cells equal infermeter's auto context
echo "parity: model $model, $rounds rounds, flags: ${extra[*]:-(defaults)}" >&2

anchor_bench() { "$bin/llama-bench" -m "$model" -p "$pp" -n "$tg" -r "$reps" -o json "${extra[@]}" > "$out/llama-bench.$1.json" 2>/dev/null; }
our_bench() { "$bin/infermeter" -q bench -m "$model" -p "$pp" -n "$tg" -r "$reps" -o json --no-db "${extra[@]}" > "$out/infermeter-bench.$1.json"; }
anchor_parallel() {
    "$bin/llama-batched-bench" -m "$model" -c "$ctx" -npp "$npp" -ntg "$ntg" -npl "$npl" --output-format jsonl "${extra[@]}" \
        2>/dev/null | grep '^{' > "$out/batched-bench.$1.jsonl"
}
our_parallel() {
    "$bin/infermeter" -q parallel -m "$model" -p "$npp" -n "$ntg" --workers "$npl" -o json --no-db "${extra[@]}" \
        > "$out/infermeter-parallel.$1.json"
}
# A B B A ...: odd rounds run the anchor first, even rounds infermeter first, so neither always
# runs on the machine the other just warmed (or heated).
for r in $(seq 1 "$rounds"); do
    echo "parity: round $r/$rounds" >&2
    if (( r % 2 )); then anchor_bench "$r"; our_bench "$r"; anchor_parallel "$r"; our_parallel "$r"
    else our_bench "$r"; anchor_bench "$r"; our_parallel "$r"; anchor_parallel "$r"; fi
done

python3 - "$out" "$rounds" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
ratios = {}
def med(xs): return statistics.median(xs)
anchor, ours = {}, {}
for r in range(1, rounds + 1):
    for row in json.load(open(f"{out}/llama-bench.{r}.json")):
        name = f"pp{row['n_prompt']}" if row["n_prompt"] else f"tg{row['n_gen']}"
        anchor.setdefault(name, []).extend(row["samples_ts"])
    for row in json.load(open(f"{out}/infermeter-bench.{r}.json")):
        name = f"pp{row['n_prompt']}" if row["n_prompt"] else f"tg{row['n_gen']}"
        ours.setdefault(name, []).extend(row["samples_ts"])
    for line in open(f"{out}/batched-bench.{r}.jsonl"):
        row = json.loads(line)
        w = row["pl"]
        anchor.setdefault(f"parallel_w{w}_pp", []).append(row["speed_pp"])
        anchor.setdefault(f"parallel_w{w}_tg", []).append(row["speed_tg"])
        anchor.setdefault(f"parallel_w{w}_overall", []).append(row["speed"])
    for row in json.load(open(f"{out}/infermeter-parallel.{r}.json")):
        if row.get("skipped"): continue
        w = row["workers"]
        ours.setdefault(f"parallel_w{w}_pp", []).append(row["prompt_tps"])
        ours.setdefault(f"parallel_w{w}_tg", []).append(row["gen_tps"])
        ours.setdefault(f"parallel_w{w}_overall", []).append(row["overall_tps"])
low = None
for name in anchor:
    if name not in ours: 
        print(f"missing {name}")
        continue
    a, o = med(anchor[name]), med(ours[name])
    ratio = o / a
    print(f"ratio {name} {ratio:.3f}   (infermeter {o:.2f} t/s, anchor {a:.2f} t/s)")
    low = ratio if low is None else min(low, ratio)
print(f"min_ratio {low:.3f}")
PY
