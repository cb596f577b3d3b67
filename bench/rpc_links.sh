#!/usr/bin/env bash
# llama.cpp's RPC backend over emulated links (issue 12's figures): the same model in-process, through one
# ggml-rpc-server on loopback, and through that server behind bench/link_proxy shaped as a 10 Gb/s link with
# 0.2 ms each way and a 1 Gb/s link with 1 ms each way (the proxy adds the delay and the rate in user space:
# no namespaces, no netem, so it runs on any machine). Per endpoint: bench pp/tg (-r REPS) and lockstep
# parallel at W (128/128 by default), then each one's ratio to in-process and the time a link adds per
# generated token (1 / t/s difference) in round trips of that link.
# Usage: bench/rpc_links.sh MODEL   env: P=128 N=128 W=1,4 REPS=3 THREADS=1 OUT=dir BIN=build/bin
# THREADS: the server's and the in-process run's threads (1: on a 2-core machine the server and infermeter
# share the cores, and polling thread pools measure each other).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-$root/build/bin}
model=${1:?usage: bench/rpc_links.sh MODEL}
P=${P:-128}; N=${N:-128}; W=${W:-1,4}; REPS=${REPS:-3}; THREADS=${THREADS:-1}
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
[[ -x "$bin/ggml-rpc-server" && -x "$bin/link_proxy" ]] || { echo "rpc_links: build ggml-rpc-server and link_proxy first (INFERMETER_RPC=1 ./scripts/build)"; exit 2; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

sport=$(free_port)
"$bin/ggml-rpc-server" -H 127.0.0.1 -p "$sport" -t "$THREADS" > "$out/rpc-server.log" 2>&1 &
pids+=($!)
wait_port "$sport" || { echo "rpc_links: ggml-rpc-server did not start"; cat "$out/rpc-server.log"; exit 1; }
declare -A endpoint=([loopback]="127.0.0.1:$sport")
names=(loopback)
links="10g-0.2ms:0.2:10000 1g-1ms:1:1000"  # name:delay ms each way:rate Mbit/s
for link in $links; do
    IFS=: read -r name d rate <<< "$link"
    port=$(free_port)
    "$bin/link_proxy" --listen "$port" --to "127.0.0.1:$sport" --delay-ms "$d" --rate-mbit "$rate" > "$out/proxy-$name.log" 2>&1 &
    pids+=($!)
    wait_port "$port" || { echo "rpc_links: link_proxy $name did not start"; exit 1; }
    endpoint[$name]="127.0.0.1:$port"
    names+=("$name")
done

run_all() {  # name, extra flags...
    local name=$1; shift
    "$bin/infermeter" bench -m "$model" -p "$P" -n "$N" -r "$REPS" -t "$THREADS" "$@" -o json --no-db > "$out/bench-$name.json"
    "$bin/infermeter" parallel -m "$model" -p "$P" -n "$N" -w "$W" -t "$THREADS" "$@" -o json --no-db > "$out/parallel-$name.json"
}
# What crosses the link per decode step and the link as infermeter probes it (its split analysis:
# docs/metrics.md "Split analysis"), once per endpoint.
for name in "${names[@]}"; do
    "$bin/infermeter" model info "$model" --json -ngl 99 --rpc "${endpoint[$name]}" > "$out/split-$name.json"
done
run_all local -ngl 0
for name in "${names[@]}"; do run_all "$name" -ngl 99 --rpc "${endpoint[$name]}"; done

python3 - "$out" "$P" "$N" "$W" "$links" <<'EOF'
import json, sys
out, P, N, W = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), [int(w) for w in sys.argv[4].split(",")]
links = [l.split(":") for l in sys.argv[5].split()]
delays = {name: float(d) for name, d, _ in links}
rates = {name: float(r) * 1e6 / 8 for name, _, r in links}  # bytes per second
names = ["local", "loopback"] + [name for name, _, _ in links]
def bench(name, test):  # llama-bench's rows: pp has n_gen = 0, tg has n_prompt = 0
    for r in json.load(open(f"{out}/bench-{name}.json")):
        if (r["n_gen"] == 0) == (test == "pp"): return r["avg_ts"]
def par(name, w, key):
    for r in json.load(open(f"{out}/parallel-{name}.json")):
        if r.get("workers") == w: return r[key]
cols = [("pp%d" % P, lambda n: bench(n, "pp")), ("tg%d" % N, lambda n: bench(n, "tg"))]
for w in W:
    cols.append((f"W={w} gen", lambda n, w=w: par(n, w, "gen_tps")))
    cols.append((f"W={w} overall", lambda n, w=w: par(n, w, "overall_tps")))
print(f"{'endpoint':<12}" + "".join(f"{c:>14}" for c, _ in cols))
base = {c: f("local") for c, f in cols}
for n in names:
    vals = [f(n) for _, f in cols]
    print(f"{n:<12}" + "".join(f"{v:>14.2f}" for v in vals))
    if n != "local":
        print(f"{'  / local':<12}" + "".join(f"{v / base[c]:>14.3f}" for (c, _), v in zip(cols, vals)))
# What crosses the link in one decode step of one sequence, from infermeter's split analysis (the hidden
# state up, the logits back when the output layer is on the server). Time on the link = bytes / rate; the
# rest of what the link adds is round trips x 2 x delay.
split = {n: json.load(open(f"{out}/split-{n}.json"))["split"] for n in names[1:]}
step_bytes = split["loopback"]["decode_bytes_per_token"]
tg_loop = bench("loopback", "tg")
print(f"\na decode step of one sequence moves {step_bytes / 1024:.1f} KiB over the link "
      + "; ".join(f"{c['what']} {c['bytes_per_token'] / 1024:.1f} KiB" for c in split["loopback"]["crossings"]))
for n in names[1:]:
    l = split[n]["links"][0]
    print(f"{n}: probed RTT {1e3 * l['rtt_s']:.3f} ms, {l['up_bytes_per_s'] / 1e6:.0f} MB/s up, {l['down_bytes_per_s'] / 1e6:.0f} MB/s down")
token_ms = 1e3 / tg_loop
for n in names[2:]:
    added = 1e3 / bench(n, "tg") - token_ms
    wire = step_bytes / rates[n] * 1e3
    least = wire + 2 * delays[n]  # the bytes and at least one round trip
    if least < 0.05 * token_ms:
        print(f"{n}: {added:+.2f} ms per generated token against loopback; the link's least cost ({wire:.2f} ms of bytes + "
              f"one {2 * delays[n]:.1f} ms round trip) is {100 * least / token_ms:.1f}% of a {token_ms:.1f} ms token: "
              f"below what these repetitions resolve (a faster step or more repetitions shows it)")
        continue
    trips = (added - wire) / (2 * delays[n])
    print(f"{n}: {added:+.2f} ms per generated token against loopback: {wire:.2f} ms of it the bytes at the link's rate, "
          f"the rest {added - wire:.2f} ms = {trips:.1f} round trips of {2 * delays[n]:.1f} ms")
EOF
echo "logs in $out"
