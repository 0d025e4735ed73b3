#!/bin/bash
# Builds the modules (against NGINX_SRC, default Debian's nginx-dev tree),
# the mock provider and the unit tests into ./build.

set -euo pipefail

cd "$(dirname "$0")/.."

cmake -S . -B build -DNGINX_SRC="${NGINX_SRC:-/usr/share/nginx/src}" \
      -DNGINX_BIN="${NGINX_BIN:-/usr/sbin/nginx}" >/dev/null
cmake --build build -j"$(nproc)"
