#!/usr/bin/env bash
# Install headless Chromium and its driver (Debian packages `chromium` and
# `chromium-driver`) when they are missing, for the browser test of the web
# demo (tests/demo/test_web_demo_browser.py drives /usr/bin/chromium through
# Playwright; Playwright's own browser download is never used).
#   bash tools/install_browser.sh        # as root, or with sudo available
# Exits 0 when the browser is there afterwards; prints why not otherwise.
set -euo pipefail

have() { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; }

if have; then
    echo "install_browser: $(chromium --version 2>/dev/null | head -1) and chromedriver already installed"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_browser: no apt-get here; install Chromium (chromium) and its driver" \
         "(chromium-driver) with this system's package manager" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "install_browser: need root (or sudo) for apt-get install chromium chromium-driver" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q chromium chromium-driver
if have; then
    echo "install_browser: installed $(chromium --version 2>/dev/null | head -1)"
else
    echo "install_browser: apt-get finished but chromium/chromedriver are not on PATH" >&2
    exit 1
fi
