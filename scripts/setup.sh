#!/usr/bin/env bash
# Installs whatever this machine lacks to run wasup and its tests; safe to run again.
# Debian packages: chromium (the browser Playwright drives), libzbar0 (decodes QR codes in
# tests), prometheus (promtool checks metrics and alert rules), systemd (systemd-analyze
# verifies the unit), systemd-container and mmdebstrap (tests/systemd boots the unit under a
# real systemd in a container built from a cached Debian rootfs), tinyproxy (a real HTTP proxy
# for the per-instance proxy tests), etcd-server (the etcd that cluster mode's tests run),
# curl (a cluster scenario follows a redirected QR fetch with curl -L).
# Python: a virtualenv in .venv with wasup installed in editable mode. The names `supervisor`
# and `actors` clash with other PyPI packages, so never install system-wide.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
apt_packages=(chromium libzbar0 prometheus systemd systemd-container mmdebstrap tinyproxy etcd-server openssl curl)
# Debian's own python3 makes virtualenvs only with python3-venv installed.
"$python" -c 'import ensurepip, venv' 2>/dev/null || apt_packages+=(python3-venv)
missing=()
for pkg in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "setup: installing Debian packages: ${missing[*]}" >&2
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: need root (or sudo) to install ${missing[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating virtualenv .venv" >&2
    "$python" -m venv .venv
fi
# Reinstall only when pyproject.toml changed since the last install.
stamp=.venv/.wasup-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "setup: installing wasup and its dev tools into .venv" >&2
    .venv/bin/pip install -q --disable-pip-version-check -e '.[dev]'
    echo "$want" >"$stamp"
fi
