#!/usr/bin/env bash
# End-to-end syslog benchmark, side by side with rsyslog: the same stream of N octet-counted
# RFC 5424 messages (~200 bytes each) sent over one loopback TCP connection to
#   - logport (release build): syslog over TCP -> embedded store (fsynced group commits)
#   - logport (release build): syslog over TCP -> Kafka (tansu on the same machine; idempotent
#     producer, acks=all, lz4), committed = delivery reports in
#   - rsyslog (Debian's, private foreground instance): imptcp -> omfile
# and each receiver's CPU (user+sys from /proc/PID/stat) and peak RSS (VmHWM) measured the same
# way, from just before the first byte to the last event committed/written.
#
#   scripts/bench-e2e-syslog.sh [N]        (default N = 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
scripts/install-test-deps.sh >/dev/null
source .tools/env.sh
cargo build --release --quiet --bin logport
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
tck=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hwm_kib() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The stream, made once: N messages, octet-counted, ~200 bytes each.
python3 - "$n" "$work/stream" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
with open(path, 'wb') as f:
    for i in range(n):
        msg = ('<134>1 2026-11-25T04:00:00.123456Z web-%d.prod billing %d - - GET /api/v1/orders/%08d 200 '
               'latency_ms=%d user=4711 request_id=7f3a9c upstream=10.1.2.3:8080 bytes=5123 ua="curl/8.5"'
               % (i % 16, 1000 + i % 5000, i, i % 97)).encode()
        f.write(b'%d %s' % (len(msg), msg))
PY
bytes=$(stat -c %s "$work/stream")

send() { python3 - "$1" "$work/stream" <<'PY'
import socket, sys
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
with open(sys.argv[2], 'rb') as f:
    while chunk := f.read(1 << 20):
        s.sendall(chunk)
s.close()
PY
}

# --- logport, once per sink ---
run_logport() { # $1: label, $2: sink TOML; sets lp_cpu_ticks lp_wall lp_hwm
  local dir=$work/$1
  mkdir -p "$dir"
  cat > "$dir/logport.toml" <<TOML
data_dir = "$dir/data"
[admin]
address = "127.0.0.1:0"
[store]
segment_bytes = "256MiB"
retention_bytes = "4GiB"
$2
[[listener]]
name = "bench"
protocol = "syslog"
transport = "tcp"
address = "127.0.0.1:0"
TOML
  LOGPORT_LOG=info target/release/logport run --config "$dir/logport.toml" 2> "$dir/logport.log" &
  local lp=$!; pids+=("$lp")
  until grep -q "logport is ready" "$dir/logport.log"; do sleep 0.05; done
  local port admin
  port=$(grep " listening " "$dir/logport.log" | sed -E 's/.* address=127\.0\.0\.1:([0-9]+).*/\1/')
  admin=$(grep "admin API" "$dir/logport.log" | sed -E 's/.* address=//')
  committed() { curl -s "http://$admin/metrics" | awk '/^logport_events_committed_total/ {s += $2} END {print s + 0}'; }
  local t0 t1 c0 c1
  t0=$(date +%s.%N); c0=$(cpu_ticks "$lp")
  send "$port"
  until [ "$(committed)" = "$n" ]; do sleep 0.02; done
  t1=$(date +%s.%N); c1=$(cpu_ticks "$lp"); lp_hwm=$(hwm_kib "$lp")
  lp_cpu_ticks=$((c1 - c0)); lp_wall=$(python3 -c "print($t1 - $t0)")
  kill -TERM "$lp"; wait "$lp" || true
}

run_logport store ""
st_ticks=$lp_cpu_ticks; st_wall=$lp_wall; st_hwm=$lp_hwm

kport=$(free_port)
"$LOGPORT_TEST_TANSU" broker --listener-url "tcp://127.0.0.1:$kport" --advertised-listener-url "tcp://127.0.0.1:$kport" \
  --storage-engine memory://tansu/ > "$work/tansu.log" 2>&1 &
kb=$!; pids+=("$kb")
until python3 -c "import socket; socket.create_connection(('127.0.0.1', $kport))" 2>/dev/null; do sleep 0.05; done
kb0=$(cpu_ticks "$kb")
run_logport kafka "[sink]
type = \"kafka\"
[kafka]
brokers = \"127.0.0.1:$kport\""
kf_ticks=$lp_cpu_ticks; kf_wall=$lp_wall; kf_hwm=$lp_hwm; kb_ticks=$(( $(cpu_ticks "$kb") - kb0 ))
grep -q "sending directly" "$work/kafka/logport.log" || { echo "bench: logport did not reach Kafka" >&2; exit 1; }
kill "$kb"

# --- rsyslog: imptcp -> omfile, default file template ---
rport=$(free_port)
mkdir -p "$work/rs"
cat > "$work/rs/rsyslog.conf" <<CONF
global(workDirectory="$work/rs")
module(load="imptcp")
input(type="imptcp" port="$rport" address="127.0.0.1")
action(type="omfile" file="$work/rs/out.log")
CONF
"$LOGPORT_TEST_RSYSLOGD" -n -f "$work/rs/rsyslog.conf" -i "$work/rs/pid" -M "$LOGPORT_TEST_RSYSLOG_MODULES" 2> "$work/rs/err.log" &
rs=$!; pids+=("$rs")
until python3 -c "import socket; socket.create_connection(('127.0.0.1', $rport))" 2>/dev/null; do sleep 0.05; done
r0=$(date +%s.%N); rc0=$(cpu_ticks "$rs")
send "$rport"
until [ -f "$work/rs/out.log" ] && [ "$(wc -l < "$work/rs/out.log")" -ge "$n" ]; do sleep 0.05; done
r1=$(date +%s.%N); rc1=$(cpu_ticks "$rs"); rs_hwm=$(hwm_kib "$rs")

python3 - "$n" "$bytes" "$tck" "$st_ticks" "$st_wall" "$st_hwm" "$kf_ticks" "$kf_wall" "$kf_hwm" "$kb_ticks" "$r0" "$r1" "$rc0" "$rc1" "$rs_hwm" <<'PY'
import sys
n, nbytes, tck = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
st_ticks, st_wall, st_hwm, kf_ticks, kf_wall, kf_hwm, kb_ticks, r0, r1, rc0, rc1, rhwm = map(float, sys.argv[4:])
per = lambda ticks: ticks / tck / n * 1e6
rs_cpu = per(rc1 - rc0)
print(f"{n} events, {nbytes / n:.0f} bytes each on the wire, one TCP connection, loopback")
print("| receiver | CPU µs/event | events/s (wall) | peak RSS MiB |")
print("|---|---|---|---|")
print(f"| logport syslog/tcp -> store (fsync) | {per(st_ticks):.2f} | {n / st_wall:,.0f} | {st_hwm / 1024:.0f} |")
print(f"| logport syslog/tcp -> Kafka (acks=all, idempotent, lz4) | {per(kf_ticks):.2f} | {n / kf_wall:,.0f} | {kf_hwm / 1024:.0f} |")
print(f"| (the tansu broker meanwhile) | {per(kb_ticks):.2f} | | |")
print(f"| rsyslog imptcp -> omfile | {rs_cpu:.2f} | {n / (r1 - r0):,.0f} | {rhwm / 1024:.0f} |")
print(f"logport (store) / rsyslog CPU per event: {per(st_ticks) / rs_cpu:.2f}")
print(f"logport (Kafka) / rsyslog CPU per event: {per(kf_ticks) / rs_cpu:.2f}")
PY
