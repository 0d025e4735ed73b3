# ai_proxy's key state is shared by the workers (the "ai_proxy_keys" zone):
# a key revoked by a 401 is tried once per NGINX, not once per worker; a
# cooldown after a 429 holds in every worker; the ai_upstream_keys gauges
# are the same whichever worker answers; a reload keeps the state of the
# keys that did not change, and a key changed in its file starts usable.
#
# Two workers; the requests go to a server of the block's own with
# "reuseport", so that the kernel spreads them over both workers (each
# answer names its worker, and the blocks check that both served).  The
# mock's /mock/count is the number of upstream requests.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

workers(2);
run_tests();

__DATA__

=== TEST 1: a revoked key is tried once across two workers; the gauges agree in every worker
--- user_files
>>> bad.key
bad-key-000001
>>> good.key
sk-good-key-1
--- http_config
    ai_metrics_zone ai 4m;
    ai_target pool http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1
              key=file:$TEST_NGINX_HTML_DIR/bad.key
              key=file:$TEST_NGINX_HTML_DIR/good.key;
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT2 reuseport;
        add_header X-Pid $pid always;
        location /v1/ {
            ai_proxy pool;
        }
        location = /metrics {
            ai_metrics;
        }
    }
--- config
--- exec
cd $TEST_NGINX_SERVROOT
p2=$TEST_NGINX_SERVER_PORT2
mock=http://127.0.0.1:$TEST_NGINX_MOCK_PORT
curl -s -o /dev/null -X POST $mock/mock/reset
ask() {
  curl -s -D - -o /dev/null -H 'Content-Type: application/json' \
    -d '{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}' \
    http://127.0.0.1:$p2/v1/chat/completions | tr -d '\r'
}
ask > logs/answers
# one worker revoked key #1: every worker reports it at once
for i in $(seq 1 12); do
  curl -s -D logs/h.$i http://127.0.0.1:$p2/metrics | grep '^ai_upstream_keys{'
done | sort | uniq -c | sed 's/^ *//'
echo "metrics from $(cat logs/h.* | tr -d '\r' | grep -i '^x-pid:' | sort -u | wc -l) workers"
for i in $(seq 2 30); do ask; done >> logs/answers
echo "statuses: $(grep '^HTTP' logs/answers | awk '{print $2}' | sort | uniq -c | sed 's/^ *//')"
echo "answered by $(grep -i '^x-pid:' logs/answers | sort -u | wc -l) workers"
curl -s $mock/mock/count; echo
echo "refused: $(grep -c 'refused key #1' logs/error.log)"
--- response_body
12 ai_upstream_keys{target="pool",state="cooling"} 0
12 ai_upstream_keys{target="pool",state="revoked"} 1
12 ai_upstream_keys{target="pool",state="usable"} 1
metrics from 2 workers
statuses: 30 200
answered by 2 workers
{"requests":31}
refused: 1
--- no_error_log
[error]
[alert]
[crit]



=== TEST 2: a cooldown (429 with Retry-After) holds in every worker
--- http_config
    ai_target busy http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1
              model=gpt-4o~status=429,retry_after=30
              key=file:$TEST_NGINX_HTML_DIR/good.key;
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT2 reuseport;
        add_header X-Pid $pid always;
        location /v1/ {
            ai_proxy busy;
        }
    }
--- user_files
>>> good.key
sk-good-key-1
--- config
--- exec
cd $TEST_NGINX_SERVROOT
p2=$TEST_NGINX_SERVER_PORT2
mock=http://127.0.0.1:$TEST_NGINX_MOCK_PORT
curl -s -o /dev/null -X POST $mock/mock/reset
for i in $(seq 1 30); do
  curl -s -D - -o /dev/null -H 'Content-Type: application/json' \
    -d '{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}' \
    http://127.0.0.1:$p2/v1/chat/completions | tr -d '\r'
done > logs/answers
echo "statuses: $(grep '^HTTP' logs/answers | awk '{print $2}' | sort | uniq -c | sed 's/^ *//')"
echo "retry-after: $(grep -ci '^retry-after: [1-3]\?[0-9]$' logs/answers)"
echo "answered by $(grep -i '^x-pid:' logs/answers | sort -u | wc -l) workers"
curl -s $mock/mock/count; echo
echo "cooled: $(grep -c 'rate limited key #1' logs/error.log)"
--- response_body
statuses: 1 429
29 503
retry-after: 30
answered by 2 workers
{"requests":1}
cooled: 1
--- error_log eval
qr/\[error\] .*no target left for model "gpt-4o" \(all keys are cooling down\)/
--- no_error_log
[alert]
[crit]



=== TEST 3: a reload keeps a revoked key out; the key changed in its file starts usable
--- user_files
>>> bad.key
bad-key-000001
>>> good.key
sk-good-key-1
--- http_config
    ai_target pool http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1
              key=file:$TEST_NGINX_HTML_DIR/bad.key
              key=file:$TEST_NGINX_HTML_DIR/good.key;
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT2 reuseport;
        add_header X-Pid $pid always;
        location /v1/ {
            ai_proxy pool;
        }
    }
--- config
--- exec
cd $TEST_NGINX_SERVROOT
p2=$TEST_NGINX_SERVER_PORT2
mock=http://127.0.0.1:$TEST_NGINX_MOCK_PORT
curl -s -o /dev/null -X POST $mock/mock/reset
ask() {
  for i in $(seq 1 10); do
    curl -s -o /dev/null -w '%{http_code}\n' -H 'Content-Type: application/json' \
      -d '{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}' \
      http://127.0.0.1:$p2/v1/chat/completions
  done | sort | uniq -c | sed 's/^ *//'
  curl -s $mock/mock/count; echo
}
reload() {
  master=$(cat logs/nginx.pid)
  old=$(pgrep -P $master | sort)
  kill -HUP $master
  # until the old workers are gone and two new ones run
  for i in $(seq 1 100); do
    now=$(pgrep -P $master | sort)
    [ -z "$(echo "$now" | grep -Fx "$old")" ] \
      && [ $(echo "$now" | grep -c .) -eq 2 ] && break
    sleep 0.1
  done
}
ask
reload
ask
# the same key: still out.  Another key in the file: tried (once)
echo bad-key-000002 > $TEST_NGINX_HTML_DIR/bad.key
reload
ask
echo "refused: $(grep -c 'refused key #1' logs/error.log)"
--- response_body
10 200
{"requests":11}
10 200
{"requests":21}
10 200
{"requests":32}
refused: 2
--- no_error_log
[error]
[alert]
[crit]



=== TEST 4: the key pool of "ai_proxy_pass" is shared too
--- user_files
>>> bad.key
bad-key-000001
>>> good.key
sk-good-key-1
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT2 reuseport;
        add_header X-Pid $pid always;
        location /v1/ {
            ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
            ai_proxy_key file:$TEST_NGINX_HTML_DIR/bad.key;
            ai_proxy_key file:$TEST_NGINX_HTML_DIR/good.key;
        }
    }
--- config
--- exec
cd $TEST_NGINX_SERVROOT
p2=$TEST_NGINX_SERVER_PORT2
mock=http://127.0.0.1:$TEST_NGINX_MOCK_PORT
curl -s -o /dev/null -X POST $mock/mock/reset
for i in $(seq 1 30); do
  curl -s -D - -o /dev/null -H 'Content-Type: application/json' \
    -d '{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}' \
    http://127.0.0.1:$p2/v1/chat/completions | tr -d '\r'
done > logs/answers
echo "statuses: $(grep '^HTTP' logs/answers | awk '{print $2}' | sort | uniq -c | sed 's/^ *//')"
echo "answered by $(grep -i '^x-pid:' logs/answers | sort -u | wc -l) workers"
curl -s $mock/mock/count; echo
echo "refused: $(grep -c 'refused key #1' logs/error.log)"
--- response_body
statuses: 30 200
answered by 2 workers
{"requests":31}
refused: 1
--- no_error_log
[error]
[alert]
[crit]
