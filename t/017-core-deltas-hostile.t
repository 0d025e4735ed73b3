# Delta filters against a hostile provider: scripted upstreams (locations
# of the test's own server) that split, repeat or hide the text a filter
# must see.  The filter is the test module's (ai_test_delta); t/lib/
# sse-text prints what a client reads (JSON::PP: the last of duplicate
# keys, as JavaScript's and Python's parsers take).
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: a duplicate "content" key in a stream's chunk: the text the client reads is the one filtered
--- http_config
    ai_target up http://127.0.0.1:$TEST_NGINX_SERVER_PORT/up/v1;
--- config
    location /o/ { ai_proxy up; ai_test_delta "mask=secret word"; }
    location /up/ {
        default_type text/event-stream;
        return 200 'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"ok ","content":"the secret word"},"finish_reason":null}]}\n\ndata: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n';
    }
--- exec
curl -sN http://127.0.0.1:$TEST_NGINX_SERVER_PORT/o/v1/chat/completions \
    -d '{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}' \
    | perl t/lib/sse-text
--- response_body_unlike
secret
--- no_error_log
[error]



=== TEST 2: a duplicate "content" key in a plain answer: the text the client reads is the one filtered
--- http_config
    ai_target up http://127.0.0.1:$TEST_NGINX_SERVER_PORT/up/v1;
--- config
    location /o/ { ai_proxy up; ai_test_delta "mask=secret word"; }
    location /up/ {
        default_type application/json;
        return 200 '{"id":"c","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok","content":"the secret word"},"finish_reason":"stop"}]}';
    }
--- exec
curl -s http://127.0.0.1:$TEST_NGINX_SERVER_PORT/o/v1/chat/completions \
    -d '{"model":"m","messages":[{"role":"user","content":"hi"}]}' \
    | perl t/lib/sse-text
--- response_body_unlike
secret
--- no_error_log
[error]



=== TEST 3: a NUL (\u0000) in a text does not hide the rest of it from the filters
--- http_config
    ai_target up http://127.0.0.1:$TEST_NGINX_SERVER_PORT/up/v1;
--- config
    location /o/ { ai_proxy up; ai_test_delta "mask=secret word"; }
    location /up/ {
        default_type text/event-stream;
        return 200 'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"ok\\u0000the secret word"},"finish_reason":null}]}\n\ndata: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n';
    }
--- exec
curl -sN http://127.0.0.1:$TEST_NGINX_SERVER_PORT/o/v1/chat/completions \
    -d '{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}' \
    | perl t/lib/sse-text
--- response_body_unlike
secret
--- no_error_log
[error]



=== TEST 4: duplicate members in an Anthropic stream's text delta: the text the client reads is the one filtered
--- http_config
    ai_target up http://127.0.0.1:$TEST_NGINX_SERVER_PORT/up provider=anthropic;
--- config
    location /a/ { ai_proxy up; ai_test_delta "mask=secret word"; }
    location /up/ {
        default_type text/event-stream;
        return 200 'event: message_start\ndata: {"type":"message_start","message":{"id":"m1","type":"message","role":"assistant","model":"m","content":[],"stop_reason":null,"usage":{"input_tokens":1,"output_tokens":0}}}\n\nevent: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\nevent: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"ok ","text":"the secret word"}}\n\nevent: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","type":"text_delta","text":"the secret word"}}\n\nevent: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\nevent: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}}\n\nevent: message_stop\ndata: {"type":"message_stop"}\n\n';
    }
--- exec
curl -sN http://127.0.0.1:$TEST_NGINX_SERVER_PORT/a/v1/messages \
    -d '{"model":"m","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"hi"}]}' \
    | perl t/lib/sse-text
--- response_body
ok [done]
--- no_error_log
[error]



=== TEST 5: texts held at a stream's end are released with their own choice's index, however high
--- http_config
    ai_target up http://127.0.0.1:$TEST_NGINX_SERVER_PORT/up/v1;
--- config
    location /o/ { ai_proxy up; ai_test_delta "mask=secret"; }
    location /up/ {
        default_type text/event-stream;
        return 200 'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":40,"delta":{"content":"a sec"},"finish_reason":null}]}\n\ndata: {"id":"c","object":"chat.completion.chunk","choices":[{"index":1,"delta":{"content":"b secr"},"finish_reason":null}]}\n\ndata: [DONE]\n\n';
    }
--- exec
curl -sN http://127.0.0.1:$TEST_NGINX_SERVER_PORT/o/v1/chat/completions \
    -d '{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}' \
    | perl -MJSON::PP -ne 'print $1 eq "[DONE]" ? "[done]\n" : join("", map { "$_->{index}:$_->{delta}{content}\n" } @{ decode_json($1)->{choices} }) if /^data: (.*)/'
--- response_body
40:a 
1:b 
1:secr
40:sec
[done]
--- no_error_log
[error]



=== TEST 6: a NUL (\u0000) hiding the rest of a text from the filters: an Anthropic stream and a plain answer go as the filters saw them
--- http_config
    ai_target ua http://127.0.0.1:$TEST_NGINX_SERVER_PORT/ua provider=anthropic;
    ai_target uo http://127.0.0.1:$TEST_NGINX_SERVER_PORT/uo/v1;
--- config
    location /a/ { ai_proxy ua; ai_test_delta "mask=secret word"; }
    location /o/ { ai_proxy uo; ai_test_delta "mask=secret word"; }
    location /ua/ {
        default_type text/event-stream;
        return 200 'event: message_start\ndata: {"type":"message_start","message":{"id":"m1","type":"message","role":"assistant","model":"m","content":[],"stop_reason":null,"usage":{"input_tokens":1,"output_tokens":0}}}\n\nevent: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\nevent: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"ok\\u0000the secret word"}}\n\nevent: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\nevent: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}}\n\nevent: message_stop\ndata: {"type":"message_stop"}\n\n';
    }
    location /uo/ {
        default_type application/json;
        return 200 '{"id":"c","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok\\u0000the secret word"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":3,"total_tokens":4}}';
    }
--- exec
curl -sN http://127.0.0.1:$TEST_NGINX_SERVER_PORT/a/v1/messages \
    -d '{"model":"m","max_tokens":9,"stream":true,"messages":[{"role":"user","content":"hi"}]}' \
    | grep -c secret || true
curl -s http://127.0.0.1:$TEST_NGINX_SERVER_PORT/o/v1/chat/completions \
    -d '{"model":"m","messages":[{"role":"user","content":"hi"}]}' \
    | grep -c secret || true
--- response_body
0
0
--- no_error_log
[error]



=== TEST 7: text held where a tool call begins goes before the call (the Anthropic door closes the text block there)
--- http_config
    ai_target up http://127.0.0.1:$TEST_NGINX_SERVER_PORT/up/v1;
--- config
    location /a/ { ai_proxy up; ai_test_delta "mask=secret word"; }
    location /up/ {
        default_type text/event-stream;
        return 200 'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\ndata: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"the secr"},"finish_reason":null}]}\n\ndata: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]},"finish_reason":null}]}\n\ndata: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]},"finish_reason":null}]}\n\ndata: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}\n\ndata: [DONE]\n\n';
    }
--- exec
curl -sN http://127.0.0.1:$TEST_NGINX_SERVER_PORT/a/v1/messages \
    -d '{"model":"m","max_tokens":9,"stream":true,"messages":[{"role":"user","content":"hi"}]}' \
    | perl -ne 'print "$1\n" while /"(text_delta","text":"[^"]*|tool_use|input_json_delta|message_stop)"/g'
# (the second tool_use: message_delta's stop_reason)
--- response_body
text_delta","text":"the 
text_delta","text":"secr
tool_use
input_json_delta
tool_use
message_stop
--- no_error_log
[error]
