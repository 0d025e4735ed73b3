# How ai_proxy reads a stream: a provider's chunks of one read go on as one
# buffer, each chunk's data moved down over the framing before it; a stream
# whose header came in a page reads a page at a time from then on.  A
# scripted provider on a UNIX socket (t/lib/sse-upstream) frames its answer
# in chunks of any size and cuts the framed bytes into writes of any size
# (t/lib/trim-check chunked): the client must get the events byte for
# byte, the usage chunk cut out when it did not ask for usage, kept when it
# did.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: chunks of any size, framing cut anywhere: the events byte for byte, the usage chunk cut
--- http_config
    ai_target up http://unix:$TEST_NGINX_SERVROOT/up.sock:/v1;
--- config
    location /o/ {
        ai_proxy up;
    }
--- timeout: 30
--- exec
python3 t/lib/trim-check chunked <<'EOF'
[{"chunk": 0, "write": 0,
  "pieces": ["EV3", "EV1", "EV20", "EV2", "U", "data: [DONE]\n\n"]},
 {"chunk": 5, "write": 0,
  "pieces": ["EV3", "EV1", "EV20", "EV2", "U", "data: [DONE]\n\n"]},
 {"chunk": 1, "write": 0,
  "pieces": ["EV3", "EV1", "U", "data: [DONE]\n\n"]},
 {"chunk": 0, "write": 37,
  "pieces": ["EV3", "EV1", "EV20", "EV2", "U", "data: [DONE]\n\n"]},
 {"chunk": 5, "write": 11,
  "pieces": ["EV3", "EV1", "EV20", "U", "data: [DONE]\n\n"]},
 {"chunk": 300, "write": 1000,
  "pieces": ["EV3", "EV6000", "EV1", "EV20000", "EV2", "U", "data: [DONE]\n\n"]},
 {"chunk": 0, "write": 0,
  "pieces": ["EV3", "EV9000", "EV1", "U", "EV30000", "data: [DONE]\n\n"]}]
EOF
--- response_body
ok 1
ok 2
ok 3
ok 4
ok 5
ok 6
ok 7
--- no_error_log
[error]
[alert]



=== TEST 2: the same when the client asked for usage: every byte goes on, the usage chunk too
--- http_config
    ai_target up http://unix:$TEST_NGINX_SERVROOT/up.sock:/v1;
--- config
    location /o/ {
        ai_proxy up;
    }
--- timeout: 30
--- exec
python3 t/lib/trim-check chunked usage <<'EOF'
[{"chunk": 0, "write": 0,
  "pieces": ["EV3", "EV1", "EV20", "EV2", "U", "data: [DONE]\n\n"]},
 {"chunk": 5, "write": 0,
  "pieces": ["EV3", "EV1", "EV20", "EV2", "U", "data: [DONE]\n\n"]},
 {"chunk": 0, "write": 37,
  "pieces": ["EV3", "EV1", "EV20", "EV2", "U", "data: [DONE]\n\n"]},
 {"chunk": 5, "write": 11,
  "pieces": ["EV3", "EV1", "U", "data: [DONE]\n\n"]},
 {"chunk": 300, "write": 1000,
  "pieces": ["EV3", "EV6000", "EV1", "EV20000", "U", "data: [DONE]\n\n"]}]
EOF
--- response_body
ok 1
ok 2
ok 3
ok 4
ok 5
--- no_error_log
[error]
[alert]



=== TEST 3: a header alone, then bursts larger than the buffer and events larger than a page, chunked or not
--- http_config
    ai_target up http://unix:$TEST_NGINX_SERVROOT/up.sock:/v1;
--- config
    location /o/ {
        ai_proxy up;
    }
--- timeout: 30
--- exec
python3 t/lib/trim-check <<'EOF'
[["EV3", 100, ["EV500", "EV500", "EV500", "EV500", "EV500", "EV500", "EV500",
               "EV500", "EV500", "EV500", "EV500", "EV500", "EV500", "EV500",
               "EV500", "EV500", "EV500", "EV500", "EV500", "EV500", "EV500",
               "EV500", "EV500", "EV500", "EV500", "EV500", "EV500", "EV500",
               "EV500", "EV500", "EV500", "EV500", "EV500", "EV500", "EV500"],
  100, "EV10000", 100, ["EV1", "U", "data: [DONE]\n\n"]]]
EOF
python3 t/lib/trim-check chunked <<'EOF'
[{"chunk": 0, "write": 20000,
  "pieces": ["EV500", "EV500", "EV500", "EV500", "EV500", "EV500", "EV500",
             "EV500", "EV500", "EV500", "EV500", "EV500", "EV500", "EV500",
             "EV500", "EV500", "EV500", "EV500", "EV500", "EV500", "EV500",
             "EV500", "EV500", "EV500", "EV500", "EV500", "EV500", "EV500",
             "EV500", "EV500", "EV500", "EV500", "EV500", "EV500", "EV500",
             "EV10000", "EV1", "U", "data: [DONE]\n\n"]}]
EOF
--- response_body
ok 1
ok 1
--- no_error_log
[error]
[alert]



=== TEST 4: a slow client: a read's chunks, one buffer, hold the upstream's buffer until they are sent
--- http_config
    ai_target up http://unix:$TEST_NGINX_SERVROOT/up.sock:/v1;
    server {
        # a small send buffer: the kernel does not take the answer at once
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT2 sndbuf=4k;
        location /o/ { ai_proxy up; }
    }
--- config
    location = /t { return 200; }
--- timeout: 30
--- exec
python3 t/lib/trim-check chunked slow <<'EOF'
[{"chunk": 0, "write": 3000,
  "pieces": ["EV10", "EV4000", "EV10", "EV4000", "U", "EV20", "EV40000",
             "data: [DONE]\n\n"]}]
EOF
--- response_body
ok 1
--- no_error_log
[error]
[alert]



=== TEST 5: chunk framing broken after good chunks of the same read: the good events go on, then the error event
--- http_config
    ai_target up http://unix:$TEST_NGINX_SERVROOT/up.sock:/v1;
--- config
    location /o/ {
        ai_proxy up;
    }
--- exec
python3 t/lib/sse-upstream $TEST_NGINX_SERVROOT/up.sock chunked > /dev/null 2>&1 <<'EOF'
["4e\r\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},\"finish_reason\":null}]}\n\n\r\n", 200,
 "4e\r\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"b\"},\"finish_reason\":null}]}\n\n\r\n4e\r\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"c\"},\"finish_reason\":null}]}\n\n\r\nzz\r\nxx\r\n"]
EOF
curl -sN http://127.0.0.1:$TEST_NGINX_SERVER_PORT/o/v1/chat/completions \
    -d '{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}'
echo "[end]"
wait
--- response_body
data: {"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]}

data: {"choices":[{"index":0,"delta":{"content":"b"},"finish_reason":null}]}

data: {"choices":[{"index":0,"delta":{"content":"c"},"finish_reason":null}]}


event: error
data: {"error":{"message":"the upstream stream ended before it was complete","type":"api_error","param":null,"code":"stream_truncated"}}

[end]
--- error_log eval
[qr/\[error\].*upstream sent invalid chunked response/]
--- no_error_log
[alert]
