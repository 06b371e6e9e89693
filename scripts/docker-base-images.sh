#!/usr/bin/env bash
# Makes the base images the tests and the Dockerfile need, without a registry (none is reachable
# here), in the daemon DOCKER_HOST points at. Each is made once; existing tags are kept.
#   local/busybox       from Debian's busybox-static: the containers that log (< 1 s)
#   debian:bookworm-slim debootstrap --variant=minbase: the Dockerfile's runtime stage (~40 s)
#   rust:1-bookworm     that rootfs + gcc/make/pkg-config + this host's Rust toolchain: the
#                       Dockerfile's build stage (the toolchain is copied, not downloaded)
# Usage: DOCKER_HOST=unix:///path/docker.sock scripts/docker-base-images.sh [busybox] [debian] [rust]
set -euo pipefail
docker=/usr/bin/docker # Debian's CLI, the daemon's own version (the host may have a newer one)
want=("$@")
[ ${#want[@]} -gt 0 ] || want=(busybox debian rust)
has() { "$docker" image inspect "$1" >/dev/null 2>&1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for w in "${want[@]}"; do
  case $w in
  busybox)
    has local/busybox && continue
    r=$work/busybox
    mkdir -p "$r/bin" "$r/etc" "$r/tmp"
    cp /bin/busybox "$r/bin/"
    for a in $("$r/bin/busybox" --list); do [ "$a" = busybox ] || ln -s busybox "$r/bin/$a"; done
    echo 'root:x:0:0:root:/root:/bin/sh' >"$r/etc/passwd"
    tar -C "$r" -c . | "$docker" import -c 'CMD ["/bin/sh"]' -c 'ENV PATH=/bin' - local/busybox >/dev/null
    ;;
  debian | rust)
    if [ "$w" = debian ] && has debian:bookworm-slim; then continue; fi
    if [ "$w" = rust ] && has rust:1-bookworm; then continue; fi
    # The mirror apt already uses (a missing sources.list is not an error).
    mirror=$({ grep -rhoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null || true; } \
      | head -n 1 | awk '{print $2}')
    [ -n "$mirror" ] || { echo "docker-base-images: no Debian mirror found in apt's sources" >&2; exit 1; }
    r=$work/$w
    extra=()
    # The build stage compiles librdkafka (C) and links with cc; the runtime needs nothing more.
    [ "$w" = rust ] && extra=(--include=gcc,g++,libc6-dev,make,pkg-config,perl,ca-certificates)
    debootstrap --variant=minbase "${extra[@]}" bookworm "$r" "$mirror" >"$work/debootstrap-$w.log" 2>&1 \
      || { tail -n 20 "$work/debootstrap-$w.log" >&2; echo "docker-base-images: debootstrap failed" >&2; exit 1; }
    rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/* "$r"/var/cache/debconf/*-old
    if [ "$w" = debian ]; then
      # What the official slim image leaves out too: docs, manuals, translations.
      rm -rf "$r"/usr/share/doc/* "$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/usr/share/locale/* \
        "$r"/usr/share/lintian "$r"/var/log/*.log "$r"/var/cache/apt/*.bin
      tar --numeric-owner -C "$r" -c . | "$docker" import - debian:bookworm-slim >/dev/null
    else
      sysroot=$(rustc --print sysroot)
      mkdir -p "$r/usr/local/lib/rustlib" "$r/usr/local/bin" "$r/usr/local/cargo"
      cp "$sysroot"/bin/rustc "$sysroot"/bin/cargo "$r/usr/local/bin/"
      cp -a "$sysroot"/lib/*.so* "$r/usr/local/lib/"
      cp -a "$sysroot"/lib/rustlib/x86_64-unknown-linux-gnu "$r/usr/local/lib/rustlib/"
      tar --numeric-owner -C "$r" -c . | "$docker" import \
        -c 'ENV PATH=/usr/local/cargo/bin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        -c 'ENV CARGO_HOME=/usr/local/cargo' -c 'ENV LD_LIBRARY_PATH=/usr/local/lib' \
        - rust:1-bookworm >/dev/null
    fi
    ;;
  *) echo "docker-base-images: unknown image $w (busybox, debian, rust)" >&2; exit 1 ;;
  esac
done
