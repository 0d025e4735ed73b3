# The core's store interface with the redis backend (ngx_http_ai_redis
# module) against a real redis-server: the operations of t/004-store.t,
# windowed counters on the server's clock, a large value, the prefix and
# the database, AUTH with a password and with an ACL user, and the
# configuration's errors.  Each block uses a prefix of its own.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

# the password of TEST 11 from the environment of nginx's master
$ENV{TEST_AI_REDIS_PW} = 's3cret-pw';

# at debug level: the password is in no line at any level
log_level('debug');
workers(2);
redis_server();
run_tests();

__DATA__

=== TEST 1: set, get, del, not found
--- http_config
    ai_store s1 backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=t1:;
--- config
    location /s { ai_store_test s1; }
--- request eval
["GET /s?op=get&key=a", "GET /s?op=set&key=a&value=hello", "GET /s?op=get&key=a",
 "GET /s?op=del&key=a", "GET /s?op=get&key=a", "GET /s?op=del&key=a"]
--- response_body eval
["{\"rc\":\"not_found\"}\n", "{\"rc\":\"ok\"}\n", "{\"rc\":\"ok\",\"value\":\"hello\"}\n",
 "{\"rc\":\"ok\"}\n", "{\"rc\":\"not_found\"}\n", "{\"rc\":\"not_found\"}\n"]
--- no_error_log
[error]



=== TEST 2: incr from nothing, by deltas, negative; a value is no counter
--- http_config
    ai_store s1 backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=t2:;
--- config
    location /s { ai_store_test s1; }
--- request eval
["GET /s?op=incr&key=n&delta=5", "GET /s?op=incr&key=n&delta=37", "GET /s?op=incr&key=n&delta=-50",
 "GET /s?op=get&key=n", "GET /s?op=set&key=v&value=x", "GET /s?op=set&key=v&value=a-much-longer-value",
 "GET /s?op=get&key=v", "GET /s?op=incr&key=v&delta=1"]
--- response_body eval
["{\"rc\":\"ok\",\"number\":5}\n", "{\"rc\":\"ok\",\"number\":42}\n", "{\"rc\":\"ok\",\"number\":-8}\n",
 "{\"rc\":\"ok\",\"value\":\"-8\"}\n", "{\"rc\":\"ok\"}\n", "{\"rc\":\"ok\"}\n",
 "{\"rc\":\"ok\",\"value\":\"a-much-longer-value\"}\n", "{\"rc\":\"error\"}\n"]
--- no_error_log
[error]



=== TEST 3: TTL: after the TTL the entry is gone (counters too); the time left
--- http_config
    ai_store s1 backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=t3:;
--- config
    location /s { ai_store_test s1; }
--- exec
u="http://127.0.0.1:$TEST_NGINX_SERVER_PORT/s"
curl -s "$u?op=set&key=k&value=v&ttl=300";
curl -s "$u?op=get&key=k&showttl=1" | sed -E 's/"ttl":(2[0-9][0-9]|300)}/"ttl":T}/';
curl -s "$u?op=incr&key=c&delta=3&ttl=300";
curl -s "$u?op=incr&key=c&delta=3&ttl=300";
sleep 0.6;
curl -s "$u?op=get&key=k";
curl -s "$u?op=incr&key=c&delta=1"
--- response_body
{"rc":"ok"}
{"rc":"ok","value":"v","ttl":T}
{"rc":"ok","number":3}
{"rc":"ok","number":6}
{"rc":"not_found"}
{"rc":"ok","number":1}
--- no_error_log
[error]



=== TEST 4: add is set-if-absent; reserve applies a delta only within the limit and tells the time left
--- http_config
    ai_store s1 backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=t4:;
--- config
    location /s { ai_store_test s1; }
--- request eval
["GET /s?op=add&key=lock&value=a&ttl=5000", "GET /s?op=add&key=lock&value=b", "GET /s?op=get&key=lock",
 "GET /s?op=reserve&key=r&delta=60&limit=100&ttl=60000", "GET /s?op=reserve&key=r&delta=50&limit=100",
 "GET /s?op=reserve&key=r&delta=40&limit=100&showttl=1", "GET /s?op=incr&key=r&delta=-30",
 "GET /s?op=reserve&key=r&delta=30&limit=100"]
--- response_body_like eval
['^\{"rc":"ok"\}$', '^\{"rc":"not_found"\}$', '^\{"rc":"ok","value":"a"\}$',
 '^\{"rc":"ok","number":60\}$', '^\{"rc":"not_found","number":60\}$',
 '^\{"rc":"ok","number":100,"ttl":(5\d{4}|60000)\}$', '^\{"rc":"ok","number":70\}$',
 '^\{"rc":"ok","number":100\}$']
--- no_error_log
[error]



=== TEST 5: counters saturate instead of wrapping
--- http_config
    ai_store s1 backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=t5:;
--- config
    location /s { ai_store_test s1; }
--- request eval
["GET /s?op=incr&key=n&delta=9223372036854775807", "GET /s?op=incr&key=n&delta=5",
 "GET /s?op=incr&key=m&delta=-9223372036854775807", "GET /s?op=incr&key=m&delta=-9",
 "GET /s?op=incr&key=m&delta=-1"]
--- response_body eval
["{\"rc\":\"ok\",\"number\":9223372036854775807}\n", "{\"rc\":\"ok\",\"number\":9223372036854775807}\n",
 "{\"rc\":\"ok\",\"number\":-9223372036854775807}\n", "{\"rc\":\"ok\",\"number\":-9223372036854775807}\n",
 "{\"rc\":\"ok\",\"number\":-9223372036854775807}\n"]
--- no_error_log
[error]



=== TEST 6: a sliding window: a reservation within the limit, refused over it with the time to retry, settled in the window it was made in, nothing from a window long gone; the window's keys are PREFIX{KEY}:INDEX and expire
--- http_config
    ai_store s1 backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=t6:;
--- config
    location /s { ai_store_test s1; }
--- exec
u="http://127.0.0.1:$TEST_NGINX_SERVER_PORT/s?window=86400000&key=w"
a=$(curl -s "$u&op=reserve&delta=60&limit=100")
echo "$a" | sed 's/"stamp":[0-9]*/"stamp":S/'
stamp=$(echo "$a" | sed 's/.*"stamp":\([0-9]*\).*/\1/')
curl -s "$u&op=reserve&delta=50&limit=100" | sed -E 's/"retry":[0-9]+/"retry":R/'
curl -s "$u&op=incr&delta=-50&stamp=$stamp" | sed 's/"stamp":[0-9]*/"stamp":S/'
curl -s "$u&op=reserve&delta=90&limit=100&showttl=1" \
    | sed -E 's/"stamp":[0-9]+/"stamp":S/; s/"ttl":(8[0-9]{7}|9[0-9]{7}|1[0-6][0-9]{7}|17[0-2][0-9]{6})/"ttl":T/'
curl -s "$u&op=incr&delta=-90&stamp=1" | sed 's/"stamp":[0-9]*/"stamp":S/'
curl -s "$u&op=reserve&delta=101&limit=100"
redis-cli -p $TEST_NGINX_REDIS_PORT get "t6:{w}:$stamp"
t=$(redis-cli -p $TEST_NGINX_REDIS_PORT pttl "t6:{w}:$stamp")
[ "$t" -gt 86400000 ] && [ "$t" -le 172800000 ] && echo "expires in its window and the next"
--- response_body
{"rc":"ok","number":60,"stamp":S}
{"rc":"not_found","number":60,"retry":R}
{"rc":"ok","number":10,"stamp":S}
{"rc":"ok","number":100,"stamp":S,"ttl":T}
{"rc":"ok","number":100,"stamp":S}
{"rc":"not_found","number":100,"retry":0}
100
expires in its window and the next
--- no_error_log
[error]



=== TEST 7: a short sliding window forgets; a token bucket leaks its limit per window, continuously; a bucket is no value
--- http_config
    ai_store s1 backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=t7:;
--- config
    location /s { ai_store_test s1; }
--- exec
u="http://127.0.0.1:$TEST_NGINX_SERVER_PORT/s?op=reserve&limit=100"
# (the second lands in the next window now and then: the first then
# counts a little less, 90 to 100, and it is still refused)
curl -s "$u&key=w&window=300&delta=100" | sed 's/"stamp":[0-9]*/"stamp":S/'
curl -s "$u&key=w&window=300&delta=100" | sed -E 's/"number":(9[0-9]|100),"retry":([1-9]|[1-9][0-9]|[1-5][0-9][0-9]|60[01])}/"number":W,"retry":R}/'
sleep 0.7
curl -s "$u&key=w&window=300&delta=100" | sed 's/"stamp":[0-9]*/"stamp":S/'
curl -s "$u&key=b&bucket=1&window=1000&delta=100"
curl -s "$u&key=b&bucket=1&window=1000&delta=50" | sed -E 's/"number":(9[0-9]|100),"retry":(4[0-9]{2}|50[01])}/"number":N,"retry":R}/'
sleep 0.6
curl -s "$u&key=b&bucket=1&window=1000&delta=50" | sed -E 's/"number":([5-8][0-9]|90)}/"number":N}/'
curl -s "http://127.0.0.1:$TEST_NGINX_SERVER_PORT/s?op=get&key=b"
curl -s "http://127.0.0.1:$TEST_NGINX_SERVER_PORT/s?op=incr&key=b&delta=1"
--- response_body
{"rc":"ok","number":100,"stamp":S}
{"rc":"not_found","number":W,"retry":R}
{"rc":"ok","number":100,"stamp":S}
{"rc":"ok","number":100}
{"rc":"not_found","number":N,"retry":R}
{"rc":"ok","number":N}
{"rc":"error"}
{"rc":"error"}
--- no_error_log
[error]



=== TEST 8: a detached op settles after the answer
--- http_config
    ai_store s1 backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=t8:;
--- config
    location /s { ai_store_test s1; }
--- exec
u="http://127.0.0.1:$TEST_NGINX_SERVER_PORT/s"
curl -s "$u?op=reserve&key=r&delta=5&limit=10&detached=-5"
sleep 0.2
curl -s "$u?op=get&key=r"
curl -s "$u?op=reserve&key=r&delta=11&limit=10"
--- response_body
{"rc":"ok","number":5}
{"rc":"ok","value":"0"}
{"rc":"not_found","number":0}
--- no_error_log
[error]



=== TEST 9: a 100 KB value, written and read back whole (one written by redis-cli too)
--- http_config
    ai_store s1 backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=t9:;
--- config
    large_client_header_buffers 4 256k;
    location /s { ai_store_test s1; }
--- exec
u="http://127.0.0.1:$TEST_NGINX_SERVER_PORT/s"
v=$(head -c 102400 /dev/zero | tr '\0' x)
curl -s "$u?op=set&key=big&value=$v"
for i in 1 2 3; do
  curl -s -m 2 "$u?op=get&key=big" | tr -cd x | wc -c
done
redis-cli -p $TEST_NGINX_REDIS_PORT strlen "t9:{big}"
head -c 150000 /dev/zero | tr '\0' y | redis-cli -p $TEST_NGINX_REDIS_PORT -x set "t9:{big2}"
curl -s -m 2 "$u?op=get&key=big2" | tr -cd y | wc -c
--- response_body
{"rc":"ok"}
102400
102400
102400
102400
OK
150000
--- no_error_log
[error]



=== TEST 10: the default prefix "ai:", and prefix and db: the keys land there
--- http_config
    ai_store s1 backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT;
    ai_store s2 backend=redis server=localhost:$TEST_NGINX_REDIS_PORT prefix=gw/ db=3;
--- config
    location /s1 { ai_store_test s1; }
    location /s2 { ai_store_test s2; }
--- exec
u="http://127.0.0.1:$TEST_NGINX_SERVER_PORT"
curl -s "$u/s1?op=set&key=k&value=one"
curl -s "$u/s2?op=set&key=k&value=three"
curl -s "$u/s2?op=incr&key=n&delta=7"
r="redis-cli -p $TEST_NGINX_REDIS_PORT"
$r get "ai:{k}"
$r -n 3 get "gw/{k}"
$r -n 3 get "gw/{n}"
$r get "gw/{k}"
$r -n 3 get "ai:{k}"
$r -n 3 flushdb
--- response_body
{"rc":"ok"}
{"rc":"ok"}
{"rc":"ok","number":7}
one
three
7


OK
--- no_error_log
[error]



=== TEST 11: AUTH with requirepass: the password given, from the environment, from a file; never logged
--- redis_args
--requirepass s3cret-pw
--- http_config
    ai_store s1 backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=t11: password=s3cret-pw;
    ai_store s2 backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=t11: password=env:TEST_AI_REDIS_PW;
    ai_store s3 backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=t11: password=file:redis.pw;
--- user_files
>>> ../conf/redis.pw
s3cret-pw
--- config
    location /s1 { ai_store_test s1; }
    location /s2 { ai_store_test s2; }
    location /s3 { ai_store_test s3; }
--- request eval
["GET /s1?op=incr&key=n&delta=1", "GET /s2?op=incr&key=n&delta=1", "GET /s3?op=incr&key=n&delta=1"]
--- response_body eval
["{\"rc\":\"ok\",\"number\":1}\n", "{\"rc\":\"ok\",\"number\":2}\n", "{\"rc\":\"ok\",\"number\":3}\n"]
--- no_error_log
[error]
s3cret



=== TEST 12: AUTH as an ACL user (the default user is off)
--- redis_args
--user alice on >alice-pw ~* &* +@all --user default off
--- http_config
    ai_store s1 backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=t12: user=alice password=alice-pw;
--- config
    location /s { ai_store_test s1; }
--- exec
u="http://127.0.0.1:$TEST_NGINX_SERVER_PORT/s"
curl -s "$u?op=set&key=k&value=v"
curl -s "$u?op=get&key=k"
redis-cli -p $TEST_NGINX_REDIS_PORT --user alice --pass alice-pw --no-auth-warning get "t12:{k}"
redis-cli -p $TEST_NGINX_REDIS_PORT get "t12:{k}"
--- response_body_like
^\{"rc":"ok"\}
\{"rc":"ok","value":"v"\}
v
NOAUTH.*
$
--- no_error_log
[error]
alice-pw



=== TEST 13: a bad password: the operations fail, the error is logged once, without the password
--- redis_args
--requirepass s3cret-pw
--- http_config
    ai_store s1 backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=t13: password=wr0ng-pw;
--- config
    location /s { ai_store_test s1; }
--- exec
u="http://127.0.0.1:$TEST_NGINX_SERVER_PORT/s"
for i in 1 2 3 4 5; do curl -s "$u?op=get&key=k"; sleep 0.1; done
n=$(grep -c "\[error\].*AUTH failed" $TEST_NGINX_SERVROOT/logs/error.log)
[ "$n" -ge 1 ] && [ "$n" -le 2 ] && echo "logged once by worker"
--- response_body
{"rc":"error"}
{"rc":"error"}
{"rc":"error"}
{"rc":"error"}
{"rc":"error"}
logged once by worker
--- error_log
[error]
ai_store "s1", redis 127.0.0.1:
AUTH failed: WRONGPASS
--- no_error_log
wr0ng-pw
s3cret



=== TEST 14: no server is an nginx -t error
--- http_config
    ai_store s1 backend=redis prefix=x:;
--- config
    location /s { ai_store_test s1; }
--- must_die
--- error_log
ai_store "s1": backend=redis needs "server=HOST:PORT" or "server=unix:PATH"



=== TEST 15: a bad server is an nginx -t error naming it
--- http_config
    ai_store s1 backend=redis server=127.0.0.1:notaport;
--- config
    location /s { ai_store_test s1; }
--- must_die
--- error_log
ai_store "s1": invalid server "127.0.0.1:notaport" (invalid port)



=== TEST 16: bad values are nginx -t errors naming them
--- http_config
    ai_store s1 backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=soon;
--- config
    location /s { ai_store_test s1; }
--- must_die
--- error_log
ai_store "s1": invalid value "timeout=soon"



=== TEST 17: bad values are nginx -t errors naming them: db
--- http_config
    ai_store s1 backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT db=x connect_timeout=1s;
--- config
    location /s { ai_store_test s1; }
--- must_die
--- error_log
ai_store "s1": invalid value "db=x"



=== TEST 18: an unknown parameter is an nginx -t error naming it, not its value (a misspelt password)
--- http_config
    ai_store s1 backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT passwd=hunter2;
--- config
    location /s { ai_store_test s1; }
--- must_die
--- error_log
ai_store "s1": invalid parameter "passwd=..." of backend=redis
--- no_error_log
hunter2



=== TEST 19: a password from an unset variable or a missing file is an nginx -t error, naming the variable or the file
--- http_config
    ai_store s1 backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT password=env:TEST_AI_NO_SUCH_VAR;
--- config
    location /s { ai_store_test s1; }
--- must_die
--- error_log
ai_store "s1": invalid password: the environment variable "TEST_AI_NO_SUCH_VAR" is not set



=== TEST 20: a password from a missing file is an nginx -t error naming the file
--- http_config
    ai_store s1 backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT password=file:no-such.pw;
--- config
    location /s { ai_store_test s1; }
--- must_die
--- error_log
ai_store "s1": invalid password: cannot open "/
/conf/no-such.pw" (2: No such file or directory)



=== TEST 21: a user without a password is an nginx -t error
--- http_config
    ai_store s1 backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT user=bob;
--- config
    location /s { ai_store_test s1; }
--- must_die
--- error_log
ai_store "s1": "user=bob" needs a password



=== TEST 22: a unix socket
--- redis_args
--unixsocket $TEST_NGINX_REDIS_DIR/redis.sock --unixsocketperm 770
--- http_config
    ai_store s1 backend=redis server=unix:$TEST_NGINX_REDIS_DIR/redis.sock prefix=t22:;
--- config
    location /s { ai_store_test s1; }
--- exec
u="http://127.0.0.1:$TEST_NGINX_SERVER_PORT/s"
curl -s "$u?op=set&key=k&value=over-unix"
curl -s "$u?op=get&key=k"
redis-cli -s $TEST_NGINX_REDIS_DIR/redis.sock get "t22:{k}"
--- response_body
{"rc":"ok"}
{"rc":"ok","value":"over-unix"}
over-unix
--- no_error_log
[error]



=== TEST 23: del given a value deletes only while the key holds that value, in one step (a script): a lock let go, not what was written in its place
--- http_config
    ai_store s1 backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=t23:;
--- config
    location /s { ai_store_test s1; }
--- request eval
["GET /s?op=add&key=k&value=1", "GET /s?op=set&key=k&value=answer", "GET /s?op=del&key=k&value=1",
 "GET /s?op=get&key=k", "GET /s?op=set&key=k&value=1", "GET /s?op=del&key=k&value=11",
 "GET /s?op=del&key=k&value=1", "GET /s?op=get&key=k", "GET /s?op=del&key=none&value=1"]
--- response_body eval
["{\"rc\":\"ok\"}\n", "{\"rc\":\"ok\"}\n", "{\"rc\":\"not_found\"}\n",
 "{\"rc\":\"ok\",\"value\":\"answer\"}\n", "{\"rc\":\"ok\"}\n", "{\"rc\":\"not_found\"}\n",
 "{\"rc\":\"ok\"}\n", "{\"rc\":\"not_found\"}\n", "{\"rc\":\"not_found\"}\n"]
--- no_error_log
[error]



=== TEST 24: add given get, in one step (a script): the lock taken, or the value present as a get gives it (the time it has left, a counter's number)
--- http_config
    ai_store s1 backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=t24:;
--- config
    location /s { ai_store_test s1; }
--- request eval
["GET /s?op=add&get=1&key=k&value=L&ttl=60000", "GET /s?op=add&get=1&key=k&value=M&showttl=1",
 "GET /s?op=get&key=k", "GET /s?op=set&key=k&value=answer",
 "GET /s?op=add&get=1&key=k&value=L&pin=0", "GET /s?op=add&key=k&value=L",
 "GET /s?op=add&get=1&key=k2&value=x", "GET /s?op=get&key=k2",
 "GET /s?op=incr&key=n&delta=7", "GET /s?op=add&get=1&key=n&value=x"]
--- response_body_like eval
["^\\{\"rc\":\"ok\"\\}\$", "^\\{\"rc\":\"not_found\",\"value\":\"L\",\"ttl\":(59\\d\\d\\d|60000)\\}\$",
 "^\\{\"rc\":\"ok\",\"value\":\"L\"\\}\$", "^\\{\"rc\":\"ok\"\\}\$",
 "^\\{\"rc\":\"not_found\",\"value\":\"answer\"\\}\$", "^\\{\"rc\":\"not_found\"\\}\$",
 "^\\{\"rc\":\"ok\"\\}\$", "^\\{\"rc\":\"ok\",\"value\":\"x\"\\}\$",
 "^\\{\"rc\":\"ok\",\"number\":7\\}\$", "^\\{\"rc\":\"not_found\",\"value\":\"7\"\\}\$"]
--- no_error_log
[error]
