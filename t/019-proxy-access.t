# Access and explanations: client headers passed upstream by name and
# headers set from variables (never the consumer's credentials), NGINX's
# own refusals on an AI location in the door's JSON shape naming what
# refused (limit_req, limit_conn, allow/deny), and nginx -t refusing what
# cannot work (ai_proxy with proxy_pass, credentials as headers, a
# target's unset environment variable).
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_AI_UPSTREAM_KEY} = 'sk-upstream-key-42';
$ENV{TEST_AI_K1} = 'sk-good-key-1';
$ENV{TEST_AI_K2} = 'sk-good-key-2';
env_to_nginx('TEST_AI_K1', 'TEST_AI_K2');
run_tests();

__DATA__

=== TEST 1: the client headers named go upstream (each instance), headers set from variables too; others and the client's key do not
--- main_config
    env TEST_AI_UPSTREAM_KEY;
--- http_config
    ai_consumer app sk-client-app-0001;
--- config
    location /v1/ {
        ai_auth required;
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_proxy_key env:TEST_AI_UPSTREAM_KEY;
        ai_proxy_pass_client_headers anthropic-beta OpenAI-Organization;
        ai_proxy_set_header X-Consumer $ai_consumer;
        ai_proxy_set_header X-Empty $http_x_not_sent;
    }
    location /mock/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request eval
["POST /v1/chat/completions\n{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
 "GET /mock/last"]
--- more_headers eval
["Authorization: Bearer sk-client-app-0001\nanthropic-beta: a-1\nanthropic-beta: b-2\nopenai-organization: org-7\nx-other: no", ""]
--- response_body_like eval
["mock reply: hi",
 "\"headers\":\\{[^}]*\"authorization\":\"Bearer sk-upstream-key-42\""]
--- response_body_unlike eval
["sk-client", "sk-client|x-other|x-empty"]
--- no_error_log
[error]
[alert]



=== TEST 2: what the mock saw, header by header
--- main_config
    env TEST_AI_UPSTREAM_KEY;
--- http_config
    ai_consumer app sk-client-app-0001;
--- config
    location /v1/ {
        ai_auth required;
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_proxy_key env:TEST_AI_UPSTREAM_KEY;
        ai_proxy_pass_client_headers anthropic-beta OpenAI-Organization;
        ai_proxy_set_header X-Consumer $ai_consumer;
    }
    location /mock/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request eval
["POST /v1/chat/completions\n{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
 "GET /mock/last", "GET /mock/last", "GET /mock/last"]
--- more_headers eval
["Authorization: Bearer sk-client-app-0001\nanthropic-beta: b-2\nopenai-organization: org-7", "", "", ""]
--- response_body_like eval
["mock reply: hi", "\"anthropic-beta\":\"b-2\"", "\"openai-organization\":\"org-7\"",
 "\"x-consumer\":\"app\""]
--- no_error_log
[error]
[alert]



=== TEST 3: limit_req's refusal (503 by default, or its limit_req_status) is a JSON error naming it, in each door's shape
--- http_config
    limit_req_zone $server_name zone=one:1m rate=1r/m;
    limit_req_zone $server_name zone=two:1m rate=1r/m;
--- config
    location /v1/ {
        limit_req zone=one;
        limit_req_log_level warn;
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
    location /b/v1/ {
        limit_req zone=two;
        limit_req_status 429;
        limit_req_log_level warn;
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
--- request eval
["POST /v1/chat/completions\n{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}",
 "POST /v1/chat/completions\n{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"b\"}]}",
 "POST /b/v1/messages\n{\"model\":\"claude-3-5-haiku\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":\"c\"}]}",
 "POST /b/v1/messages\n{\"model\":\"claude-3-5-haiku\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":\"d\"}]}"]
--- error_code eval
[200, 503, 200, 429]
--- response_body_like eval
["mock reply: a",
 "^\\{\"error\":\\{\"message\":\"rate limited by limit_req\",\"type\":\"rate_limit_error\",\"param\":null,\"code\":\"rate_limit_exceeded\"\\}\\}\$",
 "mock reply: c",
 "^\\{\"type\":\"error\",\"error\":\\{\"message\":\"rate limited by limit_req\",\"type\":\"rate_limit_error\",\"param\":null,\"code\":\"rate_limit_exceeded\"\\}\\}\$"]
--- response_headers eval
["Content-Type: application/json", "Content-Type: application/json", "Content-Type: application/json", "Content-Type: application/json"]
--- no_error_log
[error]
[alert]



=== TEST 4: limit_conn's refusal is a JSON error naming it
--- http_config
    limit_conn_zone $server_name zone=conns:1m;
--- config
    location /v1/ {
        limit_conn conns 1;
        limit_conn_log_level warn;
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
--- exec
url=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions
curl -s -o /dev/null -d '{"model":"gpt-4o~delay_headers_ms=1500","messages":[{"role":"user","content":"slow"}]}' $url &
sleep 0.5
curl -s -w ' %{http_code} %{content_type}\n' -d '{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}' $url
wait
--- response_body
{"error":{"message":"too many connections (limit_conn)","type":"rate_limit_error","param":null,"code":"too_many_connections"}}
 503 application/json
--- no_error_log
[error]
[alert]
--- timeout: 10



=== TEST 5: deny is a JSON 403 "forbidden by access rules"; another 403 keeps its own message
--- config
    location /v1/ {
        deny all;
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
    location /r/v1/ {
        if ($http_x_block) {
            return 403;
        }
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
--- request eval
["POST /v1/chat/completions\n{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}",
 "POST /v1/messages\n{\"model\":\"claude-3-5-haiku\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":\"b\"}]}",
 "GET /v1/models",
 "POST /r/v1/chat/completions\n{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"c\"}]}"]
--- more_headers eval
["", "", "", "X-Block: 1"]
--- error_code eval
[403, 403, 403, 403]
--- response_body_like eval
["^\\{\"error\":\\{\"message\":\"forbidden by access rules\",\"type\":\"permission_error\",\"param\":null,\"code\":\"forbidden\"\\}\\}\$",
 "^\\{\"type\":\"error\",\"error\":\\{\"message\":\"forbidden by access rules\",",
 "forbidden by access rules",
 "^\\{\"error\":\\{\"message\":\"forbidden\",\"type\":\"permission_error\",\"param\":null,\"code\":null\\}\\}\$"]
--- error_log
[error]
access forbidden by rule
--- no_error_log
[alert]



=== TEST 6: nginx -t: ai_proxy_pass after proxy_pass in one location
--- config
    location /v1/ {
        proxy_pass http://127.0.0.1:1;
        ai_proxy_pass http://127.0.0.1:1/v1;
    }
--- must_die
--- error_log
"ai_proxy" or "ai_proxy_pass" cannot be used with another content handler ("proxy_pass", "fastcgi_pass", "uwsgi_pass", "scgi_pass", "grpc_pass" ...) in the location "/v1/"



=== TEST 7: nginx -t: fastcgi_pass after ai_proxy in one location
--- http_config
    ai_target gpt http://127.0.0.1:1;
--- config
    location /v1/ {
        ai_proxy gpt;
        fastcgi_pass 127.0.0.1:1;
    }
--- must_die
--- error_log
"ai_proxy" or "ai_proxy_pass" cannot be used with another content handler ("proxy_pass", "fastcgi_pass", "uwsgi_pass", "scgi_pass", "grpc_pass" ...) in the location "/v1/"



=== TEST 8: nginx -t: the consumer's credentials never go upstream
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:1/v1;
        ai_proxy_pass_client_headers anthropic-beta Authorization;
    }
--- must_die
--- error_log
"ai_proxy_pass_client_headers": the header "Authorization" carries the consumer's credentials and never goes upstream (the gateway sends the target's key)



=== TEST 9: nginx -t: nor through a header set from a variable
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:1/v1;
        ai_proxy_set_header X-Api-Key $http_x_api_key;
    }
--- must_die
--- error_log
"ai_proxy_set_header": the header "X-Api-Key" carries the consumer's credentials and never goes upstream (the gateway sends the target's key)



=== TEST 10: nginx -t: the headers the gateway sets are its own
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:1/v1;
        ai_proxy_set_header Host example.com;
    }
--- must_die
--- error_log
"ai_proxy_set_header": the header "Host" is set by the gateway



=== TEST 11: nginx -t names the target whose environment variable is not set
--- http_config
    ai_target openai http://127.0.0.1:1 key=env:TEST_AI_NOT_SET_ANYWHERE;
--- config
    location /v1/ { ai_proxy openai; }
--- must_die
--- error_log
ai_target "openai": the environment variable "TEST_AI_NOT_SET_ANYWHERE" of "key=env:TEST_AI_NOT_SET_ANYWHERE" is not set (set it for NGINX, and "env TEST_AI_NOT_SET_ANYWHERE;" in the main context keeps it)



=== TEST 12: a key rate limited, then the other target unreachable: 503 with Retry-After (the cooling key's), not a bare 502
--- main_config
    env TEST_AI_K1;
    env TEST_AI_K2;
--- http_config
    ai_target hot  http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 key=env:TEST_AI_K1 model=gpt-4o~status=429,retry_after=30;
    ai_target dead http://127.0.0.1:1/v1 key=env:TEST_AI_K2;
    log_format ai '$ai_target $ai_attempts $status';
--- config
    location /v1/ {
        ai_proxy hot dead;
        ai_proxy_balance latency;
        access_log logs/access.log ai;
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}
--- error_code: 503
--- response_headers
Retry-After: 30
Content-Type: application/json
--- response_body_like
^\{"error":\{"message":"no upstream target is available for this model now \(an attempt failed and the other keys are cooling down\), retry later","type":"api_error","param":null,"code":"service_unavailable"\}\}$
--- access_log
dead 2 503
--- error_log
[error]
connect() failed (111: Connection refused)



=== TEST 13: the official SDKs' organization, project and beta headers reach the provider when allowed; their keys do not
--- mock_args: -k sk-upstream-key-42
--- main_config
    env TEST_AI_UPSTREAM_KEY;
--- http_config
    ai_consumer app sk-client-app-0001;
--- config
    location /v1/ {
        ai_auth required;
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_proxy_key env:TEST_AI_UPSTREAM_KEY;
        ai_proxy_pass_client_headers anthropic-beta openai-organization openai-project;
    }
--- exec
node t/sdk/headers.mjs http://127.0.0.1:$TEST_NGINX_SERVER_PORT sk-client-app-0001 http://127.0.0.1:$TEST_NGINX_MOCK_PORT/mock/last
--- response_body
openai: mock reply: hi
upstream saw: openai-organization=org-7 openai-project=proj-9 anthropic-beta=- x-api-key=- authorization=Bearer sk-upstream-key-42
anthropic: mock reply: hey
upstream saw: openai-organization=- openai-project=- anthropic-beta=prompt-caching-2024-07-31 x-api-key=- authorization=Bearer sk-upstream-key-42
--- no_error_log
[error]
[alert]
sk-client-app-0001
--- timeout: 30
