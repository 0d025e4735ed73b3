# nginx.conf.example, as scripts/run.sh fills it in, passes nginx -t and
# serves both doors, the token limit's headers, the guard's masking with
# restore, the cache, the metrics and the dashboard from the mock.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: the example configuration runs
--- config
    location = /t { return 200; }
--- exec
set -e
d=$TEST_NGINX_SERVROOT/example
mkdir -p $d/logs $d/tmp
sed -e "s#@MODULES@#$TEST_NGINX_MODULES#g" \
    -e "s#@UPSTREAM@#http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1#g" \
    -e "s#listen 127.0.0.1:8080;#listen 127.0.0.1:$((TEST_NGINX_SERVER_PORT + 10));#" \
    nginx.conf.example > $d/nginx.conf
export OPENAI_API_KEY=sk-example-key
nginx -t -q -p $d/ -c $d/nginx.conf
nginx -p $d/ -c $d/nginx.conf -g 'daemon on;'
trap 'nginx -p $d/ -c $d/nginx.conf -s stop' EXIT
sleep 0.5
u=http://127.0.0.1:$((TEST_NGINX_SERVER_PORT + 10))
curl -s $u/v1/chat/completions -d '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}' | grep -o '"content":"mock reply: hi"'
curl -s $u/v1/messages -d '{"model":"gpt-4o","max_tokens":9,"messages":[{"role":"user","content":"hi"}]}' | grep -o '"type":"message"'
# a series per endpoint: chat and messages
curl -s $u/metrics | grep -c '^ai_requests_total{'
b='{"model":"gpt-4o","messages":[{"role":"user","content":"mail me at ann@example.com"}]}'
curl -s -i $u/v1/chat/completions -d "$b" | tr -d '\r' | grep -o '^X-AI-Cache-Status: .*\|^x-ratelimit-limit-tokens: .*\|"content":"[^"]*"'
curl -s -i $u/v1/chat/completions -d "$b" | tr -d '\r' | grep -o '^X-AI-Cache-Status: .*'
curl -s -o /dev/null -w '%{http_code}\n' $u/dashboard
# a client key sent twice: NGINX logs such lines with their value at info
curl -s -o /dev/null -w '%{http_code}\n' -H 'Authorization: Bearer sk-client-secret-1' \
     -H 'Authorization: Bearer sk-client-secret-1' $u/v1/models
sleep 1.2
grep -c '"total_tokens":5' $d/logs/ai.jsonl
! grep -rq 'sk-example-key' $d/logs
! grep -rq 'sk-client-secret' $d/logs
--- response_body
"content":"mock reply: hi"
"type":"message"
2
X-AI-Cache-Status: MISS
x-ratelimit-limit-tokens: 200000
"content":"mock reply: mail me at ann@example.com"
X-AI-Cache-Status: HIT
200
400
2
--- no_error_log
[error]
