#!/usr/bin/env bash
# Make sure the browser the tests drive is installed: Debian's `chromium` (tests/test_browser.py and
# tests/test_jupyter_ui.py point Playwright at it). Called by `make browser` before `make test`'s pytest run.
# Installs with apt-get when missing (as root, or through password-less sudo); where that is impossible it says why
# and exits 0, so the tests still run and the browser tests are skipped, counted, in pytest's closing summary.
# DANCENOW_CHROMIUM=/path/to/chrome uses that executable instead; DANCENOW_NO_BROWSER_INSTALL=1 installs nothing.
set -uo pipefail

refuse() {
    echo "ensure_browser: $1" >&2
    echo "ensure_browser: the browser tests will be skipped (install Debian's chromium by hand: apt-get install chromium)" >&2
    exit 0
}

if [ -n "${DANCENOW_CHROMIUM:-}" ]; then
    [ -x "$DANCENOW_CHROMIUM" ] || refuse "DANCENOW_CHROMIUM=$DANCENOW_CHROMIUM is not an executable"
    exit 0
fi
if command -v chromium > /dev/null 2>&1; then
    exit 0
fi
[ -z "${DANCENOW_NO_BROWSER_INSTALL:-}" ] || refuse "chromium is missing and DANCENOW_NO_BROWSER_INSTALL is set"
command -v apt-get > /dev/null 2>&1 || refuse "chromium is missing and this system has no apt-get (not Debian/Ubuntu)"
if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo > /dev/null 2>&1 && sudo -n true 2> /dev/null; then
    as_root=(sudo -n)
else
    refuse "chromium is missing and installing it needs root (run as root, or give password-less sudo)"
fi

echo "ensure_browser: installing Debian's chromium for the browser tests (apt-get, once)"
# wait (bounded) for another apt/dpkg run holding the lock instead of failing at once
apt=("${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300)
"${apt[@]}" update > /dev/null || refuse "apt-get update failed (no network to the Debian mirror?)"
"${apt[@]}" install -y --no-install-recommends chromium > /dev/null \
    || refuse "apt-get install chromium failed (see apt-get's message above)"
command -v chromium > /dev/null 2>&1 || refuse "apt-get installed chromium but no chromium command is on PATH"
echo "ensure_browser: $(chromium --version 2> /dev/null || echo chromium) installed"
