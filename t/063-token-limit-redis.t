# ai_token_limit on a Redis store (ai_redis): the same reservation and
# settlement on Redis' clock; two NGINX instances sharing one Redis
# enforce one combined limit; 50 concurrent streams through the
# asynchronous path; Redis stopped mid-test follows each rule's fail
# policy promptly and counting resumes when it is back.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

redis_server();
run_tests();

__DATA__

=== TEST 1: tokens a day in Redis: reserved, settled to the provider's usage, refused over the limit with Retry-After; the keys carry the prefix and expire
--- http_config
    ai_store shared backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=t1:;
    ai_token_limit_zone tok key=$remote_addr store=shared;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_token_limit tok 1000 per=day;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions
b='{"model":"gpt-4o~usage_prompt=200,usage_completion=100","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}'
for i in 1 2 3 4; do t/lib/limit-probe $u "$b" | sed -E 's/retry=[0-9]+/retry=S/'; done
r="redis-cli -p $TEST_NGINX_REDIS_PORT"
$r --scan --pattern 't1:*' | sed -E 's/:[0-9]+$/:WINDOW/' | sort -u
k=$($r --scan --pattern 't1:*' | head -1)
$r pttl "$k" | awk '{ print ($1 > 86400000 && $1 <= 2 * 86400000) ? "expires within two windows" : "pttl " $1 }'
--- response_body
200 tokens=890/1000
200 tokens=590/1000
200 tokens=290/1000
429 tokens=100/1000 retry=S code=rate_limit_exceeded
t1:{tl:tok:0:86400000:127.0.0.1}:WINDOW
expires within two windows
--- no_error_log
[error]



=== TEST 2: two NGINX instances sharing one Redis enforce one combined limit
--- http_config
    ai_store shared backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=t2:;
    ai_token_limit_zone per_ip key=$remote_addr store=shared;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_token_limit per_ip 4 count=requests per=day;
    }
--- exec
set -e
d=$TEST_NGINX_SERVROOT/second
p=$((TEST_NGINX_SERVER_PORT + 31))
rm -rf $d; mkdir -p $d/logs $d/tmp
m=$TEST_NGINX_MODULES
cat > $d/nginx.conf <<EOF
load_module $m/ngx_http_ai_core_module.so;
load_module $m/ngx_http_ai_proxy_module.so;
load_module $m/ngx_http_ai_token_limit_module.so;
load_module $m/ngx_http_ai_redis_module.so;
pid $d/nginx.pid;
error_log $d/logs/error.log;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $d/tmp; proxy_temp_path $d/tmp;
    fastcgi_temp_path $d/tmp; uwsgi_temp_path $d/tmp; scgi_temp_path $d/tmp;
    ai_store shared backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=t2:;
    ai_token_limit_zone per_ip key=\$remote_addr store=shared;
    server {
        listen 127.0.0.1:$p;
        location /v1/ {
            ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
            ai_token_limit per_ip 4 count=requests per=day;
        }
    }
}
EOF
nginx -p $d/ -c $d/nginx.conf
trap 'nginx -p $d/ -c $d/nginx.conf -s stop' EXIT
sleep 0.3
b='{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}'
for port in $TEST_NGINX_SERVER_PORT $p $TEST_NGINX_SERVER_PORT $p $TEST_NGINX_SERVER_PORT $p; do
    t/lib/limit-probe http://127.0.0.1:$port/v1/chat/completions "$b" | cut -d' ' -f1,2
done
if grep -E '\[(error|alert|crit|emerg)\]' $d/logs/error.log; then exit 1; fi
--- response_body
200 requests=3/4
200 requests=2/4
200 requests=1/4
200 requests=0/4
429 requests=0/4
429 requests=0/4
--- no_error_log
[error]



=== TEST 3: 50 concurrent streams against one limit in Redis: the admitted total within it, every reservation settled exactly
--- http_config
    ai_store shared backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=t3:;
    ai_token_limit_zone z key=$remote_addr store=shared;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_token_limit z 300 per=day;
    }
--- exec
node t/sdk/limit_concurrency.mjs http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions 50 300 'gpt-4o~delay_chunks_ms=100' 31 11
--- response_body
admitted+refused=50 all complete: true
some refused: true
admitted at least limit/reservation: true
used within the limit: true
settled exactly: true
--- no_error_log
[error]
--- timeout: 30



=== TEST 4: Redis stopped: fail=open admits at once without counting, fail=closed refuses with 503 at once; Redis back (empty: it keeps nothing on disk here): counting resumes
--- http_config
    ai_store shared backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=t4: timeout=200ms;
    ai_token_limit_zone z key=$remote_addr store=shared;
--- config
    location /open/ {
        rewrite ^/open/(.*)$ /v1/$1 break;
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_token_limit z 2 count=requests per=day;
        add_header X-Outcome $ai_outcome_limit always;
    }
    location /closed/ {
        rewrite ^/closed/(.*)$ /v1/$1 break;
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_token_limit z 2 count=requests per=day fail=closed;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT
b='{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}'
t/lib/limit-probe $u/open/chat/completions "$b"
$TEST_NGINX_REDIS stop $TEST_NGINX_REDIS_DIR $TEST_NGINX_REDIS_PORT
t/lib/limit-probe $u/open/chat/completions "$b"
curl -s -o /dev/null -w '%{http_code} %{time_total}\n' $u/open/chat/completions -d "$b" | awk '{ print $1, ($2 < 1 ? "promptly" : "slowly " $2) }'
curl -s -o /dev/null -w '%{http_code} %{time_total}\n' $u/closed/chat/completions -d "$b" | awk '{ print $1, ($2 < 1 ? "promptly" : "slowly " $2) }'
curl -s $u/closed/chat/completions -d "$b"
$TEST_NGINX_REDIS start $TEST_NGINX_REDIS_DIR $TEST_NGINX_REDIS_PORT
for i in $(seq 1 80); do
    r=$(t/lib/limit-probe $u/closed/chat/completions "$b")
    case "$r" in 503*) sleep 0.1 ;; *) break ;; esac
done
echo "$r"
t/lib/limit-probe $u/closed/chat/completions "$b"
t/lib/limit-probe $u/closed/chat/completions "$b" | sed -E 's/retry=[0-9]+/retry=S/'
--- response_body
200 requests=1/2
200 outcome=store_error
200 promptly
503 promptly
{"error":{"message":"The limit \"z\" cannot be checked now; try again later.","type":"api_error","param":null,"code":"limit_unavailable"}}
200 requests=1/2
200 requests=0/2
429 requests=0/2 retry=S code=rate_limit_exceeded
--- error_log
[error]
--- no_error_log
[alert]



=== TEST 5: a budget in Redis, read and topped up through the admin endpoint
--- http_config
    ai_store shared backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=t5:;
    ai_token_limit_zone team key=$remote_addr store=shared;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_token_budget team 500;
    }
    location = /admin {
        ai_token_limit_admin;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT
b='{"model":"gpt-4o~usage_prompt=300,usage_completion=100","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}'
curl -s -o /dev/null -w '%{http_code}\n' $u/v1/chat/completions -d "$b"
curl -s -o /dev/null -w '%{http_code}\n' $u/v1/chat/completions -d "$b"
curl -s "$u/admin?zone=team&key=127.0.0.1"
curl -s $u/admin -d '{"zone":"team","key":"127.0.0.1","action":"top_up","amount":1000}'
curl -s -o /dev/null -w '%{http_code}\n' $u/v1/chat/completions -d "$b"
--- response_body
200
429
{"zone":"team","key":"127.0.0.1","count":"tokens","amount":500,"remaining":100}
{"zone":"team","key":"127.0.0.1","count":"tokens","amount":500,"remaining":1100}
200
--- no_error_log
[error]
