# The core's response side on a plain proxy_pass to an OpenAI-compatible
# (and Anthropic, Gemini) upstream: usage from plain JSON and SSE, TTFT,
# the stream passing through unchanged and unbuffered.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: plain chat completion: tokens in the access log
--- http_config
    log_format ai '$ai_model $ai_stream $ai_prompt_tokens $ai_completion_tokens $ai_total_tokens ttft=$ai_ttft';
--- config
    location /v1/ {
        ai_core on;
        access_log logs/access.log ai;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":[{"role":"user","content":"hello there"}]}
--- response_body_like
"content":"mock reply: hello there"
--- access_log_like
^gpt-4o false 3 4 7 ttft=\d+\.\d{3}$
--- no_error_log
[error]



=== TEST 2: streamed with include_usage: tokens counted, stream unchanged
--- http_config
    log_format ai '$ai_model $ai_stream $ai_prompt_tokens $ai_completion_tokens $ai_total_tokens';
--- config
    location /v1/ {
        ai_core on;
        access_log logs/access.log ai;
        proxy_buffering off;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"one two three"}]}
--- response_headers_like
Content-Type: ^text/event-stream
--- response_body_like
^data: \{"id":"chatcmpl-mock\d+","object":"chat.completion.chunk".*"usage":\{"prompt_tokens":7,"completion_tokens":5,"total_tokens":12.*\n\ndata: \[DONE\]\n\n$
--- access_log
gpt-4o true 7 5 12
--- no_error_log
[error]



=== TEST 3: no usage asked, none reported: tokens are "-"
--- http_config
    log_format ai '$ai_model $ai_prompt_tokens $ai_total_tokens';
--- config
    location /v1/ {
        ai_core on;
        access_log logs/access.log ai;
        proxy_buffering off;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}
--- response_body_like
data: \[DONE\]
--- access_log
gpt-4o - -
--- no_error_log
[error]



=== TEST 4: TTFT is the time to the first body byte, not to the end
--- http_config
    log_format ai 'ttft=$ai_ttft total=$ai_response_time';
--- config
    location /v1/ {
        ai_core on;
        access_log logs/access.log ai;
        proxy_buffering off;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o~delay_headers_ms=200,delay_chunks_ms=100","stream":true,"messages":[{"role":"user","content":"a b c d"}]}
--- response_body_like
data: \[DONE\]
--- access_log_like
^ttft=0\.(1\d\d|2\d\d|3\d\d) total=(0\.[6-9]\d\d|1\.\d\d\d)$
--- no_error_log
[error]



=== TEST 5: garbage in the stream is skipped, usage still counted
--- http_config
    log_format ai '$ai_prompt_tokens $ai_completion_tokens';
--- config
    location /v1/ {
        ai_core on;
        access_log logs/access.log ai;
        proxy_buffering off;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o~garbage_sse=1","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}
--- response_body_like
data: \{not json
--- access_log
2 3
--- no_error_log
[error]



=== TEST 6: Anthropic messages (plain and streamed) on proxy_pass
--- http_config
    log_format ai '$ai_endpoint $ai_model $ai_stream $ai_prompt_tokens $ai_completion_tokens $ai_total_tokens';
--- config
    location /v1/ {
        ai_core on;
        access_log logs/access.log ai;
        proxy_buffering off;
        proxy_set_header anthropic-version 2023-06-01;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request eval
["POST /v1/messages\n{\"model\":\"claude-3-5-haiku\",\"max_tokens\":100,\"messages\":[{\"role\":\"user\",\"content\":\"hello world\"}]}",
 "POST /v1/messages\n{\"model\":\"claude-3-5-haiku\",\"max_tokens\":100,\"stream\":true,\"system\":\"be kind\",\"messages\":[{\"role\":\"user\",\"content\":\"hello world\"}]}"]
--- response_body_like eval
["\"type\":\"message\"", "event: message_stop\ndata: \\{\"type\":\"message_stop\"\\}\n\n\$"]
--- access_log
messages claude-3-5-haiku false 3 4 7
messages claude-3-5-haiku true 6 4 10
--- no_error_log
[error]



=== TEST 7: Gemini generateContent and streamGenerateContent on proxy_pass
--- http_config
    log_format ai '$ai_endpoint $ai_model $ai_prompt_tokens $ai_completion_tokens $ai_total_tokens';
--- config
    location /v1beta/ {
        ai_core on;
        access_log logs/access.log ai;
        proxy_buffering off;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request eval
["POST /v1beta/models/gemini-2.0-flash:generateContent\n{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hello world\"}]}]}",
 "POST /v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse\n{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hello world\"}]}]}"]
--- response_body_like eval
["\"usageMetadata\"", "finishReason"]
--- access_log
generate_content gemini-2.0-flash 3 4 7
generate_content gemini-2.0-flash 3 4 7
--- no_error_log
[error]



=== TEST 8: embeddings usage
--- http_config
    log_format ai '$ai_endpoint $ai_model $ai_prompt_tokens $ai_total_tokens';
--- config
    location /v1/ {
        ai_core on;
        access_log logs/access.log ai;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request
POST /v1/embeddings
{"model":"text-embedding-3-small","input":["the quick brown fox","jumps"]}
--- response_body_like
"object":"embedding"
--- access_log
embeddings text-embedding-3-small 5 5
--- no_error_log
[error]



=== TEST 9: a response spilled to a temporary file by proxy buffering
--- http_config
    log_format ai '$ai_prompt_tokens $ai_completion_tokens';
--- config
    location /v1/ {
        ai_core on;
        access_log logs/access.log ai;
        proxy_buffer_size 4k;
        proxy_buffers 2 4k;
        proxy_busy_buffers_size 4k;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o~words=3000","messages":[{"role":"user","content":"long please"}]}
--- response_body_like
w2999 w3000"
--- access_log
3 3000
--- no_error_log
[error]



=== TEST 10: a plain body over ai_response_max_size is passed, not parsed
--- http_config
    log_format ai '$ai_model $ai_total_tokens';
--- config
    location /v1/ {
        ai_core on;
        ai_response_max_size 1k;
        access_log logs/access.log ai;
        proxy_buffer_size 512;
        proxy_buffering off;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o~words=500","messages":[{"role":"user","content":"x"}]}
--- response_body_like
w500"
--- access_log
gpt-4o~words=500 -
--- error_log
response body is larger than ai_response_max_size
--- no_error_log
[error]



=== TEST 11: the upstream cut the stream: the client gets an error event, not a silent end
--- http_config
    log_format ai '$ai_model [$ai_total_tokens] $status';
--- config
    location /v1/ {
        ai_core on;
        access_log logs/access.log ai;
        proxy_buffering off;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o~disconnect_after=2","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"a b c d e"}]}
--- response_body_like
"content":"mock ".*\n\nevent: error\ndata: \{"error":\{"message":"the upstream stream ended before it was complete","type":"api_error","param":null,"code":"stream_truncated"\}\}\n\n$
--- response_body_unlike
\[DONE\]
--- access_log
gpt-4o~disconnect_after=2 [-] 200
--- error_log eval
# NGINX 1.23+ also logs the cut itself as an [error] ("upstream prematurely
# closed connection"); 1.22 does not: the second pattern allows it on both
[qr/\[warn\].*the upstream stream ended before its terminal event/,
 qr/\[warn\]|\[error\] .*upstream prematurely closed connection/]



=== TEST 12: a 502 from proxy_pass on an AI route is JSON
--- config
    location /v1/ {
        ai_core on;
        proxy_pass http://127.0.0.1:1;
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}
--- error_code: 502
--- response_headers
Content-Type: application/json
--- response_body
{"error":{"message":"the upstream provider could not be reached or sent an invalid response","type":"api_error","param":null,"code":"upstream_error"}}
--- error_log
connect() failed (111: Connection refused)
[error]



=== TEST 13: cost from the ai_price table (globs, cached tokens, no price)
--- http_config
    ai_price "gpt-4o*" input=1 output=2;
    ai_price "claude-*" input=3.00 output=15.00 cached=0.30;
    log_format ai '$ai_model $ai_cost';
--- config
    location /v1/ {
        ai_core on;
        access_log logs/access.log ai;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request eval
["POST /v1/chat/completions\n{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hello there\"}]}",
 "POST /v1/chat/completions\n{\"model\":\"llama-3\",\"messages\":[{\"role\":\"user\",\"content\":\"hello there\"}]}"]
--- response_body_like eval
["mock reply", "mock reply"]
--- access_log
gpt-4o 0.000011
llama-3 -
--- no_error_log
[error]



=== TEST 14: a bad price is named by nginx -t
--- http_config
    ai_price gpt-4o input=cheap output=1;
--- config
    location /v1/ { ai_core on; }
--- must_die
--- error_log
ai_price "gpt-4o": invalid price "input=cheap"
