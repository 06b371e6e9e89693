#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests talk to (scripts/install-test-deps.sh),
# checks formatting and lints, then runs every unit and integration test of the workspace and
# a short pass of every fuzz target (fuzz/, its own workspace).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh
# shellcheck source=/dev/null
source .tools/env.sh

cargo fmt --all --check
cargo fmt --manifest-path fuzz/Cargo.toml --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --all-targets --locked
cargo test --workspace --doc --locked
# Every fuzz target, briefly, on its committed corpus (about 3 s each after the build).
scripts/fuzz-smoke.sh
