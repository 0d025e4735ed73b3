# The redis backend when Redis fails: stopped (the operations fail at once
# with rc error, logged once, and succeed again once it is back, after the
# backoff), slow (an operation times out, a later one works), its script
# cache flushed (NOSCRIPT: the script is sent again), and nginx reloaded.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_AI_KEY_A} = 'sk-a';

workers(1);
redis_server('--enable-debug-command', 'local');
run_tests();

__DATA__

=== TEST 1: Redis stopped: the operations fail promptly, logged once; started again: they succeed after the backoff; the failures are counted
--- http_config
    ai_metrics_zone ai 2m;
    ai_store s1 backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=f1: timeout=1s;
--- config
    location /s { ai_store_test s1; }
    location = /metrics { ai_metrics; }
--- exec
u="http://127.0.0.1:$TEST_NGINX_SERVER_PORT/s"
curl -s "$u?op=set&key=k&value=v"
$TEST_NGINX_REDIS stop $TEST_NGINX_REDIS_DIR $TEST_NGINX_REDIS_PORT
for i in 1 2 3 4 5 6 7 8; do
  t=$(curl -s -m 5 -o $TEST_NGINX_SERVROOT/out -w '%{time_total}' "$u?op=get&key=k")
  echo "$(cat $TEST_NGINX_SERVROOT/out) $(echo $t | awk '{ print ($1 < 2 ? "promptly" : "slowly " $1) }')"
  sleep 0.1
done
grep -c '\[error\]' $TEST_NGINX_SERVROOT/logs/error.log
$TEST_NGINX_REDIS start $TEST_NGINX_REDIS_DIR $TEST_NGINX_REDIS_PORT \
    --enable-debug-command local
for i in $(seq 1 80); do
  r=$(curl -s "$u?op=set&key=k&value=again")
  [ "$r" = '{"rc":"ok"}' ] && break
  sleep 0.1
done
echo "$r"
curl -s "$u?op=get&key=k"
curl -s "http://127.0.0.1:$TEST_NGINX_SERVER_PORT/metrics" \
    | grep '^ai_store_errors_total{store="s1"}' \
    | awk '{ print $1, ($2 >= 8 ? "at least 8" : $2) }'
--- response_body
{"rc":"ok"}
{"rc":"error"} promptly
{"rc":"error"} promptly
{"rc":"error"} promptly
{"rc":"error"} promptly
{"rc":"error"} promptly
{"rc":"error"} promptly
{"rc":"error"} promptly
{"rc":"error"} promptly
1
{"rc":"ok"}
{"rc":"ok","value":"again"}
ai_store_errors_total{store="s1"} at least 8
--- error_log
[error]
ai_store "s1", redis 127.0.0.1:



=== TEST 2: a slow Redis: an operation times out at timeout=100ms, at once, and a later one works
--- http_config
    ai_store s1 backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=f2: timeout=100ms;
--- config
    location /s { ai_store_test s1; }
--- exec
u="http://127.0.0.1:$TEST_NGINX_SERVER_PORT/s"
curl -s "$u?op=incr&key=n&delta=1"
redis-cli -p $TEST_NGINX_REDIS_PORT debug sleep 1 > /dev/null &
sleep 0.2
t=$(curl -s -m 5 -o $TEST_NGINX_SERVROOT/out -w '%{time_total}' "$u?op=incr&key=n&delta=1")
echo "$(cat $TEST_NGINX_SERVROOT/out) $(echo $t | awk '{ print ($1 < 0.6 ? "fast" : "slowly " $1) }')"
wait
sleep 0.2
curl -s "$u?op=incr&key=n&delta=1"
curl -s "$u?op=get&key=n"
--- response_body
{"rc":"ok","number":1}
{"rc":"error"} fast
{"rc":"ok","number":3}
{"rc":"ok","value":"3"}
--- error_log
[error]
a command timed out



=== TEST 3: the script cache flushed: EVALSHA gets NOSCRIPT once by script (three of them), the script is sent again, the operations work
--- http_config
    ai_store s1 backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=f3:;
--- config
    location /s { ai_store_test s1; }
--- exec
u="http://127.0.0.1:$TEST_NGINX_SERVER_PORT/s"
r="redis-cli -p $TEST_NGINX_REDIS_PORT"
curl -s "$u?op=reserve&key=r&delta=2&limit=10"
$r script flush
$r config resetstat > /dev/null
curl -s "$u?op=reserve&key=r&delta=2&limit=10"
curl -s "$u?op=reserve&key=r&delta=2&limit=10"
curl -s "$u?op=get&key=r"
curl -s "$u?op=reserve&key=w&delta=2&limit=10&window=60000" | sed 's/"stamp":[0-9]*/"stamp":S/'
$r info errorstats | grep -o 'errorstat_NOSCRIPT:count=[0-9]*'
$r info commandstats | grep -o 'cmdstat_evalsha:calls=[0-9]*'
--- response_body
{"rc":"ok","number":2}
OK
{"rc":"ok","number":4}
{"rc":"ok","number":6}
{"rc":"ok","value":"6"}
{"rc":"ok","number":2,"stamp":S}
errorstat_NOSCRIPT:count=3
cmdstat_evalsha:calls=4
--- no_error_log
[error]



=== TEST 4: a reload: the new workers connect, the old ones go without a socket left open
--- http_config
    ai_store s1 backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=f4:;
--- config
    location /s { ai_store_test s1; }
--- exec
u="http://127.0.0.1:$TEST_NGINX_SERVER_PORT/s"
curl -s "$u?op=incr&key=n&delta=1"
kill -HUP $(cat $TEST_NGINX_SERVROOT/logs/nginx.pid)
sleep 1
curl -s "$u?op=incr&key=n&delta=1"
kill -HUP $(cat $TEST_NGINX_SERVROOT/logs/nginx.pid)
sleep 1
curl -s "$u?op=incr&key=n&delta=1"
grep -c 'gracefully shutting down' $TEST_NGINX_SERVROOT/logs/error.log
--- response_body
{"rc":"ok","number":1}
{"rc":"ok","number":2}
{"rc":"ok","number":3}
2
--- no_error_log
[error]
[alert]
open socket



=== TEST 5: a request that goes while its operation waits (a reload's worker_shutdown_timeout ends it): the operation is cancelled, its late reply finds nobody, the old worker exits cleanly
--- main_config
    worker_shutdown_timeout 300ms;
--- http_config
    ai_store s1 backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=f5: timeout=5s;
--- config
    location /s { ai_store_test s1; }
--- exec
u="http://127.0.0.1:$TEST_NGINX_SERVER_PORT/s"
curl -s "$u?op=incr&key=n&delta=1"
redis-cli -p $TEST_NGINX_REDIS_PORT debug sleep 1.5 > /dev/null &
sleep 0.2
curl -s -m 5 -o /dev/null -w '%{http_code}\n' "$u?op=incr&key=n&delta=1" > $TEST_NGINX_SERVROOT/held.txt &
sleep 0.2
kill -HUP $(cat $TEST_NGINX_SERVROOT/logs/nginx.pid)
wait
cat $TEST_NGINX_SERVROOT/held.txt
curl -s "$u?op=incr&key=n&delta=1"
grep -c 'worker process .* exited with code 0' $TEST_NGINX_SERVROOT/logs/error.log
--- response_body
{"rc":"ok","number":1}
000
{"rc":"ok","number":3}
1
--- no_error_log
[error]
[alert]
open socket



=== TEST 6: a connection that is never made: it times out at connect_timeout=, logged; an operation meanwhile fails fast
--- http_config
    ai_store s1 backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=f6: timeout=100ms connect_timeout=300ms;
--- config
    location /s { ai_store_test s1; }
--- exec
u="http://127.0.0.1:$TEST_NGINX_SERVER_PORT/s"
curl -s "$u?op=set&key=k&value=v"
$TEST_NGINX_REDIS stop $TEST_NGINX_REDIS_DIR $TEST_NGINX_REDIS_PORT
# a listener that never accepts, its queue full: a connect() hangs
perl -MIO::Socket::INET -e '
    my $p = shift;
    my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => $p,
                                  Listen => 0, ReuseAddr => 1) or die;
    my @c = map { IO::Socket::INET->new(PeerAddr => "127.0.0.1",
                                        PeerPort => $p, Blocking => 0) } 1 .. 16;
    sleep 10' $TEST_NGINX_REDIS_PORT &
bh=$!
sleep 0.3
kill -HUP $(cat $TEST_NGINX_SERVROOT/logs/nginx.pid)
sleep 0.8
t=$(curl -s -m 5 -o $TEST_NGINX_SERVROOT/out -w '%{time_total}' "$u?op=get&key=k")
echo "$(cat $TEST_NGINX_SERVROOT/out) $(echo $t | awk '{ print ($1 < 1 ? "fast" : "slowly " $1) }')"
kill $bh
grep -c '\[error\].*connect() failed: timed out' $TEST_NGINX_SERVROOT/logs/error.log \
    | awk '{ print ($1 >= 1 ? "connect timeout logged" : "not logged") }'
--- response_body
{"rc":"ok"}
{"rc":"error"} fast
connect timeout logged
--- error_log
[error]
connection lost



=== TEST 7: the responses store on Redis fails: a request naming a response (to read, delete or continue it) is refused with 503, never routed with a key of the gateway's, whose the response is being unknown
--- main_config
    env TEST_AI_KEY_A;
--- http_config
    ai_consumer alice sk-alice-0123456789;
    ai_consumer bob   sk-bob-0123456789;
    ai_store resp backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=r7: timeout=1s;
    ai_target a http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 key=env:TEST_AI_KEY_A;
    log_format ai '$ai_consumer $request_method $ai_endpoint $ai_target $status';
--- config
    location /v1/ {
        ai_auth required;
        ai_proxy a;
        ai_proxy_responses_store resp;
        access_log logs/access.log ai;
    }
--- exec
$TEST_NGINX_REDIS restart $TEST_NGINX_REDIS_DIR $TEST_NGINX_REDIS_PORT
base=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/responses
A='Authorization: Bearer sk-alice-0123456789'
B='Authorization: Bearer sk-bob-0123456789'
# the worker's connection comes back after its backoff: until the
# store keeps alice's response, and tells bob it is not his
for i in $(seq 1 80); do
  id=$(curl -s $base -H "$A" -d '{"model":"gpt-4o","input":"one"}' | sed 's/^{"id":"\([^"]*\)".*/\1/')
  sleep 0.1
  r=$(curl -s -o /dev/null -w '%{http_code}' $base/$id -H "$B")
  [ "$r" = 404 ] && break
done
echo "$r"
$TEST_NGINX_REDIS stop $TEST_NGINX_REDIS_DIR $TEST_NGINX_REDIS_PORT
curl -s -o /dev/null -X POST http://127.0.0.1:$TEST_NGINX_MOCK_PORT/mock/reset
curl -s -w ' %{http_code}\n' $base/$id -H "$B"
curl -s -o /dev/null -w '%{http_code}\n' -X DELETE $base/$id -H "$B"
curl -s -o /dev/null -w '%{http_code}\n' $base -H "$B" -d "{\"model\":\"gpt-4o\",\"previous_response_id\":\"$id\",\"input\":\"two\"}"
curl -s -o /dev/null -w '%{http_code}\n' $base -H "$A" -d "{\"model\":\"gpt-4o\",\"previous_response_id\":\"$id\",\"input\":\"two\"}"
curl -s http://127.0.0.1:$TEST_NGINX_MOCK_PORT/mock/count; echo
--- response_body
404
{"error":{"message":"the responses store is unavailable, a request naming a response cannot be routed","type":"api_error","param":null,"code":"service_unavailable"}}
 503
503
503
503
{"requests":0}
--- error_log
ai_proxy: the responses store failed; a request naming a response is refused
[error]
