#!/usr/bin/env bash
# Long fuzzing campaign, one target after another on one core (the machine is
# shared): each target runs until RUNS executions or MAX_SECS seconds, whichever
# comes first, on a working corpus seeded from fuzz/corpus/<target>. The
# log is fuzz/logs/<target>.log; each run's executions and any finding are
# appended to fuzz/ledger.tsv, whose sums RELIABILITY.md reports.
#   usage: fuzz/run-long.sh [target...]   (default: every target)
#   env:   RUNS (10000000), MAX_SECS (3600)
# Beside other work, start it in its own session and lower that session's whole share:
#   setsid nohup nice -n 19 fuzz/run-long.sh ... & then echo 19 > /proc/PID/autogroup
# (with autogroups, nice alone only ranks processes within their own session).
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTC_BOOTSTRAP=1
runs=${RUNS:-10000000}
max=${MAX_SECS:-3600}
mkdir -p fuzz/logs
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
cargo fuzz build -s none -a
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus-work/$t"
  # SIGINT ends a run early with its counts printed (and recorded below); a finding makes
  # the run fail and fuzz/record.sh marks it.
  cargo fuzz run -s none -a "$t" "fuzz/corpus-work/$t" "fuzz/corpus/$t" -- \
    -runs="$runs" -max_total_time="$max" -rss_limit_mb=1024 -print_final_stats=1 \
    >"fuzz/logs/$t.log" 2>&1 || true
  fuzz/record.sh "fuzz/logs/$t.log"
done
