# ai_cache, the semantic cache: a question asked again in other words is
# answered from the entry of the first, with X-AI-Cache-Match; an
# unrelated question, the same question under another system prompt or
# model are misses; the embeddings service down or slow is a plain miss;
# nginx -t names a bad parameter.  The mock's embeddings are a
# bag-of-words hashing (mock/README.md "Embeddings").
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

redis_server();
run_tests();

__DATA__

=== TEST 1: a paraphrase is a semantic hit (the first question's answer, without the provider), a plain or streamed request alike; an unrelated question is a miss
--- http_config
    ai_store answers size=4m;
    ai_cache_semantic_zone questions size=1m dim=256;
    log_format cache '$ai_outcome_cache $status';
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_cache answers;
        ai_cache_semantic questions embeddings=/_embeddings threshold=0.9;
        access_log logs/cache1.log cache;
    }
    location = /_embeddings {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1/embeddings;
        proxy_set_header Authorization "Bearer sk-embeddings";
    }
    location /mock/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT
curl -s -X POST $u/mock/reset > /dev/null
ask() {
    curl -s -i $u/v1/chat/completions -d '{"model":"gpt-4o","messages":[{"role":"user","content":"'"$1"'"}]}' | tr -d '\r' \
        | grep -o '^X-AI-Cache-Status: .*\|^X-AI-Cache-Match: .*\|"content":"[^"]*"' | paste -sd' '
}
ask 'What is the capital of France?'
curl -s $u/mock/last | grep -o '"uri":"[^"]*"'
ask 'Tell me the capital city of France'
ask 'What is the capital of Germany?'
curl -sN $u/v1/chat/completions -d '{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"france: what is its capital?"}]}' | perl t/lib/sse-text
curl -s $u/mock/count; echo
cat $TEST_NGINX_SERVROOT/logs/cache1.log
--- response_body_like
^X-AI-Cache-Status: MISS "content":"mock reply: What is the capital of France\?"
"uri":"/v1/chat/completions"
X-AI-Cache-Status: HIT X-AI-Cache-Match: semantic; similarity=0\.9[5-9]\d "content":"mock reply: What is the capital of France\?"
X-AI-Cache-Status: MISS "content":"mock reply: What is the capital of Germany\?"
mock reply: What is the capital of France\?\[done\]
\{"requests":6\}
MISS 200
HIT 200
MISS 200
HIT 200
$
--- error_log
semantic match, similarity 0.9
--- no_error_log
[error]
[warn]



=== TEST 2: the same question under another system prompt, another model, or after other turns is a miss; under the same ones a hit
--- http_config
    ai_store answers size=4m;
    ai_cache_semantic_zone questions size=1m dim=256;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_cache answers;
        ai_cache_semantic questions embeddings=/_embeddings threshold=0.9;
    }
    location = /_embeddings {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1/embeddings;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions
c() { curl -s -D - -o /dev/null $u -d "$1" | tr -d '\r' | grep -i '^x-ai-cache-\(status\|match\)' | cut -d' ' -f2- | paste -sd' '; }
s1='{"role":"system","content":"be brief"}'
s2='{"role":"system","content":"answer like a pirate"}'
q1='{"role":"user","content":"How do I bake bread?"}'
q2='{"role":"user","content":"how do i bake bread"}'
c '{"model":"gpt-4o","messages":['"$s1,$q1"']}'
c '{"model":"gpt-4o","messages":['"$s2,$q2"']}'
c '{"model":"gpt-4o-mini","messages":['"$s1,$q2"']}'
c '{"model":"gpt-4o","temperature":0.5,"messages":['"$s1,$q2"']}'
c '{"model":"gpt-4o","messages":['"$s1"',{"role":"user","content":"hi"},{"role":"assistant","content":"hello"},'"$q2"']}'
c '{"model":"gpt-4o","messages":['"$s1,$q2"']}'
--- response_body
MISS
MISS
MISS
MISS
MISS
HIT semantic; similarity=1.000
--- no_error_log
[error]
[warn]



=== TEST 3: the embeddings service down, or slower than the timeout: a plain miss, answered and stored, a warning and a counter; no error for the client
--- http_config
    ai_store answers size=4m;
    ai_cache_semantic_zone questions size=1m dim=256;
    ai_metrics_zone m 4m;
--- config
    location = /metrics {
        ai_metrics;
    }
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_cache answers;
        ai_cache_semantic questions embeddings=/_down;
        location /v1/slow/ {
            ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
            ai_cache_semantic questions embeddings=/_slow timeout=200ms;
        }
    }
    location = /_down {
        internal;
        proxy_pass http://127.0.0.1:1/v1/embeddings;
    }
    location = /_slow {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1/embeddings;
        proxy_set_header X-Mock delay_headers_ms=1500;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1
c() { curl -s -D - $1 -d "$2" | tr -d '\r' | grep -o '^HTTP/1.1 [0-9]*\|^X-AI-Cache-Status: .*\|"content":"[^"]*"' | paste -sd' '; }
c $u/chat/completions '{"model":"gpt-4o","messages":[{"role":"user","content":"is anyone there"}]}'
c $u/chat/completions '{"model":"gpt-4o","messages":[{"role":"user","content":"is anyone there"}]}'
start=$(date +%s%N)
c $u/slow/chat/completions '{"model":"gpt-4o","messages":[{"role":"user","content":"a slow one"}]}'
end=$(date +%s%N)
[ $(( (end - start) / 1000000 )) -lt 1200 ] && echo "in time"
c $u/slow/chat/completions '{"model":"gpt-4o","messages":[{"role":"user","content":"a slow one"}]}'
curl -s http://127.0.0.1:$TEST_NGINX_SERVER_PORT/metrics | grep '^ai_cache_semantic_'
--- response_body_like
^HTTP/1.1 200 X-AI-Cache-Status: MISS "content":"mock reply: is anyone there"
HTTP/1.1 200 X-AI-Cache-Status: HIT "content":"mock reply: is anyone there"
HTTP/1.1 200 X-AI-Cache-Status: MISS "content":"mock reply: a slow one"
in time
HTTP/1.1 200 X-AI-Cache-Status: HIT "content":"mock reply: a slow one"
ai_cache_semantic_lookups_total 2
ai_cache_semantic_matches_total 0
ai_cache_semantic_errors_total 2
ai_cache_semantic_entries\{zone="questions"\} 0
ai_cache_semantic_capacity\{zone="questions"\} \d+
ai_cache_semantic_evictions_total\{zone="questions"\} 0
$
--- error_log eval
[qr/\[error\] .*connect\(\) failed \(111: Connection refused\) while connecting to upstream.*subrequest: "\/_down"/,
 qr/\[warn\] .*ai_cache: no embedding for the semantic lookup \(the service did not answer 200\): a plain miss/,
 qr/\[warn\] .*ai_cache: no embedding for the semantic lookup \(timed out\): a plain miss/]
--- no_error_log
[alert]
[crit]
[emerg]



=== TEST 4: nginx -t names the directive and the bad value
--- config
    location /t {
        return 200;
    }
--- exec
d=$TEST_NGINX_SERVROOT/bad
mkdir -p $d/logs
m=$TEST_NGINX_MODULES
for conf in \
    'ai_cache_semantic_zone q size=1m dim=256; server { location / { ai_cache_semantic q embeddings=/e threshold=1.5; } }' \
    'ai_cache_semantic_zone q size=1m dim=256; server { location / { ai_cache_semantic q threshold=0.9; } }' \
    'ai_cache_semantic_zone q size=1m dim=0;' \
    'ai_cache_semantic_zone q size=1m;' \
    'server { location / { ai_cache_semantic nowhere embeddings=/e; } }'
do
    printf 'load_module %s/ngx_http_ai_core_module.so;\nload_module %s/ngx_http_ai_cache_module.so;\nerror_log %s/logs/error.log;\nevents {}\nhttp { %s }\n' "$m" "$m" "$d" "$conf" > $d/nginx.conf
    nginx -t -p $d/ -c $d/nginx.conf 2>&1 | grep -o 'emerg\] [^;]*' | head -1 | sed 's/ in .*//; s/[0-9]*#[0-9]*: //'
done
--- response_body
emerg] ai_cache_semantic: invalid parameter "threshold=1.5" (embeddings=/uri, model=name, threshold=0..1, timeout=time, max_text=size, dimensions=on|off)
emerg] ai_cache_semantic "q": embeddings=URI is required (an internal location that proxies to an OpenAI-compatible embeddings service)
emerg] ai_cache_semantic_zone: invalid parameter "dim=0" (size=size of 256k or more, dim=1..8192, nprobe=1..64, exact_max=number)
emerg] ai_cache_semantic_zone "q": size= and dim= are required
emerg] zero size shared memory zone "nowhere"
--- no_error_log
[error]



=== TEST 5: two NGINX instances sharing one Redis: the second answers a paraphrase of what the first stored (its index filled from Redis), and its own unrelated question is a miss
--- http_config
    ai_store shared backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=s5:;
    ai_cache_semantic_zone questions size=1m dim=256;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_cache shared;
        ai_cache_semantic questions embeddings=/_embeddings threshold=0.9;
    }
    location = /_embeddings {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1/embeddings;
    }
    location /mock/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
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
load_module $m/ngx_http_ai_redis_module.so;
load_module $m/ngx_http_ai_cache_module.so;
pid $d/nginx.pid;
error_log $d/logs/error.log info;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $d/tmp; proxy_temp_path $d/tmp;
    fastcgi_temp_path $d/tmp; uwsgi_temp_path $d/tmp; scgi_temp_path $d/tmp;
    ai_store shared backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=s5:;
    ai_cache_semantic_zone questions size=1m dim=256;
    server {
        listen 127.0.0.1:$p;
        location /v1/ {
            ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
            ai_cache shared;
            ai_cache_semantic questions embeddings=/_embeddings threshold=0.9;
        }
        location = /_embeddings {
            internal;
            proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1/embeddings;
        }
    }
}
EOF
nginx -p $d/ -c $d/nginx.conf
trap 'nginx -p $d/ -c $d/nginx.conf -s stop' EXIT
sleep 0.3
curl -s -X POST http://127.0.0.1:$TEST_NGINX_SERVER_PORT/mock/reset > /dev/null
ask() {
    curl -s -i http://127.0.0.1:$1/v1/chat/completions -d '{"model":"gpt-4o","messages":[{"role":"user","content":"'"$2"'"}]}' | tr -d '\r' \
        | grep -o '^X-AI-Cache-Status: .*\|^X-AI-Cache-Match: .*\|"content":"[^"]*"' | paste -sd' '
}
ask $TEST_NGINX_SERVER_PORT 'What is the capital of France?'
sleep 0.2
ask $p 'Tell me the capital city of France'
ask $p 'What is the capital of Germany?'
sleep 0.2
ask $TEST_NGINX_SERVER_PORT 'capital of germany'
curl -s http://127.0.0.1:$TEST_NGINX_SERVER_PORT/mock/count; echo
grep -o 'semantic match, similarity [0-9.]*' $d/logs/error.log
if grep -E '\[(error|alert|crit|emerg|warn)\]' $d/logs/error.log; then exit 1; fi
--- response_body_like
^X-AI-Cache-Status: MISS "content":"mock reply: What is the capital of France\?"
X-AI-Cache-Status: HIT X-AI-Cache-Match: semantic; similarity=0\.9[5-9]\d "content":"mock reply: What is the capital of France\?"
X-AI-Cache-Status: MISS "content":"mock reply: What is the capital of Germany\?"
X-AI-Cache-Status: HIT X-AI-Cache-Match: semantic; similarity=1\.000 "content":"mock reply: What is the capital of Germany\?"
\{"requests":6\}
semantic match, similarity 0\.9\d+
$
--- no_error_log
[error]
[warn]



=== TEST 6: the Anthropic door: a paraphrase is a hit there too, streamed or whole; the same paraphrase through the OpenAI door is not (the group is the door's request)
--- http_config
    ai_store answers size=4m;
    ai_cache_semantic_zone questions size=1m dim=256;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_cache answers;
        ai_cache_semantic questions embeddings=/_embeddings threshold=0.9;
    }
    location = /_embeddings {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1/embeddings;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1
a() { curl -s -D $TEST_NGINX_SERVROOT/h $u/messages -d '{"model":"gpt-4o","max_tokens":100,'"$1"'"system":"be brief","messages":[{"role":"user","content":"'"$2"'"}]}' | perl t/lib/sse-text; tr -d '\r' < $TEST_NGINX_SERVROOT/h | grep -i '^x-ai-cache-' | cut -d' ' -f2- | paste -sd' '; }
a '' 'How can I bake bread at home?'
a '' 'how do i bake bread at home'
a '"stream":true,' 'bread: how to bake it at home'
curl -s -D - -o /dev/null $u/chat/completions -d '{"model":"gpt-4o","max_tokens":100,"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"how do i bake bread at home"}]}' | tr -d '\r' | grep -i '^x-ai-cache-' | cut -d' ' -f2-
--- response_body
mock reply: How can I bake bread at home?
MISS
mock reply: How can I bake bread at home?
HIT semantic; similarity=1.000
mock reply: How can I bake bread at home?[done]
HIT semantic; similarity=1.000
MISS
--- no_error_log
[error]
[warn]



=== TEST 7: a reload keeps the index (and its capacity); a reload that changes its dimension lays it out anew, empty
--- http_config
    ai_store answers size=4m;
    ai_cache_semantic_zone questions size=1m dim=256;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_cache answers;
        ai_cache_semantic questions embeddings=/_embeddings threshold=0.9;
    }
    location = /_embeddings {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1/embeddings;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions
c() { curl -s -D - -o /dev/null $u -d '{"model":"gpt-4o","messages":[{"role":"user","content":"'"$1"'"}]}' | tr -d '\r' | grep -i '^x-ai-cache-\(status\|match\)' | cut -d' ' -f2- | paste -sd' '; }
c 'What is the capital of France?'
kill -HUP $(cat $TEST_NGINX_SERVROOT/logs/nginx.pid); sleep 1
c "what's the capital of france"
sed -i 's/dim=256/dim=128/' $TEST_NGINX_SERVROOT/conf/nginx.conf
kill -HUP $(cat $TEST_NGINX_SERVROOT/logs/nginx.pid); sleep 1
c 'France: what is its capital?'
c 'the capital of france?'
grep -o 'ai_cache_semantic_zone "questions": [0-9]* entries of dim [0-9]*' $TEST_NGINX_SERVROOT/logs/error.log | uniq -c | sed 's/^ *//'
--- response_body_like
^MISS
HIT semantic; similarity=1\.000
MISS
HIT semantic; similarity=1\.000
2 ai_cache_semantic_zone "questions": \d+ entries of dim 256
1 ai_cache_semantic_zone "questions": \d+ entries of dim 128
$
--- no_error_log
[error]
[warn]



=== TEST 8: a client that goes away while its embedding is awaited: the request ends, its subrequest with it, nothing stored; the next one is served
--- http_config
    ai_store answers size=4m;
    ai_cache_semantic_zone questions size=1m dim=256;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_cache answers;
        ai_cache_semantic questions embeddings=/_slow timeout=5s;
    }
    location = /_slow {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1/embeddings;
        proxy_set_header X-Mock delay_headers_ms=1000;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions
curl -s -m 0.3 $u -d '{"model":"gpt-4o","messages":[{"role":"user","content":"gone before"}]}'; echo "curl: $?"
sleep 1.2
curl -s -D - -o /dev/null $u -d '{"model":"gpt-4o","messages":[{"role":"user","content":"gone before"}]}' | tr -d '\r' | grep -i '^x-ai-cache-status\|^HTTP'
--- response_body
curl: 28
HTTP/1.1 200 OK
X-AI-Cache-Status: MISS
--- no_error_log
[error]
[warn]
[alert]



=== TEST 9: a hostile embeddings answer (another dimension, values out of range, not JSON, base64 of the wrong size) is a plain miss, warned
--- http_config
    ai_store answers size=4m;
    ai_cache_semantic_zone questions size=1m dim=4;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_cache answers;
        location /v1/a/ {
            ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
            ai_cache_semantic questions embeddings=/_dim;
        }
        location /v1/b/ {
            ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
            ai_cache_semantic questions embeddings=/_range;
        }
        location /v1/c/ {
            ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
            ai_cache_semantic questions embeddings=/_text;
        }
        location /v1/d/ {
            ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
            ai_cache_semantic questions embeddings=/_b64;
        }
    }
    location = /_dim { internal; return 200 '{"data":[{"embedding":[1,2,3]}]}'; }
    location = /_range { internal; return 200 '{"data":[{"embedding":[1,2,3,1e300]}]}'; }
    location = /_text { internal; return 200 'not json'; }
    location = /_b64 { internal; return 200 '{"data":[{"embedding":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]}'; }
--- exec
for l in a b c d; do
    curl -s -D - -o /dev/null http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/$l/chat/completions -d '{"model":"gpt-4o","messages":[{"role":"user","content":"hostile '$l'"}]}' | tr -d '\r' | grep -i '^x-ai-cache-status\|^HTTP' | paste -sd' '
done
grep -o 'no embedding for the semantic lookup ([^)]*)' $TEST_NGINX_SERVROOT/logs/error.log
--- response_body
HTTP/1.1 200 OK X-AI-Cache-Status: MISS
HTTP/1.1 200 OK X-AI-Cache-Status: MISS
HTTP/1.1 200 OK X-AI-Cache-Status: MISS
HTTP/1.1 200 OK X-AI-Cache-Status: MISS
no embedding for the semantic lookup (no data[0].embedding of the zone's dim)
no embedding for the semantic lookup (an embedding value out of range)
no embedding for the semantic lookup (the answer is not JSON)
no embedding for the semantic lookup (no data[0].embedding of the zone's dim)
--- error_log eval
[qr/\[warn\] .*no embedding for the semantic lookup/]
--- no_error_log
[error]
[alert]
