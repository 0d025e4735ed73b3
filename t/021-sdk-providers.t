# The official SDKs through both doors to each provider the mock speaks:
# the OpenAI SDK (plain, stream with usage, streamed tool calls) and the
# Anthropic SDK (create, stream, tool use) against OpenAI, Anthropic and
# Gemini targets, translated both ways.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_AI_UPSTREAM_KEY} = 'sk-upstream-key-42';
run_tests();

__DATA__

=== TEST 1: OpenAI SDK to OpenAI, Anthropic and Gemini targets
--- mock_args: -k sk-upstream-key-42
--- main_config
    env TEST_AI_UPSTREAM_KEY;
--- http_config
    ai_target oa http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 key=env:TEST_AI_UPSTREAM_KEY models=gpt-*;
    ai_target an http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic key=env:TEST_AI_UPSTREAM_KEY models=claude-*;
    ai_target ge http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=gemini key=env:TEST_AI_UPSTREAM_KEY models=gemini-*;
    log_format ai '$ai_provider $ai_stream $ai_prompt_tokens $ai_completion_tokens';
--- config
    location /v1/ {
        ai_proxy oa an ge;
        access_log logs/access.log ai;
    }
--- exec
for m in gpt-4o claude-3-5-haiku gemini-2.0-flash; do
  echo "== $m"
  node t/sdk/openai_providers.mjs http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1 sk-client $m || exit 1
done
--- response_body
== gpt-4o
plain: mock reply: hello from the sdk (stop)
plain usage: 9 6 15
stream: mock reply: stream me please (stop)
stream usage: 4 5 9
tool: get_weather {"location":"Paris","unit":"celsius"} (tool_calls)
== claude-3-5-haiku
plain: mock reply: hello from the sdk (stop)
plain usage: 9 6 15
stream: mock reply: stream me please (stop)
stream usage: 4 5 9
tool: get_weather {"location":"Paris","unit":"celsius"} (tool_calls)
== gemini-2.0-flash
plain: mock reply: hello from the sdk (stop)
plain usage: 9 6 15
stream: mock reply: stream me please (stop)
stream usage: 4 5 9
tool: get_weather {"location":"Paris","unit":"celsius"} (tool_calls)
--- access_log
openai false 9 6
anthropic false 9 6
anthropic true 4 5
gemini false 9 6
gemini true 4 5
--- no_error_log
sk-upstream-key-42
[error]
--- timeout: 60



=== TEST 2: Anthropic SDK to OpenAI, Anthropic and Gemini targets
--- mock_args: -k sk-upstream-key-42
--- main_config
    env TEST_AI_UPSTREAM_KEY;
--- http_config
    ai_target oa http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 key=env:TEST_AI_UPSTREAM_KEY models=gpt-*;
    ai_target an http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic key=env:TEST_AI_UPSTREAM_KEY models=claude-*;
    ai_target ge http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=gemini key=env:TEST_AI_UPSTREAM_KEY models=gemini-*;
    log_format ai '$ai_endpoint $ai_provider $ai_stream $ai_prompt_tokens $ai_completion_tokens';
--- config
    location /v1/ {
        ai_proxy oa an ge;
        access_log logs/access.log ai;
    }
--- exec
for m in gpt-4o claude-3-5-haiku gemini-2.0-flash; do
  echo "== $m"
  node t/sdk/anthropic_providers.mjs http://127.0.0.1:$TEST_NGINX_SERVER_PORT sk-client $m || exit 1
done
--- response_body
== gpt-4o
create: mock reply: hello from anthropic (end_turn) 7 5
stream: mock reply: stream this (end_turn) deltas>1: true 4
tool: get_weather {"location":"Paris","unit":"celsius"} (tool_use)
== claude-3-5-haiku
create: mock reply: hello from anthropic (end_turn) 7 5
stream: mock reply: stream this (end_turn) deltas>1: true 4
tool: get_weather {"location":"Paris","unit":"celsius"} (tool_use)
== gemini-2.0-flash
create: mock reply: hello from anthropic (end_turn) 7 5
stream: mock reply: stream this (end_turn) deltas>1: true 4
tool: get_weather {"location":"Paris","unit":"celsius"} (tool_use)
--- access_log
messages openai false 7 5
messages openai true 3 4
messages gemini true 3 4
--- no_error_log
sk-upstream-key-42
[error]
--- timeout: 60
