# No silent drops: the fields of an OpenAI request that a target cannot
# carry are refused with a 400 naming the field and the target; those it
# can are mapped (response_format as a forced tool for Anthropic, as
# responseSchema for Gemini; top_k, stop, user, seed where they exist).
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_AI_BAD} = 'bad-key-000001';
$ENV{TEST_AI_K1} = 'sk-good-key-1';
env_to_nginx('TEST_AI_BAD', 'TEST_AI_K1');
run_tests();

__DATA__

=== TEST 1: response_format json_schema to Anthropic: a forced tool, its input the answer's text, plain and streamed
--- http_config
    ai_target an http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic;
--- config
    location /v1/ {
        ai_proxy an;
    }
    location /mock/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request eval
my $f = q!"response_format":{"type":"json_schema","json_schema":{"name":"w","schema":{"type":"object","properties":{"location":{"type":"string"}}}}}!;
["POST /v1/chat/completions\n" . qq!{"model":"claude-sonnet-4-5",$f,"messages":[{"role":"user","content":"where?"}]}!,
 "GET /mock/last",
 "POST /v1/chat/completions\n" . qq!{"model":"claude-sonnet-4-5","stream":true,$f,"messages":[{"role":"user","content":"where?"}]}!]
--- response_body_like eval
[q!"message":\{"role":"assistant","content":"\{\\\\"location\\\\":\\\\"Paris\\\\",\\\\"unit\\\\":\\\\"celsius\\\\"\}","refusal":null\},"logprobs":null,"finish_reason":"stop"!,
 q!\\\\"tools\\\\":\[\{\\\\"name\\\\":\\\\"gateway_json_answer\\\\",.*\\\\"input_schema\\\\":\{\\\\"type\\\\":\\\\"object\\\\",\\\\"properties\\\\":\{\\\\"location\\\\".*\\\\"tool_choice\\\\":\{\\\\"type\\\\":\\\\"tool\\\\",\\\\"name\\\\":\\\\"gateway_json_answer\\\\"\}!,
 q!"delta":\{"content":"\{\\\\"location\\\\":"\}.*"delta":\{"content":"\\\\"Paris\\\\","\}.*"finish_reason":"stop".*data: \[DONE\]!]
--- response_body_unlike eval
[q!tool_calls!, q!\A\z!, q!tool_calls!]
--- no_error_log
[error]



=== TEST 2: what a target has no equivalent for is refused, naming the field and the target; what it has is mapped
--- http_config
    ai_target an http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic models=claude-*;
    ai_target ge http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=gemini models=gemini-*;
    ai_target oa http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 models=gpt-*;
--- config
    location /v1/ {
        ai_proxy an ge oa;
    }
    location /mock/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request eval
my $m = q!"messages":[{"role":"user","content":"hi"}]!;
["POST /v1/chat/completions\n" . qq!{"model":"claude-sonnet-4-5","seed":42,$m}!,
 "POST /v1/chat/completions\n" . qq!{"model":"claude-sonnet-4-5","logprobs":true,"top_logprobs":3,$m}!,
 "POST /v1/chat/completions\n" . qq!{"model":"gemini-2.5-flash","logprobs":true,$m}!,
 "POST /v1/chat/completions\n" . qq!{"model":"gemini-2.5-flash","parallel_tool_calls":false,"tools":[{"type":"function","function":{"name":"f"}}],$m}!,
 "POST /v1/messages\n" . qq!{"model":"gpt-4o","max_tokens":10,"top_k":5,$m}!,
 "POST /v1/chat/completions\n" . qq!{"model":"claude-sonnet-4-5","top_k":5,"stop":"END","user":"u-1","seed":null,"logprobs":false,"parallel_tool_calls":false,"tools":[{"type":"function","function":{"name":"f"}}],$m}!,
 "GET /mock/last",
 "POST /v1/chat/completions\n" . qq!{"model":"gemini-2.5-flash","top_k":5,"seed":42,"stop":["END"],$m}!,
 "GET /mock/last"]
--- error_code eval
[400, 400, 400, 400, 400, 200, 200, 200, 200]
--- response_body_like eval
[q!^\{"error":\{"message":"\\\\"seed\\\\" is not supported by anthropic targets","type":"invalid_request_error"!,
 q!"message":"\\\\"logprobs\\\\" is not supported by anthropic targets"!,
 q!"message":"\\\\"logprobs\\\\" is not supported by gemini targets"!,
 q!"message":"\\\\"parallel_tool_calls\\\\" is not supported by gemini targets"!,
 q!^\{"type":"error","error":\{"message":"\\\\"top_k\\\\" is not supported by openai targets"!,
 q!mock reply: hi!,
 q!\\\\"top_k\\\\":5,\\\\"stop_sequences\\\\":\[\\\\"END\\\\"\],\\\\"metadata\\\\":\{\\\\"user_id\\\\":\\\\"u-1\\\\"\}.*\\\\"tool_choice\\\\":\{\\\\"type\\\\":\\\\"auto\\\\",\\\\"disable_parallel_tool_use\\\\":true\}!,
 q!mock reply: hi!,
 q!\\\\"generationConfig\\\\":\{\\\\"topK\\\\":5,\\\\"seed\\\\":42,\\\\"stopSequences\\\\":\[\\\\"END\\\\"\]\}!]
--- no_error_log
[error]



=== TEST 3: ai_proxy_drop_fields lets the listed fields go quietly, for every target (every member so named): what reaches the provider has none of them; a field not listed is still refused
--- http_config
    ai_target an http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic models=claude-*;
    ai_target oa http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 models=gpt-*;
--- config
    location /v1/ {
        ai_proxy an oa;
        ai_proxy_drop_fields seed logprobs top_logprobs;
    }
    location /mock/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request eval
my $m = q!"messages":[{"role":"user","content":"hi"}]!;
["POST /v1/chat/completions\n" . qq!{"model":"claude-sonnet-4-5","seed":42,"logprobs":true,"top_logprobs":3,$m}!,
 "GET /mock/last",
 "POST /v1/chat/completions\n" . qq!{"model":"gpt-4o","seed":7,"seed":8,"temperature":0.5,$m}!,
 "GET /mock/last",
 "POST /v1/chat/completions\n" . qq!{"model":"claude-sonnet-4-5","presence_penalty":0.5,$m}!]
--- error_code eval
[200, 200, 200, 200, 400]
--- response_body_like eval
[q!"content":"mock reply: hi"!, q!\\\\"messages\\\\"!, q!"content":"mock reply: hi"!, q!\\\\"temperature\\\\":0.5!, q!presence_penalty\\\\" is not supported by anthropic targets!]
--- response_body_unlike eval
[q!\A\z!, q!seed|logprobs!, q!\A\z!, q!seed!, q!\A\z!]
--- no_error_log
[error]



=== TEST 4: nginx -t: ai_proxy_drop_fields refuses a field that makes the request, and a name that is not a field's
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_proxy_drop_fields seed messages;
    }
--- must_die
--- error_log
ai_proxy_drop_fields: "messages" makes the request and cannot be dropped



=== TEST 5: a field dropped keeps the request's routing: round robin alternates, the headers set for the provider go, $ai_route_model stays (the router decided again for the new body, and the attempt went on with a context of its own: always "b", no header)
--- http_config
    ai_target a http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    ai_target b http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    log_format ai '$ai_target $ai_route_model';
--- config
    location /v1/ {
        ai_proxy a b;
        ai_proxy_balance round_robin;
        ai_proxy_set_header X-Tenant blue;
        ai_proxy_drop_fields seed;
        access_log logs/access.log ai;
    }
    location /mock/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request eval
my $b = q!{"model":"gpt-4o","seed":3,"messages":[{"role":"user","content":"x"}]}!;
["POST /v1/chat/completions\n$b", "GET /mock/last",
 "POST /v1/chat/completions\n$b", "GET /mock/last",
 "POST /v1/chat/completions\n$b", "POST /v1/chat/completions\n$b"]
--- response_body_like eval
["mock reply: x", q!"x-tenant":"blue"!, "mock reply: x", q!"x-tenant":"blue"!,
 "mock reply: x", "mock reply: x"]
--- response_body_unlike eval
[q!\A\z!, q!seed!, q!\A\z!, q!seed!, q!\A\z!, q!\A\z!]
--- access_log
a gpt-4o
b gpt-4o
a gpt-4o
b gpt-4o
--- no_error_log
[error]



=== TEST 6: a field dropped and a key pool: the first attempt with the first key, refused, the next with the second (the keys went round twice a request: key #2 first)
--- main_config
    env TEST_AI_BAD;
    env TEST_AI_K1;
--- http_config
    ai_target t http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 key=env:TEST_AI_BAD key=env:TEST_AI_K1;
    log_format ai '$ai_target $ai_attempts $status key=$ai_proxy_key';
--- config
    location /v1/ {
        ai_proxy t;
        ai_proxy_drop_fields seed;
        access_log logs/access.log ai;
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o","seed":3,"messages":[{"role":"user","content":"x"}]}
--- response_body_like
mock reply: x
--- access_log
t 2 200 key=2
--- error_log
attempt 1: target "t" key #1
attempt 2: target "t" key #2
--- no_error_log
bad-key-000001
sk-good-key-1
[error]



=== TEST 7: ai_proxy_drop_fields max_tokens: the OpenAI door's request goes without it; the Anthropic door's, which needs it, goes as it came (it was a 500 with nothing logged: the new body did not parse)
--- http_config
    ai_target t http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    log_format ai '$ai_target $ai_attempts $status';
--- config
    location /v1/ {
        ai_proxy t;
        ai_proxy_drop_fields max_tokens;
        access_log logs/access.log ai;
    }
    location /mock/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request eval
["POST /v1/chat/completions\n" . '{"model":"gpt-4o","max_tokens":50,"messages":[{"role":"user","content":"x"}]}',
 "GET /mock/last",
 "POST /v1/messages\n" . '{"model":"gpt-4o","max_tokens":50,"messages":[{"role":"user","content":"y"}]}']
--- response_body_like eval
["mock reply: x", q{^(?!.*max_tokens)}, "mock reply: y"]
--- access_log
t 1 200
--- no_error_log
[error]
