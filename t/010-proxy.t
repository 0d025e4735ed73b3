# ai_proxy, the OpenAI-compatible door: pass-through to one target with
# the gateway's key, streaming unbuffered, JSON errors for everything the
# gateway rejects or cannot reach, nginx -t errors naming the directive.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_AI_UPSTREAM_KEY} = 'sk-upstream-key-42';
env_to_nginx('TEST_AI_UPSTREAM_KEY');
run_tests();

__DATA__

=== TEST 1: plain chat: the gateway's key goes upstream, the client's does not
--- main_config
    env TEST_AI_UPSTREAM_KEY;
--- http_config
    ai_consumer app sk-client-app-0001;
--- config
    location /v1/ {
        ai_auth required;
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_proxy_key env:TEST_AI_UPSTREAM_KEY;
    }
    location /mock/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request eval
["POST /v1/chat/completions\n{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi there\"}]}",
 "GET /mock/last"]
--- more_headers eval
["Authorization: Bearer sk-client-app-0001\nx-api-key: sk-client-app-0001\nCookie: session=1", ""]
--- response_body_like eval
["\"content\":\"mock reply: hi there\"",
 "^\\{\"method\":\"POST\",\"uri\":\"/v1/chat/completions\",\"headers\":\\{[^}]*\"authorization\":\"Bearer sk-upstream-key-42\""]
--- response_body_unlike eval
["sk-", "sk-client|cookie|x-api-key"]
--- no_error_log
[error]



=== TEST 2: a stream passes event by event, the first chunk long before the end
--- main_config
    env TEST_AI_UPSTREAM_KEY;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_proxy_key env:TEST_AI_UPSTREAM_KEY;
    }
--- exec
node t/sdk/stream_timing.mjs http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions 'gpt-4o~delay_chunks_ms=150'
--- response_body
status 200 done true
first chunk early: true
--- no_error_log
[error]
--- timeout: 20



=== TEST 3: embeddings and models
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
--- request eval
["POST /v1/embeddings\n{\"model\":\"text-embedding-3-small\",\"input\":\"hello\"}", "GET /v1/models"]
--- response_body_like eval
["\"object\":\"list\",\"data\":\\[\\{\"object\":\"embedding\"", "\"id\":\"gpt-4o\""]
--- no_error_log
[error]



=== TEST 4: unknown endpoint and the Gemini API (not a door): JSON 404
--- config
    location / {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
--- request eval
["POST /v1/audio/speech\n{}", "POST /v1beta/models/gemini-2.0-flash:generateContent\n{\"contents\":[{\"parts\":[{\"text\":\"x\"}]}]}"]
--- error_code eval
[404, 404]
--- response_headers eval
["Content-Type: application/json", "Content-Type: application/json"]
--- response_body_like eval
["^\\{\"error\":\\{\"message\":\"unknown endpoint /v1/audio/speech\",\"type\":\"invalid_request_error\",\"param\":null,\"code\":\"unknown_url\"\\}\\}\$",
 "^\\{\"error\":\\{\"message\":\"the Gemini API \\(/v1beta/models/gemini-2.0-flash:generateContent\\) is not a door of this gateway: use the OpenAI or the Anthropic API\",\"type\":\"invalid_request_error\",\"param\":null,\"code\":\"unknown_url\"\\}\\}\$"]
--- no_error_log
[error]



=== TEST 5: the provider's errors pass through with their status and headers
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o~status=429,retry_after=7","messages":[{"role":"user","content":"x"}]}
--- error_code: 429
--- response_headers
Retry-After: 7
--- response_body_like
^\{"error":\{"message":"[^"]+","type":"rate_limit_error"
--- no_error_log
[error]



=== TEST 6: connection refused is a JSON 502
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:1/v1;
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}
--- error_code: 502
--- response_body
{"error":{"message":"the upstream provider could not be reached or sent an invalid response","type":"api_error","param":null,"code":"upstream_error"}}
--- error_log
connect() failed (111: Connection refused)
[error]



=== TEST 7: an upstream timeout is a JSON 504
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_proxy_read_timeout 300ms;
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o~delay_headers_ms=2000","messages":[{"role":"user","content":"x"}]}
--- error_code: 504
--- response_body
{"error":{"message":"the upstream provider timed out","type":"timeout_error","param":null,"code":"upstream_timeout"}}
--- error_log
upstream timed out
[error]



=== TEST 8: key from a file, kept-alive upstream, tokens in the log
--- http_config
    log_format ai '$ai_provider $ai_target $ai_upstream_model $ai_attempts $ai_total_tokens';
    upstream mock {
        server 127.0.0.1:$TEST_NGINX_MOCK_PORT;
        keepalive 2;
    }
--- config
    location /v1/ {
        ai_proxy_pass http://mock/v1;
        ai_proxy_key file:$TEST_NGINX_SERVROOT/conf/upstream.key;
        access_log logs/access.log ai;
    }
    location /mock/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- user_files
>>> ../conf/upstream.key
sk-from-a-file-77
--- request eval
["POST /v1/chat/completions\n{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
 "POST /v1/chat/completions\n{\"model\":\"gpt-4o\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
 "GET /mock/last"]
--- response_body_like eval
["mock reply: x", "data: \\[DONE\\]", "\"authorization\":\"Bearer sk-from-a-file-77\""]
--- access_log
openai mock gpt-4o 1 5
openai mock gpt-4o 1 5
--- no_error_log
[error]



=== TEST 9: nginx -t names bad values: inline key
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:1/v1;
        ai_proxy_key sk-inline-secret;
    }
--- must_die
--- error_log
"ai_proxy_key" must be "env:NAME", "file:/path" or "off"; keys are not accepted inline
--- no_error_log
sk-inline-secret



=== TEST 10: nginx -t names bad values: unset environment variable
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:1/v1;
        ai_proxy_key env:TEST_AI_NOT_SET_ANYWHERE;
    }
--- must_die
--- error_log
"ai_proxy_key": the environment variable "TEST_AI_NOT_SET_ANYWHERE" is not set



=== TEST 11: nginx -t names bad values: provider and URL
--- config
    location /v1/ {
        ai_proxy_pass ftp://127.0.0.1/v1;
    }
--- must_die
--- error_log
invalid URL prefix in "ftp://127.0.0.1/v1", "http://" or "https://" is expected



=== TEST 12: nginx -t names bad values: provider
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:1/v1;
        ai_proxy_provider skynet;
    }
--- must_die
--- error_log
unknown provider "skynet" in "ai_proxy_provider"



=== TEST 13: a provider's headers beyond ai_proxy_buffer_size are a JSON 502 naming nothing of them, a larger ai_proxy_buffer_size takes them, the default takes a provider's usual ones
--- config eval
my $answer = q('{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"fits"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}');
# a provider's own headers (rate limits, cookies, ids) come to 1-2 KB
"
    location /fake/usual/v1/ {
        default_type application/json;
        add_header X-Pad " . ('u' x 1800) . ";
        return 200 $answer;
    }
    location /fake/big/v1/ {
        default_type application/json;
" . join('', map { "        add_header X-Pad-$_ " . ('b' x 3000) . ";\n" } 1 .. 3) . "
        return 200 $answer;
    }
    location /usual/ {
        ai_proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/fake/usual/v1;
    }
    location /big/ {
        ai_proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/fake/big/v1;
        ai_proxy_buffer_size 4k;
    }
    location /raised/ {
        ai_proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/fake/big/v1;
        ai_proxy_buffer_size 12k;
    }
"
--- request eval
my $b = '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}';
["POST /usual/chat/completions\n$b", "POST /big/chat/completions\n$b",
 "POST /raised/chat/completions\n$b"]
--- error_code eval
[200, 502, 200]
--- response_body_like eval
['"content":"fits"',
 '^\{"error":\{"message":"[^"]+","type":"[a-z_]+"',
 '"content":"fits"']
--- response_body_unlike eval
['bbbb|uuuu|<html', 'bbbb|uuuu|<html', 'bbbb|uuuu|<html']
--- error_log
[error]
upstream sent too big header



=== TEST 14: the upstream request's head: Host, Content-Type, Content-Length, Accept, the client's User-Agent
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
    location /up/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_proxy_host api.example.test;
    }
    location /mock/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request eval
["POST /v1/chat/completions\n{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
 "GET /mock/last",
 "POST /up/chat/completions\n{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
 "GET /mock/last"]
--- more_headers eval
["User-Agent: OpenAI/JS 6.9.1", "", "", ""]
--- response_body_like eval
["\"content\":\"mock reply: hi\"",
 "^\\{\"method\":\"POST\",\"uri\":\"/v1/chat/completions\",\"headers\":\\{\"host\":\"127\\.0\\.0\\.1:\\d+\",\"content-type\":\"application/json\",\"content-length\":\"62\",\"accept\":\"application/json\",[^}]*\"user-agent\":\"OpenAI/JS 6\\.9\\.1\"\\}",
 "\"content\":\"mock reply: hi\"",
 "^\\{\"method\":\"POST\",\"uri\":\"/v1/chat/completions\",\"headers\":\\{\"host\":\"api\\.example\\.test\",\"content-type\":\"application/json\",\"content-length\":\"62\",\"accept\":\"application/json\"[,}]"]
--- response_body_unlike eval
["\"error\"", "\"authorization\"", "\"error\"", "user-agent"]
--- no_error_log
[error]
