#!/bin/sh
# Installs what flotta needs on a fresh Debian 12 machine (as root) and creates .venv/.
# Idempotent: packages already present and an up-to-date venv are left alone.
set -eu
cd "$(dirname "$0")/.."

SYSTEM_PACKAGES="crun conmon runc busybox-static iproute2 nftables iputils-ping debootstrap skopeo docker-registry zstd openssl tini ca-certificates"

missing=""
for pkg in $SYSTEM_PACKAGES; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    case "$status" in
        *"install ok installed"*) ;;
        *) missing="$missing $pkg" ;;
    esac
done
# The compatibility tests drive a real docker CLI; Debian's docker.io provides one when
# the machine has none. Only the client is used: dockerd is never started.
if ! command -v docker >/dev/null 2>&1; then
    missing="$missing docker.io"
fi
if [ -n "$missing" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "install: missing system packages:$missing (run as root to install them)" >&2
        exit 1
    fi
    echo "install: apt-get install$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
    # The docker.io package must not leave a daemon running on this host.
    if command -v systemctl >/dev/null 2>&1; then
        systemctl disable --now docker.service docker.socket containerd.service >/dev/null 2>&1 || true
    fi
fi

PYTHON=${PYTHON:-python3}
STAMP=.venv/.flotta-installed
if [ -x .venv/bin/python ] && [ -f "$STAMP" ] && [ "$STAMP" -nt pyproject.toml ]; then
    exit 0
fi
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
# compat mode: a plain path entry instead of an import finder, which costs every
# `flotta` invocation several milliseconds of start-up.
if ! .venv/bin/python -m pip install -q -e '.[test,bench]' --config-settings editable_mode=compat >.venv/install.log 2>&1; then
    cat .venv/install.log >&2
    echo "install: pip install failed (log above)" >&2
    exit 1
fi
touch "$STAMP"
echo "install: .venv ready"
