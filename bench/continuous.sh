#!/usr/bin/env bash
# Continuous batching against lockstep for any model (issue 14's check): at each W, lockstep
# generation t/s (batched-bench semantics) beside continuous batching with every request at t = 0
# and fixed lengths, (a) without sampling (--no-sample: must be within 3% of lockstep), (b) with CPU
# sampling (greedy, what llama-server does by default) and (c) with backend sampling. Prints the
# ratios; rounds alternate and the best of each is kept.
# Usage: bench/continuous.sh MODEL [engine flags...]   env: W="1,2,4,8" P=128 N=512 ROUNDS=2 OUT=dir
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-$root/build/bin/infermeter}
model=${1:?usage: bench/continuous.sh MODEL [engine flags]}
shift
W=${W:-1,2,4,8}; P=${P:-128}; N=${N:-512}; ROUNDS=${ROUNDS:-2}
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
best() { python3 -c "import json,sys; print(max(json.load(open(f))[0][sys.argv[1]] for f in sys.argv[2:]))" "$@"; }
printf "%-4s %12s %14s %14s %14s %8s %8s %8s %10s\n" W lockstep no-sample cpu-sampling backend-smp ratio cpu/ls be/ls sample%
for w in ${W//,/ }; do
    for r in $(seq 1 "$ROUNDS"); do
        "$bin" parallel -m "$model" -w "$w" -p "$P" -n "$N" -o json --no-db "$@" > "$out/ls-$w-$r.json"
        for s in no-sample cpu backend; do
            flag=(); [[ $s == no-sample ]] && flag=(--no-sample); [[ $s == backend ]] && flag=(--backend-sampling)
            "$bin" parallel -m "$model" --mode continuous --concurrency "$w" --requests "$w" -p "$P" -n "$N" "${flag[@]}" \
                -o json --no-db "$@" > "$out/$s-$w-$r.json"
        done
    done
    ls=$(best gen_tps "$out"/ls-"$w"-*.json)
    ns=$(best decode_tps "$out"/no-sample-"$w"-*.json)
    cpu=$(best decode_tps "$out"/cpu-"$w"-*.json)
    be=$(best decode_tps "$out"/backend-"$w"-*.json)
    share=$(python3 -c "import json; print(round(100*json.load(open('$out/cpu-$w-1.json'))[0]['sample_share'],1))")
    python3 - "$w" "$ls" "$ns" "$cpu" "$be" "$share" <<'PY'
import sys
w, ls, ns, cpu, be, share = sys.argv[1], *map(float, sys.argv[2:])
print(f"{w:<4} {ls:12.1f} {ns:14.1f} {cpu:14.1f} {be:14.1f} {ns/ls:8.3f} {cpu/ls:8.3f} {be/ls:8.3f} {share:10.1f}")
PY
done
echo "ratio = continuous --no-sample / lockstep generation t/s (target within 0.97..1.03); logs in $out"
