# The core's store interface with its shared-memory backend: get / set /
# incr / del, TTL, LRU eviction in a small zone, shared by workers and
# kept across a reload.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

workers(2);
run_tests();

__DATA__

=== TEST 1: set, get, del, not found
--- http_config
    ai_store s1 size=64k;
--- config
    location /s { ai_store_test s1; }
--- request eval
["GET /s?op=get&key=a", "GET /s?op=set&key=a&value=hello", "GET /s?op=get&key=a",
 "GET /s?op=del&key=a", "GET /s?op=get&key=a", "GET /s?op=del&key=a"]
--- response_body eval
["{\"rc\":\"not_found\"}\n", "{\"rc\":\"ok\"}\n", "{\"rc\":\"ok\",\"value\":\"hello\"}\n",
 "{\"rc\":\"ok\"}\n", "{\"rc\":\"not_found\"}\n", "{\"rc\":\"not_found\"}\n"]
--- no_error_log
[error]



=== TEST 2: incr from nothing, by deltas, negative; a value grows in place
--- http_config
    ai_store s1 size=64k;
--- config
    location /s { ai_store_test s1; }
--- request eval
["GET /s?op=incr&key=n&delta=5", "GET /s?op=incr&key=n&delta=37", "GET /s?op=incr&key=n&delta=-50",
 "GET /s?op=get&key=n", "GET /s?op=set&key=v&value=x", "GET /s?op=set&key=v&value=a-much-longer-value",
 "GET /s?op=get&key=v", "GET /s?op=incr&key=v&delta=1"]
--- response_body eval
["{\"rc\":\"ok\",\"number\":5}\n", "{\"rc\":\"ok\",\"number\":42}\n", "{\"rc\":\"ok\",\"number\":-8}\n",
 "{\"rc\":\"ok\",\"value\":\"-8\"}\n", "{\"rc\":\"ok\"}\n", "{\"rc\":\"ok\"}\n",
 "{\"rc\":\"ok\",\"value\":\"a-much-longer-value\"}\n", "{\"rc\":\"error\"}\n"]
--- no_error_log
[error]



=== TEST 3: TTL: an entry expires
--- http_config
    ai_store s1 size=64k;
--- config
    location /s { ai_store_test s1; }
--- request eval
["GET /s?op=set&key=k&value=v&ttl=300", "GET /s?op=get&key=k"]
--- response_body eval
["{\"rc\":\"ok\"}\n", "{\"rc\":\"ok\",\"value\":\"v\"}\n"]
--- no_error_log
[error]



=== TEST 4: TTL: after the TTL the entry is gone (counters too)
--- http_config
    ai_store s1 size=64k;
--- config
    location /s { ai_store_test s1; }
--- exec
curl -s "http://127.0.0.1:$TEST_NGINX_SERVER_PORT/s?op=set&key=k&value=v&ttl=200";
curl -s "http://127.0.0.1:$TEST_NGINX_SERVER_PORT/s?op=incr&key=c&delta=3&ttl=200";
curl -s "http://127.0.0.1:$TEST_NGINX_SERVER_PORT/s?op=incr&key=c&delta=3&ttl=200";
sleep 0.5;
curl -s "http://127.0.0.1:$TEST_NGINX_SERVER_PORT/s?op=get&key=k";
curl -s "http://127.0.0.1:$TEST_NGINX_SERVER_PORT/s?op=incr&key=c&delta=1"
--- response_body
{"rc":"ok"}
{"rc":"ok","number":3}
{"rc":"ok","number":6}
{"rc":"not_found"}
{"rc":"ok","number":1}
--- no_error_log
[error]



=== TEST 5: a small zone evicts the least recently used, never fails
--- http_config
    ai_store s1 size=32k;
--- config
    location /s { ai_store_test s1; }
--- exec
v=$(head -c 1000 /dev/zero | tr '\0' x)
for i in $(seq 1 200); do
  curl -s -o /dev/null "http://127.0.0.1:$TEST_NGINX_SERVER_PORT/s?op=set&key=k$i&value=$v"
  # k1 stays hot
  curl -s -o /dev/null "http://127.0.0.1:$TEST_NGINX_SERVER_PORT/s?op=get&key=k1"
done
curl -s "http://127.0.0.1:$TEST_NGINX_SERVER_PORT/s?op=get&key=k2"
curl -s "http://127.0.0.1:$TEST_NGINX_SERVER_PORT/s?op=get&key=k1" | cut -c1-20
curl -s "http://127.0.0.1:$TEST_NGINX_SERVER_PORT/s?op=get&key=k200" | cut -c1-20
--- response_body
{"rc":"not_found"}
{"rc":"ok","value":"
{"rc":"ok","value":"
--- no_error_log
[error]
[crit]



=== TEST 6: shared by 2 workers and kept across a reload
--- http_config
    ai_store s1 size=64k;
--- config
    location /s { ai_store_test s1; }
--- exec
for i in $(seq 1 20); do
  curl -s -o /dev/null "http://127.0.0.1:$TEST_NGINX_SERVER_PORT/s?op=incr&key=hits&delta=1"
done
kill -HUP $(cat $TEST_NGINX_SERVROOT/logs/nginx.pid); sleep 1
curl -s "http://127.0.0.1:$TEST_NGINX_SERVER_PORT/s?op=incr&key=hits&delta=1"
--- response_body
{"rc":"ok","number":21}
--- no_error_log
[error]



=== TEST 7: an unknown store is an nginx -t error naming it
--- config
    location /s { ai_store_test nosuch; }
--- must_die
--- error_log
unknown ai_store "nosuch"



=== TEST 8: a bad size is an nginx -t error naming it
--- http_config
    ai_store s1 size=lots;
--- config
    location /s { ai_store_test s1; }
--- must_die
--- error_log
ai_store "s1": invalid size "lots"



=== TEST 9: add is set-if-absent; reserve applies a delta only within the limit and tells the time left
--- http_config
    ai_store s1 size=64k;
--- config
    location /s { ai_store_test s1; }
--- request eval
["GET /s?op=add&key=lock&value=a&ttl=5000", "GET /s?op=add&key=lock&value=b", "GET /s?op=get&key=lock",
 "GET /s?op=reserve&key=r&delta=60&limit=100&ttl=60000", "GET /s?op=reserve&key=r&delta=50&limit=100",
 "GET /s?op=reserve&key=r&delta=40&limit=100&showttl=1", "GET /s?op=incr&key=r&delta=-30",
 "GET /s?op=reserve&key=r&delta=30&limit=100"]
--- response_body_like eval
['^\{"rc":"ok"\}$', '^\{"rc":"not_found"\}$', '^\{"rc":"ok","value":"a"\}$',
 '^\{"rc":"ok","number":60\}$', '^\{"rc":"not_found","number":60\}$',
 '^\{"rc":"ok","number":100,"ttl":(5\d{4}|60000)\}$', '^\{"rc":"ok","number":70\}$',
 '^\{"rc":"ok","number":100\}$']
--- no_error_log
[error]



=== TEST 10: counters saturate instead of wrapping
--- http_config
    ai_store s1 size=64k;
--- config
    location /s { ai_store_test s1; }
--- request eval
["GET /s?op=incr&key=n&delta=9223372036854775807", "GET /s?op=incr&key=n&delta=5",
 "GET /s?op=incr&key=m&delta=-9223372036854775807", "GET /s?op=incr&key=m&delta=-9"]
--- response_body eval
["{\"rc\":\"ok\",\"number\":9223372036854775807}\n", "{\"rc\":\"ok\",\"number\":9223372036854775807}\n",
 "{\"rc\":\"ok\",\"number\":-9223372036854775807}\n", "{\"rc\":\"ok\",\"number\":-9223372036854775807}\n"]
--- no_error_log
[error]



=== TEST 11: a pinned entry outlives its replacement, deletion and eviction until unpinned
--- http_config
    ai_store s1 size=32k;
--- config
    location /s { ai_store_test s1; }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/s
v=$(head -c 1000 /dev/zero | tr '\0' p)
curl -s -o /dev/null "$u?op=set&key=k&value=$v"
curl -s "$u?op=get&key=k&pin=600" > $TEST_NGINX_SERVROOT/pinned.txt &
sleep 0.2
curl -s -o /dev/null "$u?op=set&key=k&value=replaced"
curl -s -o /dev/null "$u?op=del&key=k"
w=$(head -c 1000 /dev/zero | tr '\0' x)
for i in $(seq 1 60); do curl -s -o /dev/null "$u?op=set&key=f$i&value=$w"; done
wait
cut -c1-40 $TEST_NGINX_SERVROOT/pinned.txt
grep -o '"pinned":true' $TEST_NGINX_SERVROOT/pinned.txt
grep -c x $TEST_NGINX_SERVROOT/pinned.txt
curl -s "$u?op=get&key=k"
--- response_body
{"rc":"ok","value":"pppppppppppppppppppp
"pinned":true
0
{"rc":"not_found"}
--- no_error_log
[error]



=== TEST 12: the asynchronous path (async test mode): answers through a posted event; a detached op settles after the answer
--- http_config
    ai_store s1 size=64k async;
--- config
    location /s { ai_store_test s1; }
--- request eval
["GET /s?op=set&key=a&value=x", "GET /s?op=get&key=a", "GET /s?op=reserve&key=r&delta=5&limit=10&detached=-5",
 "GET /s?op=get&key=r", "GET /s?op=reserve&key=r&delta=11&limit=10"]
--- response_body eval
["{\"rc\":\"ok\"}\n", "{\"rc\":\"ok\",\"value\":\"x\"}\n", "{\"rc\":\"ok\",\"number\":5}\n",
 "{\"rc\":\"ok\",\"value\":\"0\"}\n", "{\"rc\":\"not_found\",\"number\":0}\n"]
--- no_error_log
[error]



=== TEST 13: an unknown backend is an nginx -t error naming it
--- http_config
    ai_store s1 backend=nosuch size=64k;
--- config
    location /s { ai_store_test s1; }
--- must_die
--- error_log
ai_store "s1": unknown backend "nosuch" (is its module loaded?)



=== TEST 14: a sliding window: a reservation within the limit, refused over it with the time to retry, settled in the window it was made in, nothing from a window long gone
--- http_config
    ai_store s1 size=64k;
--- config
    location /s { ai_store_test s1; }
--- exec
u="http://127.0.0.1:$TEST_NGINX_SERVER_PORT/s?window=86400000&key=w"
a=$(curl -s "$u&op=reserve&delta=60&limit=100")
echo "$a" | sed 's/"stamp":[0-9]*/"stamp":S/'
stamp=$(echo "$a" | sed 's/.*"stamp":\([0-9]*\).*/\1/')
curl -s "$u&op=reserve&delta=50&limit=100" | sed -E 's/"retry":[0-9]+/"retry":R/'
curl -s "$u&op=incr&delta=-50&stamp=$stamp" | sed 's/"stamp":[0-9]*/"stamp":S/'
curl -s "$u&op=reserve&delta=90&limit=100&showttl=1" \
    | sed -E 's/"stamp":[0-9]+/"stamp":S/; s/"ttl":(8[0-9]{7}|9[0-9]{7}|1[0-6][0-9]{7}|17[0-2][0-9]{6})/"ttl":T/'
curl -s "$u&op=incr&delta=-90&stamp=1" | sed 's/"stamp":[0-9]*/"stamp":S/'
curl -s "$u&op=reserve&delta=101&limit=100"
curl -s "$u&op=get"
--- response_body
{"rc":"ok","number":60,"stamp":S}
{"rc":"not_found","number":60,"retry":R}
{"rc":"ok","number":10,"stamp":S}
{"rc":"ok","number":100,"stamp":S,"ttl":T}
{"rc":"ok","number":100,"stamp":S}
{"rc":"not_found","number":100,"retry":0}
{"rc":"error"}
--- no_error_log
[error]



=== TEST 15: a short sliding window forgets; a token bucket leaks its limit per window, continuously
--- http_config
    ai_store s1 size=64k;
--- config
    location /s { ai_store_test s1; }
--- exec
u="http://127.0.0.1:$TEST_NGINX_SERVER_PORT/s?op=reserve&limit=100"
# (the second lands in the next window now and then: the first then
# counts a little less, 90 to 100, and it is still refused)
curl -s "$u&key=w&window=300&delta=100" | sed 's/"stamp":[0-9]*/"stamp":S/'
curl -s "$u&key=w&window=300&delta=100" | sed -E 's/"number":(9[0-9]|100),"retry":([1-9]|[1-9][0-9]|[1-5][0-9][0-9]|600)}/"number":W,"retry":R}/'
sleep 0.7
curl -s "$u&key=w&window=300&delta=100" | sed 's/"stamp":[0-9]*/"stamp":S/'
curl -s "$u&key=b&bucket=1&window=1000&delta=100"
curl -s "$u&key=b&bucket=1&window=1000&delta=50" | sed -E 's/"number":(9[0-9]|100),"retry":(4[0-9]{2}|50[01])}/"number":N,"retry":R}/'
sleep 0.6
curl -s "$u&key=b&bucket=1&window=1000&delta=50" | sed -E 's/"number":([5-8][0-9]|90)}/"number":N}/'
--- response_body
{"rc":"ok","number":100,"stamp":S}
{"rc":"not_found","number":W,"retry":R}
{"rc":"ok","number":100,"stamp":S}
{"rc":"ok","number":100}
{"rc":"not_found","number":N,"retry":R}
{"rc":"ok","number":N}
--- no_error_log
[error]



=== TEST 16: more keys than buckets (a 64k zone has 128): each found with its own value, the deleted ones anywhere in a chain gone, the rest intact
--- http_config
    ai_store s1 size=64k;
--- config
    location /s { ai_store_test s1; }
--- exec
/usr/bin/python3 - <<'EOF'
import http.client, json, os
c = http.client.HTTPConnection('127.0.0.1',
                               int(os.environ['TEST_NGINX_SERVER_PORT']))
def op(q):
    c.request('GET', '/s?' + q)
    return json.loads(c.getresponse().read())
n = 300
for i in range(n):
    assert op('op=set&key=key%d&value=v%d' % (i, i * 7))['rc'] == 'ok'
for i in range(0, n, 3):
    assert op('op=del&key=key%d' % i)['rc'] == 'ok'
bad = []
for i in range(n):
    r = op('op=get&key=key%d' % i)
    want = {'rc': 'not_found'} if i % 3 == 0 else \
           {'rc': 'ok', 'value': 'v%d' % (i * 7)}
    if r != want:
        bad.append((i, r))
print('keys:', n, 'wrong:', bad[:5])
for i in range(0, n, 3):
    assert op('op=set&key=key%d&value=again' % i)['rc'] == 'ok'
print('again:', all(op('op=get&key=key%d' % i)['value'] == 'again'
                    for i in range(0, n, 3)))
EOF
--- response_body
keys: 300 wrong: []
again: True
--- no_error_log
[error]
[crit]



=== TEST 17: del given a value deletes only while the key holds that value (a lock let go, not what was written in its place); never a counter
--- http_config
    ai_store s1 size=64k;
--- config
    location /s { ai_store_test s1; }
--- request eval
["GET /s?op=add&key=k&value=1", "GET /s?op=set&key=k&value=answer", "GET /s?op=del&key=k&value=1",
 "GET /s?op=get&key=k", "GET /s?op=set&key=k&value=1", "GET /s?op=del&key=k&value=11",
 "GET /s?op=del&key=k&value=1", "GET /s?op=get&key=k", "GET /s?op=del&key=none&value=1",
 "GET /s?op=incr&key=n&delta=1", "GET /s?op=del&key=n&value=1", "GET /s?op=incr&key=n&delta=0"]
--- response_body eval
["{\"rc\":\"ok\"}\n", "{\"rc\":\"ok\"}\n", "{\"rc\":\"not_found\"}\n",
 "{\"rc\":\"ok\",\"value\":\"answer\"}\n", "{\"rc\":\"ok\"}\n", "{\"rc\":\"not_found\"}\n",
 "{\"rc\":\"ok\"}\n", "{\"rc\":\"not_found\"}\n", "{\"rc\":\"not_found\"}\n",
 "{\"rc\":\"ok\",\"number\":1}\n", "{\"rc\":\"not_found\"}\n", "{\"rc\":\"ok\",\"number\":1}\n"]
--- no_error_log
[error]



=== TEST 18: add given get: the lock taken, or the value present as a get gives it (pinned when asked, the time it has left, a counter's number), in one step
--- http_config
    ai_store s1 size=64k;
--- config
    location /s { ai_store_test s1; }
--- request eval
["GET /s?op=add&get=1&key=k&value=L&ttl=60000", "GET /s?op=add&get=1&key=k&value=M&showttl=1",
 "GET /s?op=get&key=k", "GET /s?op=set&key=k&value=answer",
 "GET /s?op=add&get=1&key=k&value=L&pin=0", "GET /s?op=add&key=k&value=L",
 "GET /s?op=add&get=1&key=k2&value=x", "GET /s?op=get&key=k2",
 "GET /s?op=incr&key=n&delta=7", "GET /s?op=add&get=1&key=n&value=x"]
--- response_body_like eval
["^\\{\"rc\":\"ok\"\\}\$", "^\\{\"rc\":\"not_found\",\"value\":\"L\",\"ttl\":(59\\d\\d\\d|60000)\\}\$",
 "^\\{\"rc\":\"ok\",\"value\":\"L\"\\}\$", "^\\{\"rc\":\"ok\"\\}\$",
 "^\\{\"rc\":\"not_found\",\"value\":\"answer\",\"pinned\":true\\}\$", "^\\{\"rc\":\"not_found\"\\}\$",
 "^\\{\"rc\":\"ok\"\\}\$", "^\\{\"rc\":\"ok\",\"value\":\"x\"\\}\$",
 "^\\{\"rc\":\"ok\",\"number\":7\\}\$", "^\\{\"rc\":\"not_found\",\"value\":\"7\"\\}\$"]
--- no_error_log
[error]
