# An OpenAI stream whose client did not ask for usage goes by reference,
# the usage chunk cut out (ctx->drop_usage): a scripted provider on a UNIX
# socket (t/lib/sse-upstream) sends its answer in pieces that NGINX reads
# apart; the client must get every byte but the usage chunk's, in order.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: an event without data that straddles two reads goes in its place
--- http_config
    ai_target up http://unix:$TEST_NGINX_SERVROOT/up.sock:/v1;
--- config
    location /o/ {
        ai_proxy up;
    }
--- exec
python3 t/lib/trim-check <<'EOF'
[["data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\nevent: ping\n", 200,
  "\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"b\"}}]}\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"con", 200,
  "tent\":\"c\"},\"finish_reason\":\"stop\"}]}\n\n", "U", "data: [DONE]\n\n"],
 [": keep\n", 200, "\n: alive\r\n\r\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\r\n\r\n", 200,
  "U", "data: [DONE]\r\n\r\n"],
 ["EV3", "U0-1", 100, "U1-40", 100, "U40-100", 100, "U100-200", "EV4", 100, "data: [DONE]\n\n"]]
EOF
--- response_body
ok 1
ok 2
ok 3
--- no_error_log
[error]



=== TEST 2: an event over ai_sse_max_event_size that straddles reads goes unchanged in its place
--- http_config
    ai_target up http://unix:$TEST_NGINX_SERVROOT/up.sock:/v1;
--- config
    location /o/ {
        ai_proxy up;
        ai_sse_max_event_size 1k;
    }
--- exec
python3 t/lib/trim-check <<'EOF'
[["data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"BIG", 200,
  "BIG2000", "\"}}]}\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"b\"}}]}\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"con", 200,
  "tent\":\"c\"},\"finish_reason\":\"stop\"}]}\n\n", "U", "data: [DONE]\n\n"],
 ["data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n: BIG", 200,
  "BIG2000", 200, "BIG2000", "\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"con", 200,
  "tent\":\"c\"},\"finish_reason\":\"stop\"}]}\n\n", "U", "data: [DONE]\n\n"],
 ["EV1", "id: 1\n", 100, "id: 2\n", 100, "BIG600", 100, "BIG600", "\n", 100,
  "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"z\"}}]}\n\n", "U", "EV2", 100, "data: [DONE]\n\n"]]
EOF
--- response_body
ok 1
ok 2
ok 3
--- no_error_log
[error]



=== TEST 3: a slow client: a chunk passed by reference before a cut usage chunk holds the upstream's buffer until it is sent
--- http_config
    ai_target up http://unix:$TEST_NGINX_SERVROOT/up.sock:/v1;
    server {
        # a small send buffer: the kernel does not take the answer at once
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT2 sndbuf=4k;
        location /o/ { ai_proxy up; ai_proxy_buffer_size 64k; }
    }
--- config
    location = /t { return 200; }
--- timeout: 20
--- exec
python3 t/lib/trim-check slow <<'EOF'
[["EV10", 300, ["EV40000", "EV10", "U"], 300, ["EV40000", "data: [DONE]\n\n"]]]
EOF
--- response_body
ok 1
--- no_error_log
[error]



=== TEST 4: a chunk with "choices":[] but no usage object (Azure's prompt_filter_results first) is not cut
--- http_config
    ai_target up http://unix:$TEST_NGINX_SERVROOT/up.sock:/v1;
--- config
    location /o/ {
        ai_proxy up;
    }
--- exec
python3 t/lib/trim-check <<'EOF'
[["data: {\"choices\":[],\"usage\":null,\"prompt_filter_results\":[{\"prompt_index\":0,\"content_filter_results\":{}}]}\n\n", "EV3", "U", "data: [DONE]\n\n"],
 ["data: {\"choices\":[],\"prompt_filter_results\":[]}\n\n", "EV3", "U", "data: [DONE]\n\n"]]
EOF
--- response_body
ok 1
ok 2
--- no_error_log
[error]



=== TEST 5: the usage chunk is cut however its "choices" is spaced
--- http_config
    ai_target up http://127.0.0.1:$TEST_NGINX_SERVER_PORT/up/v1;
--- config
    location /o/ {
        ai_proxy up;
    }
    location /up/ {
        default_type text/event-stream;
        return 200 'data: {"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}]}\n\ndata: {"choices" :  [  ] ,"usage" : {"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}\n\ndata: [DONE]\n\n';
    }
--- exec
r=$(curl -sN http://127.0.0.1:$TEST_NGINX_SERVER_PORT/o/v1/chat/completions \
    -d '{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}')
printf '%s' "$r" | perl t/lib/sse-text
printf '%s' "$r" | grep -c '"usage"' || true
--- response_body
hi[done]
0
--- no_error_log
[error]



=== TEST 6: a stream cut within an event held whole: the event is not sent, the error event is whole
--- http_config
    ai_target up http://unix:$TEST_NGINX_SERVROOT/up.sock:/v1;
--- config
    location /o/ {
        ai_proxy up;
    }
--- exec
python3 t/lib/sse-upstream $TEST_NGINX_SERVROOT/up.sock > /dev/null 2>&1 <<'EOF'
["data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}]}\n\n", 200, "data: {\"choices\":[{\"ind"]
EOF
curl -sN http://127.0.0.1:$TEST_NGINX_SERVER_PORT/o/v1/chat/completions \
    -d '{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}'
echo "[end]"
wait
--- response_body
data: {"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}


event: error
data: {"error":{"message":"the upstream stream ended before it was complete","type":"api_error","param":null,"code":"stream_truncated"}}

[end]
--- error_log eval
# NGINX 1.23+ also logs the cut itself as an [error]; 1.22 does not
[qr/\[warn\].*the upstream stream ended before its terminal event/]
--- no_error_log
[alert]
