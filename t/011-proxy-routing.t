# ai_proxy with several targets: model routing (globs, aliases), the
# synthesized model list, weighted round robin, least_conn, prompt
# decoration, and the include_usage chunk the client did not ask for.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_AI_K1} = 'sk-good-key-1';
env_to_nginx('TEST_AI_K1');
run_tests();

__DATA__

=== TEST 1: models route by glob, aliases first, unknown model is a JSON 404
--- main_config
    env TEST_AI_K1;
--- http_config
    ai_target gpt  http://127.0.0.1:$TEST_NGINX_MOCK_PORT/gpt/v1 key=env:TEST_AI_K1 models=gpt-*,o1;
    ai_target misc http://127.0.0.1:$TEST_NGINX_MOCK_PORT/misc/v1 models=llama-*;
    log_format ai '$ai_model $ai_target $ai_upstream_model $ai_provider';
--- config
    location /v1/ {
        ai_proxy gpt misc;
        ai_proxy_alias fast gpt-4o-mini;
        access_log logs/access.log ai;
    }
--- request eval
["POST /v1/chat/completions\n{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}",
 "POST /v1/chat/completions\n{\"model\":\"llama-3\",\"messages\":[{\"role\":\"user\",\"content\":\"b\"}]}",
 "POST /v1/chat/completions\n{\"model\":\"fast\",\"messages\":[{\"role\":\"user\",\"content\":\"c\"}]}",
 "POST /v1/chat/completions\n{\"model\":\"claude-3\",\"messages\":[{\"role\":\"user\",\"content\":\"d\"}]}",
 "GET /v1/models"]
--- error_code eval
[200, 200, 200, 404, 200]
--- response_body_like eval
["mock reply: a", "mock reply: b", "\"model\":\"gpt-4o-mini\"",
 "^\\{\"error\":\\{\"message\":\"the model \\\\\"claude-3\\\\\" is not served here\",\"type\":\"invalid_request_error\",\"param\":\"model\",\"code\":\"model_not_found\"\\}\\}\$",
 "^\\{\"object\":\"list\",\"data\":\\[\\{\"id\":\"fast\",\"object\":\"model\",\"created\":0,\"owned_by\":\"gpt\"\\},\\{\"id\":\"o1\",\"object\":\"model\",\"created\":0,\"owned_by\":\"gpt\"\\}\\]\\}\$"]
--- access_log
gpt-4o gpt gpt-4o openai
llama-3 misc llama-3 openai
fast gpt gpt-4o-mini openai
--- no_error_log
[error]



=== TEST 2: weighted round robin: 3 to 1, interleaved
--- http_config
    ai_target a http://127.0.0.1:$TEST_NGINX_MOCK_PORT/a/v1 weight=3;
    ai_target b http://127.0.0.1:$TEST_NGINX_MOCK_PORT/b/v1;
    log_format ai '$ai_target';
--- config
    location /v1/ {
        ai_proxy a b;
        access_log logs/access.log ai;
    }
--- request eval
[map { "POST /v1/chat/completions\n{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}" } 1..8]
--- response_body_like eval
[map { "mock reply: x" } 1..8]
--- access_log_like eval
["\\Aa\na\nb\na\na\na\nb\na\n\\z"]
--- no_error_log
[error]



=== TEST 3: the target's own model name, and a forced upstream path
--- http_config
    ai_target dep http://127.0.0.1:$TEST_NGINX_MOCK_PORT/deploy/v1 model=my-deployment;
--- config
    location /v1/ {
        ai_proxy dep;
    }
    location /mock/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request eval
["POST /v1/chat/completions\n{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "GET /mock/last"]
--- response_body_like eval
["\"model\":\"my-deployment\"", "\"uri\":\"/deploy/v1/chat/completions\""]
--- no_error_log
[error]



=== TEST 4: prompt decoration: a system message before, a user note after
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_proxy_prepend system "You are a helpful gateway.";
        ai_proxy_append user "Answer in one line.";
    }
    location /mock/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request eval
["POST /v1/chat/completions\n{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}", "GET /mock/last"]
--- response_body_like eval
["mock reply: Answer in one line.", "You are a helpful gateway.*hello.*Answer in one line"]
--- no_error_log
[error]



=== TEST 5: usage is always asked upstream; the client that did not ask does not get it
--- http_config
    log_format ai '$ai_prompt_tokens $ai_completion_tokens';
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        access_log logs/access.log ai;
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"count me"}]}
--- response_body_like
^data: .*"finish_reason":"stop".*\n\ndata: \[DONE\]\n\n$
--- response_body_unlike
"usage":\{
--- access_log
3 4
--- no_error_log
[error]



=== TEST 6: least_conn spreads concurrent streams
--- http_config
    ai_target a http://127.0.0.1:$TEST_NGINX_MOCK_PORT/a/v1;
    ai_target b http://127.0.0.1:$TEST_NGINX_MOCK_PORT/b/v1;
    log_format ai '$ai_target';
--- config
    location /v1/ {
        ai_proxy a b;
        ai_proxy_balance least_conn;
        access_log logs/access.log ai;
    }
--- exec
for i in 1 2 3 4; do
  curl -s -N http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions \
    -d '{"model":"m~delay_chunks_ms=100","stream":true,"messages":[{"role":"user","content":"a b"}]}' > /dev/null &
done
wait
sort $TEST_NGINX_SERVROOT/logs/access.log | uniq -c | awk '{print $1, $2}'
--- response_body
2 a
2 b
--- no_error_log
[error]



=== TEST 7: bad target configuration is named by nginx -t
--- http_config
    ai_target a http://127.0.0.1:1/v1 provider=skynet;
--- config
    location /v1/ { ai_proxy a; }
--- must_die
--- error_log
ai_target "a": unknown provider "skynet"



=== TEST 8: an unknown target in ai_proxy is named by nginx -t
--- http_config
    ai_target a http://127.0.0.1:1/v1;
--- config
    location /v1/ { ai_proxy a b; }
--- must_die
--- error_log
unknown target "b" in "ai_proxy"



=== TEST 9: a request that no candidate can take is a 400 naming why; a model id is forwarded
--- http_config
    ai_target an http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic models=claude-*;
    ai_target oa http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 models=gpt-*;
--- config
    location /v1/ {
        ai_proxy an oa;
    }
    location /mock/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request eval
["POST /v1/chat/completions\n{\"model\":\"claude-3\",\"n\":2,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
 "GET /v1/models/gpt-4o", "GET /mock/last"]
--- error_code eval
[400, 404, 200]
--- response_body_like eval
["^\\{\"error\":\\{\"message\":\"[^\"]+\",\"type\":\"invalid_request_error\"",
 "", "\"uri\":\"/v1/models/gpt-4o\""]
--- no_error_log
[error]



=== TEST 10: GET .../models/{id} is answered by the gateway for any model the location serves (an alias, a glob's model, an Anthropic target's); an id served by none is a JSON 404
--- main_config
    env TEST_AI_K1;
--- http_config
    ai_target gpt  http://127.0.0.1:$TEST_NGINX_MOCK_PORT/gpt/v1 key=env:TEST_AI_K1 models=gpt-*,o1;
    ai_target misc http://127.0.0.1:$TEST_NGINX_MOCK_PORT/misc/v1 models=llama-*;
    ai_target an   http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic models=claude-*;
    log_format ai '$request_uri $status';
--- config
    location /v1/ {
        ai_proxy gpt misc an;
        ai_proxy_alias fast gpt-4o-mini;
        access_log logs/access.log ai;
    }
--- request eval
["GET /v1/models/gpt-4o", "GET /v1/models/llama-3/", "GET /v1/models/fast",
 "GET /v1/models/mistral", "GET /v1/models/claude-3"]
--- error_code eval
[200, 200, 200, 404, 200]
--- response_body_like eval
["^\\{\"id\":\"gpt-4o\",\"object\":\"model\",\"created\":0,\"owned_by\":\"gpt\"\\}\$",
 "^\\{\"id\":\"llama-3\",\"object\":\"model\",\"created\":0,\"owned_by\":\"misc\"\\}\$",
 "^\\{\"id\":\"fast\",\"object\":\"model\",\"created\":0,\"owned_by\":\"gpt\"\\}\$",
 "^\\{\"error\":\\{\"message\":\"the model \\\\\"mistral\\\\\" is not served here\",\"type\":\"invalid_request_error\",\"param\":\"model\",\"code\":\"model_not_found\"\\}\\}\$",
 "^\\{\"id\":\"claude-3\",\"object\":\"model\",\"created\":0,\"owned_by\":\"an\"\\}\$"]
--- access_log
/v1/models/gpt-4o 200
/v1/models/llama-3/ 200
/v1/models/fast 200
/v1/models/mistral 404
/v1/models/claude-3 200
--- no_error_log
[error]



=== TEST 11: GET .../models with only globs in models=: the list is asked of the targets
--- http_config
    ai_target gpt http://127.0.0.1:$TEST_NGINX_MOCK_PORT/gpt/v1 models=gpt-*;
--- config
    location /v1/ {
        ai_proxy gpt;
    }
--- request
GET /v1/models
--- response_body_like
^\{"object":"list","data":\[\{"id":"gpt-4o",
--- no_error_log
[error]



=== TEST 12: the routed model is known before ACCESS: an alias cannot bypass a map ACL on it
--- http_config
    ai_target t http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 models=gpt-*;
    map $ai_route_model $ai_denied {
        default 0;
        gpt-4o  1;
    }
    log_format ai '$ai_model -> $ai_route_model $status';
--- config
    location /v1/ {
        access_log logs/access.log ai;
        ai_proxy t;
        ai_proxy_alias fast gpt-4o;
        ai_proxy_alias cheap gpt-4o-mini;
        if ($ai_denied) {
            return 403 '{"error":{"message":"model not allowed"}}\n';
        }
    }
--- request eval
["POST /v1/chat/completions\n" . '{"model":"fast","messages":[{"role":"user","content":"hi"}]}',
 "POST /v1/chat/completions\n" . '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}',
 "POST /v1/chat/completions\n" . '{"model":"cheap","messages":[{"role":"user","content":"hi"}]}',
 "GET /v1/models/fast"]
--- error_code eval
[403, 403, 200, 403]
--- access_log
fast -> gpt-4o 403
gpt-4o -> gpt-4o 403
cheap -> gpt-4o-mini 200
--- no_error_log
[error]



=== TEST 13: $ai_proxy_targets: the targets the router chose, known before ACCESS (a map can refuse a request bound for one), in the location's order; empty when no target serves the model
--- http_config
    ai_target main http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 models=gpt-*;
    ai_target mini http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 models=gpt-4o-mini;
    ai_target claude http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic models=claude-*;
    map $ai_proxy_targets $ai_to_claude {
        default 0;
        claude  1;
    }
    log_format ai '$ai_model [$ai_proxy_targets] $status';
--- config
    location /v1/ {
        access_log logs/access.log ai;
        ai_proxy main mini claude;
        if ($ai_to_claude) {
            return 403 '{"error":{"message":"claude is not for this location"}}\n';
        }
    }
--- request eval
["POST /v1/chat/completions\n" . '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}',
 "POST /v1/chat/completions\n" . '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}',
 "POST /v1/chat/completions\n" . '{"model":"claude-3-5-haiku","messages":[{"role":"user","content":"hi"}]}',
 "POST /v1/chat/completions\n" . '{"model":"llama-3","messages":[{"role":"user","content":"hi"}]}']
--- error_code eval
[200, 200, 403, 404]
--- access_log
gpt-4o [main] 200
gpt-4o-mini [main,mini] 200
claude-3-5-haiku [claude] 403
llama-3 [-] 404
--- no_error_log
[error]
