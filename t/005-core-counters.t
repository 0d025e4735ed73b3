# The core's named counters: registered at any point of the configuration
# (a directive or a postconfiguration), kept by name across reloads.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: a counter registered in a postconfiguration, the only one, counts (the metrics request too)
--- http_config
    ai_metrics_zone ai 1m history=10m;
    ai_store_test_late_counter ai_test_late_total;
--- config
    location = /t {
        # PREACCESS runs (a "return" would end the request in REWRITE)
        try_files /t.txt =404;
    }
    location = /metrics {
        ai_metrics;
    }
--- exec
for i in 1 2 3; do
  curl -s -o /dev/null "http://127.0.0.1:$TEST_NGINX_SERVER_PORT/t"
done
curl -s http://127.0.0.1:$TEST_NGINX_SERVER_PORT/metrics | grep -E '^ai_test_late_total'
--- response_body
ai_test_late_total 4
--- no_error_log
[error]



=== TEST 2: a reload that changes the counter set keeps every count by name
--- http_config
    ai_store s size=64k;
    ai_metrics_zone ai 1m history=10m;
    ai_store_test_late_counter ai_test_late_total;
--- config
    location /store {
        ai_store_test s;
    }
    location = /metrics {
        ai_metrics;
    }
--- exec
port=$TEST_NGINX_SERVER_PORT
conf=$TEST_NGINX_SERVROOT/conf/nginx.conf
for i in 1 2; do
  curl -s -o /dev/null "http://127.0.0.1:$port/store?key=k&op=get"
done
# another late counter: the set changes, the zone keeps its slots
sed -i 's/ai_store_test_late_counter ai_test_late_total;/ai_store_test_late_counter ai_test_other_total;/' $conf
kill -HUP $(cat $TEST_NGINX_SERVROOT/logs/nginx.pid)
sleep 1
curl -s -o /dev/null "http://127.0.0.1:$port/store?key=k&op=get"
sed -i 's/ai_store_test_late_counter ai_test_other_total;/ai_store_test_late_counter ai_test_late_total;/' $conf
kill -HUP $(cat $TEST_NGINX_SERVROOT/logs/nginx.pid)
sleep 1
curl -s -o /dev/null "http://127.0.0.1:$port/store?key=k&op=get"
curl -s http://127.0.0.1:$port/metrics | grep -E '^ai_(test_late|store_test_ops)_total'
--- response_body
ai_store_test_ops_total 4
ai_test_late_total 4
--- no_error_log
[error]
