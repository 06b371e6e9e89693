#!/usr/bin/env bash
# Builds the logport image with no registry and no network: the base images from Debian packages
# and this host's toolchain (scripts/docker-base-images.sh), the crates vendored from cargo's local
# cache into .vendor/, BuildKit with --network none. The builder's cache mounts keep cargo's target
# dir between builds, so only the first build compiles everything.
# Usage: DOCKER_HOST=unix:///path/docker.sock scripts/docker-image.sh [TAG]   (default logport:dev)
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-logport:dev}
scripts/docker-base-images.sh debian rust
# Re-vendored only when the lock file changed.
if [ ! -f .vendor/.lock-hash ] || [ "$(cat .vendor/.lock-hash)" != "$(sha256sum Cargo.lock)" ]; then
  rm -rf .vendor
  cargo vendor --locked --offline --versioned-dirs .vendor >/dev/null
  sha256sum Cargo.lock >.vendor/.lock-hash
fi
DOCKER_BUILDKIT=1 /usr/bin/docker build --network none --progress plain -t "$tag" . 
