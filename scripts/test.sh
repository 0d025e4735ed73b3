#!/bin/bash
# Installs what is missing, builds, and runs every test (the C unit tests
# and the Test::Nginx-format suites, which include the OpenAI and
# Anthropic SDK checks, all through ctest) in up to three passes:
#
#   debian  the modules against Debian's nginx-dev tree, run in Debian's
#           nginx 1.22 (./build)
#   asan    the same with ASan + UBSan; nginx runs with the runtime
#           preloaded, any report fails the pass (./build-asan)
#   1.30    NGINX 1.30.4 built from ../shared/nginx/nginx-1.30.4.tar.gz
#           and the modules against it, run in that nginx
#           (./build-1.30); skipped when the tarball is not there
#
#   scripts/test.sh                     every pass
#   scripts/test.sh asan                only the passes named
#   scripts/test.sh debian -R unit      other arguments go to ctest
#
# Each pass prints ctest's summary; the last line sums them up in the
# same form, and the exit status is non-zero if any pass failed.  See
# docs/testing.md.

set -uo pipefail

cd "$(dirname "$0")/.."

passes=()
ctest_args=()
for a in "$@"; do
    case $a in
    debian|asan|1.30) passes+=("$a") ;;
    *) ctest_args+=("$a") ;;
    esac
done
explicit=${#passes[@]}
[ "$explicit" -gt 0 ] || passes=(debian asan 1.30)

set -e

scripts/deps.sh --test

# the official SDKs, pinned, into t/sdk/node_modules
if [ ! -d t/sdk/node_modules/openai ] \
   || [ t/sdk/package-lock.json -nt t/sdk/node_modules ]
then
    (cd t/sdk && npm ci --no-audit --no-fund --loglevel=error)
fi

set +e

summary=()
digest=()
total=0
failed=0
status=0

for pass in "${passes[@]}"; do
    case $pass in
    debian) dir=build;      servroot=t/servroot ;;
    asan)   dir=build-asan; servroot=t/servroot-asan ;;
    1.30)   dir=build-1.30; servroot=t/servroot-1.30 ;;
    esac

    if [ "$pass" = 1.30 ] && ! scripts/nginx-tarball.sh >/dev/null; then
        line="skipped: no ../shared/nginx/nginx-1.30.4.tar.gz"
        if [ "$explicit" -gt 0 ]; then
            line="FAILED: no ../shared/nginx/nginx-1.30.4.tar.gz"
            total=$((total + 1)) failed=$((failed + 1)) status=1
        fi
        summary+=("$(printf '%-7s %s' "$pass" "$line")")
        continue
    fi

    echo
    echo "=== $pass: building into $dir"
    start=$SECONDS
    if ! scripts/build.sh "$pass"; then
        summary+=("$(printf '%-7s build FAILED (%ds)' "$pass" \
                    $((SECONDS - start)))")
        total=$((total + 1)) failed=$((failed + 1)) status=1
        continue
    fi
    built=$((SECONDS - start))

    echo
    echo "=== $pass: testing ($dir, servroot $servroot)"
    start=$SECONDS
    log=$dir/ctest.log
    TEST_NGINX_SERVROOT=$PWD/$servroot \
        ctest --test-dir "$dir" --output-on-failure "${ctest_args[@]}" \
        2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    ran=$((SECONDS - start))

    # "100% tests passed, 0 tests failed out of 7"
    line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' \
           "$log" | tail -1)
    if [[ $line =~ ([0-9]+)\ tests?\ failed\ out\ of\ ([0-9]+) ]]; then
        failed=$((failed + BASH_REMATCH[1]))
        total=$((total + BASH_REMATCH[2]))
    else
        line="ctest FAILED (exit $rc)"
        total=$((total + 1)) failed=$((failed + 1))
    fi
    [ "$rc" -eq 0 ] || status=1

    # the diagnostics of the failed tests, again at the end of the
    # output (where a long log is cut, its end is what is kept)
    if [ "$rc" -ne 0 ]; then
        digest+=("--- $pass ($log)")
        while IFS= read -r l; do digest+=("$l"); done < <(
            awk '/^(not ok|#   Failed test)/ { n = 40 }
                 n > 0 && /^(not ok|#)/ { print; n--; next }
                 { n = 0 }
                 /^[^ ]*\.t \.+ *(Dubious|Failed)/ { print }' "$log" \
            | head -150)
    fi
    summary+=("$(printf '%-7s %s (build %ds, tests %ds)' "$pass" "$line" \
                $built $ran)")
done

if [ ${#digest[@]} -gt 0 ]; then
    echo
    echo "=== failures"
    printf '%s\n' "${digest[@]}"
fi

echo
echo "=== summary"
printf '%s\n' "${summary[@]}"
if [ "$total" -gt 0 ]; then
    pct=$(( (total - failed) * 100 / total ))
else
    pct=0 status=1
fi
echo
echo "$pct% tests passed, $failed tests failed out of $total"
exit $status
