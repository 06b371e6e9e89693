#!/usr/bin/env bash
# Long fuzzing campaign, one target after another on one core (the machine is
# shared): each target runs until RUNS executions or MAX_SECS seconds, whichever
# comes first, on a working corpus seeded from fuzz/corpus/<target>. The
# executions and any finding are in fuzz/logs/<target>.log; the last
# "Done N runs" line of each is what RELIABILITY.md reports.
#   usage: fuzz/run-long.sh [target...]   (default: every target)
#   env:   RUNS (10000000), MAX_SECS (3600)
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
  cargo fuzz run -s none -a "$t" "fuzz/corpus-work/$t" "fuzz/corpus/$t" -- \
    -runs="$runs" -max_total_time="$max" -rss_limit_mb=1024 -print_final_stats=1 \
    >"fuzz/logs/$t.log" 2>&1 || echo "$t: FINDING, see fuzz/logs/$t.log" >&2
  grep -E "^Done|stat::number_of_executed_units" "fuzz/logs/$t.log" | tail -1 | sed "s/^/$t: /"
done
