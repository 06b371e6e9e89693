# Multi-stage build: compile with the Rust toolchain, ship a slim image that runs as non-root.
#   DOCKER_BUILDKIT=1 docker build -t logport .
#   docker run -d --name logport -p 5514:5514 -p 5514:5514/udp -p 12201:12201/udp -p 12201:12201 \
#     -p 24224:24224 -p 5044:5044 -p 9600:9600 -v logport-data:/var/lib/logport logport
# Needs BuildKit (the default since Docker 23; `DOCKER_BUILDKIT=1` before). Without a registry or
# network, scripts/docker-image.sh vendors the crates into .vendor/ and builds with --network none.
FROM rust:1-bookworm AS build
WORKDIR /src
# The context is mounted, not copied; cargo's registry and target dir are cache mounts kept by the
# builder, so a rebuild compiles only what changed. A .vendor/ dir in the context (`cargo vendor
# .vendor`) replaces crates.io, for builds without network.
RUN --mount=type=bind,target=/src,rw \
    --mount=type=cache,target=/usr/local/cargo/registry,id=logport-cargo-registry \
    --mount=type=cache,target=/src/target,id=logport-target \
    set -e; \
    if [ -d .vendor ]; then \
      set -- --offline --config 'source.crates-io.replace-with="vendored"' --config 'source.vendored.directory=".vendor"'; \
    fi; \
    cargo build --release --locked --bin logport "$@"; \
    strip -o /usr/local/bin/logport target/release/logport

FROM debian:bookworm-slim
RUN groupadd --system --gid 10001 logport \
 && useradd --system --uid 10001 --gid logport --home-dir /var/lib/logport --shell /usr/sbin/nologin logport \
 && mkdir -p /var/lib/logport /etc/logport \
 && chown logport:logport /var/lib/logport
COPY --from=build /usr/local/bin/logport /usr/local/bin/logport
COPY docker/logport.toml /etc/logport/logport.toml
USER logport
VOLUME /var/lib/logport
# syslog TCP+UDP, syslog TLS (when configured), beats, GELF UDP+TCP, forward (+ its UDP heartbeat), admin API
EXPOSE 5514/tcp 5514/udp 6514/tcp 5044/tcp 12201/udp 12201/tcp 24224/tcp 24224/udp 9600/tcp
# /health: the process serves (bash's /dev/tcp spares the image an HTTP client). Set
# LOGPORT_ADMIN_PORT when your configuration moves the admin API off 9600.
ENV LOGPORT_ADMIN_PORT=9600
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s \
  CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/$LOGPORT_ADMIN_PORT && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q '200 OK' <&3"]
ENTRYPOINT ["logport"]
CMD ["run", "--config", "/etc/logport/logport.toml"]
