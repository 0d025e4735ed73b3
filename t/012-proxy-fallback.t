# ai_proxy fallback and key pools: 429, 503, refused and timed-out targets
# give way to the next; all failing gives one clean error; keys cool down
# on 429 (Retry-After), go out on 401 and come back.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_AI_BAD} = 'bad-key-000001';
$ENV{TEST_AI_K1} = 'sk-good-key-1';
$ENV{TEST_AI_K2} = 'sk-good-key-2';
env_to_nginx('TEST_AI_BAD', 'TEST_AI_K1', 'TEST_AI_K2');
run_tests();

__DATA__

=== TEST 1: the first target answers 429, the next one serves
--- http_config
    ai_target first  http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 model=gpt-4o~status=429,retry_after=5;
    ai_target second http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    log_format ai '$ai_target $ai_attempts $status';
--- config
    location /v1/ {
        ai_proxy first second;
        ai_proxy_balance latency;
        access_log logs/access.log ai;
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}
--- response_body_like
mock reply: x
--- access_log
second 2 200
--- error_log
ai_proxy: target "first" answered 429, the request goes to the next attempt
--- no_error_log
[error]



=== TEST 2: 503, connection refused and timeout give way too
--- http_config
    ai_target busy    http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 model=gpt-4o~status=503;
    ai_target down    http://127.0.0.1:1/v1;
    ai_target slow    http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 model=gpt-4o~delay_headers_ms=3000;
    ai_target good    http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 models=gpt-4o;
    log_format ai '$ai_target $ai_attempts $status';
--- config
    location /v1/ {
        ai_proxy busy down slow good;
        ai_proxy_balance latency;
        ai_proxy_next_upstream_tries 4;
        ai_proxy_read_timeout 300ms;
        access_log logs/access.log ai;
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}
--- response_body_like
mock reply: x
--- access_log
good 4 200
--- error_log
target "busy" answered 503
connect() failed (111: Connection refused)
upstream timed out
[error]



=== TEST 3: every target failing gives one clean error, the last one
--- http_config
    ai_target a http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 model=gpt-4o~status=503;
    ai_target b http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 model=gpt-4o~status=429,retry_after=9;
    log_format ai '$ai_target $ai_attempts $status';
--- config
    location /v1/ {
        ai_proxy a b;
        ai_proxy_balance latency;
        access_log logs/access.log ai;
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}
--- error_code: 429
--- response_headers
Retry-After: 9
--- response_body_like
^\{"error":\{"message":"[^"]+","type":"rate_limit_error"
--- access_log
b 2 429
--- no_error_log
[error]



=== TEST 4: attempts are bounded
--- http_config
    ai_target a http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 model=gpt-4o~status=500;
    ai_target b http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 model=gpt-4o~status=502;
    ai_target c http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    log_format ai '$ai_target $ai_attempts $status';
--- config
    location /v1/ {
        ai_proxy a b c;
        ai_proxy_balance latency;
        ai_proxy_next_upstream_tries 2;
        access_log logs/access.log ai;
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}
--- error_code: 502
--- access_log
b 2 502
--- no_error_log
[error]



=== TEST 5: a key refused with 401 goes out, the next key serves, the key comes back
--- main_config
    env TEST_AI_BAD;
    env TEST_AI_K1;
--- http_config
    ai_target t http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 key=env:TEST_AI_BAD key=env:TEST_AI_K1;
    log_format ai 'key=$ai_proxy_key';
--- config
    location /v1/ {
        ai_proxy t;
        ai_proxy_key_disable 1s;
        access_log logs/access.log ai;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions
b='{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}'
curl -s -o /dev/null -w '%{http_code}\n' $u -d "$b"
curl -s -o /dev/null -w '%{http_code}\n' $u -d "$b"
sleep 1.2
curl -s -o /dev/null -w '%{http_code}\n' $u -d "$b"
grep -c 'refused key #1' $TEST_NGINX_SERVROOT/logs/error.log
grep -o 'attempt [0-9]: target "t" key #[0-9]' $TEST_NGINX_SERVROOT/logs/error.log
--- response_body
200
200
200
2
attempt 1: target "t" key #1
attempt 2: target "t" key #2
attempt 1: target "t" key #2
attempt 1: target "t" key #1
attempt 2: target "t" key #2
--- access_log
key=2
--- no_error_log
bad-key-000001
sk-good-key-1
[error]



=== TEST 6: a 429 cools the key down for Retry-After, the other key serves meanwhile
--- main_config
    env TEST_AI_K1;
    env TEST_AI_K2;
--- http_config
    ai_target t http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 key=env:TEST_AI_K1 key=env:TEST_AI_K2 model=gpt-4o~fail_first=1,status=429,retry_after=1;
--- config
    location /v1/ {
        ai_proxy t;
    }
--- exec
curl -s -o /dev/null -X POST http://127.0.0.1:$TEST_NGINX_MOCK_PORT/mock/reset
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions
b='{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}'
curl -s -o /dev/null -w '%{http_code}\n' $u -d "$b"
curl -s -o /dev/null -w '%{http_code}\n' $u -d "$b"
curl -s -o /dev/null -w '%{http_code}\n' $u -d "$b"
sleep 1.2
curl -s -o /dev/null -w '%{http_code}\n' $u -d "$b"
grep -o 'attempt [0-9]: target "t" key #[0-9]\|rate limited key #[0-9], it cools down for [0-9]* ms' $TEST_NGINX_SERVROOT/logs/error.log
--- response_body
200
200
200
200
attempt 1: target "t" key #1
rate limited key #1, it cools down for 1000 ms
attempt 2: target "t" key #2
attempt 1: target "t" key #2
attempt 1: target "t" key #2
attempt 1: target "t" key #1
--- no_error_log
[error]



=== TEST 7: all keys cooling down: a JSON 503 without calling the provider
--- main_config
    env TEST_AI_K1;
--- http_config
    ai_target t http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 key=env:TEST_AI_K1 model=gpt-4o~status=429,retry_after=30;
--- config
    location /v1/ {
        ai_proxy t;
    }
--- request eval
["POST /v1/chat/completions\n{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
 "POST /v1/chat/completions\n{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"]
--- error_code eval
[429, 503]
--- response_body_like eval
["rate_limit_error", "^\\{\"error\":\\{\"message\":\"no upstream target is available for this model now \\(all keys are cooling down\\), retry later\",\"type\":\"api_error\",\"param\":null,\"code\":\"service_unavailable\"\\}\\}\$"]
--- error_log
no target left for model "gpt-4o"
[error]



=== TEST 8: a stream cut mid-way after bytes went out ends with an SSE error event
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o~disconnect_after=2","stream":true,"messages":[{"role":"user","content":"a b c d"}]}
--- response_body_like
"content":"mock ".*event: error\ndata: \{"error":\{"message":"[^"]+","type":"api_error","param":null,"code":"stream_truncated"\}\}\n\n$
--- response_body_unlike
\[DONE\]
--- error_log
the upstream stream ended
--- no_error_log
[error]



=== TEST 9: a backup target takes no traffic until the others fail, and only for models a primary serves: a model no target serves is a 404, not the backup's
--- http_config
    ai_target main   http://127.0.0.1:$TEST_NGINX_MOCK_PORT/main/v1 models=gpt-*;
    ai_target broken http://127.0.0.1:$TEST_NGINX_MOCK_PORT/broken/v1 models=llama-* model=llama~status=503;
    ai_target spare  http://127.0.0.1:$TEST_NGINX_MOCK_PORT/spare/v1 backup;
    log_format ai '$ai_model $ai_target $ai_attempts';
--- config
    location /v1/ {
        ai_proxy main broken spare;
        access_log logs/access.log ai;
    }
--- request eval
["POST /v1/chat/completions\n{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
 "POST /v1/chat/completions\n{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
 "POST /v1/chat/completions\n{\"model\":\"llama-3\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
 "POST /v1/chat/completions\n{\"model\":\"mistral\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"]
--- error_code eval
[200, 200, 200, 404]
--- response_body_like eval
["mock reply: x", "mock reply: x", "mock reply: x",
 "^\\{\"error\":\\{\"message\":\"the model \\\\\"mistral\\\\\" is not served here\",\"type\":\"invalid_request_error\",\"param\":\"model\",\"code\":\"model_not_found\"\\}\\}\$"]
--- access_log
gpt-4o main 1
gpt-4o main 1
llama-3 spare 2
mistral - -
--- no_error_log
[error]



=== TEST 10: all keys cooling down: the 503 has Retry-After (the first key back, rounded up) and no attempt
--- main_config
    env TEST_AI_K1;
    env TEST_AI_K2;
--- http_config
    ai_target a http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 key=env:TEST_AI_K1 model=gpt-4o~status=429,retry_after=30;
    ai_target b http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 key=env:TEST_AI_K2 model=gpt-4o~status=429,retry_after=7;
    log_format ai '$ai_target $ai_attempts $status $upstream_addr';
--- config
    location /v1/ {
        ai_proxy a b;
        ai_proxy_balance latency;
        access_log logs/access.log ai;
        ai_log logs/ai.jsonl;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions
b='{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}'
curl -s -o /dev/null -w '%{http_code}\n' $u -d "$b"
curl -s -D - -o /dev/null $u -d "$b" | tr -d '\r' | grep -i '^HTTP\|^retry-after'
grep -o '"attempts":[0-9]*,"status":[0-9]*' $TEST_NGINX_SERVROOT/logs/ai.jsonl
--- response_body
429
HTTP/1.1 503 Service Temporarily Unavailable
Retry-After: 7
"attempts":2,"status":429
"attempts":0,"status":503
--- access_log
b 2 429 127.0.0.1:$TEST_NGINX_MOCK_PORT, 127.0.0.1:$TEST_NGINX_MOCK_PORT
- - 503 -
--- error_log
no target left for model "gpt-4o" (all keys are cooling down)
[error]



=== TEST 11: a fallback target that cannot carry the request: the first one's outage stays a 502, logged as its own (it was the client's 400, logged as the untried target's)
--- http_config
    ai_target a http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 model=gpt-4o~status=503;
    ai_target b http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic;
    log_format ai '$ai_target $ai_attempts $status';
--- config
    location /v1/ {
        ai_proxy a b;
        access_log logs/access.log ai;
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o","n":2,"messages":[{"role":"user","content":"x"}]}
--- error_code: 502
--- response_body_unlike
not supported by anthropic targets
--- access_log
a 1 502
--- error_log
target "a" answered 503, the request goes to the next attempt
the request cannot go to target "b": n > 1 is not supported by anthropic targets
[error]



=== TEST 12: a fallback target that cannot carry the request is passed over for one that can (a 400 before)
--- http_config
    ai_target a http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 model=gpt-4o~status=503;
    ai_target b http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic;
    ai_target c http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    log_format ai '$ai_target $ai_attempts $status';
--- config
    location /v1/ {
        ai_proxy a b c;
        access_log logs/access.log ai;
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o","n":2,"messages":[{"role":"user","content":"x"}]}
--- response_body_like
mock reply: x
--- access_log
c 2 200
--- no_error_log
[error]



=== TEST 13: the first attempt passes over a target that cannot carry the request for one that can (round robin gave every other request a 400); none can: the 400 says why
--- http_config
    ai_target b http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic;
    ai_target c http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    log_format ai '$ai_target $ai_attempts $status';
--- config
    location /v1/ {
        ai_proxy b c;
        ai_proxy_balance round_robin;
        access_log logs/access.log ai;
    }
    location /only/ {
        ai_proxy b;
        access_log logs/access.log ai;
    }
--- request eval
my $b = q!{"model":"gpt-4o","n":2,"messages":[{"role":"user","content":"x"}]}!;
["POST /v1/chat/completions\n$b", "POST /v1/chat/completions\n$b",
 "POST /v1/chat/completions\n$b", "POST /only/chat/completions\n$b"]
--- error_code eval
[200, 200, 200, 400]
--- response_body_like eval
["mock reply: x", "mock reply: x", "mock reply: x",
 q!"message":"n > 1 is not supported by anthropic targets"!]
--- access_log
c 1 200
c 1 200
c 1 200
b - 400
--- no_error_log
[error]



=== TEST 14: ai_proxy_balance latency: a target that failed without an answer comes last for a while (it had no measure, so it came first and every request tried it)
--- http_config
    ai_target a http://127.0.0.1:1/v1;
    ai_target b http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    log_format ai '$ai_target $ai_attempts $status $upstream_status';
--- config
    location /v1/ {
        ai_proxy a b;
        ai_proxy_balance latency;
        access_log logs/access.log ai;
    }
--- request eval
my $b = '{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}';
["POST /v1/chat/completions\n$b", "POST /v1/chat/completions\n$b",
 "POST /v1/chat/completions\n$b"]
--- response_body_like eval
["mock reply: x", "mock reply: x", "mock reply: x"]
--- access_log
b 2 200 502, 200
b 1 200 200
b 1 200 200
--- error_log eval
qr/\[error\].*connect\(\) failed \(111: Connection refused\)/

