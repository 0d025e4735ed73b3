# ai_cache, the exact cache: a miss then a hit without the provider; one
# entry for plain and streamed requests and both doors; what never shares
# an entry; what is never stored; the client's controls; coalescing of
# identical concurrent requests; eviction; Redis shared by two NGINX.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

redis_server();
run_tests();

__DATA__

=== TEST 1: a miss goes to the provider and is stored; the same request is then a hit, with Age, without the provider; the outcome says so
--- http_config
    ai_store answers size=4m;
    log_format cache '$ai_outcome_cache $status';
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_cache answers;
        access_log logs/cache1.log cache;
    }
    location /mock/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT
curl -s -X POST $u/mock/reset > /dev/null
b='{"model":"gpt-4o","messages":[{"role":"user","content":"what is a cache"}]}'
for i in 1 2 3; do
    curl -s -i $u/v1/chat/completions -d "$b" | tr -d '\r' \
        | grep -o '^X-AI-Cache-Status: .*\|^Age: [0-9]*\|"content":"[^"]*"' | paste -sd' '
done
curl -s $u/mock/count; echo
cat $TEST_NGINX_SERVROOT/logs/cache1.log
--- response_body_like
^X-AI-Cache-Status: MISS "content":"mock reply: what is a cache"
X-AI-Cache-Status: HIT Age: [01] "content":"mock reply: what is a cache"
X-AI-Cache-Status: HIT Age: [01] "content":"mock reply: what is a cache"
\{"requests":1\}
MISS 200
HIT 200
HIT 200
$
--- no_error_log
[error]



=== TEST 2: one entry serves streamed and plain requests, and both doors: stored from an OpenAI stream, served whole, streamed to the Anthropic door, and back
--- http_config
    ai_store answers size=4m;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_cache answers;
    }
    location /mock/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT
curl -s -X POST $u/mock/reset > /dev/null
q='"messages":[{"role":"user","content":"tell me about streams"}]'
curl -sN $u/v1/chat/completions -d '{"model":"gpt-4o","max_tokens":100,"stream":true,'"$q"'}' | perl t/lib/sse-text
curl -s -D - $u/v1/chat/completions -d '{"model":"gpt-4o","max_tokens":100,'"$q"'}' | tr -d '\r' | grep -i '^x-ai-cache-status'
curl -s $u/v1/chat/completions -d '{"model":"gpt-4o","max_tokens":100,'"$q"'}' | perl t/lib/sse-text
curl -sN $u/v1/messages -d '{"model":"gpt-4o","max_tokens":100,"stream":true,'"$q"'}' | perl t/lib/sse-text
curl -s $u/v1/messages -d '{"model":"gpt-4o","max_tokens":100,'"$q"'}' | perl t/lib/sse-text
curl -s $u/mock/count; echo
--- response_body
mock reply: tell me about streams[done]
X-AI-Cache-Status: HIT
mock reply: tell me about streams
mock reply: tell me about streams[done]
mock reply: tell me about streams
{"requests":1}
--- no_error_log
[error]



=== TEST 3: different models, parameters, tools or system prompts never share an entry; aliases of one model do
--- http_config
    ai_store answers size=4m;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_proxy_alias fast gpt-4o-mini;
        ai_cache answers;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions
c() { curl -s -D - -o /dev/null $u -d "$1" | tr -d '\r' | grep -i '^x-ai-cache-status' | cut -d' ' -f2; }
m='"messages":[{"role":"user","content":"same question"}]'
c '{"model":"gpt-4o",'"$m"'}'
c '{"model":"gpt-4o-mini",'"$m"'}'
c '{"model":"fast",'"$m"'}'
c '{"model":"gpt-4o","temperature":0.2,'"$m"'}'
c '{"model":"gpt-4o","tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],'"$m"'}'
c '{"model":"gpt-4o","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"same question"}]}'
c '{"model":"gpt-4o","user":"someone",'"$m"'}'
--- response_body
MISS
MISS
HIT
MISS
MISS
MISS
HIT
--- no_error_log
[error]



=== TEST 4: never stored: an interrupted stream, an error, a request told no-store; bypass and no-cache look nothing up
--- http_config
    ai_store answers size=4m;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_cache answers;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions
st() { curl -s -D - -o /dev/null $u "$@" | tr -d '\r' | grep -i '^x-ai-cache-status' | cut -d' ' -f2; }
curl -s -o /dev/null $u -d '{"model":"gpt-4o~disconnect_after=2","stream":true,"messages":[{"role":"user","content":"a b c d e f"}]}'
st -d '{"model":"gpt-4o~disconnect_after=2","stream":true,"messages":[{"role":"user","content":"a b c d e f"}]}'
curl -s -o /dev/null $u -d '{"model":"gpt-4o~status=500","messages":[{"role":"user","content":"x"}]}'
st -d '{"model":"gpt-4o~status=500","messages":[{"role":"user","content":"x"}]}'
st -H 'X-AI-Cache: no-store' -d '{"model":"gpt-4o","messages":[{"role":"user","content":"private"}]}'
st -d '{"model":"gpt-4o","messages":[{"role":"user","content":"private"}]}'
st -H 'Cache-Control: no-store' -d '{"model":"gpt-4o","messages":[{"role":"user","content":"private 2"}]}'
st -d '{"model":"gpt-4o","messages":[{"role":"user","content":"private 2"}]}'
st -d '{"model":"gpt-4o","messages":[{"role":"user","content":"stored"}]}'
st -H 'X-AI-Cache: bypass' -d '{"model":"gpt-4o","messages":[{"role":"user","content":"stored"}]}'
st -H 'Cache-Control: no-cache' -d '{"model":"gpt-4o","messages":[{"role":"user","content":"stored"}]}'
st -d '{"model":"gpt-4o","messages":[{"role":"user","content":"stored"}]}'
--- response_body
MISS
MISS
MISS
MISS
MISS
MISS
MISS
BYPASS
BYPASS
HIT
--- error_log eval
qr/\[warn\].*the upstream stream ended before its terminal event/
--- no_error_log
[alert]



=== TEST 5: coalescing: 10 identical requests at once reach the provider once, and all are answered
--- http_config
    ai_store answers size=4m;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_cache answers;
    }
    location /mock/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT
curl -s -X POST $u/mock/reset > /dev/null
for i in $(seq 1 10); do
    curl -s $u/v1/chat/completions -d '{"model":"gpt-4o~delay_headers_ms=500","messages":[{"role":"user","content":"all at once"}]}' \
        | grep -c 'mock reply: all at once' > $TEST_NGINX_SERVROOT/co.$i &
done
wait
cat $TEST_NGINX_SERVROOT/co.* | paste -sd' '
curl -s $u/mock/count; echo
--- response_body
1 1 1 1 1 1 1 1 1 1
{"requests":1}
--- no_error_log
[error]



=== TEST 6: a TTL: the entry expires; the client may ask for a shorter one
--- http_config
    ai_store answers size=4m;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_cache answers;
        ai_cache_ttl 1h;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions
st() { curl -s -D - -o /dev/null $u "$@" | tr -d '\r' | grep -i '^x-ai-cache-status' | cut -d' ' -f2; }
st -H 'X-AI-Cache-TTL: 1' -d '{"model":"gpt-4o","messages":[{"role":"user","content":"short lived"}]}'
st -d '{"model":"gpt-4o","messages":[{"role":"user","content":"short lived"}]}'
sleep 1.5
st -d '{"model":"gpt-4o","messages":[{"role":"user","content":"short lived"}]}'
--- response_body
MISS
HIT
MISS
--- no_error_log
[error]



=== TEST 7: a small zone evicts the least recently used entries and keeps working
--- http_config
    ai_store answers size=64k;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_cache answers;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions
for i in $(seq 1 60); do
    curl -s -o /dev/null $u -d '{"model":"gpt-4o","messages":[{"role":"user","content":"question number '$i' with some words to make it longer"}]}'
done
curl -s -D - -o /dev/null $u -d '{"model":"gpt-4o","messages":[{"role":"user","content":"question number 1 with some words to make it longer"}]}' | tr -d '\r' | grep -i '^x-ai-cache-status' | cut -d' ' -f2
curl -s -D - -o /dev/null $u -d '{"model":"gpt-4o","messages":[{"role":"user","content":"question number 60 with some words to make it longer"}]}' | tr -d '\r' | grep -i '^x-ai-cache-status' | cut -d' ' -f2
--- response_body
MISS
HIT
--- no_error_log
[error]



=== TEST 8: tool calls, their arguments and the finish reason are kept through a streamed entry
--- http_config
    ai_store answers size=4m;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_cache answers;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions
b='{"model":"gpt-4o","stream":true,"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],"messages":[{"role":"user","content":"weather in Paris"}]}'
curl -sN $u -d "$b" > /dev/null
curl -s $u -d "$(echo "$b" | sed 's/"stream":true,//')" | grep -o '"name":"get_weather"\|"finish_reason":"[a-z_]*"\|"arguments":"[^}]*}"' | paste -sd' '
--- response_body_like
^"name":"get_weather" "arguments":"\{\\"location\\":\\"Paris\\",\\"unit\\":\\"celsius\\"\}" "finish_reason":"tool_calls"
$
--- no_error_log
[error]



=== TEST 9: two NGINX instances share entries through Redis
--- http_config
    ai_store shared backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=c9:;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_cache shared;
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
error_log $d/logs/error.log;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $d/tmp; proxy_temp_path $d/tmp;
    fastcgi_temp_path $d/tmp; uwsgi_temp_path $d/tmp; scgi_temp_path $d/tmp;
    ai_store shared backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=c9:;
    server {
        listen 127.0.0.1:$p;
        location /v1/ {
            ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
            ai_cache shared;
        }
    }
}
EOF
nginx -p $d/ -c $d/nginx.conf
trap 'nginx -p $d/ -c $d/nginx.conf -s stop' EXIT
sleep 0.3
b='{"model":"gpt-4o","messages":[{"role":"user","content":"shared between nodes"}]}'
for port in $TEST_NGINX_SERVER_PORT $p $TEST_NGINX_SERVER_PORT; do
    curl -s -D - -o /dev/null http://127.0.0.1:$port/v1/chat/completions -d "$b" \
        | tr -d '\r' | grep -i '^x-ai-cache-status' | cut -d' ' -f2
done
if grep -E '\[(error|alert|crit|emerg)\]' $d/logs/error.log; then exit 1; fi
--- response_body
MISS
HIT
HIT
--- no_error_log
[error]



=== TEST 10: a hit is free for the token limit; nginx -t: an unknown store is named
--- http_config
    ai_store answers size=4m;
    ai_token_limit_zone z key=$remote_addr;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_cache answers;
        ai_token_limit z 10000 per=day;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions
b='{"model":"gpt-4o~usage_prompt=300,usage_completion=100","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}'
t/lib/limit-probe $u "$b"
t/lib/limit-probe $u "$b"
t/lib/limit-probe $u "$b"
--- response_body
200 tokens=9980/10000
200 tokens=9580/10000
200 tokens=9580/10000
--- no_error_log
[error]



=== TEST 11: a hit goes through the guard's filters too: an answer cached with placeholders is restored with each request's own values (two people, one masked question, one entry)
--- http_config
    ai_store answers size=4m;
    ai_prompt_guard_rule pii detect=email action=mask;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_prompt_guard pii;
        ai_cache answers;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions
for who in ann@example.com bob@example.org; do
    curl -s -D $TEST_NGINX_SERVROOT/h $u -d '{"model":"gpt-4o","messages":[{"role":"user","content":"write to '$who' today"}]}' | perl t/lib/sse-text
    tr -d '\r' < $TEST_NGINX_SERVROOT/h | grep -i '^x-ai-cache-status'
    curl -sN $u -d '{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"write to '$who' today"}]}' | perl t/lib/sse-text
done
--- response_body
mock reply: write to ann@example.com today
X-AI-Cache-Status: MISS
mock reply: write to ann@example.com today[done]
mock reply: write to bob@example.org today
X-AI-Cache-Status: HIT
mock reply: write to bob@example.org today[done]
--- no_error_log
[error]



=== TEST 12: the key is the request's canonical form: the order of the members, a number's spelling and max_completion_tokens for max_tokens change nothing; a string's content, a nested value and an escaped character do; ai_cache_ignore_system and ai_cache_last_messages key on what they keep
--- http_config
    ai_store answers size=4m;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_cache answers;
    }
    location /last/ {
        rewrite ^/last/(.*)$ /$1 break;
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_cache answers;
        ai_cache_namespace last;
        ai_cache_ignore_system on;
        ai_cache_last_messages 1;
    }
--- exec
s=http://127.0.0.1:$TEST_NGINX_SERVER_PORT
c() { curl -s -D - -o /dev/null $s/$1 -d "$2" | tr -d '\r' | grep -i '^x-ai-cache-status' | cut -d' ' -f2; }
c v1/chat/completions '{"model":"gpt-4o","temperature":1,"max_tokens":20,"messages":[{"role":"user","content":"canon \"q\""}]}'
c v1/chat/completions '{"messages":[{"content":"canon \"q\"","role":"user"}],"max_completion_tokens":20,"temperature":1.0,"model":"gpt-4o"}'
c v1/chat/completions '{"model":"gpt-4o","temperature":1e0,"max_tokens":20,"messages":[{"role":"user","content":"canon \u0022q\u0022"}]}'
c v1/chat/completions '{"model":"gpt-4o","temperature":1,"max_tokens":20,"messages":[{"role":"user","content":"canon \"q\" "}]}'
c v1/chat/completions '{"model":"gpt-4o","temperature":1,"max_tokens":20,"messages":[{"role":"user","content":"canon \"q\""}],"response_format":{"type":"json_object"}}'
c v1/chat/completions '{"model":"gpt-4o","temperature":1,"max_tokens":20,"messages":[{"role":"user","content":"canon \"q\""}],"response_format":{"type":"text"}}'
c last/v1/chat/completions '{"model":"gpt-4o","messages":[{"role":"system","content":"a"},{"role":"user","content":"first"},{"role":"user","content":"kept"}]}'
c last/v1/chat/completions '{"model":"gpt-4o","messages":[{"role":"system","content":"b"},{"role":"user","content":"other"},{"role":"user","content":"kept"}]}'
c last/v1/chat/completions '{"model":"gpt-4o","messages":[{"role":"user","content":"kept!"}]}'
--- response_body
MISS
HIT
HIT
MISS
MISS
MISS
MISS
HIT
MISS
--- no_error_log
[error]



=== TEST 13: coalescing: a first request that fails at once (503): a waiter takes its place at its next look, the others wait for that one (they waited the whole lock timeout, then all went upstream)
--- http_config
    ai_store answers size=4m;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_cache answers;
        ai_cache_lock on timeout=5s;
    }
    location /mock/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT
curl -s -X POST $u/mock/reset > /dev/null
# the first call (the leader's) fails after 300 ms, the next ones answer
# after 300 ms
b='{"model":"gpt-4o~delay_headers_ms=300,fail_first=1","messages":[{"role":"user","content":"leader fails"}]}'
curl -s -o /dev/null -w 'leader %{http_code}\n' $u/v1/chat/completions -d "$b"  > $TEST_NGINX_SERVROOT/lf.0 &
sleep 0.1
for i in 1 2 3 4; do
    curl -s -o /dev/null -w '%{http_code} %{time_total}\n' $u/v1/chat/completions -d "$b" \
        | awk '{ print "waiter", $1, ($2 < 2 ? "in time" : "waited " $2 "s") }' > $TEST_NGINX_SERVROOT/lf.$i &
done
wait
cat $TEST_NGINX_SERVROOT/lf.*
curl -s $u/mock/count; echo
--- response_body
leader 503
waiter 200 in time
waiter 200 in time
waiter 200 in time
waiter 200 in time
{"requests":2}
--- no_error_log
[error]
[alert]



=== TEST 14: an OpenAI stream with an event that does not parse is not stored (it was, as complete, without that event's text)
--- http_config
    ai_store answers size=4m;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_cache answers;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions
# malformed=1: the first content event ("mock ") is cut in half
curl -sN $u -d '{"model":"gpt-4o~malformed=1","stream":true,"messages":[{"role":"user","content":"one two three"}]}' > /dev/null
curl -sN -D - $u -d '{"model":"gpt-4o~malformed=1","stream":true,"messages":[{"role":"user","content":"one two three"}]}' \
    | tr -d '\r' | grep '^X-AI-Cache-Status: \|"content"' | grep -o '^X-AI-Cache-Status: .*\|"content":"[^"]*"' | paste -sd' '
--- response_body_like
^X-AI-Cache-Status: MISS "content":"" "content":"reply: " "content":"one " "content":"two " "content":"three"$
--- no_error_log
[error]
[alert]



=== TEST 15: Cache-Control: no-store or no-cache in a second Cache-Control field is obeyed (a list may come in several fields; only the first was read)
--- http_config
    ai_store answers size=4m;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_cache answers;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions
st() { curl -s -D - -o /dev/null $u "$@" | tr -d '\r' | grep -i '^x-ai-cache-status' | cut -d' ' -f2; }
st -H 'Cache-Control: max-age=0' -H 'Cache-Control: no-store' -d '{"model":"gpt-4o","messages":[{"role":"user","content":"my secret"}]}'
st -d '{"model":"gpt-4o","messages":[{"role":"user","content":"my secret"}]}'
st -H 'Cache-Control: max-age=0' -H 'Cache-Control: no-cache' -d '{"model":"gpt-4o","messages":[{"role":"user","content":"my secret"}]}'
--- response_body
MISS
MISS
BYPASS
--- no_error_log
[error]
[alert]



=== TEST 16: a bare chat request's key, written from the core's view, is the key its tree gives: the same request read by the tree (an escaped key) hits the entry the bare one stored, and the other way round; with ai_cache_ignore_system and ai_cache_last_messages too
--- http_config
    ai_store answers size=4m;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_cache answers;
    }
    location /last/ {
        rewrite ^/last/(.*)$ /$1 break;
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_cache answers;
        ai_cache_namespace last;
        ai_cache_ignore_system on;
        ai_cache_last_messages 1;
    }
--- exec
s=http://127.0.0.1:$TEST_NGINX_SERVER_PORT
c() { curl -s -D - -o /dev/null $s/$1 -d "$2" | tr -d '\r' | grep -i '^x-ai-cache-status' | cut -d' ' -f2; }
c v1/chat/completions '{"model":"gpt-4o","max_tokens":20,"messages":[{"role":"system","content":"sys \"x\"\t\u0001"},{"role":"user","content":"bare \u00e9 \\ q"}]}'
c v1/chat/completions '{"m\u006fdel":"gpt-4o","max_tokens":20,"messages":[{"role":"system","content":"sys \"x\"\t\u0001"},{"role":"user","content":"bare \u00e9 \\ q"}]}'
c v1/chat/completions '{"messages":[{"content":"sys \"x\"\t\u0001","r\u006fle":"system"},{"role":"user","content":"bare \u00e9 \\ q"}],"max_completion_tokens":20,"model":"gpt-4o"}'
c v1/chat/completions '{"model":"gpt-4o","max_tokens":20,"user":"u","stream":false,"messages":[{"role":"system","content":"sys \"x\"\t\u0001"},{"role":"user","content":"bare \u00e9 \\ q"}]}'
c v1/chat/completions '{"model":"gpt-4o","m\u0065ssages":[{"role":"user","content":"tree first"}]}'
c v1/chat/completions '{"model":"gpt-4o","messages":[{"role":"user","content":"tree first"}]}'
c v1/chat/completions '{"model":"gpt-4o","messages":[{"role":"user","content":"tree first"}],"max_tokens":20}'
c last/v1/chat/completions '{"model":"gpt-4o","messages":[{"role":"developer","content":"a"},{"role":"user","content":"one"},{"role":"assistant","content":"kept2"}]}'
c last/v1/chat/completions '{"model":"gpt-4o","messages":[{"role":"system","content":"b"},{"r\u006fle":"assistant","content":"kept2"}]}'
c last/v1/chat/completions '{"model":"gpt-4o","messages":[{"role":"system","content":"only"}]}'
c last/v1/chat/completions '{"model":"gpt-4o","messages":[{"role":"system","c\u006fntent":"other"}]}'
--- response_body
MISS
HIT
HIT
HIT
MISS
HIT
MISS
MISS
HIT
MISS
HIT
--- no_error_log
[error]
[alert]



=== TEST 17: a long request's key, hashed as its canonical form is written (a buffer of 16k hashed when full, a long run where it is): one text spelled two ways is one key, a byte changed 30k in is another
--- http_config
    ai_store answers size=8m;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_cache answers;
    }
--- exec
s=http://127.0.0.1:$TEST_NGINX_SERVER_PORT
a=$(head -c 30000 /dev/zero | tr '\0' a)
b=$(head -c 20000 /dev/zero | tr '\0' b)
q='\"'
c() { printf '%s' "$1" > $TEST_NGINX_SERVROOT/body.json; curl -s -D - -o /dev/null $s/v1/chat/completions --data-binary @$TEST_NGINX_SERVROOT/body.json | tr -d '\r' | grep -i '^x-ai-cache-status' | cut -d' ' -f2; }
c "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"system\",\"content\":\"$b $q\"},{\"role\":\"user\",\"content\":\"$a A $q $b\"}]}"
c "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"system\",\"content\":\"$b \\u0022\"},{\"role\":\"user\",\"content\":\"$a \\u0041 $q $b\"}]}"
c "{\"messages\":[{\"content\":\"$b $q\",\"role\":\"system\"},{\"role\":\"user\",\"content\":\"$a A $q $b\"}],\"m\\u006fdel\":\"gpt-4o\"}"
c "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"system\",\"content\":\"$b $q\"},{\"role\":\"user\",\"content\":\"$a B $q $b\"}]}"
--- response_body
MISS
HIT
HIT
MISS
--- no_error_log
[error]
[alert]



=== TEST 18: coalescing through Redis: the lock is the entry's own key, holding a value shorter than an entry while the miss is under way; the answer's SET takes its place (no second key, no DEL); the waiters are hits; a failed miss frees the key for the next one
--- http_config
    ai_store shared backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=c18:;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_cache shared;
    }
    location /mock/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT
r="redis-cli -p $TEST_NGINX_REDIS_PORT"
curl -s -X POST $u/mock/reset > /dev/null
b='{"model":"gpt-4o~delay_headers_ms=600","messages":[{"role":"user","content":"locked by its own key"}]}'
for i in 1 2 3 4; do
    curl -s -D - -o /dev/null $u/v1/chat/completions -d "$b" \
        | tr -d '\r' | grep -i '^x-ai-cache-status' | cut -d' ' -f2 > $TEST_NGINX_SERVROOT/rl.$i &
    sleep 0.05
done
sleep 0.2
echo "under way: $($r --scan --pattern 'c18:*' | sed 's/[0-9a-f]\{64\}/KEY/' | sort | paste -sd' ')"
echo "its value: $($r get "$($r --scan --pattern 'c18:*' | head -1)")"
wait
sort $TEST_NGINX_SERVROOT/rl.* | uniq -c | awk '{ print $2, $1 }'
echo "after: $($r --scan --pattern 'c18:*' | sed 's/[0-9a-f]\{64\}/KEY/' | sort | paste -sd' ')"
k=$($r --scan --pattern 'c18:*' | head -1)
echo "entry: $($r getrange "$k" 0 3) $($r pttl "$k" | awk '{ print ($1 > 60000 ? "long ttl" : "short ttl " $1) }')"
curl -s $u/mock/count; echo
# a miss that fails: the lock goes with it
curl -s -X POST $u/mock/reset > /dev/null
f='{"model":"gpt-4o~status=503","messages":[{"role":"user","content":"a failed miss"}]}'
curl -s -o /dev/null -w 'failed %{http_code}\n' $u/v1/chat/completions -d "$f"
echo "left: $($r --scan --pattern 'c18:*' | wc -l)"
--- response_body
under way: c18:{aic:KEY}
its value: 1
HIT 3
MISS 1
after: c18:{aic:KEY}
entry: AIC1 long ttl
{"requests":1}
failed 503
left: 1
--- no_error_log
[error]



=== TEST 19: a lock's holder that ends without an answer lets go of the lock only: an answer a bypass request stored in its place meanwhile stays (its DEL deleted that answer)
--- http_config
    ai_store answers size=4m;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_proxy_pass_client_headers x-mock;
        ai_cache answers;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions
b='{"model":"gpt-4o","messages":[{"role":"user","content":"race of the lock"}]}'
st() { curl -s -D - -o /dev/null -w 'code=%{http_code}\n' $u -d "$b" "$@" | tr -d '\r' | awk -F'[ =]' 'tolower($1)=="x-ai-cache-status:"{c=$2} $1=="code"{k=$2} END{print c"/"k}'; }
st -H 'X-Mock: delay_headers_ms=1500,status=503' > $TEST_NGINX_SERVROOT/a.out &
sleep 0.3
echo "B bypass: $(st -H 'X-AI-Cache: bypass')"
echo "C: $(st)"
wait
echo "A holder: $(cat $TEST_NGINX_SERVROOT/a.out)"
echo "D: $(st)"
--- response_body
B bypass: BYPASS/200
C: HIT/200
A holder: MISS/503
D: HIT/200
--- no_error_log
[error]




=== TEST 20: a lock that timed out (timeout=1s) is taken by the next request, which stores its answer; the first holder then fails: that answer stays
--- http_config
    ai_store answers size=4m;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_proxy_pass_client_headers x-mock;
        ai_cache answers;
        ai_cache_lock on timeout=1s;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions
b='{"model":"gpt-4o","messages":[{"role":"user","content":"race of the expired lock"}]}'
st() { curl -s -D - -o /dev/null -w 'code=%{http_code}\n' $u -d "$b" "$@" | tr -d '\r' | awk -F'[ =]' 'tolower($1)=="x-ai-cache-status:"{c=$2} $1=="code"{k=$2} END{print c"/"k}'; }
st -H 'X-Mock: delay_headers_ms=2500,status=503' > $TEST_NGINX_SERVROOT/a.out &
sleep 1.3
echo "B: $(st)"
echo "C: $(st)"
wait
echo "A holder: $(cat $TEST_NGINX_SERVROOT/a.out)"
echo "D: $(st)"
--- response_body
B: MISS/200
C: HIT/200
A holder: MISS/503
D: HIT/200
--- no_error_log
[error]




=== TEST 21: the same through Redis: the holder's DEL is a compare-and-delete of the lock's value
--- http_config
    ai_store shared backend=redis server=127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=fz3:;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_proxy_pass_client_headers x-mock;
        ai_cache shared;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions
r="redis-cli -p $TEST_NGINX_REDIS_PORT"
b='{"model":"gpt-4o","messages":[{"role":"user","content":"race of the redis lock"}]}'
st() { curl -s -D - -o /dev/null -w 'code=%{http_code}\n' $u -d "$b" "$@" | tr -d '\r' | awk -F'[ =]' 'tolower($1)=="x-ai-cache-status:"{c=$2} $1=="code"{k=$2} END{print c"/"k}'; }
st -H 'X-Mock: delay_headers_ms=1500,status=503' > $TEST_NGINX_SERVROOT/a.out &
sleep 0.3
echo "B bypass: $(st -H 'X-AI-Cache: bypass')"
echo "C: $(st)"
wait
sleep 0.2
echo "A holder: $(cat $TEST_NGINX_SERVROOT/a.out)"
echo "keys: $($r --scan --pattern 'fz3:*' | wc -l)"
echo "D: $(st)"
--- response_body
B bypass: BYPASS/200
C: HIT/200
A holder: MISS/503
keys: 1
D: HIT/200
--- no_error_log
[error]
