# ai_token_budget: long-period quotas per key in tokens or money, no
# window; the admin endpoint reads, tops up, sets and resets them; kept
# across reloads.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: a token budget per consumer: spent by each request's usage, refused once the next request may use more than is left (429 insufficient_quota); the admin endpoint reads it, tops it up, sets it and resets it
--- http_config
    ai_consumer alice sk-client-alice-0001;
    ai_consumer bob sk-client-bob-00001;
    ai_token_limit_zone team key=$ai_consumer;
--- config
    location /v1/ {
        ai_auth required;
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_token_budget team 1000;
    }
    location = /admin/budgets {
        allow 127.0.0.1;
        deny all;
        ai_token_limit_admin;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT
a='Authorization: Bearer sk-client-alice-0001'
b='{"model":"gpt-4o~usage_prompt=300,usage_completion=100","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}'
chat() { curl -s -o /dev/null -w '%{http_code}\n' $u/v1/chat/completions -H "$1" -d "$b"; }
admin() { curl -s $u/admin/budgets -d "$1"; }
chat "$a"; chat "$a"
curl -s "$u/admin/budgets?zone=team&key=alice"
# 200 left, the next reserves 108: it fits and spends 400
chat "$a"
curl -s $u/v1/chat/completions -H "$a" -d "$b"
chat 'Authorization: Bearer sk-client-bob-00001'
admin '{"zone":"team","key":"alice","action":"top_up","amount":700}'
chat "$a"
admin '{"zone":"team","key":"alice","action":"set","amount":50}'
chat "$a"
admin '{"zone":"team","key":"alice","action":"reset"}'
chat "$a"
curl -s "$u/admin/budgets?zone=team&key=bob"
--- response_body
200
200
{"zone":"team","key":"alice","count":"tokens","amount":1000,"remaining":200}
200
{"error":{"message":"Budget \"team\" exhausted: the request may use more than is left.","type":"rate_limit_error","param":null,"code":"insufficient_quota"}}
200
{"zone":"team","key":"alice","count":"tokens","amount":1000,"remaining":500}
200
{"zone":"team","key":"alice","count":"tokens","amount":1000,"remaining":50}
429
{"zone":"team","key":"alice","count":"tokens","amount":1000,"remaining":1000}
200
{"zone":"team","key":"bob","count":"tokens","amount":1000,"remaining":600}
--- no_error_log
[error]



=== TEST 2: a money budget in US dollars, from the price table; it survives a reload
--- http_config
    ai_price "gpt-4o*" input=10 output=30;
    ai_token_limit_zone spend key=$remote_addr;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_token_budget spend 0.02 count=money;
    }
    location = /admin {
        ai_token_limit_admin;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT
# 500 prompt and 100 completion tokens: $0.008
b='{"model":"gpt-4o~usage_prompt=500,usage_completion=100","max_tokens":60,"messages":[{"role":"user","content":"hi"}]}'
curl -s -o /dev/null -w '%{http_code}\n' $u/v1/chat/completions -d "$b"
curl -s "$u/admin?zone=spend&key=127.0.0.1&count=money"
kill -HUP $(cat $TEST_NGINX_SERVROOT/logs/nginx.pid); sleep 1
curl -s "$u/admin?zone=spend&key=127.0.0.1&count=money"
curl -s $u/admin -d '{"zone":"spend","key":"127.0.0.1","count":"money","action":"top_up","amount":"0.5"}'
curl -s $u/admin -d '{"zone":"spend","key":"127.0.0.1","count":"money","action":"set","amount":1.25}'
--- response_body
200
{"zone":"spend","key":"127.0.0.1","count":"money","amount":0.020000,"remaining":0.012000}
{"zone":"spend","key":"127.0.0.1","count":"money","amount":0.020000,"remaining":0.012000}
{"zone":"spend","key":"127.0.0.1","count":"money","amount":0.020000,"remaining":0.512000}
{"zone":"spend","key":"127.0.0.1","count":"money","amount":0.020000,"remaining":1.250000}
--- no_error_log
[error]



=== TEST 3: the admin endpoint's errors, as JSON: an unknown budget, a bad action, a bad body, a missing key, a bad method; protected by allow/deny
--- http_config
    ai_token_limit_zone team key=$remote_addr;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_token_budget team 1000;
    }
    location = /admin {
        ai_token_limit_admin;
    }
    location = /closed {
        allow 127.0.0.2;
        deny all;
        ai_token_limit_admin;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT
curl -s "$u/admin?zone=nosuch&key=a"
curl -s "$u/admin?zone=team&key=a&count=money"
curl -s $u/admin -d '{"zone":"team","key":"a","action":"drain"}'
curl -s $u/admin -d '{"zone":"team","key":"a","action":"top_up","amount":-5}'
curl -s $u/admin -d '{"zone":"team","key":"a","action":"top_up","amount":1.5}'
curl -s $u/admin -d 'nonsense'
curl -s "$u/admin?zone=team"
curl -s -X DELETE "$u/admin?zone=team&key=a"
curl -s -o /dev/null -w '%{http_code}\n' "$u/closed?zone=team&key=a"
--- response_body
{"error":{"message":"no budget \"nosuch\" counting tokens","type":"invalid_request_error","param":"zone","code":"budget_not_found"}}
{"error":{"message":"no budget \"team\" counting money","type":"invalid_request_error","param":"zone","code":"budget_not_found"}}
{"error":{"message":"\"action\" is \"top_up\", \"set\" or \"reset\"","type":"invalid_request_error","param":"action","code":null}}
{"error":{"message":"\"amount\" is required: a number, not negative","type":"invalid_request_error","param":"amount","code":null}}
{"error":{"message":"a token \"amount\" is a whole number","type":"invalid_request_error","param":"amount","code":null}}
{"error":{"message":"the body is not a JSON object","type":"invalid_request_error","param":null,"code":null}}
{"error":{"message":"\"zone\" and \"key\" are required","type":"invalid_request_error","param":null,"code":null}}
{"error":{"message":"GET to read a budget, POST to change it","type":"invalid_request_error","param":null,"code":"method_not_allowed"}}
403
--- error_log eval
qr/\[error\] .*access forbidden by rule/
--- no_error_log
[alert]



=== TEST 4: nginx -t: a budget of requests, and a budget with a window
--- http_config
    ai_token_limit_zone z key=$remote_addr;
--- config
    location /a/ { ai_token_budget z 10 count=requests; }
--- must_die
--- error_log
ai_token_budget "z": a budget counts tokens or money, not "requests"



=== TEST 5: nginx -t: a budget has no window
--- http_config
    ai_token_limit_zone z key=$remote_addr;
--- config
    location /a/ { ai_token_budget z 10 per=day; }
--- must_die
--- error_log
ai_token_budget "z": invalid parameter "per=day"



=== TEST 6: what is left of each budget, by key, in the metrics (money in dollars), updated by requests and by the admin endpoint
--- http_config
    ai_consumer alice sk-client-alice-0001;
    ai_consumer bob sk-client-bob-00001;
    ai_price "gpt-4o*" input=10 output=30;
    ai_token_limit_zone team key=$ai_consumer;
    ai_metrics_zone ai 4m;
--- config
    location /v1/ {
        ai_auth required;
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_token_budget team 1000;
        ai_token_budget team 0.5 count=money;
    }
    location = /admin { ai_token_limit_admin; }
    location = /metrics { ai_metrics; }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT
b='{"model":"gpt-4o~usage_prompt=300,usage_completion=100","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}'
curl -s -o /dev/null $u/v1/chat/completions -H 'Authorization: Bearer sk-client-alice-0001' -d "$b"
curl -s -o /dev/null $u/v1/chat/completions -H 'Authorization: Bearer sk-client-bob-00001' -d "$b"
curl -s -o /dev/null $u/admin -d '{"zone":"team","key":"bob","action":"top_up","amount":50}'
curl -s $u/metrics | grep '^ai_token_budget_remaining\|^# TYPE ai_token_budget' | sort
--- response_body
# TYPE ai_token_budget_remaining gauge
ai_token_budget_remaining{budget="team",count="money",key="alice"} 0.494000
ai_token_budget_remaining{budget="team",count="money",key="bob"} 0.494000
ai_token_budget_remaining{budget="team",count="tokens",key="alice"} 600
ai_token_budget_remaining{budget="team",count="tokens",key="bob"} 650
--- no_error_log
[error]



=== TEST 7: usage a provider reports that is not a count (negative, 1e300) keeps the reservation, or what the counts read say if more; an answer the output guard stops is still charged what it used, and its error says content_filtered
--- http_config
    ai_token_limit_zone team key=$http_x_team;
    ai_prompt_guard_rule third "regex=\bw3\b";
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_token_budget team 1000;
    }
    location /g/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_token_budget team 1000;
        ai_prompt_guard_output third;
    }
    location = /admin/budgets {
        allow 127.0.0.1;
        deny all;
        ai_token_limit_admin;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT
chat() {
    curl -s -o /dev/null -w '%{http_code}\n' $u/v1/chat/completions -H 'x-team: a' \
         -d "{\"model\":\"gpt-4o~$1\",\"max_tokens\":100,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"
    curl -s "$u/admin/budgets?zone=team&key=a" | grep -o '"remaining":[0-9]*'
}
# each reserves 110 (the prompt's estimate and max_tokens)
chat usage_prompt=-5000,usage_completion=-5000
chat usage_prompt=1e300,usage_completion=400
chat usage_prompt=10,usage_completion=20
for s in false true; do
    curl -s $u/g/chat/completions -H "x-team: g$s" \
         -d "{\"model\":\"gpt-4o~words=5,usage_prompt=300,usage_completion=100\",\"stream\":$s,\"max_tokens\":100,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}" \
        | grep -o '"code":"[a-z_]*"' | head -1
    curl -s "$u/admin/budgets?zone=team&key=g$s" | grep -o '"remaining":[0-9]*'
done
--- response_body
200
"remaining":890
200
"remaining":490
200
"remaining":460
"code":"content_filtered"
"remaining":600
"code":"content_filtered"
"remaining":600
--- no_error_log
[error]
