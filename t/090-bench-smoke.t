# bench/run --smoke: every benchmark case runs for about a second with tiny
# loads (plain NGINX, the gateway minimal and full chain, SSE pass-through
# and translated, body sizes, slow streams; Portkey only when bench/portkey
# has it installed).  Asserts zero errors, clean error logs and well-formed
# results, never performance.  Ports: TEST_NGINX_SERVER_PORT + 20 .. + 29.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: the benchmark's smoke run
--- config
    location = /t { return 200; }
--- timeout: 150
--- exec
set -e
# the nginx under test, through the harness's wrapper (the sanitizer pass
# preloads its runtime there)
w=$TEST_NGINX_SERVROOT/bench
rm -rf $w
mkdir -p $w
BENCH_NGINX=$(command -v nginx) \
BENCH_MODULES=$TEST_NGINX_MODULES BENCH_MOCK=$TEST_AI_MOCK_BIN \
  bench/run --smoke --no-install --work $w \
            --port-base $((TEST_NGINX_SERVER_PORT + 20)) 2>$w/stderr \
  || { cat $w/stderr; exit 1; }
r=$w/smoke.md
grep -c '^## Targets$' $r
grep -o 'Errors in all runs: \*\*0\*\*; error-log lines at \[error\] or above: \*\*0\*\*' $r
# every case that exists today has a row with figures, the others say why
for c in plain gw_min gw_full sse_plain sse_plain_usage sse_gw sse_gw_usage \
         sse_plain_anth sse_tr_o2a sse_tr_a2o; do
    grep -Eq "^\| \`$c\` \| [^|]+ \| [0-9,]+ \([0-9,]+–[0-9,]+\) \| [0-9,]+ \| [0-9,]+ \| 0 \| [0-9.,]+ " $r \
        || { echo "no figures for $c"; exit 1; }
done
grep -Eq '^\| `gw_cache_hit` \| [^|]+ \| (n/a|[0-9])' $r
grep -Eq '^\| `portkey` \| [^|]+ \| (n/a|[0-9])' $r
grep -Ec '^\| `lat_(plain|gw_min|gw_full)` \| [0-9,]+ ' $r
# body sizes: plain, the minimal gateway and the full chain, each with
# its ratio to plain and its cost per KB over the 1k case's
grep -Ec '^\| (1k|100k|1m|200msg) \| [0-9,]+ \| [0-9.,]+ \([^|]+\) \| [0-9.,]+ \([^|]+\) \| [0-9.]+ \([^|]+\)× \| [0-9.,]+ \([^|]+\) \| [0-9.]+ \([^|]+\)× \| (—|-?[0-9,]+) / (—|-?[0-9,]+) / (—|-?[0-9,]+) \| [0-9,]+ / [0-9,]+ / [0-9,]+ \|$' $r
grep -Ec '^\| [0-9,]+ \| [0-9]+ \| [0-9]+ \| [0-9.,]+ / [0-9.,]+ \| [0-9.,]+ / [0-9.,]+ \| [0-9.,]+× \| 0 / 0 \|' $r
# translated streams against their length: two rows and the target's
grep -Ec '^\| 5 \| (26|306) \| [0-9]+ \| [0-9.,]+ \| 0 \| [0-9.]+ \|$' $r
grep -Ec '^\| translated stream \(Anthropic door, OpenAI target\): worker RSS per stream, 306 events over 26 \(peak, 5 streams\), kB \| -?[0-9.,]+ ' $r
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
runs = d["runs"]
assert runs and all(r["requests"] > 0 and r["errors"] == 0
                    for rows in runs.values() for r in rows), "runs"
assert all(s[k]["requests"] == s["streams"]
           for s in d["streams"] for k in ("plain", "gw") if k in s), "streams"
tr = [s for s in d["streams"] if s.get("translated")]
assert len(tr) == 2 and all("plain" not in s and s["gw"]["errors"] == 0
                            for s in tr), "translated streams"
print("json ok")' $w/results.json
--- response_body
bench: ok, 0 errors
1
Errors in all runs: **0**; error-log lines at [error] or above: **0**
3
4
3
2
1
json ok
--- no_error_log
[error]
