# The core against a hostile client and a lying provider: request
# smuggling after an early error, duplicate keys and NULs, control bytes
# in error.log, invalid UTF-8 in errors, NGINX's own errors named in JSON,
# usage out of range, encoded responses, subrequests.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: a JSON 413 on a kept-alive connection closes it: the rest of the body is no request
--- config
    client_max_body_size 64;
    location /v1/ {
        ai_core on;
        return 200 "passed\n";
    }
    location /smuggled {
        return 200 "smuggled\n";
    }
--- exec
python3 - <<'EOF'
import os, socket
s = socket.create_connection(('127.0.0.1', int(os.environ['TEST_NGINX_SERVER_PORT'])))
smuggled = b"GET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n"
body = smuggled + b"x" * (200 - len(smuggled))
s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n"
          b"Transfer-Encoding: chunked\r\n\r\n"
          + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
s.settimeout(4)
data = b""
while True:
    try:
        chunk = s.recv(65536)
    except socket.timeout:
        print("timeout")
        break
    if not chunk:
        break
    data += chunk
head = data.split(b"\r\n\r\n")[0].decode()
print(head.split("\r\n")[0])
print("responses:", data.count(b"HTTP/1.1 "))
print("close" if "Connection: close" in head else "keep-alive")
print("smuggled" in data.decode())
EOF
--- response_body
HTTP/1.1 413 Request Entity Too Large
responses: 1
close
False
--- access_log
"POST /v1/chat/completions HTTP/1.1" 413
--- no_error_log eval
[qr/GET \/smuggled/, "[alert]"]
--- error_log
client intended to send too large chunked body
[error]



=== TEST 2: duplicate keys the gateway acts on are refused, naming the key
--- config
    location /v1/ {
        ai_core on;
        return 200 "passed\n";
    }
--- request eval
["POST /v1/chat/completions\n" . '{"model":"gpt-4o-mini","model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}',
 "POST /v1/chat/completions\n" . '{"model":"gpt-4o","messages":[{"role":"user","content":"hi","content":"other"}]}',
 "POST /v1/chat/completions\n" . '{"model":"gpt-4o","stream":false,"stream":true,"messages":[{"role":"user","content":"hi"}]}',
 "POST /v1/chat/completions\n" . '{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":false,"include_usage":true},"messages":[{"role":"user","content":"hi"}]}',
 "POST /v1/chat/completions\n" . '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"metadata":{"model":"a","model":"b"}}']
--- error_code eval
[400, 400, 400, 400, 200]
--- response_body eval
[qq!{"error":{"message":"'model' must not appear twice in an object","type":"invalid_request_error","param":"model","code":null}}\n!,
 qq!{"error":{"message":"'content' must not appear twice in an object","type":"invalid_request_error","param":"messages","code":null}}\n!,
 qq!{"error":{"message":"'stream' must not appear twice in an object","type":"invalid_request_error","param":"stream","code":null}}\n!,
 qq!{"error":{"message":"'include_usage' must not appear twice in an object","type":"invalid_request_error","param":"stream_options","code":null}}\n!,
 "passed\n"]
--- no_error_log
[error]



=== TEST 3: a NUL in the body is refused; an escaped backslash before u0000 is text
--- config
    location /v1/ {
        ai_core on;
        return 200 "$ai_model\n";
    }
--- request eval
["POST /v1/chat/completions\n" . '{"model":"gpt-4o-mini\u0000x","messages":[{"role":"user","content":"hi"}]}',
 "POST /v1/messages\n" . '{"model":"claude","max_tokens":5,"messages":[{"role":"user","content":"a\u0000b"}]}',
 "POST /v1/chat/completions\n" . "{\"model\":\"m\x00\",\"messages\":[]}",
 "POST /v1/chat/completions\n" . '{"model":"gpt-4o\\\\u0000","messages":[{"role":"user","content":"\\\\u0000"}]}']
--- error_code eval
[400, 400, 400, 200]
--- response_body eval
[qq!{"error":{"message":"the request body contains a NUL character (\\\\u0000), which is not accepted","type":"invalid_request_error","param":null,"code":null}}\n!,
 qq!{"type":"error","error":{"message":"the request body contains a NUL character (\\\\u0000), which is not accepted","type":"invalid_request_error","param":null,"code":null}}\n!,
 qq!{"error":{"message":"the request body contains a NUL character (\\\\u0000), which is not accepted","type":"invalid_request_error","param":null,"code":null}}\n!,
 "gpt-4o\\u0000\n"]
--- no_error_log
[error]



=== TEST 4: numbers out of range are refused before any conversion
--- config
    location /v1/ {
        ai_core on;
        return 200 "passed\n";
    }
--- request eval
["POST /v1/chat/completions\n" . '{"model":"m","max_tokens":1e300,"messages":[{"role":"user","content":"hi"}]}',
 "POST /v1/messages\n" . '{"model":"m","max_tokens":-1,"messages":[{"role":"user","content":"hi"}]}',
 "POST /v1/chat/completions\n" . '{"model":"m","max_completion_tokens":2147483648,"messages":[{"role":"user","content":"hi"}]}',
 "POST /v1/chat/completions\n" . '{"model":"m","max_tokens":2147483647,"messages":[{"role":"user","content":"hi"}]}']
--- error_code eval
[400, 400, 400, 200]
--- response_body eval
[qq!{"error":{"message":"'max_tokens' must be at most 2147483647","type":"invalid_request_error","param":"max_tokens","code":null}}\n!,
 qq!{"type":"error","error":{"message":"'max_tokens' must be a non-negative integer","type":"invalid_request_error","param":"max_tokens","code":null}}\n!,
 qq!{"error":{"message":"'max_completion_tokens' must be at most 2147483647","type":"invalid_request_error","param":"max_completion_tokens","code":null}}\n!,
 "passed\n"]
--- no_error_log
[error]



=== TEST 5: client text cannot forge error.log lines (model, URI)
--- http_config
    ai_target t http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 models=gpt-*;
--- config
    location /v1/ {
        ai_proxy t;
    }
--- request eval
["POST /v1/chat/completions\n" . '{"model":"nope\r\nINJECTED [warn] x","messages":[{"role":"user","content":"hi"}]}',
 "POST /v1/%0d%0aINJECTED2%20[warn]\n{}"]
--- error_code eval
[404, 404]
--- error_log eval
[qr/nope\\x0d\\x0aINJECTED \[warn\] x/, qr/\/v1\/\\x0d\\x0aINJECTED2 \[warn\]/]
--- no_error_log eval
[qr/^INJECTED/, "[error]"]



=== TEST 6: the gateway's JSON errors are valid JSON whatever the client sent
--- http_config
    ai_target t http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 models=gpt-*;
--- config
    location /v1/ {
        ai_proxy t;
    }
--- exec
python3 - <<'EOF'
import json, os, urllib.request
port = os.environ['TEST_NGINX_SERVER_PORT']
for model in (b'zz\xff\xfe', b'cut\xe2\x82', b'ok\xc3\xa9'):
    body = b'{"model":"' + model + b'","messages":[{"role":"user","content":"hi"}]}'
    req = urllib.request.Request('http://127.0.0.1:%s/v1/chat/completions' % port, data=body)
    try:
        urllib.request.urlopen(req)
    except urllib.error.HTTPError as e:
        raw = e.read()
        print(e.code, json.loads(raw)['error']['message'].encode('unicode_escape').decode())
EOF
--- response_body_like
^404 .*zz\\ufffd\\ufffd.*
404 .*cut\\ufffd\\ufffd.*
404 .*ok\\xe9.*
--- no_error_log
[error]



=== TEST 7: NGINX's own request errors name the problem in JSON (ai_core at server level)
--- config
    ai_core on;
    large_client_header_buffers 2 1k;
    location /v1/ {
        return 200 "passed\n";
    }
--- raw_request eval
["GET /v1/%00 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
 "GET /v1/models HTTP/1.1\r\nHost: localhost\r\nX-Big: " . ("a" x 1500) . "\r\nConnection: close\r\n\r\n",
 "GET /v1/" . ("u" x 1500) . " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
 "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\n",
 "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Length: abc\r\nConnection: close\r\n\r\n"]
--- error_code eval
[400, 400, 414, 501, 400]
--- response_headers eval
["Content-Type: application/json", "Content-Type: application/json", "Content-Type: application/json", "Content-Type: application/json", "Content-Type: application/json"]
--- response_body eval
[qq!{"error":{"message":"bad request","type":"invalid_request_error","param":null,"code":null}}\n!,
 qq!{"error":{"message":"request header or cookie too large","type":"invalid_request_error","param":null,"code":null}}\n!,
 qq!{"error":{"message":"request URI too long","type":"invalid_request_error","param":null,"code":null}}\n!,
 qq!{"error":{"message":"not implemented (an unsupported method or Transfer-Encoding)","type":"api_error","param":null,"code":null}}\n!,
 qq!{"error":{"message":"bad request","type":"invalid_request_error","param":null,"code":null}}\n!]
--- no_error_log
[error]



=== TEST 8: a Gemini-looking URI that is not Gemini's is an unknown endpoint, not a body error
--- http_config
    ai_target t http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 models=gpt-*;
--- config
    location /v1/ {
        ai_proxy t;
    }
--- request eval
["POST /v1/x:generateContent\nnot json", "POST /v1/models/:generateContent\nnot json"]
--- error_code eval
[404, 404]
--- response_body_like eval
["unknown endpoint /v1/x:generateContent", "unknown endpoint /v1/models/:generateContent"]
--- no_error_log
[error]



=== TEST 9: a provider lying about usage does not corrupt the counts
--- http_config
    log_format ai '$ai_prompt_tokens $ai_completion_tokens $ai_total_tokens $ai_cached_tokens $ai_cost';
    ai_price "fake*" input=1000 output=1000;
--- config
    location /v1/ {
        ai_core on;
        access_log logs/access.log ai;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/fake/;
    }
    location /fake/ {
        default_type application/json;
        return 200 '{"id":"x","object":"chat.completion","model":"fake","choices":[],"usage":{"prompt_tokens":1e300,"completion_tokens":-5,"total_tokens":"12","prompt_tokens_details":{"cached_tokens":99999999999999999999}}}';
    }
    location /fake/messages {
        default_type application/json;
        return 200 '{"id":"x","type":"message","model":"fake","content":[],"usage":{"input_tokens":7,"output_tokens":9223372036854775807,"cache_read_input_tokens":1.5}}';
    }
--- request eval
["POST /v1/chat/completions\n" . '{"model":"fake","messages":[{"role":"user","content":"hi"}]}',
 "POST /v1/messages\n" . '{"model":"fake","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}']
--- access_log
0 0 0 0 0.000000
7 0 7 0 0.007000
--- error_log
the upstream reported token usage out of range or inconsistent
--- no_error_log
[error]



=== TEST 10: a stream lying in every event is warned about once
--- http_config
    log_format ai '$ai_prompt_tokens $ai_completion_tokens $ai_total_tokens';
--- config
    location /v1/ {
        ai_core on;
        access_log logs/access.log ai;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/fake/;
    }
    location /fake/ {
        default_type text/event-stream;
        return 200 'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":999}}\n\ndata: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":999}}\n\ndata: [DONE]\n\n';
    }
--- exec
curl -s http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions -d '{"model":"fake","stream":true,"messages":[{"role":"user","content":"hi"}]}' | grep -c '^data: \[DONE\]$'
sleep 0.2
grep -c 'the upstream reported token usage out of range or inconsistent' $TEST_NGINX_SERVROOT/logs/error.log
--- response_body
1
1
--- access_log
3 4 7
--- error_log
the upstream reported token usage out of range or inconsistent
--- no_error_log
[error]



=== TEST 11: an encoded response is neither scanned nor appended to; upstreams are asked for identity
--- http_config
    log_format ai '$ai_total_tokens';
--- config
    location /v1/ {
        ai_core on;
        access_log logs/access.log ai;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/fake/;
    }
    location /fake/ {
        add_header Content-Encoding gzip;
        add_header X-Asked-Encoding "$http_accept_encoding";
        default_type text/event-stream;
        return 200 'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}\n\n';
    }
--- request
POST /v1/chat/completions
{"model":"fake","stream":true,"messages":[{"role":"user","content":"hi"}]}
--- more_headers
Accept-Encoding: gzip, br
--- response_headers
X-Asked-Encoding: identity
--- response_body eval
qq!data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}\n\n!
--- access_log
-
--- error_log
its usage is not counted
--- no_error_log
[error]



=== TEST 12: a subrequest to an AI endpoint is refused, the parent is unaffected
--- http_config
    log_format ai '$ai_target $ai_attempts $status';
    ai_target main http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 models=gpt-*;
    ai_target shadow http://127.0.0.1:$TEST_NGINX_MOCK_PORT/shadow/v1 models=gpt-*;
--- config
    location /v1/ {
        access_log logs/access.log ai;
        mirror /mirror/v1/chat/completions;
        ai_proxy main;
    }
    location /mirror/ {
        internal;
        ai_proxy shadow;
    }
--- exec
curl -s http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions -d '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}' | grep -o '"content":"[^"]*"'
sleep 0.3
curl -s http://127.0.0.1:$TEST_NGINX_MOCK_PORT/mock/count; echo
--- response_body
"content":"mock reply: hi"
{"requests":1}
--- access_log
main 1 200
--- error_log
subrequests to an AI endpoint are not supported: "/mirror/v1/chat/completions"
[error]



=== TEST 13: a stream framed by Content-Length and cut gets the error event and a terminated response
--- http_config
    log_format ai '$ai_model [$ai_total_tokens] $status';
--- config
    location /v1/ {
        ai_core on;
        access_log logs/access.log ai;
        proxy_buffering off;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
    location /buffered/ {
        ai_core on;
        access_log logs/access.log ai;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/;
    }
--- request eval
["POST /v1/chat/completions\n" . '{"model":"gpt-4o~cl_stream=1,disconnect_after=2","stream":true,"messages":[{"role":"user","content":"a b c d e"}]}',
 "POST /buffered/v1/chat/completions\n" . '{"model":"gpt-4o~cl_stream=1,disconnect_after=2","stream":true,"messages":[{"role":"user","content":"a b c d e"}]}']
--- response_headers eval
["Transfer-Encoding: chunked\n!Content-Length", "Transfer-Encoding: chunked\n!Content-Length"]
--- response_body_like eval
[qr/"content":"mock ".*\n\nevent: error\ndata: \{"error":\{"message":"the upstream stream ended before it was complete","type":"api_error","param":null,"code":"stream_truncated"\}\}\n\n$/s,
 qr/"content":"mock ".*\n\nevent: error\ndata: \{"error":\{"message":"the upstream stream ended before it was complete","type":"api_error","param":null,"code":"stream_truncated"\}\}\n\n$/s]
--- access_log
gpt-4o~cl_stream=1,disconnect_after=2 [-] 200
--- error_log
the upstream stream ended before its terminal event
upstream prematurely closed connection
[error]



=== TEST 14: a subrequest to ai_proxy under a URI that is no AI endpoint is refused too
--- http_config
    ai_target main http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 models=gpt-*;
--- config
    location /v1/ {
        mirror /shadow;
        ai_proxy main;
    }
    location = /shadow {
        internal;
        ai_proxy main;
    }
--- exec
curl -s -o /dev/null -X POST http://127.0.0.1:$TEST_NGINX_MOCK_PORT/mock/reset
curl -s http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions -d '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}' | grep -o '"content":"[^"]*"'
sleep 0.3
curl -s http://127.0.0.1:$TEST_NGINX_MOCK_PORT/mock/count; echo
--- response_body
"content":"mock reply: hi"
{"requests":1}
--- error_log
ai_proxy: subrequests (mirror, auth_request, SSI) are not supported: "/shadow"
[error]



=== TEST 15: NGINX's own refusals before a location is chosen (TRACE, a header line twice that must be once, an unknown Transfer-Encoding) are JSON when the core is on in the server block
--- config
    ai_core on;
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions
curl -s -w ' %{http_code}\n' -X TRACE $u
curl -s -w ' %{http_code}\n' $u -H 'Authorization: Bearer a' -H 'Authorization: Bearer b' -d '{}'
curl -s -w ' %{http_code}\n' $u -H 'Transfer-Encoding: gzip' -d '{}'
--- response_body
{"error":{"message":"method not allowed","type":"invalid_request_error","param":null,"code":"method_not_allowed"}}
 405
{"error":{"message":"bad request","type":"invalid_request_error","param":null,"code":null}}
 400
{"error":{"message":"not implemented (an unsupported method or Transfer-Encoding)","type":"api_error","param":null,"code":null}}
 501
--- no_error_log
[error]
