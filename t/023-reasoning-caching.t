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
