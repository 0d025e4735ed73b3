#!/bin/bash
# Builds and starts the gateway from nginx.conf.example on 127.0.0.1:8080.
#
# With OPENAI_API_KEY set, requests go to api.openai.com; without it, to
# the local mock provider (started here on 127.0.0.1:8081).  State lives in
# shared memory; the JSONL log goes to ./run/logs.  Ctrl-C stops it all.

set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD

scripts/deps.sh
scripts/build.sh

run=$root/run
mkdir -p "$run/logs" "$run/tmp"

if [ -n "${OPENAI_API_KEY:-}" ]; then
    upstream="https://api.openai.com/v1"
    echo "run: upstream is api.openai.com (OPENAI_API_KEY is set)"
else
    upstream="http://127.0.0.1:8081/v1"
    export OPENAI_API_KEY=sk-mock-local
    "$root/build/ai_mock" -l 127.0.0.1:8081 -w 1 &
    mock=$!
    echo "run: upstream is the local mock provider on 127.0.0.1:8081"
fi

sed -e "s#@MODULES@#$root/build/nginx#g" \
    -e "s#@UPSTREAM@#$upstream#g" \
    -e "s#@RUN@#$run#g" \
    nginx.conf.example > "$run/nginx.conf"

cleanup() {
    [ -n "${mock:-}" ] && kill "$mock" 2>/dev/null || true
}
trap cleanup EXIT

/usr/sbin/nginx -t -p "$run/" -c "$run/nginx.conf"
echo "run: the gateway listens on http://127.0.0.1:8080 (Ctrl-C stops it)"
/usr/sbin/nginx -p "$run/" -c "$run/nginx.conf" -g 'daemon off;'
