#!/bin/bash
# Runs Test::Nginx-format suites by hand with the environment of a build
# (its test-env.sh, written by CMake): by default every suite, against
# ./build.
#
#   scripts/prove.sh [BUILD_DIR] [PROVE_ARGS | t/NNN-topic.t ...]
#   scripts/prove.sh build-asan t/050-log-record.t
#
# Export TEST_NGINX_SERVER_PORT and TEST_NGINX_MOCK_PORT first on a
# shared machine.  With a sanitizer build, its report directory is
# emptied first and the reports are listed at the end (exit 1 if any).

set -euo pipefail

cd "$(dirname "$0")/.."

dir=build
if [ $# -gt 0 ] && [ -f "$1/test-env.sh" ]; then
    dir=${1%/}
    shift
fi
if [ ! -f "$dir/test-env.sh" ]; then
    echo "$0: no $dir/test-env.sh (run scripts/build.sh first)" >&2
    exit 2
fi

. "$dir/test-env.sh"
[ $# -gt 0 ] || set -- -r t

if [ -n "${TEST_NGINX_SANITIZER_LOGS:-}" ]; then
    rm -rf "$TEST_NGINX_SANITIZER_LOGS"
    rc=0
    prove -I t/lib "$@" || rc=$?
    scripts/sanitizer-reports.sh "$TEST_NGINX_SANITIZER_LOGS" || rc=1
    exit $rc
fi

exec prove -I t/lib "$@"
