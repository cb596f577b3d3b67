#!/usr/bin/env bash
# Throughput of `infermeter analyze` against llama.cpp's tokenizer alone (issue 4).
#
# Writes a >= 50 MB synthetic Alpaca JSONL (the reference's length distribution, Qwen2 vocabulary),
# then measures on the same file:
#   raw tokenizer  llama_tokenize over every text on one thread, texts in memory (analyze --tokenizer-only)
#   analyze        the whole command on all cores: reading, JSON parsing, tokenizing, statistics
# and prints MB/s for both, their ratio (target >= 1.8 on 2 cores), and analyze's peak RSS on the
# full file and on a quarter of it (streaming: it should not grow with the file).
# Small VMs are noisy (±15% run to run): the two are measured alternately ROUNDS times and the
# fastest run of each is kept, the least disturbed estimate of what the code can do.
#
# Usage: bench/analyze.sh [BUILD_DIR]   (default: build; env MB=50 file size, ROUNDS=3, KEEP=1 keeps files)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
bin=$build/bin/infermeter
[[ -x $bin ]] || { echo "analyze.sh: $bin not found; build first (scripts/build) or pass BUILD_DIR" >&2; exit 2; }
vocab=$root/third_party/llama.cpp/models/ggml-vocab-qwen2.gguf
[[ -f $vocab ]] || { echo "analyze.sh: $vocab not found (run scripts/fetch-llama)" >&2; exit 2; }
target_mb=${MB:-50}
work=$(mktemp -d /tmp/infermeter-bench-analyze.XXXXXX)
[[ -n ${KEEP:-} ]] || trap 'rm -rf "$work"' EXIT

# About 6,050 bytes per record with the reference distribution: size the file, then check.
records=$(( (target_mb * 1000000 / 6000) + 200 ))
"$bin" -q dataset synth -o "$work/data.jsonl" --vocab "$vocab" --records "$records" --seed 7 >/dev/null
bytes=$(stat -c %s "$work/data.jsonl")
if (( bytes < target_mb * 1000000 )); then
    records=$(( records * target_mb * 1000000 / bytes + 100 ))
    "$bin" -q dataset synth -o "$work/data.jsonl" --vocab "$vocab" --records "$records" --seed 7 >/dev/null
    bytes=$(stat -c %s "$work/data.jsonl")
fi
head -n $(( records / 4 )) "$work/data.jsonl" > "$work/quarter.jsonl"

cores=$(nproc)
echo "file: $(awk -v b="$bytes" 'BEGIN{printf "%.1f", b/1e6}') MB, $records records, $cores cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"

run_analyze() {  # file -> "seconds bytes_per_s peak_rss_kib"
    local out
    out=$( { /usr/bin/time -f 'RSS_KIB=%M' "$bin" -q analyze --dataset "$1" --vocab "$vocab" -o json; } 2>&1 )
    python3 - "$out" <<'PY'
import json, re, sys
text = sys.argv[1]
rss = re.search(r"RSS_KIB=(\d+)", text).group(1)
j = json.loads(text[:text.rindex("}") + 1])
print(j["timing"]["seconds"], j["timing"]["bytes_per_s"], rss)
PY
}
rounds=${ROUNDS:-3}
tok_s="" an_s="" an_rss=0
for (( i = 1; i <= rounds; ++i )); do
    tok=$("$bin" -q analyze --dataset "$work/data.jsonl" --vocab "$vocab" --tokenizer-only)
    tok_bytes=$(sed -E 's/.*text_bytes=([0-9]+).*/\1/' <<<"$tok")
    s=$(sed -E 's/.*seconds=([0-9.]+).*/\1/' <<<"$tok")
    read -r a _ rss < <(run_analyze "$work/data.jsonl")
    echo "round $i: raw tokenizer $s s, analyze $a s" >&2
    tok_s=$(awk -v x="$s" -v y="$tok_s" 'BEGIN{print (y == "" || x < y) ? x : y}')
    an_s=$(awk -v x="$a" -v y="$an_s" 'BEGIN{print (y == "" || x < y) ? x : y}')
    if (( rss > an_rss )); then an_rss=$rss; fi
done
an_bps=$(awk -v b="$bytes" -v s="$an_s" 'BEGIN{print b / s}')
read -r _ _ q_rss < <(run_analyze "$work/quarter.jsonl")

awk -v n="$rounds" -v tb="$tok_bytes" -v ts="$tok_s" -v as="$an_s" -v abps="$an_bps" -v fb="$bytes" -v r="$an_rss" -v q="$q_rss" 'BEGIN {
    tok = tb / ts / 1e6; an = abps / 1e6
    printf "raw tokenizer (1 thread):  %6.2f MB/s of text   (%.1f MB in %.2f s, best of %d)\n", tok, tb / 1e6, ts, n
    printf "analyze (all cores):       %6.2f MB/s of file   (%.1f MB in %.2f s, best of %d)\n", an, fb / 1e6, as, n
    printf "ratio analyze / raw:       %6.2fx  (same texts: %.2f s / %.2f s = %.2fx; target >= 1.8x on 2 cores)\n", an / tok, ts, as, ts / as
    printf "analyze peak RSS:          %6.1f MiB full file, %.1f MiB quarter file (streaming: flat)\n", r / 1024, q / 1024
}'
