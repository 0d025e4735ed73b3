# Prompt caching across formats: cached and cache-write tokens kept apart
# in the usage, translated between the doors, priced each at its own rate
# (the providers' arithmetic), cache_control carried to Anthropic targets
# and dropped where a target has no equivalent.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: Anthropic door to Anthropic: cache reads and writes priced by Anthropic's arithmetic, cache_control intact
Sonnet's published prices: input $3, 5-minute cache writes $3.75 (1.25x),
cache hits $0.30 (0.1x), output $15 per million tokens.  The mock's
prompt is 4 tokens (the words "MANUAL" and "hi", the system and one
message) beyond the cache's 2000 read and 1000 written, the answer 3
("mock reply: hi"): 4 x 3 + 2000 x 0.30 + 1000 x 3.75 + 3 x 15 = 4407
micro-dollars; streamed, without the system, 2 x 3 + ... = 4401.
--- http_config
    ai_target an http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic;
    ai_price "claude-*" input=3 output=15 cached=0.30 cache_write=3.75;
    log_format ai '$ai_prompt_tokens $ai_cached_tokens $ai_cache_write_tokens $ai_completion_tokens $ai_cost';
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
["POST /v1/messages\n{\"model\":\"claude-sonnet-4-5~cache_read=2000,cache_write=1000\",\"max_tokens\":100,\"system\":[{\"type\":\"text\",\"text\":\"MANUAL\",\"cache_control\":{\"type\":\"ephemeral\"}}],\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
 "GET /mock/last",
 "POST /v1/messages\n{\"model\":\"claude-sonnet-4-5~cache_read=2000,cache_write=1000\",\"max_tokens\":100,\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"]
--- response_body_like eval
["\"usage\":\\{\"input_tokens\":4,\"cache_creation_input_tokens\":1000,\"cache_read_input_tokens\":2000,\"output_tokens\":3\\}",
 "\\\\\"system\\\\\":\\[\\{\\\\\"type\\\\\":\\\\\"text\\\\\",\\\\\"text\\\\\":\\\\\"MANUAL\\\\\",\\\\\"cache_control\\\\\":\\{\\\\\"type\\\\\":\\\\\"ephemeral\\\\\"\\}\\}\\]",
 "event: message_start\n.*\"cache_creation_input_tokens\":1000,\"cache_read_input_tokens\":2000.*event: message_stop\n"]
--- access_log
3004 2000 1000 3 0.004407
3002 2000 1000 3 0.004401
--- no_error_log
[error]



=== TEST 2: without cache rates, the cache's tokens cost the input rate (as before)
2 x 3 + 2000 x 3 + 1000 x 3 + 3 x 15 = 9051
--- http_config
    ai_target an http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic;
    ai_price "claude-*" input=3 output=15;
    log_format ai '$ai_prompt_tokens $ai_cached_tokens $ai_cache_write_tokens $ai_cost';
--- config
    location /v1/ {
        ai_proxy an;
        access_log logs/access.log ai;
    }
--- request
POST /v1/messages
{"model":"claude-sonnet-4-5~cache_read=2000,cache_write=1000","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}
--- response_body_like
"cache_read_input_tokens":2000
--- access_log
3002 2000 1000 0.009051
--- no_error_log
[error]



=== TEST 3: OpenAI door to Anthropic: the cache's reads in cached_tokens, counted once in prompt_tokens; cache_control of parts, messages and tools carried over
--- http_config
    ai_target an http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic;
    ai_price "claude-*" input=3 output=15 cached=0.30 cache_write=3.75;
    log_format ai '$ai_prompt_tokens $ai_cached_tokens $ai_cache_write_tokens $ai_cost';
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
["POST /v1/chat/completions\n{\"model\":\"claude-sonnet-4-5~cache_read=2000,cache_write=1000\",\"messages\":[{\"role\":\"system\",\"content\":[{\"type\":\"text\",\"text\":\"MANUAL\",\"cache_control\":{\"type\":\"ephemeral\"}}]},{\"role\":\"user\",\"content\":\"hi\",\"cache_control\":{\"type\":\"ephemeral\",\"ttl\":\"1h\"}}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"},\"cache_control\":{\"type\":\"ephemeral\"}}]}",
 "GET /mock/last",
 "POST /v1/chat/completions\n{\"model\":\"claude-sonnet-4-5~cache_read=2000,cache_write=1000\",\"stream\":true,\"stream_options\":{\"include_usage\":true},\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"]
--- response_body_like eval
["\"usage\":\\{\"prompt_tokens\":3004,\"completion_tokens\":3,\"total_tokens\":3007,\"prompt_tokens_details\":\\{\"cached_tokens\":2000\\}",
 "\\\\\"system\\\\\":\\[\\{\\\\\"type\\\\\":\\\\\"text\\\\\",\\\\\"text\\\\\":\\\\\"MANUAL\\\\\",\\\\\"cache_control\\\\\":\\{\\\\\"type\\\\\":\\\\\"ephemeral\\\\\"\\}\\}\\].*\\\\\"content\\\\\":\\[\\{\\\\\"type\\\\\":\\\\\"text\\\\\",\\\\\"text\\\\\":\\\\\"hi\\\\\",\\\\\"cache_control\\\\\":\\{\\\\\"type\\\\\":\\\\\"ephemeral\\\\\",\\\\\"ttl\\\\\":\\\\\"1h\\\\\"\\}\\}\\].*\\\\\"tools\\\\\":\\[\\{\\\\\"name\\\\\":\\\\\"f\\\\\",.*\\\\\"cache_control\\\\\":\\{\\\\\"type\\\\\":\\\\\"ephemeral\\\\\"\\}\\}\\]",
 "\"choices\":\\[\\],.*\"usage\":\\{\"prompt_tokens\":3002,\"completion_tokens\":3,\"total_tokens\":3005,\"prompt_tokens_details\":\\{\"cached_tokens\":2000\\}.*data: \\[DONE\\]"]
--- access_log
3004 2000 1000 0.004407
3002 2000 1000 0.004401
--- no_error_log
[error]



=== TEST 4: Anthropic door to OpenAI: OpenAI's cached_tokens become cache_read_input_tokens, out of input_tokens; priced once
gpt-4o: input $2.50, cached $1.25, output $10 per million tokens; the
prompt is 4 tokens beyond the 1024 cached:
4 x 2.50 + 1024 x 1.25 + 3 x 10 = 1320 micro-dollars (streamed, without
the system: 1315).
--- http_config
    ai_target oa http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    ai_price "gpt-4o*" input=2.50 output=10 cached=1.25;
    log_format ai '$ai_prompt_tokens $ai_cached_tokens $ai_cache_write_tokens $ai_cost';
--- config
    location /v1/ {
        ai_proxy oa;
        access_log logs/access.log ai;
    }
    location /mock/ {
        access_log off;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request eval
["POST /v1/messages\n{\"model\":\"gpt-4o~cache_read=1024\",\"max_tokens\":100,\"system\":[{\"type\":\"text\",\"text\":\"MANUAL\",\"cache_control\":{\"type\":\"ephemeral\"}}],\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
 "GET /mock/last",
 "POST /v1/messages\n{\"model\":\"gpt-4o~cache_read=1024\",\"max_tokens\":100,\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"]
--- response_body_like eval
["\"usage\":\\{\"input_tokens\":4,\"output_tokens\":3,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":1024\\}",
 "^(?!.*cache_control).*\"body\":",
 "event: message_delta\n.*\"input_tokens\":2,\"output_tokens\":3,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":1024"]
--- access_log
1028 1024 0 0.001320
1026 1024 0 0.001315
--- no_error_log
[error]



=== TEST 5: Gemini target: cachedContentTokenCount in the OpenAI door's cached_tokens; cache_control dropped
2 x 0.30 + 1000 x 0.03 + 3 x 2.50 = 38.1 micro-dollars (all at the input
rate: 308.1)
--- http_config
    ai_target ge http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=gemini;
    ai_price "gemini-*" input=0.30 output=2.50 cached=0.03;
    log_format ai '$ai_prompt_tokens $ai_cached_tokens $ai_cache_write_tokens $ai_cost';
--- config
    location /v1/ {
        ai_proxy ge;
        access_log logs/access.log ai;
    }
    location /mock/ {
        access_log off;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request eval
["POST /v1/chat/completions\n{\"model\":\"gemini-2.5-flash~cache_read=1000\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\",\"cache_control\":{\"type\":\"ephemeral\"}}]}]}",
 "GET /mock/last"]
--- response_body_like eval
["\"usage\":\\{\"prompt_tokens\":1002,\"completion_tokens\":3,\"total_tokens\":1005,\"prompt_tokens_details\":\\{\"cached_tokens\":1000\\}",
 "^(?!.*cache_control).*\"body\":"]
--- access_log
1002 1000 0 0.000038
--- no_error_log
[error]



=== TEST 6: a bad cache_write price is named by nginx -t
--- http_config
    ai_price gpt-4o input=1 output=1 cache_write=1.2345678;
--- config
    location /v1/ { ai_core on; }
--- must_die
--- error_log
ai_price "gpt-4o": invalid price "cache_write=1.2345678"



=== TEST 7: Anthropic door to Anthropic: thinking, and its block with the signature back intact through a tool loop
The mock checks, as Anthropic does, that the assistant turn before tool
results starts with a thinking block whose signature is the one given.
--- http_config
    ai_target an http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic;
--- config
    location /v1/ {
        ai_proxy an;
    }
--- request eval
my $t = q{"tools":[{"name":"get_weather","input_schema":{"type":"object"}}]};
my $think = q{"thinking":{"type":"enabled","budget_tokens":2048}};
["POST /v1/messages\n" . qq{{"model":"claude-sonnet-4-5","max_tokens":4096,$think,$t,"messages":[{"role":"user","content":"weather in Paris?"}]}},
 "POST /v1/messages\n" . qq{{"model":"claude-sonnet-4-5","max_tokens":4096,$think,$t,"messages":[{"role":"user","content":"weather in Paris?"},{"role":"assistant","content":[{"type":"thinking","thinking":"mock thinking: step one, step two.","signature":"bW9jay1zaWduYXR1cmUtYW50aHJvcGlj"},{"type":"tool_use","id":"toolu_mock_1","name":"get_weather","input":{"location":"Paris"}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_mock_1","content":"21C"}]}]}},
 "POST /v1/messages\n" . qq{{"model":"claude-sonnet-4-5","max_tokens":4096,$think,$t,"messages":[{"role":"user","content":"weather in Paris?"},{"role":"assistant","content":[{"type":"tool_use","id":"toolu_mock_1","name":"get_weather","input":{"location":"Paris"}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_mock_1","content":"21C"}]}]}},
 "POST /v1/messages\n" . qq{{"model":"claude-sonnet-4-5","max_tokens":4096,"stream":true,$think,"messages":[{"role":"user","content":"hi"}]}}]
--- error_code eval
[200, 200, 400, 200]
--- response_body_like eval
[q!"content":\[\{"type":"thinking","thinking":"mock thinking: step one, step two.","signature":"bW9jay1zaWduYXR1cmUtYW50aHJvcGlj"\},\{"type":"tool_use"!,
 q!"content":\[\{"type":"thinking",.*\{"type":"text","text":"mock reply: 21C"\}\],"stop_reason":"end_turn"!,
 q!Expected `thinking` or `redacted_thinking`, but found `tool_use`!,
 q!"content_block":\{"type":"thinking","thinking":"","signature":""\}.*"thinking_delta","thinking":"mock ".*"signature_delta","signature":"bW9jay1zaWduYXR1cmUtYW50aHJvcGlj".*"index":1,"delta":\{"type":"text_delta"!]
--- no_error_log
[error]



=== TEST 8: OpenAI door to Anthropic: reasoning_effort as a thinking budget; the thinking as reasoning_content and thinking_blocks, which the client sends back
medium is 8192 tokens: max_tokens goes above it, temperature is left out
(the mock refuses both otherwise, as Anthropic does).  A tool loop whose
assistant turn came back without its thinking_blocks goes without
thinking (Anthropic would refuse it).
--- http_config
    ai_target an http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic;
    log_format ai '$ai_completion_tokens $ai_reasoning_tokens';
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
my $t = q{"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]};
["POST /v1/chat/completions\n" . qq{{"model":"claude-sonnet-4-5","max_tokens":1000,"temperature":0.3,"reasoning_effort":"medium",$t,"messages":[{"role":"user","content":"weather in Paris?"}]}},
 "GET /mock/last",
 "POST /v1/chat/completions\n" . qq{{"model":"claude-sonnet-4-5","reasoning_effort":"medium",$t,"messages":[{"role":"user","content":"weather in Paris?"},{"role":"assistant","content":null,"reasoning_content":"mock thinking: step one, step two.","thinking_blocks":[{"type":"thinking","thinking":"mock thinking: step one, step two.","signature":"bW9jay1zaWduYXR1cmUtYW50aHJvcGlj"}],"tool_calls":[{"id":"toolu_mock_1","type":"function","function":{"name":"get_weather","arguments":"{}"}}]},{"role":"tool","tool_call_id":"toolu_mock_1","content":"21C"}]}},
 "POST /v1/chat/completions\n" . qq{{"model":"claude-sonnet-4-5","stream":true,"reasoning_effort":"low","messages":[{"role":"user","content":"hi"}]}},
 "POST /v1/chat/completions\n" . qq{{"model":"claude-sonnet-4-5","reasoning_effort":"medium",$t,"messages":[{"role":"user","content":"weather in Paris?"},{"role":"assistant","content":null,"tool_calls":[{"id":"toolu_mock_1","type":"function","function":{"name":"get_weather","arguments":"{}"}}]},{"role":"tool","tool_call_id":"toolu_mock_1","content":"21C"}]}},
 "GET /mock/last"]
--- response_body_like eval
[q!"message":\{"role":"assistant","content":null,"tool_calls":\[\{"id":"toolu_mock_1".*"thinking_blocks":\[\{"type":"thinking","thinking":"mock thinking: step one, step two.","signature":"bW9jay1zaWduYXR1cmUtYW50aHJvcGlj"\}\],"reasoning_content":"mock thinking: step one, step two."!,
 q!\\\\"max_tokens\\\\":9192,.*\\\\"thinking\\\\":\{\\\\"type\\\\":\\\\"enabled\\\\",\\\\"budget_tokens\\\\":8192\}!,
 q!"content":"mock reply: 21C","refusal":null,"thinking_blocks"!,
 q!"delta":\{"reasoning_content":"mock "\}.*"delta":\{"thinking_blocks":\[\{"type":"thinking","thinking":"","signature":"bW9jay1zaWduYXR1cmUtYW50aHJvcGlj"\}\]\}.*"delta":\{"content":"mock "\}.*data: \[DONE\]!,
 q!"content":"mock reply: 21C","refusal":null\}!,
 q!"uri":"/v1/messages"!]
--- response_body_unlike eval
[q!\A\z!, q!temperature!, q!\A\z!, q!\A\z!, q!thinking!, q!thinking!]
--- no_error_log
[error]



=== TEST 9: Anthropic door to Gemini: thinking as thinkingConfig, thoughts as a thinking block, the thought signature carried back in the tool use id
The mock refuses, as Gemini 3 does, a model turn whose first function
call lacks the signature it was given.
--- http_config
    ai_target ge http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=gemini;
    log_format ai '$ai_completion_tokens $ai_reasoning_tokens';
--- config
    location /v1/ {
        ai_proxy ge;
        access_log logs/access.log ai;
    }
    location /mock/ {
        access_log off;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request eval
my $t = q{"tools":[{"name":"get_weather","input_schema":{"type":"object"}}]};
my $think = q{"thinking":{"type":"enabled","budget_tokens":3000}};
my $id = "gts19_bW9jay90aG91Z2h0-_8call_mock1_0";
["POST /v1/messages\n" . qq{{"model":"gemini-2.5-flash","max_tokens":4096,$think,$t,"messages":[{"role":"user","content":"weather in Paris?"}]}},
 "GET /mock/last",
 "POST /v1/messages\n" . qq{{"model":"gemini-2.5-flash","max_tokens":4096,$think,$t,"messages":[{"role":"user","content":"weather in Paris?"},{"role":"assistant","content":[{"type":"thinking","thinking":"mock thinking: step one, step two.","signature":""},{"type":"tool_use","id":"$id","name":"get_weather","input":{"location":"Paris"}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"$id","content":"21C"}]}]}},
 "GET /mock/last",
 "POST /v1/messages\n" . qq{{"model":"gemini-2.5-flash","max_tokens":4096,$think,$t,"messages":[{"role":"user","content":"weather in Paris?"},{"role":"assistant","content":[{"type":"tool_use","id":"call_x","name":"get_weather","input":{"location":"Paris"}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"call_x","content":"21C"}]}]}},
 "POST /v1/messages\n" . qq{{"model":"gemini-2.5-flash","max_tokens":4096,"stream":true,$think,"messages":[{"role":"user","content":"hi"}]}}]
--- error_code eval
[200, 200, 200, 200, 400, 200]
--- response_body_like eval
[q!"content":\[\{"type":"thinking","thinking":"mock thinking: step one, step two.","signature":""\},\{"type":"tool_use","id":"gts19_bW9jay90aG91Z2h0-_8call_mock\d+_0","name":"get_weather"!,
 q!\\\\"generationConfig\\\\":\{\\\\"maxOutputTokens\\\\":4096,\\\\"thinkingConfig\\\\":\{\\\\"thinkingBudget\\\\":3000,\\\\"includeThoughts\\\\":true\}\}!,
 q!"content":\[\{"type":"thinking","thinking":"mock thinking: step one, step two.","signature":""\},\{"type":"text","text":"mock reply: 21C"\}\]!,
 q!\{\\\\"functionCall\\\\":\{\\\\"name\\\\":\\\\"get_weather\\\\",\\\\"args\\\\":\{\\\\"location\\\\":\\\\"Paris\\\\"\}\},\\\\"thoughtSignature\\\\":\\\\"bW9jay90aG91Z2h0\+/8=\\\\"\}!,
 q!"type":"error","error":\{"type":"invalid_request_error","message":"Function call is missing a thought_signature!,
 q!"content_block":\{"type":"thinking","thinking":"","signature":""\}\}.*"thinking_delta","thinking":"mock thinking: step one, step two."\}.*"index":1,"delta":\{"type":"text_delta","text":"mock "!]
--- access_log
18 6
9 6
--- no_error_log
[error]



=== TEST 10: OpenAI door to Gemini: reasoning_effort low as a 1024-token budget, the thoughts as reasoning_content, reasoning tokens in the usage
--- http_config
    ai_target ge http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=gemini;
    log_format ai '$ai_completion_tokens $ai_reasoning_tokens';
--- config
    location /v1/ {
        ai_proxy ge;
        access_log logs/access.log ai;
    }
    location /mock/ {
        access_log off;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request eval
["POST /v1/chat/completions\n" . q{{"model":"gemini-2.5-flash","reasoning_effort":"low","messages":[{"role":"user","content":"hi"}]}},
 "GET /mock/last",
 "POST /v1/chat/completions\n" . q{{"model":"gemini-2.5-flash","reasoning_effort":"none","messages":[{"role":"user","content":"hi"}]}},
 "GET /mock/last"]
--- response_body_like eval
[q!"content":"mock reply: hi","refusal":null,"reasoning_content":"mock thinking: step one, step two."\},"logprobs":null,"finish_reason":"stop"\}\],"usage":\{"prompt_tokens":2,"completion_tokens":9,"total_tokens":11,"prompt_tokens_details":\{"cached_tokens":0\},"completion_tokens_details":\{"reasoning_tokens":6\}\}!,
 q!\\\\"thinkingConfig\\\\":\{\\\\"thinkingBudget\\\\":1024,\\\\"includeThoughts\\\\":true\}!,
 q!"content":"mock reply: hi","refusal":null\},.*"reasoning_tokens":0!,
 q!\\\\"thinkingConfig\\\\":\{\\\\"thinkingBudget\\\\":0\}!]
--- access_log
9 6
3 0
--- no_error_log
[error]



=== TEST 11: Anthropic door to OpenAI: a thinking budget as reasoning_effort, an OpenAI-compatible server's reasoning_content as a thinking block
10000 tokens is nearest "medium"; the reasoning tokens are in the usage
(OpenAI's completion tokens count them).
--- http_config
    ai_target oa http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    log_format ai '$ai_completion_tokens $ai_reasoning_tokens';
--- config
    location /v1/ {
        ai_proxy oa;
        access_log logs/access.log ai;
    }
    location /mock/ {
        access_log off;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request eval
my $think = q{"thinking":{"type":"enabled","budget_tokens":10000}};
["POST /v1/messages\n" . qq{{"model":"o4-mini","max_tokens":16000,$think,"messages":[{"role":"user","content":"hi"}]}},
 "GET /mock/last",
 "POST /v1/messages\n" . qq{{"model":"deepseek-r1~reasoning_content=1","max_tokens":16000,$think,"messages":[{"role":"user","content":"hi"}]}},
 "POST /v1/messages\n" . qq{{"model":"deepseek-r1~reasoning_content=1","max_tokens":16000,"stream":true,$think,"messages":[{"role":"user","content":"hi"}]}}]
--- response_body_like eval
[q!"content":\[\{"type":"text","text":"mock reply: hi"\}\]!,
 q!\\\\"reasoning_effort\\\\":\\\\"medium\\\\"!,
 q!"content":\[\{"type":"thinking","thinking":"mock thinking: step one, step two.","signature":""\},\{"type":"text","text":"mock reply: hi"\}\]!,
 q!"content_block":\{"type":"thinking","thinking":"","signature":""\}\}.*"thinking_delta","thinking":"mock "\}.*"content_block_stop","index":0.*"index":1,"content_block":\{"type":"text"!]
--- response_body_unlike eval
[q!\A\z!, q!\\\\"thinking\\\\"!, q!\A\z!, q!\A\z!]
--- access_log
9 6
--- no_error_log
[error]
