# The core's request side: the body is read once (in memory, spilled to a
# temp file, chunked), parsed once into the normalized view ($ai_*), and
# everything wrong gets an OpenAI-shaped JSON error with the right status.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: chat request: the normalized view in variables
--- config
    location /v1/ {
        ai_core on;
        return 200 "model=$ai_model stream=$ai_stream endpoint=$ai_endpoint\n";
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}
--- response_body
model=gpt-4o stream=true endpoint=chat
--- no_error_log
[error]



=== TEST 2: content parts, tools, embeddings and anthropic views
--- config
    location / {
        ai_core on;
        return 200 "$ai_endpoint $ai_model $ai_stream\n";
    }
--- request eval
[
"POST /v1/chat/completions
{\"model\":\"m1\",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"what is\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,AAAA\"}}]}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}",
"POST /v1/embeddings
{\"model\":\"text-embedding-3-small\",\"input\":[\"a\",\"b\"]}",
"POST /v1/messages
{\"model\":\"claude-3-5-haiku\",\"max_tokens\":16,\"system\":[{\"type\":\"text\",\"text\":\"s\"}],\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"}]}]}",
"POST /v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse
{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hi\"}]}]}"
]
--- response_body eval
[
"chat m1 false\n",
"embeddings text-embedding-3-small false\n",
"messages claude-3-5-haiku false\n",
"generate_content gemini-2.0-flash true\n"
]
--- no_error_log
[error]



=== TEST 3: malformed JSON is 400 with the byte position
--- config
    location /v1/ {
        ai_core on;
        return 200 "passed\n";
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":[
--- error_code: 400
--- response_headers
Content-Type: application/json
--- response_body_like
^\{"error":\{"message":"the request body is not valid JSON \(error at byte \d+\)","type":"invalid_request_error","param":null,"code":null\}\}$
--- no_error_log
[error]



=== TEST 4: wrong types are 400 naming the parameter
--- config
    location /v1/ {
        ai_core on;
        return 200 "passed\n";
    }
--- request eval
[
"POST /v1/chat/completions\n{\"model\":\"m\",\"messages\":\"hello\"}",
"POST /v1/chat/completions\n{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
"POST /v1/chat/completions\n{\"model\":42,\"messages\":[]}",
"POST /v1/chat/completions\n{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":7}]}",
"POST /v1/chat/completions\n{\"model\":\"m\",\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}",
"POST /v1/chat/completions\n{\"model\":\"m\",\"stream\":\"yes\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
"POST /v1/chat/completions\n{\"model\":\"m\",\"max_tokens\":-3,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
"POST /v1/chat/completions\n[1,2,3]",
"POST /v1/messages\n{\"model\":\"claude\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
"POST /v1/embeddings\n{\"model\":\"e\",\"input\":{\"a\":1}}"
]
--- error_code eval
[400, 400, 400, 400, 400, 400, 400, 400, 400, 400]
--- response_body eval
[
qq!{"error":{"message":"'messages' must be an array","type":"invalid_request_error","param":"messages","code":null}}\n!,
qq!{"error":{"message":"'model' is required","type":"invalid_request_error","param":"model","code":null}}\n!,
qq!{"error":{"message":"'model' must be a string","type":"invalid_request_error","param":"model","code":null}}\n!,
qq!{"error":{"message":"message 'content' must be a string or an array of parts","type":"invalid_request_error","param":"messages","code":null}}\n!,
qq!{"error":{"message":"a message has an unknown 'role': expected system, developer, user, assistant or tool","type":"invalid_request_error","param":"messages","code":null}}\n!,
qq!{"error":{"message":"'stream' must be a boolean","type":"invalid_request_error","param":"stream","code":null}}\n!,
qq!{"error":{"message":"'max_tokens' must be a non-negative integer","type":"invalid_request_error","param":"max_tokens","code":null}}\n!,
qq!{"error":{"message":"the request body must be a JSON object","type":"invalid_request_error","param":null,"code":null}}\n!,
qq!{"type":"error","error":{"message":"'max_tokens' is required","type":"invalid_request_error","param":"max_tokens","code":null}}\n!,
qq!{"error":{"message":"'input' must be a string or an array","type":"invalid_request_error","param":"input","code":null}}\n!
]
--- no_error_log
[error]



=== TEST 5: an empty body is 400
--- config
    location /v1/ {
        ai_core on;
        return 200 "passed\n";
    }
--- request
POST /v1/chat/completions
--- error_code: 400
--- response_body
{"error":{"message":"request body is empty, a JSON object is expected","type":"invalid_request_error","param":null,"code":null}}
--- no_error_log
[error]



=== TEST 6: wrong method is 405 with Allow
--- config
    location /v1/ {
        ai_core on;
        return 200 "passed\n";
    }
--- request eval
["GET /v1/chat/completions", "DELETE /v1/models"]
--- error_code eval
[405, 405]
--- response_headers eval
["Allow: POST\nContent-Type: application/json", "Allow: GET, HEAD"]
--- response_body eval
[
qq!{"error":{"message":"method GET is not allowed for /v1/chat/completions, use POST","type":"invalid_request_error","param":null,"code":"method_not_allowed"}}\n!,
qq!{"error":{"message":"method DELETE is not allowed for /v1/models, use GET, HEAD","type":"invalid_request_error","param":null,"code":"method_not_allowed"}}\n!
]
--- no_error_log
[error]



=== TEST 7: too large (Content-Length) is a JSON 413, not an HTML page
--- config
    client_max_body_size 64;
    location /v1/ {
        ai_core on;
        return 200 "passed\n";
    }
--- request eval
"POST /v1/chat/completions\n" . '{"model":"m","messages":[{"role":"user","content":"' . ("x" x 200) . '"}]}'
--- error_code: 413
--- response_headers
Content-Type: application/json
--- response_body
{"error":{"message":"request body is too large","type":"invalid_request_error","param":null,"code":"request_too_large"}}
--- error_log
client intended to send too large body
[error]



=== TEST 8: too large (chunked) is a JSON 413
--- config
    client_max_body_size 64;
    location /v1/ {
        ai_core on;
        return 200 "passed\n";
    }
--- raw_request eval
my $body = '{"model":"m","messages":[{"role":"user","content":"' . ("x" x 200) . '"}]}';
"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
. sprintf("%x\r\n%s\r\n0\r\n\r\n", length($body), $body)
--- error_code: 413
--- response_headers
Content-Type: application/json
--- response_body_like
^\{"error":\{"message":"request body is (larger than 64 bytes|too large)","type":"invalid_request_error","param":null,"code":"request_too_large"\}\}$
--- error_log
client intended to send too large chunked body
[error]



=== TEST 9: a chunked body is read and parsed
--- config
    location /v1/ {
        ai_core on;
        return 200 "model=$ai_model\n";
    }
--- raw_request eval
my $body = '{"model":"chunky","messages":[{"role":"user","content":"hello"}]}';
my $a = substr($body, 0, 20);
my $b = substr($body, 20);
"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
. sprintf("%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n", length($a), $a, length($b), $b)
--- response_body
model=chunky
--- no_error_log
[error]



=== TEST 10: a body spilled to a temporary file is read back
--- config
    client_body_buffer_size 128;
    client_max_body_size 1m;
    location /v1/ {
        ai_core on;
        return 200 "model=$ai_model\n";
    }
--- request eval
"POST /v1/chat/completions\n" . '{"model":"spilled","messages":[{"role":"user","content":"' . ("y" x 5000) . '"}]}'
--- response_body
model=spilled
--- error_log
a client request body is buffered to a temporary file
--- no_error_log
[error]



=== TEST 11: nginx error pages on an AI route become JSON (404 from static files)
--- config
    location /v1/ {
        ai_core on;
        root html;
    }
--- request
GET /v1/audio/speech
--- error_code: 404
--- response_headers
Content-Type: application/json
--- response_body
{"error":{"message":"unknown endpoint","type":"invalid_request_error","param":null,"code":"unknown_url"}}
--- error_log
[error]



=== TEST 12: not an AI route: nothing changes
--- config
    location /v1/ {
        return 200 "model=[$ai_model]\n";
    }
    location /other/ {
        root html;
    }
--- request eval
["POST /v1/chat/completions\n{not json", "GET /other/x"]
--- error_code eval
[200, 404]
--- response_body_like eval
["^model=\\[\\]\$", "<html>"]
--- error_log
[error]



=== TEST 13: ai_core off in a nested location
--- config
    location /v1/ {
        ai_core on;
        location /v1/raw/ {
            ai_core off;
            return 200 "raw\n";
        }
        return 200 "ai\n";
    }
--- request eval
["POST /v1/raw/chat/completions\n{bad", "POST /v1/chat/completions\n{bad"]
--- error_code eval
[200, 400]
--- no_error_log
[alert]



=== TEST 14: a body sent after its header in parts is read whole, in one buffer; a request pipelined after it is served
# The header's buffer is given the room for the body (one run of bytes,
# no copy); it goes back to NGINX as it would leave it, so the request
# that follows in the last packet is read from it.
--- config
    location /v1/ {
        ai_core on;
        return 200 "model=$ai_model\n$request_body";
    }
--- exec
perl -MIO::Socket::INET -e '
my $body = q({"messages":[{"role":"user","content":") . ("x" x 3000)
           . q("}],"model":"split-model"});
my $next = q({"model":"second","messages":[{"role":"user","content":"hi"}]});
my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}") or die;
my $h = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: " . length($body) . "\r\n\r\n";
for my $part ($h . substr($body, 0, 100), substr($body, 100, 2000),
              substr($body, 2100) . "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: " . length($next) . "\r\n\r\n" . $next)
{
    print $s $part;
    select(undef, undef, undef, 0.1);
}
my $all = ""; while (sysread($s, my $buf, 65536)) { $all .= $buf }
for my $sent ($body, $next) {
    $all =~ s/^HTTP\/1\.1 (\d+)[^\r]*\r\n(.*?)\r\n\r\n//s or die "no response";
    my ($st, $hd) = ($1, $2);
    my ($n) = $hd =~ /Content-Length: (\d+)/i;
    my $b = substr($all, 0, $n, "");
    my ($first, $rest) = split /\n/, $b, 2;
    print "$st $first same=", ($rest eq $sent ? 1 : 0), "\n";
}
'
--- response_body
200 model=split-model same=1
200 model=second same=1
--- no_error_log
[error]
