#!/usr/bin/env bash
# The browser test drives Debian's Chromium (no browser download): install it if it is missing.
set -euo pipefail
if [[ -x "${CHROMIUM:-/usr/bin/chromium}" ]]; then exit 0; fi
if [[ "$(id -u)" != 0 ]] && ! command -v sudo >/dev/null; then
    echo "ensure-chromium: /usr/bin/chromium is missing; install Debian's 'chromium' package" >&2
    exit 1
fi
SUDO=""; [[ "$(id -u)" == 0 ]] || SUDO=sudo
echo "ensure-chromium: installing Debian's chromium package (once)"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
