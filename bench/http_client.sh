#!/usr/bin/env bash
# The HTTP client's own accuracy and cost (issue 15): a closed loop of streams against the fault
# server's well-behaved mode (tests/support/fault_server.h), whose chunks carry their send time.
# At 100 and 1,000 concurrent streams, each level at >= 50,000 chunks/s in total, prints per level:
#   chunks/s, p50/p99/max |client-observed - server-sent| time, client CPU (cores), client peak RSS.
# Targets (issue 15): p99 <= 1 ms, <= 1 core, <= 100 MB at 1,000 streams. The server runs in its own
# process on the same machine, so on a small or busy machine both compete for the same cores: say so
# with the figures.
#
# Usage: bench/http_client.sh
# Environment: BIN (build/bin), SECONDS_PER_LEVEL (10), WARMUP (2), CLIENT_THREADS (1),
#              LEVELS ("100:2000:500 1000:20000:100" = streams:chunk interval us:chunks per request)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-$root/build/bin}
for b in fault_server http_client_bench; do
    [[ -x "$bin/$b" ]] || { echo "http_client.sh: $bin/$b missing: run ./scripts/build --test" >&2; exit 1; }
done
secs=${SECONDS_PER_LEVEL:-10}
warmup=${WARMUP:-2}
threads=${CLIENT_THREADS:-1}
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
