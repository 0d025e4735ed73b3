# The core's response pipeline: delta filters (ngx_http_ai_add_delta_filter)
# on the text the client gets, streamed or whole, on both doors, with and
# without translation.  The test module's filter (t/modules/ai_store_test/
# ngx_http_ai_delta_test_module.c) masks a text or ends the answer at it;
# the mock streams its reply a word an event, so that "secret word" is
# split across two events and must be held back, at most its length - 1
# bytes, to be masked whole.  t/lib/sse-text prints the text a client
# reads from an answer, and "[done]" when a stream ended properly.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: a mask split across events, OpenAI door, same format and translated from Anthropic and Gemini
--- http_config
    ai_target oa http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    ai_target an http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic;
    ai_target ge http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=gemini;
--- config
    location /o/ { ai_proxy oa; ai_test_delta "mask=secret word"; }
    location /a/ { ai_proxy an; ai_test_delta "mask=secret word"; }
    location /g/ { ai_proxy ge; ai_test_delta "mask=secret word"; }
--- exec
for p in o a g; do
    curl -sN http://127.0.0.1:$TEST_NGINX_SERVER_PORT/$p/v1/chat/completions \
        -d '{"model":"m","stream":true,"messages":[{"role":"user","content":"tell the secret word now"}]}' \
        | perl t/lib/sse-text
done
--- response_body
mock reply: tell the [MASKED] now[done]
mock reply: tell the [MASKED] now[done]
mock reply: tell the [MASKED] now[done]
--- error_log eval
[qr/ai_test delta: calls=\d+ held_max=7\b/]
--- no_error_log
[error]
held_max=8
held_max=9
held_max=10
held_max=11



=== TEST 2: a mask split across events, Anthropic door, same format and translated from OpenAI
--- http_config
    ai_target oa http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    ai_target an http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic;
--- config
    location /o/ { ai_proxy oa; ai_test_delta "mask=secret word"; }
    location /a/ { ai_proxy an; ai_test_delta "mask=secret word"; }
--- exec
for p in a o; do
    curl -sN http://127.0.0.1:$TEST_NGINX_SERVER_PORT/$p/v1/messages \
        -d '{"model":"m","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"tell the secret word now"}]}' \
        | perl t/lib/sse-text
done
--- response_body
mock reply: tell the [MASKED] now[done]
mock reply: tell the [MASKED] now[done]
--- error_log eval
[qr/ai_test delta: calls=\d+ held_max=7\b/]
--- no_error_log
[error]



=== TEST 3: a text held at the end of a stream is released before its end, on both doors
--- http_config
    ai_target oa http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    ai_target an http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic;
--- config
    location /o/ { ai_proxy oa; ai_test_delta "mask=now or never"; }
    location /a/ { ai_proxy an; ai_test_delta "mask=now or never"; }
--- exec
for p in o a; do
    curl -sN http://127.0.0.1:$TEST_NGINX_SERVER_PORT/$p/v1/chat/completions \
        -d '{"model":"m","stream":true,"messages":[{"role":"user","content":"tell the secret word now"}]}' \
        | perl t/lib/sse-text
    curl -sN http://127.0.0.1:$TEST_NGINX_SERVER_PORT/$p/v1/messages \
        -d '{"model":"m","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"tell the secret word now"}]}' \
        | perl t/lib/sse-text
done
--- response_body
mock reply: tell the secret word now[done]
mock reply: tell the secret word now[done]
mock reply: tell the secret word now[done]
mock reply: tell the secret word now[done]
--- error_log eval
[qr/ai_test delta: calls=\d+ held_max=3\b/]
--- no_error_log
[error]



=== TEST 4: plain answers, both doors, with and without translation
--- http_config
    ai_target oa http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    ai_target an http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic;
--- config
    location /o/ { ai_proxy oa; ai_test_delta "mask=secret word"; }
    location /a/ { ai_proxy an; ai_test_delta "mask=secret word"; }
--- exec
for p in o a; do
    curl -s http://127.0.0.1:$TEST_NGINX_SERVER_PORT/$p/v1/chat/completions \
        -d '{"model":"m","messages":[{"role":"user","content":"tell the secret word now"}]}' \
        | perl t/lib/sse-text
    curl -s http://127.0.0.1:$TEST_NGINX_SERVER_PORT/$p/v1/messages \
        -d '{"model":"m","max_tokens":50,"messages":[{"role":"user","content":"tell the secret word now"}]}' \
        | perl t/lib/sse-text
done
--- response_body
mock reply: tell the [MASKED] now
mock reply: tell the [MASKED] now
mock reply: tell the [MASKED] now
mock reply: tell the [MASKED] now
--- no_error_log
[error]



=== TEST 5: an abort ends a stream with an error event in the door's format, nothing after it
--- http_config
    ai_target oa http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    ai_target an http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic;
--- config
    location /o/ { ai_proxy oa; ai_test_delta "abort=secret word"; }
    location /a/ { ai_proxy an; ai_test_delta "abort=secret word"; }
--- exec
for p in o a; do
    curl -sN http://127.0.0.1:$TEST_NGINX_SERVER_PORT/$p/v1/chat/completions \
        -d '{"model":"m","stream":true,"messages":[{"role":"user","content":"tell the secret word now"}]}' \
        | perl t/lib/sse-text
    curl -sN http://127.0.0.1:$TEST_NGINX_SERVER_PORT/$p/v1/messages \
        -d '{"model":"m","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"tell the secret word now"}]}' \
        | perl t/lib/sse-text
done
--- response_body
mock reply: tell the [error invalid_request_error: the answer was stopped by ai_test_delta]
mock reply: tell the [error invalid_request_error: the answer was stopped by ai_test_delta]
mock reply: tell the [error invalid_request_error: the answer was stopped by ai_test_delta]
mock reply: tell the [error invalid_request_error: the answer was stopped by ai_test_delta]
--- error_log
a delta filter ended the answer
--- no_error_log
[error]
secret



=== TEST 6: an abort of a plain answer is the door's error, with the filter's status
--- http_config
    ai_target oa http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    ai_target an http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic;
--- config
    location /o/ { ai_proxy oa; ai_test_delta "abort=secret word" status=403; }
    location /a/ { ai_proxy an; ai_test_delta "abort=secret word" status=403; }
--- request eval
["POST /o/v1/chat/completions\n{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"tell the secret word now\"}]}",
 "POST /a/v1/messages\n{\"model\":\"m\",\"max_tokens\":50,\"messages\":[{\"role\":\"user\",\"content\":\"tell the secret word now\"}]}",
 "POST /a/v1/chat/completions\n{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"tell the secret word now\"}]}"]
--- error_code eval
[403, 403, 403]
--- response_body_like eval
["^\\{\"error\":\\{\"message\":\"the answer was stopped by ai_test_delta\",\"type\":\"permission_error\"",
 "^\\{\"type\":\"error\",\"error\":\\{\"message\":\"the answer was stopped by ai_test_delta\",\"type\":\"permission_error\"",
 "^\\{\"error\":\\{\"message\":\"the answer was stopped by ai_test_delta\",\"type\":\"permission_error\""]
--- no_error_log
[error]



=== TEST 7: without a filter asked for, the answer goes unparsed and unchanged
--- http_config
    ai_target oa http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
--- config
    location /o/ { ai_proxy oa; }
--- exec
curl -sN http://127.0.0.1:$TEST_NGINX_SERVER_PORT/o/v1/chat/completions \
    -d '{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"tell the secret word now"}]}' \
    | perl t/lib/sse-text
--- response_body
mock reply: tell the secret word now[done]
--- no_error_log
[error]
ai_test delta:



=== TEST 8: a slow client slows the upstream read: rewritten output holds the upstream's buffer until it is sent
--- http_config
    ai_target oa http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    ai_target an http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic;
    log_format ubr "$uri $status ubr=$upstream_bytes_received end";
    server {
        # a small send buffer: the kernel does not absorb the answer
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT2 sndbuf=32k;
        location /o/ { ai_proxy oa; access_log logs/access.log ubr; }
        location /a/ { ai_proxy an; access_log logs/access.log ubr; }
    }
--- config
    location = /t { return 200; }
--- timeout: 20
--- exec
# the answers are megabytes (50,000 words); the client reads 2 kB a second
# for 2 seconds and goes: NGINX must not have read much more than its
# buffer from the provider (it would read it all at once otherwise: 13 MB
# and 6 MB, the second time, when the client reads all); under 2 MB, as a
# loaded machine lets NGINX read a few buffers more before it sees the
# client gone (1.5 MB once in CI)
for p in o a; do
    curl -sN --limit-rate 2k --max-time 2 \
        http://127.0.0.1:$TEST_NGINX_SERVER_PORT2/$p/v1/chat/completions \
        -d '{"model":"m~words=50000","max_tokens":60000,"stream":true,"messages":[{"role":"user","content":"hi"}]}' \
        > /dev/null || true
    curl -sN http://127.0.0.1:$TEST_NGINX_SERVER_PORT2/$p/v1/chat/completions \
        -d '{"model":"m~words=50000","max_tokens":60000,"stream":true,"messages":[{"role":"user","content":"hi"}]}' \
        | tail -c 14 | head -c 12; echo
done
sleep 0.5
--- response_body
data: [DONE]
data: [DONE]
--- access_log_like eval
[qr{^/o/v1/chat/completions 200 ubr=(?:\d{1,6}|1\d{6}) end\n/o/v1/chat/completions 200 ubr=\d{7,} end$}m,
 qr{^/a/v1/chat/completions 200 ubr=(?:\d{1,6}|1\d{6}) end\n/a/v1/chat/completions 200 ubr=\d{7,} end$}m]
--- no_error_log
[error]



=== TEST 9: an OpenAI stream whose client did not ask for usage goes by reference, the usage chunk cut out, events split across small upstream buffers
--- http_config
    ai_target oa http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
--- config
    location /o/ {
        ai_proxy oa;
        ai_proxy_buffer_size 1k;
    }
--- exec
# 1 to 60 words: the events, the usage chunk among them, straddle the 1k
# buffers at every place; each answer must be whole, end with [DONE] and
# hold no usage (but the "usage":null of every chunk)
for n in $(seq 1 60); do
    r=$(curl -sN http://127.0.0.1:$TEST_NGINX_SERVER_PORT/o/v1/chat/completions \
        -d '{"model":"m~words='$n'","stream":true,"messages":[{"role":"user","content":"hi"}]}')
    t=$(printf '%s' "$r" | perl t/lib/sse-text)
    w=$(seq -f 'w%g' -s ' ' 1 $n)
    [ "$t" = "$w[done]" ] || echo "$n: $t"
    case "$r" in *'"usage":{'*) echo "$n: usage" ;; esac
done
echo checked
--- response_body
checked
--- no_error_log
[error]
