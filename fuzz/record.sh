#!/usr/bin/env bash
# Appends what fuzz runs did to fuzz/ledger.tsv (committed, so that a campaign spread over
# several sessions adds up): one row per run with its target, executions, seconds and whether
# it found anything, read from libFuzzer's log (-print_final_stats=1 prints the counts at the
# end, also when the run is interrupted with SIGINT).
# A run is known by libFuzzer's random seed, so recording a log twice counts it once.
#   usage: fuzz/record.sh fuzz/logs/TARGET.log...
set -euo pipefail
logs=()
for log in "$@"; do logs+=("$(realpath "$log")"); done
cd "$(dirname "$0")/.."
ledger=fuzz/ledger.tsv
[ -f "$ledger" ] || printf 'date\ttarget\texecutions\tseconds\tfinding\tseed\n' >"$ledger"
for log in "${logs[@]}"; do
  t=$(basename "$log" .log)
  seed=$(grep -m1 -oE "Seed: [0-9]+" "$log" | grep -oE "[0-9]+" || echo "?")
  if [ "$seed" != "?" ] && awk -F'\t' -v t="$t" -v s="$seed" '$2 == t && $6 == s { found = 1 } END { exit !found }' "$ledger"; then
    echo "record: $t run with seed $seed is already in $ledger"
    continue
  fi
  runs=$(grep -oE "stat::number_of_executed_units: [0-9]+" "$log" | tail -n 1 | grep -oE "[0-9]+$" || true)
  if [ -z "$runs" ]; then
    echo "record: $log has no final stats (still running, or killed without SIGINT): not recorded" >&2
    continue
  fi
  secs=$(grep -oE "Done [0-9]+ runs in [0-9]+ second" "$log" | tail -n 1 | grep -oE "in [0-9]+" | grep -oE "[0-9]+" || echo "?")
  finding=none
  if grep -qE "deadly signal|panicked|^==[0-9]+== ERROR|Test unit written to .*crash-" "$log"; then
    finding=FINDING
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%Y-%m-%d)" "$t" "$runs" "$secs" "$finding" "$seed" >>"$ledger"
  echo "record: $t $runs executions, $secs s, $finding"
done
