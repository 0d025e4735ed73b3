# The core's request stages and completion hook, driven by the test-only
# ngx_http_ai_seams_test_module: declared order, suspension and
# resumption, answers and rejections, ACCESS before any stage, a client
# gone while suspended, and one completion per request however it ended.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_NGINX_AUX_PORT} ||= ($ENV{TEST_NGINX_SERVER_PORT} || 1984) + 3;
run_tests();

__DATA__

=== TEST 1: stages run in their declared order (GUARD before CACHE), not in registration order; outcomes as variables
--- config
    location /v1/ {
        ai_core on;
        ai_test_stage guard decline;
        ai_test_stage cache decline;
        add_header X-Trace $ai_test_trace;
        add_header X-Outcomes "$ai_outcome_guard,$ai_outcome_cache,$ai_outcome_none";
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}
--- response_headers
X-Trace: guard:declined cache:declined
X-Outcomes: declined,declined,
--- response_body_like
mock reply: hi
--- error_log
ai_test done: status=200 answered=0 complete=1 trace=guard:declined cache:declined
--- no_error_log
[error]



=== TEST 2: a suspended stage resumes on a posted event and is called again
--- config
    location /v1/ {
        ai_core on;
        ai_test_stage guard suspend=100;
        ai_test_stage cache decline;
        add_header X-Trace $ai_test_trace;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":[{"role":"user","content":"wait"}]}
--- response_headers
X-Trace: guard:suspended guard:resumed cache:declined
--- response_body_like
mock reply: wait
--- no_error_log
[error]
a suspended stage was cancelled



=== TEST 3: a stage rejects in the door's error shape; later stages do not run
--- config
    location /v1/ {
        ai_core on;
        ai_test_stage guard reject=429;
        ai_test_stage cache answer=never;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request eval
["POST /v1/chat/completions\n" . '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}',
 "POST /v1/messages\n" . '{"model":"claude","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}']
--- error_code eval
[429, 429]
--- response_body eval
[qq!{"error":{"message":"rejected by the test guard stage","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}\n!,
 qq!{"type":"error","error":{"message":"rejected by the test guard stage","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}\n!]
--- error_log
ai_test done: status=429 answered=1 complete=0 trace=guard:rejected
--- no_error_log
[error]



=== TEST 4: a stage answers without any upstream
--- config
    location /v1/ {
        ai_core on;
        ai_test_stage cache answer=from-the-stage;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- exec
curl -s -o /dev/null -X POST http://127.0.0.1:$TEST_NGINX_MOCK_PORT/mock/reset
curl -s http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions -d '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}'
curl -s http://127.0.0.1:$TEST_NGINX_MOCK_PORT/mock/count; echo
--- response_body
from-the-stage
{"requests":0}
--- error_log
ai_test done: status=200 answered=1 complete=1 trace=guard:declined cache:answered
--- no_error_log
[error]



=== TEST 5: ACCESS runs before the stages: a denied request never reaches them
--- config
    location /v1/ {
        ai_core on;
        deny all;
        ai_test_stage cache answer=leaked;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}
--- error_code: 403
--- response_body
{"error":{"message":"forbidden by access rules","type":"permission_error","param":null,"code":"forbidden"}}
--- error_log
ai_test done: status=403 answered=0 complete=0 trace=
access forbidden by rule
[error]



=== TEST 6: the client goes away while a stage is suspended: the stage is cancelled, the request completes once
--- config
    location /v1/ {
        ai_core on;
        ai_test_stage guard suspend=3000;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}
--- timeout: 0.5
--- abort
--- wait: 0.5
--- error_log
a suspended stage was cancelled
ai_test done: status=499 answered=0 complete=0 trace=guard:suspended
--- no_error_log
[error]



=== TEST 7: the completion hook runs exactly once however the request ended; the context survives error_page
--- config
    location /v1/ {
        ai_core on;
        ai_test_stage guard decline;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
    location /down/ {
        ai_core on;
        ai_test_stage guard decline;
        proxy_pass http://127.0.0.1:1;
    }
    location /redirected/ {
        ai_core on;
        ai_test_stage guard decline;
        error_page 502 = @fallback;
        proxy_pass http://127.0.0.1:1;
    }
    location @fallback {
        ai_test_stage guard decline;
        return 200 "fallback for $ai_model\n";
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT
body='{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}'
curl -s -o /dev/null -w '%{http_code}\n' $u/v1/chat/completions -d "$body"
curl -s -o /dev/null -w '%{http_code}\n' $u/down/v1/chat/completions -d "$body"
curl -s -o /dev/null -w '%{http_code}\n' $u/v1/chat/completions -d 'not json'
curl -s $u/redirected/v1/chat/completions -d "$body"
sleep 0.2
grep -c 'ai_test done:' $TEST_NGINX_SERVROOT/logs/error.log
--- response_body
200
502
400
fallback for gpt-4o
4
--- error_log
ai_test done: status=200 answered=0 complete=1
ai_test done: status=502 answered=0 complete=0
ai_test done: status=400 answered=0 complete=0
connect() failed
[error]



=== TEST 8: ai_log writes its record after the other completion handlers, with every outcome; the conventional ones in their keys and metrics
--- http_config
    ai_metrics_zone ai 1m history=10m;
--- config
    location = /metrics {
        ai_metrics;
    }
    location /v1/ {
        ai_core on;
        ai_test_stage guard decline;
        ai_test_stage cache answer=cached;
        ai_log logs/ai.jsonl;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- exec
curl -s http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions -d '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}'
sleep 0.2
grep -o '"outcomes":{[^}]*}' $TEST_NGINX_SERVROOT/logs/ai.jsonl
grep -o '"cache_status":"[^"]*","guard_verdict":"[^"]*"' $TEST_NGINX_SERVROOT/logs/ai.jsonl
curl -s http://127.0.0.1:$TEST_NGINX_SERVER_PORT/metrics | grep -E '^ai_(cache_requests|guard_verdicts)_total'
--- response_body
cached
"outcomes":{"guard":"declined","cache":"answered","test_done":"settled"}
"cache_status":"answered","guard_verdict":"declined"
ai_cache_requests_total{cache_status="answered"} 1
ai_guard_verdicts_total{verdict="declined",rule=""} 1
--- no_error_log
[error]



=== TEST 9: a stage's mutation of the request is what reaches the provider (ai_proxy and proxy_pass) and the log
--- http_config
    ai_target t http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 models=gpt-*;
--- config
    location /v1/ {
        ai_test_stage guard mutate;
        ai_log logs/ai.jsonl;
        ai_log_request_body on;
        ai_proxy t;
    }
    location /plain/ {
        ai_core on;
        ai_test_stage guard mutate;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT
m=http://127.0.0.1:$TEST_NGINX_MOCK_PORT
curl -s $u/v1/chat/completions -d '{"model":"gpt-4o","messages":[{"role":"user","content":"my secret is 42"}]}' | grep -o '"content":"[^"]*"'
curl -s $m/mock/last | grep -o 'my [^ ]* is 42'
curl -s $u/plain/v1/chat/completions -d '{"model":"gpt-4o","messages":[{"role":"user","content":"a Secret b"}]}' | grep -o '"content":"[^"]*"'
curl -s $m/mock/last | grep -o '"content-length":"[0-9]*"'
sleep 0.2
grep -o 'my [^ ]* is 42' $TEST_NGINX_SERVROOT/logs/ai.jsonl
grep -c secret $TEST_NGINX_SERVROOT/logs/ai.jsonl || :
--- response_body
"content":"mock reply: my [MASKED] is 42"
my [MASKED] is 42
"content":"mock reply: a [MASKED] b"
"content-length":"72"
my [MASKED] is 42
0
--- no_error_log
[error]



=== TEST 10: a mutated body survives proxy_pass's retry on another server
--- http_config
    upstream two {
        server 127.0.0.1:$TEST_NGINX_AUX_PORT;
        server 127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
    server {
        listen 127.0.0.1:$TEST_NGINX_AUX_PORT;
        location / { return 502; }
    }
--- config
    location /plain/ {
        ai_core on;
        ai_test_stage guard mutate;
        proxy_next_upstream error http_502 non_idempotent;
        proxy_pass http://two/;
    }
--- exec
curl -s -o /dev/null -X POST http://127.0.0.1:$TEST_NGINX_MOCK_PORT/mock/reset
curl -s http://127.0.0.1:$TEST_NGINX_SERVER_PORT/plain/v1/chat/completions -d '{"model":"gpt-4o","messages":[{"role":"user","content":"a secret b"}]}' | grep -o '"content":"[^"]*"'
curl -s http://127.0.0.1:$TEST_NGINX_MOCK_PORT/mock/last | grep -o '"content-length":"[0-9]*"'
--- response_body
"content":"mock reply: a [MASKED] b"
"content-length":"72"
--- no_error_log
[error]



=== TEST 11: "rewrite ... last" into another ai_proxy location: routed there
--- http_config
    ai_target a http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 models=gpt-*;
    ai_target b http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 models=claude-*;
    log_format ai '$ai_target $ai_route_model';
--- config
    location /v1/ {
        ai_proxy a;
        ai_proxy_alias fast gpt-4o-mini;
        rewrite ^/v1/(.*)$ /other/v1/$1 last;
    }
    location /other/ {
        access_log logs/access.log ai;
        ai_proxy b;
        ai_proxy_alias fast claude-3-haiku;
    }
--- request
POST /v1/chat/completions
{"model":"fast","messages":[{"role":"user","content":"hi"}]}
--- response_body_like
"model":"claude-3-haiku"
--- access_log
b claude-3-haiku
--- no_error_log
[error]



=== TEST 12: a stream's request tree is freed once its header went out, the model, the user and the roles kept (read after the free: the ASan pass catches a copy missing); kept for a plain answer, a module that asks (ngx_http_ai_request_keep()) and a changed body
--- http_config
    ai_target a http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    log_format ai '$uri $ai_model $ai_route_model $ai_upstream_model';
--- config
    location /free/ {
        ai_proxy a;
        ai_test_stage guard decline;
        access_log logs/access.log ai;
    }
    location /keep/ {
        ai_proxy a;
        ai_test_stage cache keep;
    }
    location /mutate/ {
        ai_proxy a;
        ai_test_stage guard mutate;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT
m='"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"a secret b"}]'
for l in free keep mutate; do
  curl -s $u/$l/v1/chat/completions -d "{\"model\":\"gpt-4o\",\"user\":\"u-7\",\"stream\":true,$m}" | grep -c '^data: \[DONE\]'
done
curl -s $u/free/v1/chat/completions -d "{\"model\":\"gpt-4o\",\"user\":\"u-7\",$m}" | grep -o '"object":"[^"]*"'
# the Anthropic door, translated: its user is metadata.user_id
curl -s $u/free/v1/messages -d '{"model":"gpt-4o","max_tokens":50,"stream":true,"metadata":{"user_id":"u-8"},"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yes"},{"role":"user","content":"more"}]}' | grep -c '^event: message_stop'
--- response_body
1
1
1
"object":"chat.completion"
1
--- error_log
trace=guard:declined cache:declined  tree=freed model=gpt-4o user=u-7 roles=system,user
trace=guard:declined cache:declined  tree=freed model=gpt-4o user=u-8 roles=user,assistant,user
trace=guard:declined cache:kept  tree=kept model=gpt-4o user=u-7 roles=system,user
trace=guard:mutated cache:declined  tree=kept model=gpt-4o user=u-7 roles=system,user
trace=guard:declined cache:declined  tree=kept model=gpt-4o user=u-7 roles=system,user
--- access_log
/free/v1/chat/completions gpt-4o gpt-4o gpt-4o
/free/v1/messages gpt-4o gpt-4o gpt-4o
--- no_error_log
[error]
