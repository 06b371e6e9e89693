#!/usr/bin/env bash
# Runs every fuzz target briefly on its committed corpus (fuzz/corpus/<target>), so that a
# decoder change that panics, buffers past a cap or breaks a round trip on a known input
# fails CI. New inputs found here go to a temp dir, not into git. Long campaigns:
# fuzz/run-long.sh. cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP=1 lets the stable
# toolchain accept them.
#   env: FUZZ_SMOKE_SECS (3): fuzzing time per target after the corpus replay.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-fuzz >/dev/null || {
  echo "fuzz-smoke: cargo-fuzz is not installed (scripts/install-test-deps.sh installs it)" >&2
  exit 1
}
export RUSTC_BOOTSTRAP=1
secs=${FUZZ_SMOKE_SECS:-3}
# No sanitizer: the crates are safe Rust, and ASan would halve the executions per second.
# Debug assertions on, so integer overflow panics.
cargo fuzz build -s none -a
new=$(mktemp -d)
trap 'rm -rf "$new"' EXIT
failed=()
for t in $(cargo fuzz list); do
  mkdir -p "$new/$t"
  if out=$(cargo fuzz run -s none -a "$t" "$new/$t" "fuzz/corpus/$t" -- \
      -max_total_time="$secs" -rss_limit_mb=1024 -print_final_stats=1 2>&1); then
    echo "fuzz-smoke: $t ok, $(grep -o 'stat::number_of_executed_units: [0-9]*' <<<"$out" | grep -o '[0-9]*$') executions"
  else
    echo "$out" | tail -40 >&2
    echo "fuzz-smoke: $t FAILED (the crashing input is under fuzz/artifacts/$t/)" >&2
    failed+=("$t")
  fi
done
[ ${#failed[@]} -eq 0 ] || { echo "fuzz-smoke: failed: ${failed[*]}" >&2; exit 1; }
