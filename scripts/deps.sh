#!/bin/sh
# Installs what streamgate needs from Debian/Ubuntu packages, only when something is missing.
# Usage: scripts/deps.sh [runtime|test]
#   runtime: GStreamer (core, plugins, webrtc/nice) and build tools
#   test:    runtime + ffmpeg, Chromium, Node.js/npm, iproute2, PostgreSQL (started by a test), VLC, nftables (the UDP-blocked browser test), and moto (a local S3 server, from PyPI into a venv) for the test suite
set -eu
kind=${1:-runtime}

runtime_pkgs="pkg-config build-essential libssl-dev
 libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
 gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly
 gstreamer1.0-libav gstreamer1.0-nice gstreamer1.0-tools libnice-dev libgstrtspserver-1.0-dev
 gstreamer1.0-x fonts-dejavu-core"
test_pkgs="ffmpeg chromium nodejs npm iproute2 util-linux procps postgresql vlc-bin vlc-plugin-base nftables python3-venv"

pkgs=$runtime_pkgs
[ "$kind" = test ] && pkgs="$pkgs $test_pkgs"

missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# Node.js may come from elsewhere (nvm, NodeSource): a working node and npm are enough.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    missing=$(echo "$missing" | tr ' ' '\n' | grep -vx -e nodejs -e npm | tr '\n' ' ')
fi

if [ -n "$(echo "$missing" | tr -d ' ')" ]; then
    echo "installing:$missing" >&2
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -q
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
fi

if ! command -v cargo >/dev/null 2>&1; then
    [ -x "$HOME/.cargo/bin/cargo" ] || {
        echo "Rust is missing; installing it with rustup (https://rustup.rs)" >&2
        command -v curl >/dev/null 2>&1 || { [ "$(id -u)" -eq 0 ] && apt-get install -y -q curl || sudo apt-get install -y -q curl; }
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    }
fi

# moto's S3 server for the VOD-from-S3 test, in a venv of its own (Debian's Python takes no
# system-wide pip installs). The test looks for moto_server on PATH, then in this venv.
if [ "$kind" = test ] && ! command -v moto_server >/dev/null 2>&1; then
    venv="${XDG_CACHE_HOME:-$HOME/.cache}/streamgate/moto"
    if [ ! -x "$venv/bin/moto_server" ]; then
        echo "installing moto[server] into $venv" >&2
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q 'moto[server]'
    fi
fi
