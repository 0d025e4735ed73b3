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



=== TEST 3: Anthropic SDK with thinking and tools, the reasoning carried back through a tool loop, to Anthropic, OpenAI and Gemini targets
The OpenAI target is an OpenAI-compatible server that sends its reasoning
(reasoning_content, the mock's reasoning_content=1).  Gemini's thought
signature goes back in the tool use id, Anthropic's signed thinking
block as it came: both mocks refuse the loop otherwise.
--- mock_args: -k sk-upstream-key-42
--- main_config
    env TEST_AI_UPSTREAM_KEY;
--- http_config
    ai_target oa http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 key=env:TEST_AI_UPSTREAM_KEY models=gpt-*;
    ai_target an http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic key=env:TEST_AI_UPSTREAM_KEY models=claude-*;
    ai_target ge http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=gemini key=env:TEST_AI_UPSTREAM_KEY models=gemini-*;
    log_format ai '$ai_provider $ai_stream $ai_completion_tokens $ai_reasoning_tokens';
--- config
    location /v1/ {
        ai_proxy oa an ge;
        access_log logs/access.log ai;
    }
--- exec
for m in claude-sonnet-4-5 'gpt-oss~reasoning_content=1' gemini-2.5-flash; do
  echo "== $m"
  node t/sdk/anthropic_thinking.mjs http://127.0.0.1:$TEST_NGINX_SERVER_PORT sk-client "$m" || exit 1
done
--- response_body
== claude-sonnet-4-5
create: [thinking,tool_use] thinking: "mock thinking: step one, step two." signed: true (tool_use) 18
create loop: mock reply: 21C (end_turn)
stream: [thinking,tool_use] thinking: "mock thinking: step one, step two." signed: true (tool_use) 18
stream thinking events: true
stream loop: mock reply: 21C (end_turn)
== gpt-oss~reasoning_content=1
create: [thinking,tool_use] thinking: "mock thinking: step one, step two." signed: true (tool_use) 18
create loop: mock reply: what is the weather in Paris? (end_turn)
stream: [thinking,tool_use] thinking: "mock thinking: step one, step two." signed: true (tool_use) 18
stream thinking events: true
stream loop: mock reply: what is the weather in Paris? (end_turn)
== gemini-2.5-flash
create: [thinking,tool_use] thinking: "mock thinking: step one, step two." signed: true (tool_use) 18
create loop: mock reply: 21C (end_turn)
stream: [thinking,tool_use] thinking: "mock thinking: step one, step two." signed: true (tool_use) 18
stream thinking events: true
stream loop: mock reply: 21C (end_turn)
--- access_log
anthropic false 18 0
openai false 18 6
gemini false 18 6
gemini true 18 6
gemini false 9 6
--- no_error_log
sk-upstream-key-42
[error]
--- timeout: 60



=== TEST 4: OpenAI SDK with reasoning_effort and a tool loop (the assistant message sent back as the SDK gave it) to Anthropic and Gemini targets; the cache's reads in cached_tokens
Anthropic reports no reasoning tokens apart (they are in output_tokens).
--- mock_args: -k sk-upstream-key-42
--- main_config
    env TEST_AI_UPSTREAM_KEY;
--- http_config
    ai_target an http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic key=env:TEST_AI_UPSTREAM_KEY models=claude-*;
    ai_target ge http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=gemini key=env:TEST_AI_UPSTREAM_KEY models=gemini-*;
--- config
    location /v1/ {
        ai_proxy an ge;
    }
--- exec
for m in 'claude-sonnet-4-5~cache_read=100' 'gemini-2.5-flash~cache_read=100'; do
  echo "== $m"
  node t/sdk/openai_reasoning.mjs http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1 sk-client "$m" || exit 1
done
--- response_body
== claude-sonnet-4-5~cache_read=100
create: reasoning: "mock thinking: step one, step two." calls: 1 (tool_calls) reasoning tokens: 0 cached: 100
loop: mock reply: 21C (stop)
stream: reasoning: "mock thinking: step one, step two." text: mock reply: hi reasoning tokens: 0
== gemini-2.5-flash~cache_read=100
create: reasoning: "mock thinking: step one, step two." calls: 1 (tool_calls) reasoning tokens: 6 cached: 100
loop: mock reply: 21C (stop)
stream: reasoning: "mock thinking: step one, step two." text: mock reply: hi reasoning tokens: 6
--- no_error_log
sk-upstream-key-42
[error]
--- timeout: 60
