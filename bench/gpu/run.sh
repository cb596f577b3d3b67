#!/usr/bin/env bash
# On the GPU box (see bench/gpu/pack.sh): builds infermeter and the llama.cpp anchors with CUDA
# once per warm machine, then runs `bench/gpu/run.sh STEP...` where STEP is build, info, roofline,
# parity, sweep, evaluate, continuous, capacity, serve, fast, tune, http_client, bandwidth or stability. Logs go to $OUT.
# Device time is scarce: put the build and every step in one call (the build is lost between calls).
# DEADLINE=S (seconds from the start) stops a step that would run past it, so a call's later steps'
# logs and everything already written under $OUT come back inside the device's per-call limit.
set -uo pipefail
deadline=${DEADLINE:-0}
left() { local l=$((deadline - SECONDS)); ((deadline == 0)) && l=3600; ((l < 1)) && l=1; echo "$l"; }
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
out=${OUT:-/tmp/out}
mkdir -p "$out"
export XDG_CACHE_HOME=$root/.cache XDG_DATA_HOME=$root/.cache/data

# TARGETS: what the build step builds (default: everything a step may use; parity, fast and stability need
# only "infermeter llama-bench llama-batched-bench", a minute less of the device's time).
targets=(${TARGETS:-infermeter llama-bench llama-batched-bench llama-server fault_server http_client_bench})

build() {
    if [[ -f build/build.ninja ]]; then  # warm machine: incremental
        cmake --build build -j "$(nproc)" --target "${targets[@]}" > /tmp/build.log 2>&1 \
            || { grep -E "error|Error" /tmp/build.log | head -30; return 1; }
        return 0
    fi
    [[ -d third_party/llama.cpp/ggml ]] || { mkdir -p third_party && tar -C third_party -xJf .carry/llama-src.tar.xz; }
    local zlib=()
    if [[ ! -f /usr/include/zlib.h ]]; then
        lib=$(ldconfig -p | awk '/libz.so.1 /{print $NF; exit}')
        zlib=(-DZLIB_INCLUDE_DIR="$root/.carry/zlib" -DZLIB_LIBRARY="$lib")
    fi
    local sqlite=()
    [[ -f /usr/include/sqlite3.h ]] || sqlite=(-DINFERMETER_SQLITE_AMALGAMATION="$root/.carry/sqlite3")
    local curl=()
    if ! ls /usr/include/curl/curl.h /usr/include/*/curl/curl.h >/dev/null 2>&1; then
        lib=$(ldconfig -p | awk '/libcurl\.so\.4 /{print $NF; exit}')
        [[ -n "$lib" ]] || { echo "build: no libcurl.so.4 on this machine"; return 1; }
        curl=(-DINFERMETER_CURL_INCLUDE_DIR="$root/.carry/curl" -DINFERMETER_CURL_LIBRARY="$lib")
    fi
    cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
        -DINFERMETER_TESTS=OFF -DLLAMA_CPP_DIR="$root/third_party/llama.cpp" "${zlib[@]}" "${sqlite[@]}" "${curl[@]}" \
        > /tmp/configure.log 2>&1 || { tail -30 /tmp/configure.log; return 1; }
    cmake --build build -j "$(nproc)" --target "${targets[@]}" > /tmp/build.log 2>&1 \
        || { grep -E "error|Error" /tmp/build.log | head -30; return 1; }
    echo "build: done"
}

run_step() {
    local step=$1
    case "$step" in
        info)
            build/bin/infermeter --version
            nvidia-smi --query-gpu=name,memory.total,memory.used,clocks.sm,clocks.max.sm --format=csv
            build/bin/infermeter model info synth:qwen2-1.5b-q4_k_m | tee "$out/model-info.txt" ;;
        roofline)
            # OBSERVED="workers=1,gen_tps=564.49,depth=1152 ..." classifies measured rows against the new probes.
            local obs=()
            for o in ${OBSERVED:-}; do obs+=(--observed "$o"); done
            build/bin/infermeter roofline -m synth:qwen2-1.5b-q4_k_m --reprobe "${obs[@]}" 2>&1 | tee "$out/roofline.md" ;;
        parity)
            OUT=/tmp/parity ROUNDS=${ROUNDS:-1} REPS=${REPS:-5} PP=128 TG=${TG:-128} NPP=128 NTG=${NTG:-4096} NPL=${NPL:-1,2,4,8,16,32,64} \
                bench/parity.sh synth:qwen2-1.5b-q4_k_m -ngl 99 -fa on 2>&1 | tee "$out/parity.txt" ;;
        sweep)
            build/bin/infermeter parallel -m synth:qwen2-1.5b-q4_k_m -p 128 -n 4096 -w 1-64*2 -ngl 99 -fa on --no-db \
                --export "$out/sweep.json" | tee "$out/sweep.md" ;;
        evaluate)
            local t0=$SECONDS
            # Straight into $OUT: reports are rewritten after every stage, so a run cut by DEADLINE still returns them.
            build/bin/infermeter evaluate --profile ${PROFILE:-standard} -ngl 99 -fa on --out "$out/evaluate-${PROFILE:-standard}" --no-db ${EVALUATE_FLAGS:-} 2>&1 | tail -40
            echo "evaluate wall: $((SECONDS - t0)) s" ;;
        continuous)
            # Issue 14: lockstep vs continuous (no sampling / CPU / backend sampling) at W = 1, 8, 64.
            OUT=/tmp/continuous W=${W:-1,8,64} P=128 N=${N:-1024} ROUNDS=${ROUNDS:-1} BIN=build/bin/infermeter \
                bench/continuous.sh synth:qwen2-1.5b-q4_k_m -ngl 99 -fa on 2>&1 | tee "$out/continuous.txt" ;;
        capacity)
            # Issue 14: capacity under the default SLO on the reference dataset's lengths (synthetic reference dataset).
            build/bin/infermeter dataset synth -o /tmp/ref.jsonl --vocab third_party/llama.cpp/models/ggml-vocab-qwen2.gguf > /dev/null 2>&1 \
                || build/bin/infermeter dataset synth -o /tmp/ref.jsonl -m synth:qwen2-1.5b-q4_k_m > /dev/null
            build/bin/infermeter parallel -m synth:qwen2-1.5b-q4_k_m --mode continuous --dataset /tmp/ref.jsonl --find-capacity \
                --capacity-max-concurrency 64 -ngl 99 -fa on --no-db --export "$out/capacity.json" 2>&1 | tail -30 | tee "$out/capacity.md" ;;
        serve)
            # Issue 15 in one command per sampling mode and concurrency: llama-server launched from the same
            # build, then the same workload in-process (lockstep, continuous without / with CPU / with backend
            # sampling); 128 prompt / N output tokens, greedy; requests per C sized so C = 1 does not dominate.
            for be in "" "--backend-sampling"; do
                for cr in ${SERVE_LEVELS:-1:8 8:32 64:128}; do
                    build/bin/infermeter serve --launch-server --compare-in-process -m synth:qwen2-1.5b-q4_k_m -ngl 99 -fa on $be \
                        --concurrency "${cr%%:*}" --requests "${cr##*:}" -p 128 -n ${N:-256} --no-db -o md 2>&1 \
                        | tee -a "$out/serve-compare${be:+-backend}.md"
                done
            done ;;
        fast)
            # Issue 10: the full sweep against --fast (128/4096, W = 1..64).
            OUT=/tmp/fast W=${W:-1,2,4,8,16,32,64} P=128 N=${N:-4096} BIN=build/bin/infermeter \
                bench/fast_mode.sh synth:qwen2-1.5b-q4_k_m -ngl 99 -fa on 2>&1 | tee "$out/fast-mode.txt"
            tar -C /tmp -czf "$out/fast-mode-logs.tar.gz" fast ;;  # the probes' log and every run's JSON
        tune)
            # Issue 11: the settings search on the GPU at W = 64 (lockstep), then the recommended flags' sweep row.
            build/bin/infermeter tune -m synth:qwen2-1.5b-q4_k_m -ngl 99 --workload ${TUNE_WORKLOAD:-lockstep} -w ${TUNE_W:-64} -p 128 -n ${TUNE_N:-128} \
                --budget ${TUNE_BUDGET:-150s} --export "$out/tune.json" 2>&1 | tee "$out/tune.md" ;;
        bandwidth)
            # Issue 9: the probe (roofline --reprobe) beside PyTorch's read-only sum, copy, add and triad on 1 GiB.
            python3 bench/torch_bandwidth.py --infermeter build/bin/infermeter 2>&1 | tee "$out/bandwidth.txt" ;;
        http_client)
            # Issue 15: the HTTP client's accuracy and cost at 100 and 1,000 streams on 16 cores (the
            # 2-core VM shares its cores with the fault server: p99 8.2 ms at 1,000 streams there).
            SERVE_COMPARE=0 BIN=build/bin bench/http_client.sh 2>&1 | tee "$out/http-client.txt" ;;
        stability)
            # Issue 9: relative sd within a run and cv of the means over 3 invocations, infermeter vs llama-bench.
            MODEL=synth:qwen2-1.5b-q4_k_m bench/stability.sh -ngl 99 -fa on 2>&1 | tee "$out/stability.txt" ;;
        *) echo "unknown step $step"; return 2 ;;
    esac
}

for step in "$@"; do
    echo "=== $step ($(date +%T), $(left) s left)"
    if [[ $step == build ]]; then build || exit 1; continue; fi
    export -f run_step build left 2>/dev/null
    timeout "$(left)" bash -c "$(declare -f run_step); out=$out; run_step $step" || echo "=== $step: exit $?"
done
