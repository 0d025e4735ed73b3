#!/bin/bash
# Installs what building, running and testing need, from Debian's
# packages only (and, for the SDK tests, npm).  Idempotent: installs only
# what is missing.  Run as root on Debian 12.
#
#   scripts/deps.sh             building
#   scripts/deps.sh --test      building and testing (the packaging
#                               tools included: t/096-package.t)
#   scripts/deps.sh --package   building the Debian packages
#                               (scripts/package.sh)

set -euo pipefail

pkgs=(build-essential cmake nginx nginx-dev libcjson-dev libhiredis-dev
      libpcre2-dev libssl-dev zlib1g-dev)

if [ "${1:-}" = "--test" ]; then
    pkgs+=(libcmocka-dev libtest-base-perl libtext-diff-perl curl
           redis-server)

    # ai_log: a Prometheus text-format parser and a headless browser
    # for the dashboard (t/052-metrics.t, t/053-dashboard.t)
    pkgs+=(python3 python3-prometheus-client chromium)

    # Node.js for the SDK checks: Debian's, unless a node with npm is
    # already there (some images ship NodeSource's nodejs, which
    # bundles npm and conflicts with Debian's npm package)
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        pkgs+=(nodejs npm)
    fi
fi

if [ "${1:-}" = "--test" ] || [ "${1:-}" = "--package" ]; then
    # dpkg-buildpackage, debhelper (dh-sequence-nginx is nginx-dev's),
    # and lintian to check the result; the tests build the packages too
    # (t/096-package.t), and install nothing once they run
    pkgs+=(dpkg-dev debhelper fakeroot lintian)
fi

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" \
        || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
    echo "deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # wait for another apt or dpkg to finish; one retry for a mirror's
    # passing failure
    apt=(apt-get -qq -o DPkg::Lock::Timeout=300)
    "${apt[@]}" update || { sleep 10; "${apt[@]}" update; }
    "${apt[@]}" install -y --no-install-recommends "${missing[@]}" >/dev/null \
        || { sleep 10; "${apt[@]}" update;
             "${apt[@]}" install -y --no-install-recommends "${missing[@]}" \
                 >/dev/null; }
fi
