#!/usr/bin/env bash
# Installs the system packages that building and testing Tether need (Debian/Ubuntu).
# Safe to run again: it does nothing when everything is already installed.
set -euo pipefail

PKGS=(
    pkg-config
    # real peers for the end-to-end tests
    openssh-server openssh-client
    # the web page is tested in a real browser
    chromium chromium-driver
    # the RAC tray app (tray-icon builds against GTK) and its headless test
    libgtk-3-dev libxdo-dev libayatana-appindicator3-dev
    xvfb dbus-x11 x11-utils imagemagick
    # installers: packages are built, installed and their units verified
    dpkg-dev systemd desktop-file-utils xdg-utils jq curl openssl
    # the platform store is tested on PostgreSQL as well as SQLite
    postgresql
    # VNC end to end: a real VNC server and a real VNC client
    tigervnc-standalone-server vncsnapshot
    # permessage-deflate is tested against an independent websocket client
    python3-websockets
)

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "==> installing system packages: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
