# The official SDKs (npm openai and @anthropic-ai/sdk, pinned in
# t/sdk/package.json) drive the gateway.  The mock provider only accepts
# the gateway's upstream key, so a forwarded client key would fail.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_AI_UPSTREAM_KEY} = 'sk-upstream-key-42';
run_tests();

__DATA__

=== TEST 1: OpenAI SDK: chat.completions.create, plain and streamed with usage
--- mock_args: -k sk-upstream-key-42
--- main_config
    env TEST_AI_UPSTREAM_KEY;
--- http_config
    ai_consumer app sk-client-app-0001;
    log_format ai '$ai_consumer $ai_model $ai_stream $ai_prompt_tokens $ai_completion_tokens $ai_total_tokens';
    upstream mock {
        server 127.0.0.1:$TEST_NGINX_MOCK_PORT;
        keepalive 4;
    }
--- config
    location /v1/ {
        ai_auth required;
        ai_proxy_pass http://mock/v1;
        ai_proxy_key env:TEST_AI_UPSTREAM_KEY;
        access_log logs/access.log ai;
    }
--- exec
node t/sdk/openai_chat.mjs http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1 sk-client-app-0001
--- response_body
plain: mock reply: hello from the sdk
plain finish: stop
plain usage: 9 6 15
stream: mock reply: stream me please
stream finish: stop chunks>3: true
stream usage: 4 5 9
--- access_log
app gpt-4o false 9 6 15
app gpt-4o true 4 5 9
--- no_error_log
sk-client-app-0001
sk-upstream-key-42
[error]
--- timeout: 30



=== TEST 2: OpenAI SDK: the gateway's errors arrive as typed API errors
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
    }
--- exec
node t/sdk/openai_errors.mjs http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1 sk-client-app-0001
--- response_body
bad key: AuthenticationError 401 authentication_error: invalid API key
bad messages: BadRequestError 400 invalid_request_error: 'messages' must be an array
cut stream: APIError - api_error: the upstream stream ended before it was complete
--- error_log
the upstream stream ended before its terminal event
--- no_error_log
sk-client-app-0001
sk-upstream-key-42
--- timeout: 30



=== TEST 3: Anthropic SDK: messages.create and messages.stream through the core
--- mock_args: -k sk-upstream-key-42
--- http_config
    ai_consumer app sk-client-app-0001;
    log_format ai '$ai_consumer $ai_endpoint $ai_stream $ai_prompt_tokens $ai_completion_tokens';
--- config
    location /v1/ {
        ai_core on;
        ai_auth required;
        access_log logs/access.log ai;
        proxy_buffering off;
        proxy_set_header x-api-key sk-upstream-key-42;
        proxy_set_header Authorization "";
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- exec
node t/sdk/anthropic_messages.mjs http://127.0.0.1:$TEST_NGINX_SERVER_PORT sk-client-app-0001
--- response_body
create: mock reply: hello from anthropic (end_turn)
create usage: 7 5
stream: mock reply: stream this (end_turn) deltas>1: true
stream usage: 3 4
--- access_log
app messages false 7 5
app messages true 3 4
--- no_error_log
[error]
--- timeout: 30



=== TEST 4: a cache hit rendered by the core's format layer, no upstream: both SDKs, plain and streamed
--- http_config
    log_format ai '$uri $ai_stream $ai_total_tokens $ai_usage_source';
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:1/v1;
        ai_test_stage cache 'render={"id":"chatcmpl-cached","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"from the cache, rendered in pieces of a few words for each door"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}';
        access_log logs/access.log ai;
    }
--- exec
node t/sdk/openai_chat.mjs http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1 sk-any
node t/sdk/anthropic_messages.mjs http://127.0.0.1:$TEST_NGINX_SERVER_PORT sk-any
--- response_body
plain: from the cache, rendered in pieces of a few words for each door
plain finish: stop
plain usage: 3 4 7
stream: from the cache, rendered in pieces of a few words for each door
stream finish: stop chunks>3: true
stream usage: 3 4 7
create: from the cache, rendered in pieces of a few words for each door (end_turn)
create usage: 3 4
stream: from the cache, rendered in pieces of a few words for each door (end_turn) deltas>1: true
stream usage: 3 4
--- access_log
/v1/chat/completions false 7 provider
/v1/chat/completions true 7 provider
/v1/messages false 7 provider
/v1/messages true 7 provider
--- no_error_log
[error]
[warn]
--- timeout: 30
