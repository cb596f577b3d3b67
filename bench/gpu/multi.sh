#!/usr/bin/env bash
# Multi-GPU scaling (issue 13) on the GPU box: `bench/gpu/multi.sh N` runs, on the first N GPUs
# (CUDA_VISIBLE_DEVICES), for synth:qwen2-7b-q4_k_m and synth:llama-3.1-8b-q4_k_m and each split mode of
# SPLITS (default "layer row"; with N = 1 "none layer" is the rehearsal): bench pp512/tg128, lockstep
# parallel 128/NPRED at W = 1..64, and continuous batching at concurrency 1, 16, 64 (CPU sampling,
# REQUESTS_PER_USER requests per user). Every result is JSON with the exact command beside it, packed into
# $OUT/multi-N.tar.gz; a summary table of generation t/s per model, split mode and W ends the log.
# One call per GPU count, at most 10 minutes: DEADLINE (seconds) skips what would run past it.
# Build first in the same call: `bash bench/gpu/run.sh build && bash bench/gpu/multi.sh 2`.
# Env: MODELS, SPLITS, NPRED (1024), W (1-64*2), C (1,16,64), REQUESTS_PER_USER (2), DEADLINE (0 = none).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
n=${1:?usage: bench/gpu/multi.sh N_GPUS}
# The device returns at most 8 files from $OUT: results go to /tmp/multi-N, then one archive and the
# summary come back ($OUT/multi-N.tar.gz, $OUT/multi-N.txt).
dest=${OUT:-/tmp/out}
out=/tmp/multi-$n
rm -rf "$out" && mkdir -p "$out" "$dest"
export XDG_CACHE_HOME=$root/.cache XDG_DATA_HOME=$root/.cache/data
bin=build/bin/infermeter
[[ -x $bin ]] || { echo "multi: $bin not built (bash bench/gpu/run.sh build)"; exit 2; }
# N = 0 rehearses the script on the CPU (-ngl 0, split "none"; e.g. MODELS=synth:tiny on the 2-core VM).
have=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
((have >= n)) || { echo "multi: $n GPUs asked for, $have here"; exit 2; }
export CUDA_VISIBLE_DEVICES=$(seq -s, 0 $((n - 1)))
models=${MODELS:-"synth:qwen2-7b-q4_k_m synth:llama-3.1-8b-q4_k_m"}
ngl=99
if ((n == 0)); then splits=${SPLITS:-none}; ngl=0
elif ((n == 1)); then splits=${SPLITS:-"none layer"}
else splits=${SPLITS:-"layer row"}; fi
npred=${NPRED:-1024}; ws=${W:-1-64*2}; cs=${C:-1,16,64}; per_user=${REQUESTS_PER_USER:-2}
deadline=${DEADLINE:-0}
late() { ((deadline > 0 && SECONDS >= deadline)); }

if ((n > 0)); then
    nvidia-smi --query-gpu=index,name,memory.total,memory.used --format=csv | tee "$out/gpus.csv"
    nvidia-smi topo -m > "$out/topology.txt" 2>&1 || true
fi

run() {  # name, then the infermeter arguments: the command goes beside its result
    local name=$1; shift
    if late; then echo "multi: $name skipped (DEADLINE)"; echo "skipped" > "$out/$name.skipped"; return; fi
    echo "CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES $bin $*" > "$out/$name.cmd"
    local t0=$SECONDS
    "$bin" "$@" -o json --no-db > "$out/$name.json" 2> "$out/$name.log" || echo "multi: $name failed (see $name.log)"
    echo "multi: $name $((SECONDS - t0)) s"
}

for model in $models; do
    m=${model#synth:}
    "$bin" model info "$model" --devices -ngl "$ngl" > "$out/$m-info.txt" 2>&1 || { echo "multi: $model unavailable"; cat "$out/$m-info.txt"; continue; }
    for sm in $splits; do
        flags=(-ngl "$ngl" -fa on -sm "$sm")
        run "$m-$sm-bench" bench -m "$model" -p 512 -n 128 -r 3 "${flags[@]}"
        run "$m-$sm-lockstep" parallel -m "$model" -p 128 -n "$npred" -w "$ws" "${flags[@]}"
        for c in ${cs//,/ }; do
            run "$m-$sm-continuous-$c" parallel -m "$model" --mode continuous --concurrency "$c" \
                --requests $((per_user * c)) -p 128 -n 256 "${flags[@]}"
        done
    done
done

python3 - "$out" <<'EOF' | tee "$out/summary.txt"
import glob, json, os, sys
out = sys.argv[1]
print(f"\n{'model':<16} {'split':<6} {'pp512':>9} {'tg128':>8}  lockstep generation t/s by W  |  continuous output t/s by C")
for path in sorted(glob.glob(f"{out}/*-bench.json")):
    stem = os.path.basename(path)[: -len("-bench.json")]
    model, sm = stem.rsplit("-", 1)
    def load(name):
        try:
            return json.load(open(f"{out}/{name}.json"))
        except (OSError, ValueError):
            return []
    bench = load(f"{stem}-bench")
    pp = next((r["avg_ts"] for r in bench if r.get("n_gen") == 0), float("nan"))
    tg = next((r["avg_ts"] for r in bench if r.get("n_prompt") == 0), float("nan"))
    ls = " ".join(f"{r['workers']}:{r['gen_tps']:.0f}" for r in load(f"{stem}-lockstep") if not r.get("skipped"))
    cont = " ".join(f"{r.get('concurrency', '?')}:{r.get('output_tps', float('nan')):.0f}"
                    for c in sorted(glob.glob(f"{out}/{stem}-continuous-*.json"))
                    for r in load(os.path.basename(c)[:-5]))
    print(f"{model:<16} {sm:<6} {pp:>9.0f} {tg:>8.1f}  {ls}  |  {cont}")
EOF
cp "$out/summary.txt" "$dest/multi-$n.txt"
tar -C /tmp -czf "$dest/multi-$n.tar.gz" "multi-$n"
echo "multi: $dest/multi-$n.tar.gz"
