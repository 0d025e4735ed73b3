# Self-test of the project-local Test::Nginx::Socket harness (t/lib).
# Uses stock nginx features only.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_NGINX_HARNESS_GREETING} = 'howdy';

# a second server for the proxy blocks: beside ours, so that runs with
# other ports (TEST_NGINX_SERVER_PORT) do not collide
$ENV{TEST_NGINX_BACKEND_PORT} ||= ($ENV{TEST_NGINX_SERVER_PORT} || 1984) + 2;

run_tests();

__DATA__

=== TEST 1: hello
--- config
    location = /t { return 200 "hi\n"; }
--- request
GET /t
--- response_body
hi
--- no_error_log
[error]



=== TEST 2: headers, error_code, like/unlike
--- config
    location = /h {
        add_header X-Foo "bar baz";
        add_header X-Dup one;
        add_header X-Dup two;
        return 201 "created 12345\n";
    }
--- request
GET /h
--- error_code: 201
--- response_headers
X-Foo: bar baz
X-Dup: one, two
!X-Missing
--- response_headers_like
Content-Length: ^\d+$
Server: ^nginx
--- response_body_like
^created \d+$
--- response_body_unlike
error



=== TEST 3: POST body, more_headers, variable substitution
--- config
    location = /p {
        return 200 "foo=$http_x_foo len=$content_length port=$TEST_NGINX_SERVER_PORT greet=$TEST_NGINX_HARNESS_GREETING\n";
    }
--- more_headers
X-Foo: hello
--- request
POST /p
hello world
--- response_body
foo=hello len=11 port=$TEST_NGINX_SERVER_PORT greet=howdy



=== TEST 4: chunked response through proxy_pass to a second server
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_BACKEND_PORT;
        location / { return 200 "hello world, hello world\n"; }
    }
--- config
    location = /c {
        proxy_pass http://127.0.0.1:$TEST_NGINX_BACKEND_PORT/;
        sub_filter_types *;
        sub_filter_once off;
        sub_filter 'world' 'nginx';
    }
--- request
GET /c
--- response_headers
Transfer-Encoding: chunked
!Content-Length
--- response_body
hello nginx, hello nginx



=== TEST 5: error_log with an expected [error]
--- config
--- user_files
>>> exists.html
here
--- request
GET /missing.html
--- error_code: 404
--- error_log
[error]
open() "
missing.html" failed (2: No such file or directory)
--- no_error_log
[alert]
[crit]



=== TEST 6: error_log eval with qr//
--- config
--- request
GET /nope.txt
--- error_code: 404
--- error_log eval
[qr/\[error\] \d+#\d+: \*\d+ open\(\) ".*nope\.txt" failed/, "No such file"]



=== TEST 7: must_die on a bad directive value
--- config
    location = /x { proxy_buffering maybe; }
--- must_die
--- error_log
[emerg]
invalid value "maybe" in "proxy_buffering" directive



=== TEST 8: raw_request with a chunked request body
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_BACKEND_PORT;
        location / { return 200 "len=$content_length body=$http_x_body\n"; }
    }
--- config
    location = /echo {
        proxy_set_header X-Body $request_body;
        proxy_pass http://127.0.0.1:$TEST_NGINX_BACKEND_PORT/;
    }
--- raw_request eval
"POST /echo HTTP/1.1\r
Host: localhost\r
Connection: close\r
Transfer-Encoding: chunked\r
\r
5\r
hello\r
6\r
 world\r
0\r
\r
"
--- response_body
len=11 body=hello world



=== TEST 9: raw_request split into packets
--- config
    location = /t { return 200 "method=$request_method\n"; }
--- raw_request eval
["GE", "T /t HTTP/1.0\r\n", "\r\n"]
--- response_body
method=GET



=== TEST 10: user_files, including a file under conf/
--- config
    include extra.conf;
--- user_files
>>> foo.txt
hello from file
>>> sub/dir/bar.txt
bar
>>> ../conf/extra.conf
location = /inc { return 200 "included\n"; }
--- request eval
["GET /foo.txt", "GET /sub/dir/bar.txt", "GET /inc"]
--- response_body eval
["hello from file\n", "bar\n", "included\n"]



=== TEST 11: exec
--- config
    location = /t { return 200 "via curl\n"; }
--- exec
echo hi; curl -s http://127.0.0.1:$TEST_NGINX_SERVER_PORT/t
--- response_body
hi
via curl



=== TEST 12: exec with a non-zero exit status
--- config
--- exec
echo failing >&2; exit 3
--- exec_status: 3
--- response_body_like: ^$



=== TEST 13: access_log
--- config
    location = /t { return 200 "ok\n"; }
--- request
GET /t?marker=abc
--- access_log
"GET /t?marker=abc HTTP/1.1" 200
--- access_log_like
^127\.0\.0\.1 - - \[[^\]]+\] "GET /t\?marker=abc



=== TEST 14: timeout + abort on a rate-limited download
--- config
    location = /big.txt { limit_rate 200k; }
--- user_files eval
">>> big.txt\n" . ("x" x 1000000) . "\n"
--- request
GET /big.txt
--- timeout: 0.3
--- abort
--- wait: 0.2
--- access_log_like
"GET /big\.txt HTTP/1\.1" 200 \d+



=== TEST 15: array-ref requests with per-request error codes
--- config
    location = /a { return 200 "a\n"; }
    location = /b { return 403; }
--- request eval
["GET /a", "GET /b"]
--- error_code eval
[200, 403]
--- response_body_like eval
["^a\$", "403 Forbidden"]



=== TEST 16: keep-alive request stops at Content-Length; HEAD
--- config
    location = /k { return 200 "keep\n"; }
--- request eval
["GET /k", "HEAD /k"]
--- more_headers
Connection: keep-alive
--- response_headers eval
["Content-Length: 5", "Content-Length: 5"]
--- response_body eval
["keep\n", ""]



=== TEST 17: main_config, wait, chomp filter
--- main_config
worker_rlimit_nofile 1024;
--- config
    location = /t { return 200 "no newline"; }
--- request
GET /t
--- wait: 0.1
--- response_body chomp
no newline



=== TEST 18: SKIP works (would fail)
--- SKIP
--- config
    location = /t { return 200 "x\n"; }
--- request
GET /t
--- response_body
y



=== TEST 19: "nginx" in exec is the binary under test
--- config
    location = /t { return 200; }
--- exec
command -v nginx
test "$(nginx -V 2>&1)" = "$($TEST_NGINX_BINARY -V 2>&1)" && echo same
--- response_body
$TEST_NGINX_SERVROOT/bin/nginx
same



=== TEST 20: a sanitizer report during a block fails that block only
--- config
    # a nested run (its lines start with | here) writes a fake report
    # into its TEST_NGINX_SANITIZER_LOGS during its first block, and one
    # of UBSan's into its error.log during its third
    location = /t { return 200; }
--- exec
d=$TEST_NGINX_SERVROOT/nested
mkdir -p $d
sed 's/^|//' > $d/nested <<'END'
|use lib 't/lib';
|use Test::Nginx::Socket 'no_plan';
|run_tests();
|__DATA__
|=== TEST 1: with a report
|--- config
|    location = /t { return 200 "ok\n"; }
|--- exec
|echo 'ERROR: AddressSanitizer: injected' > "$NESTED_SAN/asan.4242"; echo ok
|--- response_body
|ok
|=== TEST 2: clean
|--- config
|    location = /t { return 200 "ok\n"; }
|--- request
|GET /t
|--- response_body
|ok
|=== TEST 3: with UBSan's report in error.log
|--- config
|    location = /t { return 200 "ok\n"; }
|--- exec
|echo '/x/y.c:1:2: runtime error: injected' >> "$NESTED_ROOT/logs/error.log"
|echo '    #0 0x1 in f /x/y.c:1' >> "$NESTED_ROOT/logs/error.log"; echo ok
|--- response_body
|ok
END
NESTED_SAN=$d/san TEST_NGINX_SANITIZER_LOGS=$d/san NESTED_ROOT=$d/servroot \
TEST_NGINX_SERVROOT=$d/servroot TEST_NGINX_SERVER_PORT=$TEST_NGINX_BACKEND_PORT \
TEST_AI_MOCK_BIN= perl $d/nested > $d/out 2>&1
echo "exit=$?"
echo "ok=$(grep -c '^ok' $d/out) not_ok=$(grep -c '^not ok' $d/out)"
grep '^not ok' $d/out | cut -d- -f2
grep -c "^# sanitizer reports in $d/san:" $d/out
grep -c '^# *ERROR: AddressSanitizer: injected' $d/out
grep -c '^# sanitizer reports in error.log' $d/out
ls $d/san
cat $d/san/ubsan.nested.T3
--- response_body
exit=2
ok=7 not_ok=2
 TEST 1: with a report 
 TEST 3: with UBSan's report in error.log 
1
1
1
asan.4242.nested.T1
ubsan.nested.T3
# $TEST_NGINX_SERVROOT/nested/nested: TEST 3: with UBSan's report in error.log
/x/y.c:1:2: runtime error: injected
    #0 0x1 in f /x/y.c:1
