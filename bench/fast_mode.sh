#!/usr/bin/env bash
# --fast against the full lockstep sweep on the same model (issue 10's check): the sweep measured
# (parallel, one repetition), then predicted (parallel --fast); per W the predicted and measured overall
# t/s, the error and whether the measurement lies inside the 95% prediction interval, then the wall
# times. Ends with `max_error_pct <value>` and `time_ratio <fast/full>` (targets: 5 and 0.15).
# Usage: bench/fast_mode.sh MODEL [engine flags...]   env: W="1,2,4,8" P=128 N=512 OUT=dir
#
# CONTINUOUS=1: the same for continuous batching (docs/fast-mode.md §8): closed loop at each C of W
# (parallel --mode continuous, REQUESTS_PER_USER requests per user, default 4; CPU sampling unless the
# flags say otherwise), measured, then predicted with --fast; per C the predicted and measured output
# t/s, mean TTFT and TPOT. Ends with the same two lines.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-$root/build/bin/infermeter}
model=${1:?usage: bench/fast_mode.sh MODEL [engine flags]}
shift
W=${W:-1,2,4,8}; P=${P:-128}; N=${N:-512}
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"

if [[ -n "${CONTINUOUS:-}" ]]; then
    per_user=${REQUESTS_PER_USER:-4}
    t0=$(date +%s.%N)
    # One process per C: --requests is per level, REQUESTS_PER_USER x C.
    for c in ${W//,/ }; do
        "$bin" parallel -m "$model" --mode continuous --concurrency "$c" --requests $((per_user * c)) -p "$P" -n "$N" \
            -o json --no-db "$@" > "$out/full-$c.json"
    done
    t1=$(date +%s.%N)
    "$bin" parallel -m "$model" --mode continuous --concurrency "$W" -p "$P" -n "$N" --fast -o json --no-db "$@" \
        > "$out/fast.json" 2> "$out/fast.log"
    t2=$(date +%s.%N)
    python3 - "$out" "$W" "$t0" "$t1" "$t2" <<'PY'
import json, sys
out, ws = sys.argv[1], [int(c) for c in sys.argv[2].split(",")]
t0, t1, t2 = map(float, sys.argv[3:6])
fast = {r["concurrency"]: r for r in json.load(open(f"{out}/fast.json")) if r.get("predicted")}
print(f"{'C':<4} {'measured':>9} {'predicted':>9} {'interval':>19} {'error':>8} {'inside':>7} "
      f"{'TTFT meas/pred ms':>18} {'TPOT meas/pred ms':>18} {'sampling share':>14}")
worst = 0.0
for c in ws:
    m, p = json.load(open(f"{out}/full-{c}.json"))[0], fast.get(c)
    if p is None:
        print(f"{c:<4} {m['output_tps']:9.2f}  (not predicted)")
        continue
    err = 100 * (p["output_tps"] / m["output_tps"] - 1)
    lo, hi = p.get("output_tps_lo"), p.get("output_tps_hi")
    inside = lo is not None and hi is not None and lo <= m["output_tps"] <= hi
    worst = max(worst, abs(err))
    iv = f"{lo:.1f}-{hi:.1f}" if lo is not None and hi is not None else "-"
    tp = lambda r: r.get("tpot_mean_ms") or 0.0
    print(f"{c:<4} {m['output_tps']:9.2f} {p['output_tps']:9.2f} {iv:>19} {err:+7.1f}% {'yes' if inside else 'NO':>7} "
          f"{m['ttft_mean_ms']:8.1f}/{p['ttft_mean_ms']:<8.1f} {tp(m):8.2f}/{tp(p):<8.2f} {100 * (m.get('sample_share') or 0):13.1f}%"
          + (f"  ({p['prediction_note']})" if p.get("prediction_note") else ""))
print(f"wall: full {t1 - t0:.1f} s, fast {t2 - t1:.1f} s (model loads included)")
print(f"max_error_pct {worst:.2f}")
print(f"time_ratio {(t2 - t1) / (t1 - t0):.3f}")
PY
    echo "logs in $out" >&2
    exit 0
fi

t0=$(date +%s.%N)
"$bin" parallel -m "$model" -w "$W" -p "$P" -n "$N" -o json --no-db "$@" > "$out/full.json"
t1=$(date +%s.%N)
"$bin" parallel -m "$model" -w "$W" -p "$P" -n "$N" --fast -o json --no-db "$@" > "$out/fast.json" 2> "$out/fast.log"
t2=$(date +%s.%N)
python3 - "$out/full.json" "$out/fast.json" "$t0" "$t1" "$t2" <<'PY'
import json, sys
full = {r["workers"]: r for r in json.load(open(sys.argv[1])) if not r.get("skipped")}
fast = {r["workers"]: r for r in json.load(open(sys.argv[2])) if r.get("predicted")}
t0, t1, t2 = map(float, sys.argv[3:6])
print(f"{'W':<4} {'measured':>10} {'predicted':>10} {'interval':>21} {'error':>8} {'inside':>7} {'gen meas':>9} {'gen pred':>9}")
worst = 0.0
for w in sorted(full):
    m, p = full[w], fast.get(w)
    if p is None:
        print(f"{w:<4} {m['overall_tps']:10.2f}  (not predicted)")
        continue
    err = 100 * (p["overall_tps"] / m["overall_tps"] - 1)
    lo, hi = p.get("overall_tps_lo"), p.get("overall_tps_hi")
    inside = lo is not None and hi is not None and lo <= m["overall_tps"] <= hi
    worst = max(worst, abs(err))
    iv = f"{lo:.2f}-{hi:.2f}" if lo is not None and hi is not None else "-"
    print(f"{w:<4} {m['overall_tps']:10.2f} {p['overall_tps']:10.2f} {iv:>21} {err:+7.1f}% {'yes' if inside else 'NO':>7} "
          f"{m['gen_tps']:9.2f} {p['gen_tps']:9.2f}" + (f"  ({p['prediction_note']})" if p.get("prediction_note") else ""))
print(f"wall: full {t1 - t0:.1f} s, fast {t2 - t1:.1f} s (model loads included)")
probes = sum(1 for line in open(sys.argv[2].replace("fast.json", "fast.log")) if "probe step W=" in line)
print(f"step probes {probes} (the sweep's W x depths, then any kernel-switch probes: fast.log)")
print(f"max_error_pct {worst:.2f}")
print(f"time_ratio {(t2 - t1) / (t1 - t0):.3f}")
PY
echo "logs in $out" >&2
