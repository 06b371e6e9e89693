#!/usr/bin/env bash
# End-to-end benchmark of every input protocol, against the embedded store and a real
# Kafka-protocol broker (tansu), side by side with rsyslog, plus an overload run; see
# scripts/bench.py for what is measured and how. Figures go to benches/results/e2e.json and
# benches/results/e2e.md.
#
#   scripts/bench.sh [--count N] [--rate R] [--protocols syslog,beats,gelf,forward] [--sinks store,kafka] ...
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh >/dev/null
source .tools/env.sh
cargo build --release --quiet -p logport -p logport-loadgen --bins
exec python3 scripts/bench.py "$@"
