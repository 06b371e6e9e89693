#!/usr/bin/env bash
# Fairness benchmark (issue "Per-app identity, rate limits and fairness"): app B sends 50
# events/s as forward messages with acks on its own connection while app A floods two syslog
# connections as fast as they go, far above its limit; B's send->ack latency (its events are
# acked only once committed) is reported with and without A flooding, in throttle and drop mode.
#
#   scripts/bench-fairness.sh [SECONDS]      (default 10 per run)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
cargo build --release --quiet -p logport --bin logport
cargo build --release --quiet -p logport-loadgen
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

run() { # $1: label, $2: on_excess, $3: flood (1/0)
  local dir=$work/run-$RANDOM
  mkdir -p "$dir"
  cat > "$dir/logport.toml" <<TOML
data_dir = "$dir/data"
[admin]
address = "127.0.0.1:0"
[limits]
events_per_second = 2000
on_excess = "$2"
[[listener]]
name = "syslog"
protocol = "syslog"
transport = "tcp"
address = "127.0.0.1:0"
[[listener]]
name = "forward"
protocol = "forward"
transport = "tcp"
address = "127.0.0.1:0"
TOML
  LOGPORT_LOG=warn,logport=info target/release/logport run --config "$dir/logport.toml" 2> "$dir/logport.log" &
  local lp=$!; pids+=("$lp")
  until grep -q "logport is ready" "$dir/logport.log"; do sleep 0.05; done
  local syslog forward
  syslog=$(grep "listener=syslog " "$dir/logport.log" | sed -E 's/.* address=(127\.0\.0\.1:[0-9]+).*/\1/')
  forward=$(grep "listener=forward " "$dir/logport.log" | sed -E 's/.* address=(127\.0\.0\.1:[0-9]+).*/\1/')
  local flood=""
  if [ "$3" = 1 ]; then
    target/release/logport-loadgen send --protocol syslog-tcp --addr "$syslog" --app A --connections 2 \
      --rate 0 --count 100000000 --duration "$((secs + 2))" > "$dir/flood.json" &
    flood=$!; pids+=("$flood")
    sleep 1
  fi
  # B: 50 events/s, each its own forward message with an ack: send->ack is what B's shipper waits.
  target/release/logport-loadgen send --protocol forward --forward-mode message --addr "$forward" --app B \
    --rate 50 --count "$((secs * 50))" --batch 1 > "$dir/b.json"
  if [ -n "$flood" ]; then wait "$flood"; fi
  python3 - "$1" "$dir/b.json" "$dir/flood.json" "$lp" <<'PY'
import json, os, sys
label, b = sys.argv[1], json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])
flood = json.loads(open(sys.argv[3]).read().strip().splitlines()[-1]) if os.path.exists(sys.argv[3]) else None
lat = {k: v / 1000 for k, v in (b.get("ack_latency_us") or {}).items()}
a = f"{flood['sent']:,} sent" if flood else "—"
print(f"| {label} | {b.get('acked', 0)}/{b.get('sent', 0)} | {lat.get('p50', float('nan')):.2f} | {lat.get('p99', float('nan')):.2f} | {lat.get('max', float('nan')):.2f} | {a} |")
PY
  kill -TERM "$lp"; wait "$lp" || true
}

echo "B: 50 events/s, forward messages with acks, on its own connection; A: syslog/TCP on 2 connections"
echo "as fast as they go; every app limited to 2000 events/s. B's send->ack latency:"
echo
echo "| run | B acked | B p50 ms | B p99 ms | B max ms | A |"
echo "|---|---|---|---|---|---|"
run "B alone" throttle 0
run "A flooding, throttle mode" throttle 1
run "A flooding, drop mode" drop 1
