# ai_proxy and hostile or failing providers: a refused gateway key is the
# gateway's problem (502, or 503 with Retry-After while other keys cool
# down), never the provider's body; HTML pages, invalid statuses, bodies
# that are not JSON or cannot be translated become the door's JSON error;
# a plain answer is complete before its header goes out.  The error log is
# at debug level: no key may appear in it at any level.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

log_level('debug');

$ENV{TEST_AI_K1} = 'sk-proj-secret-key-one-1111';
$ENV{TEST_AI_K2} = 'sk-proj-secret-key-two-2222';
$ENV{TEST_AI_FORBIDDEN} = 'forbidden-secret-key-3333';
env_to_nginx('TEST_AI_K1', 'TEST_AI_K2', 'TEST_AI_FORBIDDEN');
run_tests();

__DATA__

=== TEST 1: every key of the pool refused (the 401 echoes the key): a 502 of the gateway, on both doors
--- main_config
    env TEST_AI_K1;
    env TEST_AI_K2;
--- http_config
    ai_target oa http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 key=env:TEST_AI_K1 key=env:TEST_AI_K2 model=gpt-4o~echo_key=1;
    ai_target an http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic key=env:TEST_AI_K1 model=claude~echo_key=1;
    log_format ai '$ai_target $ai_attempts $status';
--- config
    location /v1/ {
        ai_proxy oa;
        access_log logs/access.log ai;
    }
    location /a/v1/ {
        ai_proxy an;
        access_log logs/access.log ai;
    }
--- request eval
["POST /v1/chat/completions\n{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
 "POST /a/v1/messages\n{\"model\":\"claude\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"]
--- error_code eval
[502, 502]
--- response_headers eval
["Content-Type: application/json", "Content-Type: application/json"]
--- response_body_like eval
["^\\{\"error\":\\{\"message\":\"the upstream provider refused the gateway's credentials \\(401\\)\",\"type\":\"api_error\",\"param\":null,\"code\":\"upstream_error\"\\}\\}\$",
 "^\\{\"type\":\"error\",\"error\":\\{\"message\":\"the upstream provider refused the gateway's credentials \\(401\\)\",\"type\":\"api_error\",\"param\":null,\"code\":\"upstream_error\"\\}\\}\$"]
--- response_body_unlike eval
["sk-|Incorrect API key", "sk-|invalid x-api-key"]
--- access_log
oa 2 502
an 1 502
--- error_log
target "oa" refused key #1 (401)
target "oa" refused key #2 (401)
ai_proxy: target "oa" refused the gateway's credentials (401), the client gets 502
[error]
--- no_error_log
sk-proj-secret-key-one
sk-proj-secret-key-two
Incorrect API key



=== TEST 2: a streamed request refused with 403: the same JSON 502, no SSE, no provider text
--- main_config
    env TEST_AI_FORBIDDEN;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_proxy_key env:TEST_AI_FORBIDDEN;
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"x"}]}
--- error_code: 502
--- response_headers
Content-Type: application/json
--- response_body_like
^\{"error":\{"message":"the upstream provider refused the gateway's credentials \(403\)","type":"api_error","param":null,"code":"upstream_error"\}\}$
--- response_body_unlike
forbidden|not allowed
--- error_log
refused key #1 (403)
[error]
--- no_error_log
forbidden-secret-key



=== TEST 3: refused by one target while the other's key cools down: 503 with Retry-After
--- main_config
    env TEST_AI_K1;
    env TEST_AI_K2;
--- http_config
    ai_target hot  http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 key=env:TEST_AI_K1 model=gpt-4o~status=429,retry_after=30;
    ai_target deny http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 key=env:TEST_AI_K2 model=gpt-4o~echo_key=1;
    log_format ai '$ai_target $ai_attempts $status';
--- config
    location /v1/ {
        ai_proxy hot deny;
        ai_proxy_balance latency;
        access_log logs/access.log ai;
    }
--- request
POST /v1/messages
{"model":"gpt-4o","max_tokens":10,"messages":[{"role":"user","content":"x"}]}
--- error_code: 503
--- response_headers
Retry-After: 30
Content-Type: application/json
--- response_body_like
^\{"type":"error","error":\{"message":"the upstream provider refused the gateway's credentials \(401\) and the other keys are cooling down, retry later","type":"api_error","param":null,"code":"service_unavailable"\}\}$
--- response_body_unlike
sk-
--- access_log
deny 2 503
--- error_log
[error]
--- no_error_log
sk-proj-secret



=== TEST 4: the client's own key refused by the core stays a 401
--- main_config
    env TEST_AI_K1;
--- http_config
    ai_consumer app sk-client-app-0001;
--- config
    location /v1/ {
        ai_auth required;
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_proxy_key env:TEST_AI_K1;
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o~echo_key=1","messages":[{"role":"user","content":"x"}]}
--- more_headers
Authorization: Bearer sk-client-wrong
--- error_code: 401
--- response_body_like
"type":"authentication_error","param":null,"code":"invalid_api_key"
--- no_error_log
[error]
sk-proj-secret



=== TEST 5: a provider's HTML error page keeps its status and headers, in the door's JSON shape
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
--- request eval
["POST /v1/chat/completions\n{\"model\":\"gpt-4o~html=1,status=503,retry_after=3\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
 "POST /v1/messages\n{\"model\":\"gpt-4o~html=1,status=429,retry_after=4\",\"max_tokens\":9,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
 "POST /v1/chat/completions\n{\"model\":\"gpt-4o~html=1,status=400\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"]
--- error_code eval
[503, 429, 400]
--- response_headers eval
["Content-Type: application/json\nRetry-After: 3",
 "Content-Type: application/json\nRetry-After: 4",
 "Content-Type: application/json"]
--- response_body_like eval
["^\\{\"error\":\\{\"message\":\"the openai upstream answered 503\",\"type\":\"api_error\",\"param\":null,\"code\":null\\}\\}\$",
 "^\\{\"type\":\"error\",\"error\":\\{\"type\":\"rate_limit_error\",\"message\":\"the openai upstream answered 429\"\\}\\}\$",
 "^\\{\"error\":\\{\"message\":\"the openai upstream answered 400\",\"type\":\"invalid_request_error\",\"param\":null,\"code\":null\\}\\}\$"]
--- response_body_unlike eval
["<", "<", "<"]
--- no_error_log
[error]



=== TEST 6: an invalid status (999) is a 502 in the door's shape, plain or streamed
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
--- request eval
["POST /v1/chat/completions\n{\"model\":\"gpt-4o~status=999\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
 "POST /v1/chat/completions\n{\"model\":\"gpt-4o~status=999,html=1\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
 "POST /v1/messages\n{\"model\":\"gpt-4o~status=999\",\"max_tokens\":9,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"]
--- error_code eval
[502, 502, 502]
--- response_headers eval
["Content-Type: application/json", "Content-Type: application/json", "Content-Type: application/json"]
--- response_body_like eval
["^\\{\"error\":\\{\"message\":\"the upstream provider sent an invalid status \\(999\\)\",\"type\":\"api_error\",\"param\":null,\"code\":\"upstream_error\"\\}\\}\$",
 "^\\{\"error\":\\{\"message\":\"the upstream provider sent an invalid status \\(999\\)\",\"type\":\"api_error\",\"param\":null,\"code\":\"upstream_error\"\\}\\}\$",
 "^\\{\"type\":\"error\",\"error\":\\{\"message\":\"the upstream provider sent an invalid status \\(999\\)\",\"type\":\"api_error\",\"param\":null,\"code\":\"upstream_error\"\\}\\}\$"]
--- error_log
ai_proxy: target "127.0.0.1:$TEST_NGINX_MOCK_PORT" sent an invalid status (999)
[error]



=== TEST 7: a 2xx that is not JSON (an HTML page, a cut JSON body) is a 502, plain or streamed
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
--- request eval
["POST /v1/chat/completions\n{\"model\":\"gpt-4o~html=1\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
 "POST /v1/chat/completions\n{\"model\":\"gpt-4o~html=1\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
 "POST /v1/chat/completions\n{\"model\":\"gpt-4o~malformed=1\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
 "POST /v1/embeddings\n{\"model\":\"e~html=1\",\"input\":\"x\"}"]
--- error_code eval
[502, 502, 502, 502]
--- response_headers eval
["Content-Type: application/json", "Content-Type: application/json", "Content-Type: application/json", "Content-Type: application/json"]
--- response_body_like eval
["^\\{\"error\":\\{\"message\":\"the upstream provider sent an answer that is not JSON\",\"type\":\"api_error\",\"param\":null,\"code\":\"upstream_error\"\\}\\}\$",
 "^\\{\"error\":\\{\"message\":\"the upstream provider sent an answer that is not JSON\",\"type\":\"api_error\",\"param\":null,\"code\":\"upstream_error\"\\}\\}\$",
 "^\\{\"error\":\\{\"message\":\"the upstream provider sent an answer that is not JSON\",\"type\":\"api_error\",\"param\":null,\"code\":\"upstream_error\"\\}\\}\$",
 "^\\{\"error\":\\{\"message\":\"the upstream provider sent an answer that is not JSON\",\"type\":\"api_error\",\"param\":null,\"code\":\"upstream_error\"\\}\\}\$"]
--- error_log
ai_proxy: target "127.0.0.1:$TEST_NGINX_MOCK_PORT" sent an answer that is not JSON
[error]



=== TEST 8: a plain answer that cannot be translated is a 502 in the door's shape, not a 200
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
--- request eval
["POST /v1/messages\n{\"model\":\"gpt-4o~malformed=1\",\"max_tokens\":9,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
 "POST /v1/messages\n{\"model\":\"gpt-4o~html=1\",\"max_tokens\":9,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"]
--- error_code eval
[502, 502]
--- response_headers eval
["Content-Type: application/json", "Content-Type: application/json"]
--- response_body_like eval
["^\\{\"type\":\"error\",\"error\":\\{\"message\":\"the upstream provider sent an answer that cannot be translated\",\"type\":\"api_error\",\"param\":null,\"code\":\"upstream_error\"\\}\\}\$",
 "^\\{\"type\":\"error\",\"error\":\\{\"message\":\"the upstream provider sent an answer that cannot be translated\",\"type\":\"api_error\",\"param\":null,\"code\":\"upstream_error\"\\}\\}\$"]
--- error_log
cannot be translated
[error]



=== TEST 9: a plain answer cut short is a 502, not a cut 200
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o~disconnect_after=1","messages":[{"role":"user","content":"x"}]}
--- error_code: 502
--- response_body_like
^\{"error":\{"message":"the upstream provider's answer was cut short","type":"api_error","param":null,"code":"upstream_error"\}\}$
--- error_log
upstream prematurely closed connection
[error]



=== TEST 10: the provider's JSON errors and answers still pass, translated or not
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
--- request eval
["POST /v1/chat/completions\n{\"model\":\"gpt-4o~status=400\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
 "POST /v1/messages\n{\"model\":\"gpt-4o~status=503\",\"max_tokens\":9,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
 "POST /v1/messages\n{\"model\":\"gpt-4o\",\"max_tokens\":9,\"messages\":[{\"role\":\"user\",\"content\":\"a b\"}]}",
 "POST /v1/chat/completions\n{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"a b\"}]}",
 "GET /v1/models"]
--- error_code eval
[400, 503, 200, 200, 200]
--- response_body_like eval
["^\\{\"error\":\\{\"message\":\"Invalid request \\(mock\\).\",\"type\":\"invalid_request_error\",\"param\":null,\"code\":null\\}\\}\$",
 "^\\{\"type\":\"error\",\"error\":\\{\"type\":\"api_error\",\"message\":\"The service is temporarily unavailable \\(mock\\).\"\\}\\}\$",
 "^\\{\"id\":\"[^\"]+\",\"type\":\"message\",\"role\":\"assistant\",.*\"text\":\"mock reply: a b\"",
 "^\\{\"id\":\"chatcmpl-mock\\d+\",\"object\":\"chat.completion\",.*\"content\":\"mock reply: a b\".*\"system_fingerprint\":\"fp_mock\"\\}\$",
 "^\\{\"object\":\"list\",\"data\":\\[\\{\"id\":\"gpt-4o\""]
--- no_error_log
[error]



=== TEST 11: a provider's error that quotes the gateway's key gets the key masked
--- main_config
    env TEST_AI_K1;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_proxy_key env:TEST_AI_K1;
    }
--- request eval
["POST /v1/chat/completions\n{\"model\":\"gpt-4o~echo_key=1,status=400\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
 "POST /v1/messages\n{\"model\":\"gpt-4o~echo_key=1,status=429,html=1\",\"max_tokens\":9,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"]
--- error_code eval
[400, 429]
--- response_body_like eval
["^\\{\"error\":\\{\"message\":\"Incorrect API key provided: \\*{27}. You can find",
 "^\\{\"type\":\"error\",\"error\":\\{\"type\":\"rate_limit_error\",\"message\":\"the openai upstream answered 429\"\\}\\}\$"]
--- response_body_unlike eval
["secret", "secret"]
--- no_error_log
[error]
sk-proj-secret



=== TEST 12: over ai_proxy_response_max_size an answer in the door's format goes unchecked, one to translate is a 502
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_proxy_response_max_size 1k;
    }
--- request eval
["POST /v1/chat/completions\n{\"model\":\"gpt-4o~words=400\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
 "POST /v1/messages\n{\"model\":\"gpt-4o~words=400\",\"max_tokens\":999,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
 "POST /v1/messages\n{\"model\":\"gpt-4o~words=4\",\"max_tokens\":999,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"]
--- error_code eval
[200, 502, 200]
--- response_body_like eval
["w399 w400\".*\"usage\":\\{\"prompt_tokens\":2,\"completion_tokens\":400,",
 "^\\{\"type\":\"error\",\"error\":\\{\"message\":\"the upstream provider's answer is too large\",\"type\":\"api_error\",\"param\":null,\"code\":\"upstream_error\"\\}\\}\$",
 "\"text\":\"w1 w2 w3 w4\""]
--- error_log
it goes unchecked
is larger than ai_proxy_response_max_size (1024)
[error]



=== TEST 13: a provider's answer with two Content-Length lines, in any case, is a 502 (no smuggling by the framing)
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/fake/v1;
    }
    location /fake/ {
        add_header CONTENT-LENGTH 8;
        default_type application/json;
        return 200 '{"id":1}';
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}
--- error_code: 502
--- response_body_like
^\{"error":\{"message":"[^"]+","type":"api_error","param":null,"code":"upstream_error"\}\}$
--- error_log
upstream sent duplicate header line
[error]
