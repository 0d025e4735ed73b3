# POST /v1/messages/count_tokens on the Anthropic door: forwarded to
# Anthropic targets, answered by the gateway's estimator for the others
# (X-AI-Token-Estimate: true), never cached, costing no tokens of a limit.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_AI_UPSTREAM_KEY} = 'sk-upstream-key-42';
run_tests();

__DATA__

=== TEST 1: an Anthropic target counts: the request goes to its count_tokens, the answer comes back as it is
--- http_config
    ai_target an http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic;
    log_format ai '$ai_endpoint $ai_provider $status $ai_prompt_tokens';
--- config
    location /v1/ {
        ai_proxy an;
        access_log logs/access.log ai;
    }
    location /mock/ {
        access_log off;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request eval
["POST /v1/messages/count_tokens\n" . q!{"model":"claude-sonnet-4-5","system":"Be brief.","messages":[{"role":"user","content":"how many tokens is this?"}]}!,
 "GET /mock/last"]
--- response_body_like eval
[q!^\{"input_tokens":9\}$!,
 q!"method":"POST","uri":"/v1/messages/count_tokens".*"anthropic-version":"2023-06-01".*"body":"\{\\\\"model\\\\":\\\\"claude-sonnet-4-5\\\\",\\\\"system\\\\"!]
--- response_headers eval
["!X-AI-Token-Estimate\nContent-Type: application/json", ""]
--- access_log
count_tokens anthropic 200 -
--- no_error_log
[error]



=== TEST 2: other targets: the gateway's estimate, said so, without a request upstream
The estimator's count of this request (t/062 checks the estimator): 3 +
(4 + 3) system + (4 + 6) message, 15% more, rounded up: 23.
--- http_config
    ai_target oa http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    ai_target ge http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=gemini models=gemini-*;
    log_format ai '$ai_endpoint $ai_provider $status';
--- config
    location /v1/ {
        ai_proxy ge oa;
        access_log logs/access.log ai;
    }
    location /mock/ {
        access_log off;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request eval
["POST /mock/reset\n",
 "POST /v1/messages/count_tokens\n" . q!{"model":"gpt-4o","system":"Be brief.","messages":[{"role":"user","content":"how many tokens is this?"}]}!,
 "POST /v1/messages/count_tokens\n" . q!{"model":"gemini-2.5-flash","system":"Be brief.","messages":[{"role":"user","content":"how many tokens is this?"}]}!,
 "GET /mock/count"]
--- response_body_like eval
[q!reset!, q!^\{"input_tokens":23\}$!, q!^\{"input_tokens":23\}$!, q!^\{"requests":0\}$!]
--- response_headers eval
["", "X-AI-Token-Estimate: true\nContent-Type: application/json", "X-AI-Token-Estimate: true", ""]
--- access_log
count_tokens - 200
--- no_error_log
[error]



=== TEST 3: a model that both an OpenAI and an Anthropic target serve is counted by the Anthropic one
--- http_config
    ai_target oa http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    ai_target an http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic;
--- config
    location /v1/ {
        ai_proxy oa an;
    }
--- request eval
["POST /v1/messages/count_tokens\n" . q!{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"one two three"}]}!,
 "POST /v1/messages/count_tokens\n" . q!{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"one two three"}]}!]
--- response_body eval
['{"input_tokens":4}', '{"input_tokens":4}']
--- response_headers eval
["!X-AI-Token-Estimate", "!X-AI-Token-Estimate"]
--- no_error_log
[error]



=== TEST 4: bad requests in the Anthropic door's shape: no messages, not JSON, GET
--- http_config
    ai_target oa http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
--- config
    location /v1/ {
        ai_proxy oa;
    }
--- request eval
["POST /v1/messages/count_tokens\n" . q!{"model":"gpt-4o"}!,
 "POST /v1/messages/count_tokens\n{not json",
 "GET /v1/messages/count_tokens"]
--- error_code eval
[400, 400, 405]
--- response_body_like eval
[q!^\{"type":"error","error":\{"message":"'messages' is required","type":"invalid_request_error","param":"messages"!,
 q!^\{"type":"error","error":\{"message":"the request body is not valid JSON!,
 q!^\{"type":"error","error":\{"message":"method GET is not allowed for /v1/messages/count_tokens, use POST"!]
--- no_error_log
[error]



=== TEST 5: not cached, and no tokens of a token limit: counting runs no model
The prompt alone is over the limit of 10 tokens: a count that reserved
tokens would be refused (429); a cached one would not reach the mock again.
--- http_config
    ai_target an http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic;
    ai_store answers size=4m;
    ai_token_limit_zone tok key=$remote_addr;
    log_format ai '$ai_outcome_cache|$ai_outcome_limit|$status';
--- config
    location /v1/ {
        ai_proxy an;
        ai_cache answers;
        ai_token_limit tok 10 per=minute;
        access_log logs/access.log ai;
    }
    location /mock/ {
        access_log off;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request eval
["POST /mock/reset\n",
 "POST /v1/messages/count_tokens\n" . q!{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"a long prompt of many many words, more than ten tokens for sure"}]}!,
 "POST /v1/messages/count_tokens\n" . q!{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"a long prompt of many many words, more than ten tokens for sure"}]}!,
 "GET /mock/count"]
--- response_body_like eval
[q!reset!, q!^\{"input_tokens":14\}$!, q!^\{"input_tokens":14\}$!, q!^\{"requests":2\}$!]
--- access_log
-|-|200
--- no_error_log
[error]



=== TEST 6: the Anthropic SDK's messages.countTokens against an Anthropic and an OpenAI target
--- mock_args: -k sk-upstream-key-42
--- main_config
    env TEST_AI_UPSTREAM_KEY;
--- http_config
    ai_target oa http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 key=env:TEST_AI_UPSTREAM_KEY models=gpt-*;
    ai_target an http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic key=env:TEST_AI_UPSTREAM_KEY models=claude-*;
--- config
    location /v1/ {
        ai_proxy oa an;
    }
--- exec
for m in claude-sonnet-4-5 gpt-4o; do
  echo "== $m"
  node t/sdk/anthropic_count_tokens.mjs http://127.0.0.1:$TEST_NGINX_SERVER_PORT sk-client $m || exit 1
done
--- response_body_like
^== claude-sonnet-4-5
count: 9 estimate: no
== gpt-4o
count: \d+ estimate: true
$
--- no_error_log
sk-upstream-key-42
[error]
--- timeout: 30
