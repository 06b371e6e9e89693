#!/usr/bin/env bash
# Fairness benchmark (issue "Per-app identity, rate limits and fairness"): app B sends 50
# events/s over its own syslog/TCP connection while app A floods another connection as fast as
# it can, far above its limit; B's latency from send to committed (visible in the store, polled
# with `logport read`) is reported with and without A flooding, in `drop` and `throttle` mode.
#
#   scripts/bench-fairness.sh [SECONDS]      (default 10 per run)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
cargo build --release --quiet --bin logport
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

run() { # $1: label, $2: on_excess, $3: flood (1/0)
  local dir=$work/$1
  mkdir -p "$dir"
  cat > "$dir/logport.toml" <<TOML
data_dir = "$dir/data"
[admin]
address = "127.0.0.1:0"
[limits]
events_per_second = 2000
on_excess = "$2"
[[listener]]
name = "bench"
protocol = "syslog"
transport = "tcp"
address = "127.0.0.1:0"
TOML
  LOGPORT_LOG=warn,logport=info target/release/logport run --config "$dir/logport.toml" 2> "$dir/logport.log" &
  local lp=$!; pids+=("$lp")
  until grep -q "logport is ready" "$dir/logport.log"; do sleep 0.05; done
  local port
  port=$(grep " listening " "$dir/logport.log" | sed -E 's/.* address=127\.0\.0\.1:([0-9]+).*/\1/')
  python3 - "$port" "$secs" "$3" "$dir/data" "$1" <<'PY'
import json, socket, subprocess, sys, threading, time
port, secs, flood, data, label = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3] == "1", sys.argv[4], sys.argv[5]
stop = threading.Event()
def frame(app, text):
    line = f"<14>1 - host {app} - - - {text}".encode()
    return b"%d %s" % (len(line), line)
def flooder():
    s = socket.create_connection(("127.0.0.1", port))
    chunk = b"".join(frame("A", f"flood {i:08d} " + "x" * 150) for i in range(200))
    while not stop.is_set():
        s.sendall(chunk)
sent = {}
def calm():
    s = socket.create_connection(("127.0.0.1", port))
    i = 0
    while not stop.is_set():
        sent[i] = time.time()
        s.sendall(frame("B", f"calm {i:08d} {sent[i]:.6f}"))
        i += 1
        time.sleep(0.02)
threads = [threading.Thread(target=calm)] + ([threading.Thread(target=flooder)] if flood else [])
for t in threads: t.start()
seen = {}
follow = subprocess.Popen(["target/release/logport", "read", "--data-dir", data, "--app", "B", "--from-start", "--follow"],
                          stdout=subprocess.PIPE, text=True)
def reader():
    for line in follow.stdout:
        msg = json.loads(line)["message"]
        seen.setdefault(int(msg.split()[1]), time.time())
threading.Thread(target=reader, daemon=True).start()
time.sleep(secs)
stop.set()
for t in threads: t.join()
time.sleep(2)
follow.kill()
lat = sorted((seen[i] - sent[i]) * 1000 for i in sent if i in seen)
n = len(sent)
pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] if lat else float("nan")
print(f"| {label} | {len(lat)}/{n} | {pct(0.5):.1f} | {pct(0.99):.1f} | {lat[-1] if lat else float('nan'):.1f} |")
PY
  kill -TERM "$lp"; wait "$lp" || true
}

echo "B: 50 events/s on its own connection; A: as fast as one connection goes; limit 2000 events/s per app"
echo "| run | B committed | B p50 ms | B p99 ms | B max ms |"
echo "|---|---|---|---|---|"
run "alone (throttle mode)" throttle 0
run "A flooding, throttle mode" throttle 1
run "A flooding, drop mode" drop 1
