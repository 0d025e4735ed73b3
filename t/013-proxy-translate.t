# Translation through the gateway, checked on the wire: what each provider
# receives, what each door sends back, errors in the door's shape, the
# first translated chunk without waiting, a cut translated stream.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: OpenAI door to Anthropic: system on top, default max_tokens, images, tools
--- http_config
    ai_target an http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic;
--- config
    location /v1/ {
        ai_proxy an;
        ai_proxy_max_tokens 512;
    }
    location /mock/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request eval
["POST /v1/chat/completions\n{\"model\":\"claude-3-5-haiku\",\"temperature\":0.2,\"stop\":[\"END\"],\"messages\":[{\"role\":\"system\",\"content\":\"Be kind.\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"look\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBORw0KGgo=\"}}]}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\"}}}]}",
 "GET /mock/last"]
--- response_body_like eval
["^\\{\"id\":\"msg_mock\\d+\",\"object\":\"chat.completion\",\"created\":\\d+,\"model\":\"claude-3-5-haiku\",\"choices\":\\[\\{\"index\":0,\"message\":\\{\"role\":\"assistant\",\"content\":\"mock reply: look\"",
 "\"uri\":\"/v1/messages\".*\"anthropic-version\":\"2023-06-01\".*\\\\\"system\\\\\":\\\\\"Be kind.\\\\\".*\\\\\"max_tokens\\\\\":512.*\\\\\"type\\\\\":\\\\\"image\\\\\",\\\\\"source\\\\\":\\{\\\\\"type\\\\\":\\\\\"base64\\\\\",\\\\\"media_type\\\\\":\\\\\"image/png\\\\\",\\\\\"data\\\\\":\\\\\"iVBORw0KGgo=\\\\\"\\}.*\\\\\"stop_sequences\\\\\":\\[\\\\\"END\\\\\"\\].*\\\\\"input_schema\\\\\""]
--- no_error_log
[error]



=== TEST 2: OpenAI door to Gemini: the model and the stream in the URL, systemInstruction
--- http_config
    ai_target ge http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=gemini;
--- config
    location /v1/ {
        ai_proxy ge;
    }
    location /mock/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request eval
["POST /v1/chat/completions\n{\"model\":\"gemini-2.0-flash\",\"stream\":true,\"max_tokens\":50,\"messages\":[{\"role\":\"system\",\"content\":\"Be kind.\"},{\"role\":\"user\",\"content\":\"hi\"}]}",
 "GET /mock/last"]
--- response_body_like eval
["^data: \\{\"id\":\"[^\"]+\",\"object\":\"chat.completion.chunk\".*\"role\":\"assistant\".*\"finish_reason\":\"stop\".*\n\ndata: \\[DONE\\]\n\n\$",
 "\"uri\":\"/v1beta/models/gemini-2.0-flash:streamGenerateContent\\?alt=sse\".*\\\\\"systemInstruction\\\\\":\\{\\\\\"parts\\\\\":\\[\\{\\\\\"text\\\\\":\\\\\"Be kind.\\\\\"\\}\\]\\}.*\\\\\"maxOutputTokens\\\\\":50"]
--- response_body_unlike eval
["\"usage\":\\{", "\\\\\"model\\\\\""]
--- no_error_log
[error]



=== TEST 3: Anthropic door to OpenAI: the answer in Anthropic's shape, plain and streamed
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
--- request eval
["POST /v1/messages\n{\"model\":\"gpt-4o\",\"max_tokens\":100,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
 "POST /v1/messages\n{\"model\":\"gpt-4o\",\"max_tokens\":100,\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"]
--- response_body_like eval
["^\\{\"id\":\"[^\"]+\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"gpt-4o\",\"content\":\\[\\{\"type\":\"text\",\"text\":\"mock reply: hi\"\\}\\],\"stop_reason\":\"end_turn\",\"stop_sequence\":null,\"usage\":\\{\"input_tokens\":2,\"output_tokens\":3",
 "^event: message_start\ndata: \\{\"type\":\"message_start\".*event: content_block_start\n.*event: content_block_delta\ndata: \\{\"type\":\"content_block_delta\",\"index\":0,\"delta\":\\{\"type\":\"text_delta\",\"text\":\"mock \"\\}\\}\n\n.*event: message_delta\ndata: \\{\"type\":\"message_delta\",\"delta\":\\{\"stop_reason\":\"end_turn\".*event: message_stop\ndata: \\{\"type\":\"message_stop\"\\}\n\n\$"]
--- no_error_log
[error]



=== TEST 4: provider errors in the door's shape
--- http_config
    ai_target an http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic;
    ai_target oa http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
--- config
    location /a/ {
        ai_proxy an;
        ai_proxy_next_upstream off;
    }
    location /o/ {
        ai_proxy oa;
        ai_proxy_next_upstream off;
    }
--- request eval
["POST /a/v1/chat/completions\n{\"model\":\"claude~status=429\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
 "POST /o/v1/messages\n{\"model\":\"gpt~status=400\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"]
--- error_code eval
[429, 400]
--- response_body_like eval
["^\\{\"error\":\\{\"message\":\"[^\"]+\",\"type\":\"rate_limit_error\"",
 "^\\{\"type\":\"error\",\"error\":\\{\"type\":\"invalid_request_error\",\"message\":\"[^\"]+\"\\}\\}"]
--- no_error_log
[error]



=== TEST 5: the first translated chunk comes without waiting for the next one
--- http_config
    ai_target an http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic;
--- config
    location /v1/ {
        ai_proxy an;
    }
--- exec
node t/sdk/stream_timing.mjs http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions 'claude~delay_chunks_ms=150'
--- response_body
status 200 done true
first chunk early: true
--- no_error_log
[error]
--- timeout: 20



=== TEST 6: a translated stream cut mid-way ends with an error event in the door's shape
--- http_config
    ai_target oa http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
--- config
    location /v1/ {
        ai_proxy oa;
    }
--- request
POST /v1/messages
{"model":"gpt-4o~disconnect_after=2","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"a b c d"}]}
--- response_body_like
^event: message_start\n.*event: error\ndata: \{"type":"error","error":\{"type":"api_error","message":"[^"]+"\}\}\n\n$
--- response_body_unlike
message_stop
--- error_log
the upstream stream ended
--- no_error_log
[error]
