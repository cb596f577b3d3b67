#!/usr/bin/env bash
# The HTTP client's own accuracy and cost (issue 15): a closed loop of streams against the fault
# server's well-behaved mode (tests/support/fault_server.h), whose chunks carry their send time.
# At 100 and 1,000 concurrent streams, each level at >= 50,000 chunks/s in total, prints per level:
#   chunks/s, p50/p99/max |client-observed - server-sent| time, client CPU (cores), client peak RSS.
# Targets (issue 15): p99 <= 1 ms, <= 1 core, <= 100 MB at 1,000 streams. The server runs in its own
# process on the same machine, so on a small or busy machine both compete for the same cores: say so
# with the figures.
#
# Then, unless SERVE_COMPARE=0, llama-server against the same engine in-process for synth:tiny at
# concurrency 1, 4, 16 (`serve --launch-server --compare-in-process`): output t/s over HTTP, in-process
# with CPU sampling and without sampling, and their ratios, one line per level.
#
# Usage: bench/http_client.sh
# Environment: BIN (build/bin), SECONDS_PER_LEVEL (10), WARMUP (2), CLIENT_THREADS (auto: serve's default),
#              LEVELS ("100:2000:500 1000:20000:100" = streams:chunk interval us:chunks per request),
#              SERVE_COMPARE (1), COMPARE_MODEL (synth:tiny), COMPARE_ARGS ("-p 128 -n 128 -t 2")
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-$root/build/bin}
for b in fault_server http_client_bench; do
    [[ -x "$bin/$b" ]] || { echo "http_client.sh: $bin/$b missing: run ./scripts/build --test" >&2; exit 1; }
done
secs=${SECONDS_PER_LEVEL:-10}
warmup=${WARMUP:-2}
threads=${CLIENT_THREADS:-auto}
levels=${LEVELS:-"100:2000:500 1000:20000:100"}
echo "http_client: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), client threads $threads" >&2

for level in $levels; do
    IFS=: read -r streams interval_us chunks <<< "$level"
    coproc SRV { exec "$bin/fault_server" --interval-us "$interval_us"; }
    srv_pid=$SRV_PID
    read -r _ port <&"${SRV[0]}"
    set +e
    "$bin/http_client_bench" --url "http://127.0.0.1:$port/ok" --streams "$streams" --chunks "$chunks" \
        --seconds "$secs" --warmup "$warmup" --client-threads "$threads"
    rc=$?
    set -e
    eval "exec ${SRV[1]}>&-"
    wait "$srv_pid" || true
    [[ $rc -eq 0 ]] || { echo "http_client.sh: the benchmark failed at $streams streams" >&2; exit 1; }
done

[[ "${SERVE_COMPARE:-1}" == 0 ]] && exit 0
[[ -x "$bin/infermeter" && -x "$bin/llama-server" ]] || { echo "http_client.sh: infermeter or llama-server missing in $bin" >&2; exit 1; }
echo "serve --compare-in-process: load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
# shellcheck disable=SC2086
"$bin/infermeter" --quiet serve --launch-server --compare-in-process -m "${COMPARE_MODEL:-synth:tiny}" --concurrency 1,4,16 \
    ${COMPARE_ARGS:--p 128 -n 128 -t 2} --no-db -o jsonl |
    python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
by = {}
for r in rows:
    by.setdefault(r["concurrency"], {})[r["mode"]] = r["output_tps"]
for c in sorted(by):
    m = by[c]
    http, cpu, none = m.get("serve"), m.get("in-process continuous, CPU sampling"), m.get("in-process continuous, no sampling")
    lock, be = m.get("in-process lockstep"), m.get("in-process continuous, backend sampling")
    f = lambda v: "-" if v is None else f"{v:,.1f}"
    r = lambda a, b: "-" if not a or not b else f"{a / b:.2f}"
    print(f"C={c:<3} output t/s: llama-server {f(http)}, in-process CPU sampling {f(cpu)}, no sampling {f(none)}, "
          f"backend sampling {f(be)}, lockstep {f(lock)}; llama-server/in-process (CPU sampling) {r(http, cpu)}, "
          f"/ (no sampling) {r(http, none)}")
'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
