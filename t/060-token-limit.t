# ai_token_limit in shared memory: each thing a rule counts, reserved
# before the request goes upstream and settled after, however it ended;
# the 429 in each door's shape with Retry-After; the x-ratelimit headers;
# dry run; nginx -t errors.  Windows of a day keep the numbers exact (a
# sliding window's count changes only at its end).
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: tokens a day: each request reserves its estimate and max_tokens, settles to the provider's usage; over the limit a 429 naming the limit (never the key), with Retry-After, in both doors' shapes
--- http_config
    ai_consumer app sk-client-app-0001;
    ai_token_limit_zone tok key=$ai_consumer;
--- config
    location /v1/ {
        ai_auth required;
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_token_limit tok 1000 per=day;
        add_header X-Outcome $ai_outcome_limit always;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1
k='Authorization: Bearer sk-client-app-0001'
b='{"model":"gpt-4o~usage_prompt=200,usage_completion=100","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}'
# reserved 10 + 100, settled to 300 each
for i in 1 2 3; do t/lib/limit-probe $u/chat/completions "$b" -H "$k"; done
t/lib/limit-probe $u/chat/completions "$b" -H "$k" | sed -E 's/retry=[0-9]+/retry=S/'
curl -s $u/chat/completions -H "$k" -d "$b" | sed -E 's/in [0-9]+s\./in Ss./'
curl -s $u/messages -H "$k" -d "$b" | sed -E 's/in [0-9]+s\./in Ss./'
# 100 left: a request reserving 10 + 90 fits
t/lib/limit-probe $u/chat/completions '{"model":"gpt-4o~usage_prompt=1,usage_completion=1","max_tokens":90,"messages":[{"role":"user","content":"hi"}]}' -H "$k"
--- response_body
200 tokens=890/1000
200 tokens=590/1000
200 tokens=290/1000
429 tokens=100/1000 retry=S code=rate_limit_exceeded outcome=rejected
{"error":{"message":"Rate limit reached for \"tok\": 1000 tokens per day. Try again in Ss.","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}
{"type":"error","error":{"message":"Rate limit reached for \"tok\": 1000 tokens per day. Try again in Ss.","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}
200 tokens=0/1000
--- error_log
ai_token_limit "tok": over 1000 tokens per day, refused
--- no_error_log
[error]
sk-client-app



=== TEST 2: a request that can never fit (its reservation is over the limit): 429 without Retry-After, telling what to reduce; the default output reservation applies without max_tokens, capped by max=
--- http_config
    ai_token_limit_zone tok key=$remote_addr;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_token_limit tok 1000 per=day;
        ai_token_limit_output 2000 max=500;
    }
    location /small/ {
        rewrite ^/small/(.*)$ /v1/$1 break;
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_token_limit tok 1000 per=day;
        ai_token_limit_output 2000;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT
t/lib/limit-probe $u/v1/chat/completions '{"model":"gpt-4o","max_tokens":5000,"messages":[{"role":"user","content":"hi"}]}'
t/lib/limit-probe $u/small/chat/completions '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}'
curl -s $u/small/chat/completions -d '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}'
--- response_body
200 tokens=490/1000
429 tokens=995/1000 code=rate_limit_exceeded
{"error":{"message":"Request too large for \"tok\": 1000 tokens per day, the request may use more. Reduce the prompt or max_tokens.","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}
--- no_error_log
[error]



=== TEST 3: requests per consumer: each consumer has its own count; a request without a key (anonymous) is not counted by a rule keyed on the consumer
--- http_config
    ai_consumer a sk-client-aaaa-0001;
    ai_consumer b sk-client-bbbb-0001;
    ai_token_limit_zone per_consumer key=$ai_consumer;
--- config
    location /v1/ {
        ai_auth optional;
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_token_limit per_consumer 2 count=requests per=day;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions
b='{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}'
for i in 1 2 3; do t/lib/limit-probe $u "$b" -H 'Authorization: Bearer sk-client-aaaa-0001'; done
t/lib/limit-probe $u "$b" -H 'Authorization: Bearer sk-client-bbbb-0001'
for i in 1 2 3; do t/lib/limit-probe $u "$b"; done
--- response_body_like
^200 requests=1/2
200 requests=0/2
429 requests=0/2 retry=\d+ code=rate_limit_exceeded
200 requests=1/2
200
200
200
$
--- no_error_log
[error]



=== TEST 4: prompt and completion tokens counted apart; the tightest token limit is the one in the headers
--- http_config
    ai_token_limit_zone z key=$remote_addr;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_token_limit z 10000 count=prompt per=day;
        ai_token_limit z 250 count=completion per=day;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions
b='{"model":"gpt-4o~usage_prompt=1000,usage_completion=100","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}'
# completion: reserves 100 (150 left after the first settled at 100,
# 50 after the second), the third does not fit; prompt: reserves 10
t/lib/limit-probe $u "$b"
t/lib/limit-probe $u "$b"
t/lib/limit-probe $u "$b"
t/lib/limit-probe $u '{"model":"gpt-4o~usage_prompt=1000,usage_completion=100","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}'
--- response_body_like
^200 tokens=150/250
200 tokens=50/250
429 tokens=50/250 retry=\d+ code=rate_limit_exceeded
200 tokens=40/250
$
--- no_error_log
[error]



=== TEST 5: concurrent requests: the second of two at once is refused, and admitted again once the first is over
--- http_config
    ai_token_limit_zone c key=$remote_addr;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_token_limit c 1 count=concurrent;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions
curl -s -o /dev/null -w '%{http_code}\n' $u -d '{"model":"gpt-4o~delay_headers_ms=800","messages":[{"role":"user","content":"slow"}]}' &
sleep 0.3
curl -s $u -d '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}'
wait
curl -s -o /dev/null -w '%{http_code}\n' $u -d '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}'
--- response_body
{"error":{"message":"Limit reached for \"c\": 1 concurrent requests.","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}
200
200
--- no_error_log
[error]



=== TEST 6: money in exact micro-dollars from the price table: reserved at the routed model's price, settled at the served model's
--- http_config
    ai_price "gpt-4o*" input=10 output=30;
    ai_token_limit_zone m key=$remote_addr;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_token_limit m 0.009 count=money per=day;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions
# 500 prompt + 100 completion tokens: $0.005 + $0.003 = 8000 micro-dollars;
# a reservation: 10 tokens and max_tokens 60: 100 + 1800 = 1900
b='{"model":"gpt-4o~usage_prompt=500,usage_completion=100","max_tokens":60,"messages":[{"role":"user","content":"hi"}]}'
curl -s -o /dev/null -w '%{http_code}\n' $u -d "$b"
curl -s -o /dev/null -w '%{http_code}\n' $u -d "$b"
# 1000 left: a smaller one (100 + 300) fits
curl -s -o /dev/null -w '%{http_code}\n' $u -d '{"model":"gpt-4o~usage_prompt=10,usage_completion=10","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}'
--- response_body
200
429
200
--- error_log
ai_token_limit "m": over 0.009 US dollars per day, refused
--- no_error_log
[error]



=== TEST 7: a token bucket refills continuously: refused when empty, admitted again after a share of the window
--- http_config
    ai_token_limit_zone b key=$remote_addr;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_token_limit b 2 count=requests per=2s algorithm=bucket;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions
b='{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}'
for i in 1 2 3; do curl -s -o /dev/null -w '%{http_code} ' $u -d "$b"; done
echo
sleep 1.2
curl -s -o /dev/null -w '%{http_code}\n' $u -d "$b"
--- response_body
200 200 429 
200
--- no_error_log
[error]



=== TEST 8: dry run: over the limit the request passes, a warning is logged, the outcome and the metric say so
--- http_config
    ai_token_limit_zone d key=$remote_addr;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_token_limit d 1 count=requests per=day dry_run;
        add_header X-Outcome $ai_outcome_limit always;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions
b='{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}'
for i in 1 2 3; do t/lib/limit-probe $u "$b"; done
--- response_body
200 requests=0/1
200 requests=0/1 outcome=dry_run
200 requests=0/1 outcome=dry_run
--- error_log
ai_token_limit "d": over 1 requests per day (dry run)
--- no_error_log
[error]



=== TEST 9: settled however the request ended: an upstream error and a refused provider use nothing; a fallback is charged once, at the serving target's usage
--- http_config
    ai_target bad  http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 model=gpt-4o~status=503;
    ai_target good http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 model=gpt-4o~usage_prompt=100,usage_completion=50;
    ai_target down http://127.0.0.1:1/v1;
    ai_token_limit_zone s key=$remote_addr;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_token_limit s 10000 per=day;
    }
    location /fallback/ {
        rewrite ^/fallback/(.*)$ /v1/$1 break;
        ai_proxy bad good;
        ai_token_limit s 10000 per=day;
    }
    location /down/ {
        rewrite ^/down/(.*)$ /v1/$1 break;
        ai_proxy down;
        ai_token_limit s 10000 per=day;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT
b='{"model":"gpt-4o","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}'
t/lib/limit-probe $u/v1/chat/completions '{"model":"gpt-4o~status=500","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}'
t/lib/limit-probe $u/down/chat/completions "$b"
t/lib/limit-probe $u/fallback/chat/completions "$b"
t/lib/limit-probe $u/v1/chat/completions '{"model":"gpt-4o~usage_prompt=1,usage_completion=1","max_tokens":1,"messages":[{"role":"user","content":"hi"}]}'
--- response_body
500 tokens=9890/10000
502 tokens=9890/10000 code=upstream_error
200 tokens=9890/10000
200 tokens=9839/10000
--- error_log eval
qr/\[error\] .*connect\(\) failed \(111: Connection refused\)/
--- no_error_log
[alert]



=== TEST 10: a stream is settled to the usage it reported; a stream the client cut is settled to the local count of what was sent
--- http_config
    ai_token_limit_zone s key=$remote_addr;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_token_limit s 100000 per=day;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions
curl -s -o /dev/null $u -d '{"model":"gpt-4o~usage_prompt=300,usage_completion=200","stream":true,"max_tokens":1000,"messages":[{"role":"user","content":"hi"}]}'
# 500 used: 99500 left before the next reserves 10 + 1
t/lib/limit-probe $u '{"model":"gpt-4o~usage_prompt=1,usage_completion=1","max_tokens":1,"messages":[{"role":"user","content":"hi"}]}'
# cut after a few events: the usage event never came
curl -s -o /dev/null --max-time 0.6 $u -d '{"model":"gpt-4o~delay_chunks_ms=200,words=50","stream":true,"max_tokens":1000,"messages":[{"role":"user","content":"one two three four"}]}'
sleep 0.3
t/lib/limit-probe $u '{"model":"gpt-4o","max_tokens":1,"messages":[{"role":"user","content":"hi"}]}' \
    | awk '{ split($2, a, "[=/]"); used = 99487 - a[2];
             print $1, (used > 2 && used < 12) ? "cut stream settled to a few tokens" : "used " used }'
--- response_body
200 tokens=99489/100000
200 cut stream settled to a few tokens
--- no_error_log
[error]



=== TEST 11: a refusal by a later rule gives back what the earlier rules reserved
--- http_config
    ai_token_limit_zone z key=$remote_addr;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_token_limit z 100000 per=day;
        ai_token_limit z 1 count=requests per=day;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions
b='{"model":"gpt-4o~usage_prompt=10,usage_completion=10","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}'
t/lib/limit-probe $u "$b"
t/lib/limit-probe $u "$b"
t/lib/limit-probe $u "$b"
--- response_body_like
^200 tokens=99890/100000 requests=0/1
429 tokens=99870/100000 requests=0/1 retry=\d+ code=rate_limit_exceeded
429 tokens=99870/100000 requests=0/1 retry=\d+ code=rate_limit_exceeded
$
--- no_error_log
[error]



=== TEST 12: the provider's x-ratelimit headers are replaced by the gateway's; ai_token_limit_headers off sends none
--- http_config
    ai_token_limit_zone z key=$remote_addr;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_token_limit z 5 count=requests per=day;
    }
    location /off/ {
        rewrite ^/off/(.*)$ /v1/$1 break;
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_token_limit z 5 count=requests per=day;
        ai_token_limit_headers off;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT
curl -s -i $u/v1/chat/completions -d '{"model":"gpt-4o~status=429,retry_after=7","messages":[{"role":"user","content":"hi"}]}' | tr -d '\r' | grep -i '^x-ratelimit' | sort
echo --
curl -s -i $u/off/chat/completions -d '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}' | tr -d '\r' | grep -ic '^x-ratelimit' || true
--- response_body_like
^x-ratelimit-limit-requests: 5
x-ratelimit-remaining-requests: 4
x-ratelimit-reset-requests: \d+h\d+m\d+s
--
0
$
--- no_error_log
[alert]



=== TEST 13: nginx -t: an unknown zone is named
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_token_limit nosuch 10;
    }
--- must_die
--- error_log
ai_token_limit: unknown zone "nosuch" (define it with ai_token_limit_zone before)



=== TEST 14: nginx -t: a bad amount, window, count and algorithm are named
--- http_config
    ai_token_limit_zone z key=$remote_addr;
--- config
    location /a/ { ai_token_limit z 10 per=3x; }
--- must_die
--- error_log
ai_token_limit "z": invalid parameter "per=3x"



=== TEST 15: nginx -t: an amount that is not a number
--- http_config
    ai_token_limit_zone z key=$remote_addr;
--- config
    location /a/ { ai_token_limit z ten; }
--- must_die
--- error_log
ai_token_limit "z": invalid amount "ten" (a positive number)



=== TEST 16: nginx -t: money with too many decimals
--- http_config
    ai_token_limit_zone z key=$remote_addr;
--- config
    location /a/ { ai_token_limit z 0.0000001 count=money; }
--- must_die
--- error_log
ai_token_limit "z": invalid amount "0.0000001" (US dollars, e.g. 25 or 0.50)



=== TEST 17: nginx -t: a zone without a key, and a zone's store that is not defined
--- http_config
    ai_token_limit_zone z size=1m;
--- config
    location /a/ { ai_token_limit z 10; }
--- must_die
--- error_log
ai_token_limit_zone "z": "key=" is required (e.g. key=$ai_consumer)



=== TEST 18: nginx -t: a zone in a store nobody defined
--- http_config
    ai_token_limit_zone z key=$remote_addr store=nosuch;
--- config
    location /a/ { ai_token_limit z 10; }
--- must_die
--- error_log
unknown ai_store "nosuch"



=== TEST 19: a zone in a named store shared with other rules; the rules of the nearest level apply (server level here)
--- http_config
    ai_store limits size=1m;
    ai_token_limit_zone z key=$remote_addr store=limits;
--- config
    ai_token_limit z 1 count=requests per=day;
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions
b='{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}'
t/lib/limit-probe $u "$b"
t/lib/limit-probe $u "$b"
--- response_body_like
^200 requests=0/1
429 requests=0/1 retry=\d+ code=rate_limit_exceeded
$
--- no_error_log
[error]



=== TEST 20: 50 concurrent streams against one limit: the admitted total stays within it (each reservation, 11 + max_tokens 20, is above what a request uses), no request is refused while room is left, and every reservation is settled exactly
--- http_config
    ai_token_limit_zone z key=$remote_addr;
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



=== TEST 21: the official SDKs read the headers with their raw-response calls, and see the 429 as their RateLimitError with the gateway's message
--- http_config
    ai_consumer app sk-client-app-0001;
    ai_token_limit_zone r key=$ai_consumer;
--- config
    location /v1/ {
        ai_auth required;
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_token_limit r 2 count=requests per=day;
    }
--- exec
node t/sdk/limit_sdk.mjs http://127.0.0.1:$TEST_NGINX_SERVER_PORT sk-client-app-0001 \
    | sed -E 's/in [0-9]+s\./in Ss./'
--- response_body
openai: 1/2 left
anthropic: 0/2 left
openai: RateLimitError 429 retry-after true: Rate limit reached for "r": 2 requests per day. Try again in Ss.
anthropic: RateLimitError 429 retry-after true: Rate limit reached for "r": 2 requests per day. Try again in Ss.
--- no_error_log
[error]
--- timeout: 20



=== TEST 22: an answer a stage gave (a cache hit) is free by default, charged at its usage with ai_token_limit_cached full; requests count either way
--- http_config
    ai_token_limit_zone z key=$remote_addr;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_token_limit z 10000 per=day;
        ai_token_limit z 100 count=requests per=day;
        ai_test_stage cache 'render={"id":"chatcmpl-cached","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"cached"},"finish_reason":"stop"}],"usage":{"prompt_tokens":300,"completion_tokens":200,"total_tokens":500}}';
    }
    location /full/ {
        rewrite ^/full/(.*)$ /v1/$1 break;
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_token_limit z 10000 per=day;
        ai_token_limit z 100 count=requests per=day;
        ai_token_limit_cached full;
        ai_test_stage cache 'render={"id":"chatcmpl-cached","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"cached"},"finish_reason":"stop"}],"usage":{"prompt_tokens":300,"completion_tokens":200,"total_tokens":500}}';
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT
b='{"model":"gpt-4o","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}'
t/lib/limit-probe $u/v1/chat/completions "$b"
t/lib/limit-probe $u/v1/chat/completions "$b"
t/lib/limit-probe $u/full/chat/completions "$b"
t/lib/limit-probe $u/full/chat/completions "$b"
--- response_body
200 tokens=9980/10000 requests=99/100
200 tokens=9980/10000 requests=98/100
200 tokens=9980/10000 requests=97/100
200 tokens=9480/10000 requests=96/100
--- no_error_log
[error]



=== TEST 23: the record and the metrics tell the limit's outcome: limit_status in the JSONL record, ai_rate_limit_total by outcome, the module's own counters of refusals
--- http_config
    ai_token_limit_zone z key=$remote_addr;
    ai_metrics_zone ai 4m;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_token_limit z 1 count=requests per=day;
        ai_log logs/ai.jsonl;
    }
    location = /metrics { ai_metrics; }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT
b='{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}'
curl -s -o /dev/null -w '%{http_code}\n' $u/v1/chat/completions -d "$b"
curl -s -o /dev/null -w '%{http_code}\n' $u/v1/chat/completions -d "$b"
curl -s $u/metrics | grep -E '^ai_rate_limit_total|^ai_token_limit_'
grep -o '"status":[0-9]*\|"limit_status":[a-z"_]*' $TEST_NGINX_SERVROOT/logs/ai.jsonl | paste -sd' '
--- response_body
200
429
ai_rate_limit_total{limit_status="rejected"} 1
ai_token_limit_rejected_total{limit="z",count="requests"} 1
ai_token_limit_store_errors_total{limit="z"} 0
"status":200 "limit_status":null "status":429 "limit_status":"rejected"
--- no_error_log
[error]



=== TEST 24: the reset as OpenAI writes it, for each window: milliseconds under a second, then seconds, minutes and seconds, hours, minutes and seconds (the counter's time to live: a window and some)
--- http_config
    ai_token_limit_zone z key=$remote_addr;
--- config
    location /s/ {
        rewrite ^/s/(.*)$ /v1/$1 break;
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_token_limit z 5 count=requests per=second;
    }
    location /m/ {
        rewrite ^/m/(.*)$ /v1/$1 break;
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_token_limit z 5 count=requests per=minute;
    }
    location /h/ {
        rewrite ^/h/(.*)$ /v1/$1 break;
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_token_limit z 5 count=requests per=hour;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT
for w in s m h; do
curl -s -i $u/$w/chat/completions -d '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}' | tr -d '\r' | grep -i '^x-ratelimit-reset'
done
--- response_body_like
^x-ratelimit-reset-requests: (\d{1,3}ms|[1-5]?\ds)
x-ratelimit-reset-requests: ([1-5]?\ds|[1-9]\d*m[1-5]?\ds)
x-ratelimit-reset-requests: ([1-9]\d*m[1-5]?\ds|[1-9]\d*h[1-5]?\dm[1-5]?\ds)
$
--- no_error_log
[error]



=== TEST 25: ai_token_limit_cached full: a streamed hit is charged the entry's usage whether or not the client asked for stream usage (without include_usage it was charged an estimate of a few tokens)
--- http_config
    ai_store answers size=4m;
    ai_token_limit_zone z key=$remote_addr;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_cache answers;
        ai_token_limit z 100000 per=day;
        ai_token_limit_cached full;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions
# a probe (bypassing the cache) shows what is left; it uses 3 tokens
p='{"model":"gpt-4o","max_tokens":1,"messages":[{"role":"user","content":"probe"}]}'
probe() { t/lib/limit-probe $u "$p" -H 'X-AI-Cache: bypass' | grep -o 'tokens=[0-9]*' | cut -d= -f2; }
b='{"model":"gpt-4o~usage_prompt=300,usage_completion=200","max_tokens":1000,"messages":[{"role":"user","content":"hi"}]'
curl -s -o /dev/null $u -d "$b}"                   # the miss, stored: 500 used
a=$(probe)
curl -s -o /dev/null $u -d "$b}"                   # a plain hit
c=$(probe)
curl -sN -o /dev/null $u -d "$b"',"stream":true,"stream_options":{"include_usage":true}}'
d=$(probe)
curl -sN -o /dev/null $u -d "$b"',"stream":true}'
e=$(probe)
echo "plain hit $((a - c - 3))"
echo "streamed hit with usage $((c - d - 3))"
echo "streamed hit without usage $((d - e - 3))"
--- response_body
plain hit 500
streamed hit with usage 500
streamed hit without usage 500
--- no_error_log
[error]
[alert]
