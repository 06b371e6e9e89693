# Multi-stage build: compile with the Rust toolchain, ship a slim image that runs as non-root.
#   docker build -t logport .
#   docker run -p 5514:5514 -p 5514:5514/udp -p 9600:9600 -v logport-data:/var/lib/logport logport
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin logport && strip target/release/logport

FROM debian:bookworm-slim
RUN groupadd --system --gid 10001 logport \
 && useradd --system --uid 10001 --gid logport --home-dir /var/lib/logport --shell /usr/sbin/nologin logport \
 && mkdir -p /var/lib/logport /etc/logport \
 && chown logport:logport /var/lib/logport
COPY --from=build /src/target/release/logport /usr/local/bin/logport
COPY docker/logport.toml /etc/logport/logport.toml
USER logport
VOLUME /var/lib/logport
# syslog TCP+UDP, syslog TLS (when configured), admin API
EXPOSE 5514/tcp 5514/udp 6514/tcp 5044/tcp 12201/udp 12201/tcp 24224/tcp 24224/udp 9600/tcp
HEALTHCHECK --interval=10s --timeout=3s CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9600 && printf 'GET /ready HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q '200 OK' <&3"]
ENTRYPOINT ["logport"]
CMD ["run", "--config", "/etc/logport/logport.toml"]
