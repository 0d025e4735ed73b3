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
