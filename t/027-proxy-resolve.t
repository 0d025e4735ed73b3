# ai_proxy with a "resolver": the targets' host names are resolved again
# while NGINX runs, in the background, when the answer's TTL ends (the
# addresses in the "ai_proxy_addrs" zone, shared by the workers).  A tiny
# DNS server (t/lib/dns-a) answers from a file the block changes; a second
# mock listens on 127.0.0.2.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_NGINX_DNS_PORT} = $ENV{TEST_NGINX_SERVER_PORT} + 7;
workers(2);
run_tests();

__DATA__

=== TEST 1: the provider moves: requests follow its new address once valid= ends
--- user_files
>>> dns.txt
127.0.0.1
--- http_config
    resolver 127.0.0.1:$TEST_NGINX_DNS_PORT valid=1s ipv6=off;
    ai_target moving http://localhost:$TEST_NGINX_MOCK_PORT/v1;
    log_format ai '$upstream_addr $status';
--- config
    location /v1/ {
        ai_proxy moving;
        access_log logs/access.log ai;
    }
--- exec
dns=$TEST_NGINX_HTML_DIR/dns.txt
# a TTL of an hour: the resolver's valid=1s says when
python3 t/lib/dns-a $TEST_NGINX_DNS_PORT $dns 3600
cd $TEST_NGINX_SERVROOT
$TEST_AI_MOCK_BIN -l 127.0.0.2:$TEST_NGINX_MOCK_PORT -w 1 &
m1=http://127.0.0.1:$TEST_NGINX_MOCK_PORT
m2=http://127.0.0.2:$TEST_NGINX_MOCK_PORT
curl -s -o /dev/null -X POST $m1/mock/reset
ask() {
  for i in 1 2 3 4; do
    curl -s -o /dev/null -w '%{http_code}\n' -H 'Content-Type: application/json' \
      -d '{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}' \
      http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions
  done | sort | uniq -c | sed 's/^ *//'
  echo "127.0.0.1: $(curl -s $m1/mock/count) 127.0.0.2: $(curl -s $m2/mock/count)"
}
# localhost, 127.0.0.1, when the configuration was read and in the DNS
ask
# moved; the TTL is 1 s
echo 127.0.0.2 > $dns
sleep 2.5
ask
# and back
echo 127.0.0.1 > $dns
sleep 2.5
ask
awk '{print $1}' logs/access.log | uniq -c | sed 's/^ *//'
--- response_body_like eval
qr/^4 200
127.0.0.1: \{"requests":4\} 127.0.0.2: \{"requests":0\}
4 200
127.0.0.1: \{"requests":4\} 127.0.0.2: \{"requests":4\}
4 200
127.0.0.1: \{"requests":8\} 127.0.0.2: \{"requests":4\}
4 127.0.0.1:\d+
4 127.0.0.2:\d+
4 127.0.0.1:\d+
$/
--- no_error_log
[error]
[alert]
[crit]



=== TEST 2: the answer's TTL says when; while the name cannot be resolved, the addresses known last are used
--- user_files
>>> dns.txt
127.0.0.2
--- http_config
    resolver 127.0.0.1:$TEST_NGINX_DNS_PORT ipv6=off;
    ai_target moving http://localhost:$TEST_NGINX_MOCK_PORT/v1;
    log_format ai '$upstream_addr $status';
--- config
    location /v1/ {
        ai_proxy moving;
        access_log logs/access.log ai;
    }
--- exec
dns=$TEST_NGINX_HTML_DIR/dns.txt
python3 t/lib/dns-a $TEST_NGINX_DNS_PORT $dns 1
cd $TEST_NGINX_SERVROOT
$TEST_AI_MOCK_BIN -l 127.0.0.2:$TEST_NGINX_MOCK_PORT -w 1 &
ask() {
  for i in 1 2 3; do
    curl -s -o /dev/null -w '%{http_code}\n' -H 'Content-Type: application/json' \
      -d '{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}' \
      http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions
  done | sort | uniq -c | sed 's/^ *//'
}
sleep 2
ask
# no address any more: the last ones stay
: > $dns
sleep 2.5
ask
awk '{print $1}' logs/access.log | uniq -c | sed 's/^ *//'
--- response_body_like eval
qr/^3 200
3 200
6 127.0.0.2:\d+
$/
--- error_log
ai_proxy: "localhost" could not be resolved
the addresses known last are used
--- no_error_log
[error]
[alert]
[crit]



=== TEST 3: a reload keeps the addresses resolved last (the zone is kept)
--- user_files
>>> dns.txt
127.0.0.2
--- http_config
    resolver 127.0.0.1:$TEST_NGINX_DNS_PORT ipv6=off;
    ai_target moving http://localhost:$TEST_NGINX_MOCK_PORT/v1;
    log_format ai '$upstream_addr $status';
--- config
    location /v1/ {
        ai_proxy moving;
        access_log logs/access.log ai;
    }
--- exec
dns=$TEST_NGINX_HTML_DIR/dns.txt
python3 t/lib/dns-a $TEST_NGINX_DNS_PORT $dns 1
cd $TEST_NGINX_SERVROOT
$TEST_AI_MOCK_BIN -l 127.0.0.2:$TEST_NGINX_MOCK_PORT -w 1 &
ask() {
  for i in 1 2 3; do
    curl -s -o /dev/null -w '%{http_code}\n' -H 'Content-Type: application/json' \
      -d '{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}' \
      http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions
  done | sort | uniq -c | sed 's/^ *//'
}
sleep 2
ask
# the name no longer resolves; the new workers keep 127.0.0.2, not the
# configuration's 127.0.0.1
: > $dns
master=$(cat logs/nginx.pid)
old=$(pgrep -P $master | sort)
kill -HUP $master
for i in $(seq 1 100); do
  now=$(pgrep -P $master | sort)
  [ -z "$(echo "$now" | grep -Fx "$old")" ] \
    && [ $(echo "$now" | grep -c .) -eq 2 ] && break
  sleep 0.1
done
ask
sleep 1.5
ask
awk '{print $1}' logs/access.log | uniq -c | sed 's/^ *//'
--- response_body_like eval
qr/^3 200
3 200
3 200
9 127.0.0.2:\d+
$/
--- error_log
the addresses known last are used
--- no_error_log
[error]
[alert]
[crit]
