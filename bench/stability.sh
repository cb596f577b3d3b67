#!/usr/bin/env bash
# Stability of the single-request figures (issue 9): `infermeter bench` and llama-bench (built from the
# same llama.cpp, same model file) each run RUNS times in a row for pp and tg. Prints, per tool and test:
#   rel_sd   the relative standard deviation within one invocation (stddev_ts / avg_ts), the worst
#            of the RUNS invocations and their mean
#   cv       the coefficient of variation of the RUNS invocations' means (sample stddev / mean)
# beside the targets (both <= 1%), and the load average before and after (figures from a loaded
# machine say little).
#
# Usage: bench/stability.sh [engine flags for both tools, e.g. -ngl 99 -fa on -t 8]
# Environment: MODEL (synth:qwen2-1.5b-q4_k_m; a .gguf or synth:PRESET), RUNS (3), REPS (5, -r of both),
#              PP (128), TG (128), IM_ARGS (extra `infermeter bench` flags, e.g. "--min-time 2 --max-reps 50"),
#              BIN (build/bin), OUT (a folder for the raw outputs; default a temporary one)
# Builds nothing: expects build/bin/infermeter and build/bin/llama-bench (./scripts/build).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-$root/build/bin}
model_ref=${MODEL:-synth:qwen2-1.5b-q4_k_m}
runs=${RUNS:-3}; reps=${REPS:-5}; pp=${PP:-128}; tg=${TG:-128}
# shellcheck disable=SC2206
im_args=(${IM_ARGS:-})
extra=("$@")
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
for b in infermeter llama-bench; do
    [[ -x "$bin/$b" ]] || { echo "stability: $bin/$b is missing; run ./scripts/build first" >&2; exit 2; }
done

# infermeter synthesizes and caches synth: models; llama-bench gets the cached file's path.
model=$("$bin/infermeter" model info "$model_ref" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["path"])')
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "stability: model $model, $runs invocations of each tool, -r $reps, flags: ${extra[*]:-(defaults)}," \
     "infermeter extra: ${im_args[*]:-(none)}" >&2

for r in $(seq 1 "$runs"); do
    echo "stability: infermeter bench $r/$runs" >&2
    "$bin/infermeter" -q bench -m "$model" -p "$pp" -n "$tg" -r "$reps" -o json --no-db "${im_args[@]}" "${extra[@]}" \
        > "$out/infermeter.$r.json"
done
for r in $(seq 1 "$runs"); do
    echo "stability: llama-bench $r/$runs" >&2
    "$bin/llama-bench" -m "$model" -p "$pp" -n "$tg" -r "$reps" -o json "${extra[@]}" > "$out/llama-bench.$r.json" 2>/dev/null
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$out" "$runs" "$load_before" "$load_after" <<'PY'
import json, statistics, sys
out, runs, load_before, load_after = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
target = 0.01
print(f"load average: {load_before} before, {load_after} after (2-core figures are noise when it is above ~1)")
print(f"{'tool':<12} {'test':<7} {'rel_sd max':>10} {'rel_sd mean':>11} {'cv of means':>11}  target   "
      f"{'reps':>9} {'warmups':>9}  verdict")
for tool in ("infermeter", "llama-bench"):
    rows = {}
    for r in range(1, runs + 1):
        for row in json.load(open(f"{out}/{tool}.{r}.json")):
            name = f"pp{row['n_prompt']}" if row["n_prompt"] else f"tg{row['n_gen']}"
            rows.setdefault(name, []).append(row)
    for name, rs in rows.items():
        rel_sd = [row["stddev_ts"] / row["avg_ts"] for row in rs]
        means = [row["avg_ts"] for row in rs]
        cv = statistics.stdev(means) / statistics.mean(means) if len(means) > 1 else float("nan")
        reps = ",".join(str(len(row["samples_ts"])) for row in rs)
        warm = ",".join(str(row["n_warmup"]) for row in rs) if "n_warmup" in rs[0] else "1"
        ok = max(rel_sd) <= target and cv <= target
        print(f"{tool:<12} {name:<7} {100 * max(rel_sd):9.2f}% {100 * statistics.mean(rel_sd):10.2f}% "
              f"{100 * cv:10.2f}%  <= 1%   {reps:>9} {warm:>9}  {'met' if ok else 'NOT met'}")
print(f"raw outputs: {out}")
PY
