# OpenAI's Responses API door: passed through to OpenAI and Azure targets
# (previous_response_id, GET and DELETE of a response pinned to the target
# and key that created it), translated through the chat pivot, event by
# event, to Anthropic, Gemini and chat-only OpenAI-compatible targets.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_AI_KEY_A} = 'sk-a';
$ENV{TEST_AI_KEY_B} = 'sk-b';
run_tests();

__DATA__

=== TEST 1: to OpenAI, passed through: plain and streamed, the provider's bytes, usage read
--- main_config
    env TEST_AI_KEY_A;
--- http_config
    ai_target oa http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 key=env:TEST_AI_KEY_A;
    log_format ai '$ai_endpoint $ai_provider $ai_stream $ai_prompt_tokens $ai_completion_tokens $ai_total_tokens';
--- config
    location /v1/ {
        ai_proxy oa;
        access_log logs/access.log ai;
    }
    location /mock/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request eval
["POST /v1/responses\n{\"model\":\"gpt-4o\",\"instructions\":\"Be kind.\",\"input\":\"hello there\"}",
 "GET /mock/last",
 "POST /v1/responses\n{\"model\":\"gpt-4o\",\"stream\":true,\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"stream me\"}]}]}"]
--- response_body_like eval
["^\\{\"id\":\"resp_mock\\d+_[0-9a-f]{8}\",\"object\":\"response\",.*\"status\":\"completed\".*\"output\":\\[\\{\"id\":\"msg_mock\\d+\",\"type\":\"message\",\"status\":\"completed\",\"content\":\\[\\{\"type\":\"output_text\",\"annotations\":\\[\\],\"logprobs\":\\[\\],\"text\":\"mock reply: hello there\"\\}\\],\"role\":\"assistant\"\\}\\].*\"usage\":\\{\"input_tokens\":6,\"input_tokens_details\":\\{\"cached_tokens\":0\\},\"output_tokens\":4,",
 "\"uri\":\"/v1/responses\".*\"authorization\":\"Bearer sk-a\".*\\\\\"instructions\\\\\":\\\\\"Be kind.\\\\\"",
 "^event: response.created\ndata: \\{\"type\":\"response.created\",\"sequence_number\":0,.*event: response.in_progress\n.*event: response.output_item.added\n.*event: response.content_part.added\n.*event: response.output_text.delta\ndata: \\{\"type\":\"response.output_text.delta\",\"sequence_number\":4,\"item_id\":\"msg_mock\\d+\",\"output_index\":0,\"content_index\":0,\"delta\":\"mock \",\"logprobs\":\\[\\]\\}\n\n.*event: response.output_text.done\n.*event: response.content_part.done\n.*event: response.output_item.done\n.*event: response.completed\ndata: \\{\"type\":\"response.completed\",.*\"usage\":\\{\"input_tokens\":3,.*\n\n\$"]
--- access_log
responses openai false 6 4 10
responses openai true 3 4 7
--- no_error_log
[error]
[warn]



=== TEST 2: to Anthropic, translated: instructions, input items, max_output_tokens; plain and streamed
--- http_config
    ai_target an http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic;
    log_format ai '$ai_endpoint $ai_provider $ai_stream $ai_prompt_tokens $ai_completion_tokens';
--- config
    location /v1/ {
        ai_proxy an;
        access_log logs/access.log ai;
    }
    location /mock/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request eval
["POST /v1/responses\n{\"model\":\"claude-3-5-haiku\",\"instructions\":\"Be kind.\",\"max_output_tokens\":300,\"store\":true,\"metadata\":{\"a\":\"b\"},\"input\":[{\"role\":\"user\",\"content\":\"first\"},{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"ok\"}]},{\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"hello\"},{\"type\":\"input_image\",\"image_url\":\"data:image/png;base64,iVBORw0KGgo=\"}]}]}",
 "GET /mock/last",
 "POST /v1/responses\n{\"model\":\"claude-3-5-haiku\",\"stream\":true,\"input\":\"stream me\"}"]
--- response_body_like eval
["^\\{\"id\":\"resp_[0-9a-f]+\",\"object\":\"response\",\"created_at\":\\d+,\"status\":\"completed\",\"error\":null,\"incomplete_details\":null,.*\"model\":\"claude-3-5-haiku\",\"output\":\\[\\{\"id\":\"msg_[0-9a-f]+\",\"type\":\"message\",\"status\":\"completed\",\"role\":\"assistant\",\"content\":\\[\\{\"type\":\"output_text\",\"annotations\":\\[\\],\"logprobs\":\\[\\],\"text\":\"mock reply: hello\"\\}\\]\\}\\].*\"usage\":\\{\"input_tokens\":\\d+,\"input_tokens_details\":\\{\"cached_tokens\":0\\},\"output_tokens\":3,\"output_tokens_details\":\\{\"reasoning_tokens\":0\\},\"total_tokens\":\\d+\\}",
 "\"uri\":\"/v1/messages\".*\\\\\"system\\\\\":\\\\\"Be kind.\\\\\".*\\\\\"max_tokens\\\\\":300.*\\\\\"type\\\\\":\\\\\"image\\\\\"",
 "^event: response.created\ndata: \\{\"type\":\"response.created\",\"sequence_number\":0,\"response\":\\{\"id\":\"resp_[0-9a-f]+\",.*\"status\":\"in_progress\".*\n\nevent: response.in_progress\ndata: \\{\"type\":\"response.in_progress\",\"sequence_number\":1,.*\n\nevent: response.output_item.added\ndata: \\{\"type\":\"response.output_item.added\",\"sequence_number\":2,\"output_index\":0,\"item\":\\{\"id\":\"msg_[0-9a-f]+\",\"type\":\"message\",\"status\":\"in_progress\",\"content\":\\[\\],\"role\":\"assistant\"\\}\\}\n\nevent: response.content_part.added\ndata: \\{\"type\":\"response.content_part.added\",\"sequence_number\":3,\"item_id\":\"msg_[0-9a-f]+\",\"output_index\":0,\"content_index\":0,\"part\":\\{\"type\":\"output_text\",\"annotations\":\\[\\],\"logprobs\":\\[\\],\"text\":\"\"\\}\\}\n\nevent: response.output_text.delta\ndata: \\{\"type\":\"response.output_text.delta\",\"sequence_number\":4,\"item_id\":\"msg_[0-9a-f]+\",\"output_index\":0,\"content_index\":0,\"delta\":\"mock \",\"logprobs\":\\[\\]\\}\n\n.*event: response.output_text.done\ndata: \\{\"type\":\"response.output_text.done\",\"sequence_number\":\\d+,\"item_id\":\"msg_[0-9a-f]+\",\"output_index\":0,\"content_index\":0,\"text\":\"mock reply: stream me\",\"logprobs\":\\[\\]\\}\n\nevent: response.content_part.done\n.*event: response.output_item.done\ndata: .*\"status\":\"completed\",\"content\":\\[\\{\"type\":\"output_text\",\"annotations\":\\[\\],\"logprobs\":\\[\\],\"text\":\"mock reply: stream me\"\\}\\],\"role\":\"assistant\"\\}\\}\n\nevent: response.completed\ndata: \\{\"type\":\"response.completed\",\"sequence_number\":\\d+,\"response\":\\{.*\"status\":\"completed\".*\"output\":\\[\\{.*\"text\":\"mock reply: stream me\".*\"usage\":\\{\"input_tokens\":3,\"input_tokens_details\":\\{\"cached_tokens\":0\\},\"output_tokens\":4,.*\n\n\$"]
--- access_log
responses anthropic false
responses anthropic true 3 4
--- no_error_log
[error]
[warn]



=== TEST 3: a function tool round trip to Anthropic, plain then streamed
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
["POST /v1/responses\n{\"model\":\"claude-3-5-haiku\",\"tool_choice\":\"auto\",\"tools\":[{\"type\":\"function\",\"name\":\"get_weather\",\"description\":\"d\",\"parameters\":{\"type\":\"object\",\"properties\":{\"location\":{\"type\":\"string\"}}},\"strict\":true}],\"input\":\"the weather in Paris?\"}",
 "GET /mock/last",
 "POST /v1/responses\n{\"model\":\"claude-3-5-haiku\",\"stream\":true,\"tools\":[{\"type\":\"function\",\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\"}}],\"input\":\"the weather in Paris?\"}",
 "POST /v1/responses\n{\"model\":\"claude-3-5-haiku\",\"tools\":[{\"type\":\"function\",\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\"}}],\"input\":[{\"role\":\"user\",\"content\":\"the weather in Paris?\"},{\"type\":\"function_call\",\"id\":\"fc_1\",\"call_id\":\"toolu_mock_1\",\"name\":\"get_weather\",\"arguments\":\"{\\\"location\\\":\\\"Paris\\\"}\"},{\"type\":\"function_call_output\",\"call_id\":\"toolu_mock_1\",\"output\":\"sunny, 21C\"}]}",
 "GET /mock/last"]
--- response_body_like eval
["\"output\":\\[\\{\"id\":\"fc_[0-9a-f]+\",\"type\":\"function_call\",\"status\":\"completed\",\"arguments\":\"\\{\\\\\"location\\\\\":\\\\\"Paris\\\\\",\\\\\"unit\\\\\":\\\\\"celsius\\\\\"\\}\",\"call_id\":\"toolu_mock_1\",\"name\":\"get_weather\"\\}\\]",
 "\\\\\"tools\\\\\":\\[\\{\\\\\"name\\\\\":\\\\\"get_weather\\\\\",\\\\\"description\\\\\":\\\\\"d\\\\\",\\\\\"input_schema\\\\\"",
 "event: response.output_item.added\ndata: \\{\"type\":\"response.output_item.added\",\"sequence_number\":2,\"output_index\":0,\"item\":\\{\"id\":\"fc_[0-9a-f]+\",\"type\":\"function_call\",\"status\":\"in_progress\",\"arguments\":\"\",\"call_id\":\"toolu_mock_1\",\"name\":\"get_weather\"\\}\\}\n\nevent: response.function_call_arguments.delta\ndata: \\{\"type\":\"response.function_call_arguments.delta\",\"sequence_number\":3,\"item_id\":\"fc_[0-9a-f]+\",\"output_index\":0,\"delta\":\"\\{\\\\\"location\\\\\":\"\\}\n\n.*event: response.function_call_arguments.done\ndata: \\{\"type\":\"response.function_call_arguments.done\",\"sequence_number\":\\d+,\"item_id\":\"fc_[0-9a-f]+\",\"output_index\":0,\"name\":\"get_weather\",\"arguments\":\"\\{\\\\\"location\\\\\":\\\\\"Paris\\\\\",\\\\\"unit\\\\\":\\\\\"celsius\\\\\"\\}\"\\}\n\nevent: response.output_item.done\n.*event: response.completed\n",
 "^\\{\"id\":\"resp_[0-9a-f]+\",.*\"output\":\\[\\{\"id\":\"msg_[0-9a-f]+\",\"type\":\"message\",\"status\":\"completed\",\"role\":\"assistant\",\"content\":\\[\\{\"type\":\"output_text\",\"annotations\":\\[\\],\"logprobs\":\\[\\],\"text\":\"mock reply:[^\"]*\"\\}\\]\\}\\],",
 "\\\\\"type\\\\\":\\\\\"tool_use\\\\\",\\\\\"id\\\\\":\\\\\"toolu_mock_1\\\\\",\\\\\"name\\\\\":\\\\\"get_weather\\\\\".*\\\\\"type\\\\\":\\\\\"tool_result\\\\\",\\\\\"tool_use_id\\\\\":\\\\\"toolu_mock_1\\\\\",\\\\\"content\\\\\":\\\\\"sunny, 21C\\\\\""]
--- no_error_log
[error]
[warn]



=== TEST 4: to Gemini, translated: text.format json_schema (structured output), plain and streamed
--- http_config
    ai_target ge http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=gemini;
--- config
    location /v1/ {
        ai_proxy ge;
    }
    location /mock/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request eval
["POST /v1/responses\n{\"model\":\"gemini-2.0-flash\",\"input\":\"answer\",\"text\":{\"format\":{\"type\":\"json_schema\",\"name\":\"a\",\"strict\":true,\"schema\":{\"type\":\"object\",\"properties\":{\"answer\":{\"type\":\"string\"}},\"required\":[\"answer\"],\"additionalProperties\":false}}}}",
 "GET /mock/last",
 "POST /v1/responses\n{\"model\":\"gemini-2.0-flash\",\"stream\":true,\"input\":\"hi\",\"reasoning\":{\"effort\":\"low\"}}"]
--- response_body_like eval
["\"output\":\\[\\{\"id\":\"msg_[0-9a-f]+\",\"type\":\"message\",\"status\":\"completed\",\"role\":\"assistant\",\"content\":\\[\\{\"type\":\"output_text\",\"annotations\":\\[\\],\"logprobs\":\\[\\],\"text\":\"\\{\\\\\"answer\\\\\": \\\\\"mock reply\\\\\"\\}\"\\}\\]\\}\\]",
 "\"uri\":\"/v1beta/models/gemini-2.0-flash:generateContent\".*\\\\\"responseMimeType\\\\\":\\\\\"application/json\\\\\"",
 "^event: response.created\n.*event: response.output_text.delta\n.*event: response.completed\ndata: \\{\"type\":\"response.completed\",.*\"text\":\"mock reply: hi\".*\"usage\":\\{\"input_tokens\":2,.*\n\n\$"]
--- no_error_log
[error]
[warn]



=== TEST 5: to an OpenAI-compatible target that has only chat completions (responses=chat)
--- http_config
    ai_target oc http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 responses=chat;
    log_format ai '$ai_endpoint $ai_provider $ai_stream $ai_prompt_tokens $ai_completion_tokens';
--- config
    location /v1/ {
        ai_proxy oc;
        access_log logs/access.log ai;
    }
    location /mock/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request eval
["POST /v1/responses\n{\"model\":\"llama-3\",\"input\":\"hello\",\"max_output_tokens\":2}",
 "GET /mock/last",
 "POST /v1/responses\n{\"model\":\"llama-3\",\"stream\":true,\"input\":\"hello\"}",
 "GET /mock/last"]
--- response_body_like eval
["\"status\":\"incomplete\",\"error\":null,\"incomplete_details\":\\{\"reason\":\"max_output_tokens\"\\},.*\"text\":\"mock reply:\"",
 "\"uri\":\"/v1/chat/completions\".*\\\\\"messages\\\\\":\\[\\{\\\\\"role\\\\\":\\\\\"user\\\\\",\\\\\"content\\\\\":\\\\\"hello\\\\\"\\}\\].*\\\\\"max_completion_tokens\\\\\":2",
 "^event: response.created\n.*event: response.output_text.delta\n.*event: response.completed\ndata: .*\"usage\":\\{\"input_tokens\":2,.*\"output_tokens\":3,",
 "\\\\\"stream_options\\\\\":\\{\\\\\"include_usage\\\\\":true\\}"]
--- access_log
responses openai false 2 2
responses openai true 2 3
--- no_error_log
[error]
[warn]



=== TEST 6: previous_response_id, GET and DELETE pinned to the target and key that made the response
--- main_config
    env TEST_AI_KEY_A;
    env TEST_AI_KEY_B;
--- http_config
    ai_store resp size=1m async;
    ai_target a http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 key=env:TEST_AI_KEY_A;
    ai_target b http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 key=env:TEST_AI_KEY_B;
    log_format ai '$request_method $ai_endpoint $ai_target $status';
--- config
    location /v1/ {
        ai_proxy a b;
        ai_proxy_responses_store resp ttl=1h;
        access_log logs/access.log ai;
    }
--- exec
base=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/responses
id=$(curl -s $base -d '{"model":"gpt-4o","input":"one"}' | sed 's/^{"id":"\([^"]*\)".*/\1/')
case "$id" in resp_mock*) ;; *) echo "no id: $id"; exit 1;; esac
for i in 1 2 3 4; do
  curl -s -o /dev/null -w '%{http_code} ' $base -d "{\"model\":\"gpt-4o\",\"previous_response_id\":\"$id\",\"input\":\"two\"}"
done
echo
curl -s -o /dev/null -w '%{http_code} ' $base/$id
curl -s -o /dev/null -w '%{http_code} ' $base/$id
curl -s -X DELETE $base/$id; echo
curl -s $base/resp_unknown; echo
curl -s -o /dev/null -w '%{http_code}\n' $base -d '{"model":"gpt-4o","input":"x","store":false,"stream":true}'
# a stream's id is pinned at its first event, after its request's tree was
# freed: "store": false was read before, and such a response is not kept
for store in ',"store":false' ''; do
  sid=$(curl -s $base -d "{\"model\":\"gpt-4o\",\"input\":\"x\"$store,\"stream\":true}" \
        | grep -o '"id":"resp_[^"]*"' | head -1 | cut -d'"' -f4)
  echo "stream ${sid%%_*}: $(curl -s -o /dev/null -w '%{http_code}' $base/$sid)"
done
--- response_body_like
^200 200 200 200 
200 200 \{"id":"resp_mock\d+_[0-9a-f]{8}","object":"response.deleted","deleted":true\}
\{"error":\{"message":"Response with id 'resp_unknown' not found.","type":"invalid_request_error","param":null,"code":"unknown_url"\}\}

200
stream resp: 404
stream resp: 200
$
--- access_log
POST responses a 200
POST responses a 200
POST responses a 200
POST responses a 200
POST responses a 200
GET response a 200
GET response a 200
DELETE response a 200
GET response - 404
POST responses b 200
--- no_error_log
[error]
[warn]



=== TEST 7: previous_response_id to a translated target: 400 naming it; a response id where no target keeps responses: 404 in OpenAI's shape
--- http_config
    ai_target an http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic;
--- config
    location /v1/ {
        ai_proxy an;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/responses
curl -s -w ' %{http_code}\n' $u -d '{"model":"claude-3-5-haiku","previous_response_id":"resp_1","input":"again"}'
curl -s -w ' %{http_code}\n' $u/resp_1
curl -s -w ' %{http_code}\n' -X DELETE $u/resp_1
curl -s -w ' %{http_code}\n' -X PUT $u/resp_1
--- response_body
{"error":{"message":"\"previous_response_id\" is not supported by this target: it is translated from the Responses API, without state on the provider's side","type":"invalid_request_error","param":null,"code":null}}
 400
{"error":{"message":"Response with id 'resp_1' not found.","type":"invalid_request_error","param":null,"code":"unknown_url"}}
 404
{"error":{"message":"Response with id 'resp_1' not found.","type":"invalid_request_error","param":null,"code":"unknown_url"}}
 404
{"error":{"message":"method PUT is not allowed for /v1/responses/resp_1, use GET, HEAD, DELETE","type":"invalid_request_error","param":null,"code":"method_not_allowed"}}
 405
--- no_error_log
[error]
[warn]



=== TEST 8: bad input: a 400 in OpenAI's shape naming the field, from the gateway or the translation
--- http_config
    ai_target an http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic;
--- config
    location /v1/ {
        ai_proxy an;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/responses
curl -s -w ' %{http_code}\n' $u -d '{"model":"claude-3-5-haiku"}'
curl -s -w ' %{http_code}\n' $u -d '{"model":"claude-3-5-haiku","input":42}'
curl -s -w ' %{http_code}\n' $u -d '{"input":"hi"}'
curl -s -w ' %{http_code}\n' $u -d '{"model":"claude-3-5-haiku","input":[{"role":"robot","content":"x"}]}'
curl -s -w ' %{http_code}\n' $u -d '{"model":"claude-3-5-haiku","input":"hi","max_output_tokens":-1}'
curl -s -w ' %{http_code}\n' $u -d '{"model":"claude-3-5-haiku","input":"hi","tools":[{"type":"web_search"}]}'
curl -s -w ' %{http_code}\n' $u -d '{"model":"claude-3-5-haiku","input":[{"type":"item_reference","id":"msg_1"}]}'
curl -s -w ' %{http_code}\n' $u -d '{"model":"claude-3-5-haiku","input":[{"type":"function_call_output","output":"x"}]}'
curl -s -w ' %{http_code}\n' $u -d '[1,2]'
--- response_body
{"error":{"message":"'input' is required","type":"invalid_request_error","param":"input","code":null}}
 400
{"error":{"message":"'input' must be a string or an array of items","type":"invalid_request_error","param":"input","code":null}}
 400
{"error":{"message":"'model' is required","type":"invalid_request_error","param":"model","code":null}}
 400
{"error":{"message":"an input message has an unknown 'role': expected system, developer, user or assistant","type":"invalid_request_error","param":"input","code":null}}
 400
{"error":{"message":"'max_output_tokens' must be a non-negative integer","type":"invalid_request_error","param":"max_output_tokens","code":null}}
 400
{"error":{"message":"tools of type \"web_search\" are not supported by this target (function tools are)","type":"invalid_request_error","param":null,"code":null}}
 400
{"error":{"message":"input items of type \"item_reference\" are not supported by this target","type":"invalid_request_error","param":null,"code":null}}
 400
{"error":{"message":"a function_call_output item needs its \"call_id\"","type":"invalid_request_error","param":null,"code":null}}
 400
{"error":{"message":"the request body must be a JSON object","type":"invalid_request_error","param":null,"code":null}}
 400
--- no_error_log
[error]
[warn]



=== TEST 9: to Azure, passed through: the deployment's Responses path and api-version, the api-key header; a response read back
--- main_config
    env TEST_AI_KEY_A;
--- http_config
    ai_store resp size=1m;
    ai_target az http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=azure key=env:TEST_AI_KEY_A;
--- config
    location /v1/ {
        ai_proxy az;
        ai_proxy_responses_store resp;
    }
    location /mock/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT
id=$(curl -s $u/v1/responses -d '{"model":"my-deployment","input":"hi"}' | sed 's/^{"id":"\([^"]*\)".*/\1/')
curl -s $u/mock/last | grep -o '"uri":"[^"]*"\|"api-key":"[^"]*"' | paste -sd' '
curl -s -o /dev/null -w '%{http_code}\n' "$u/v1/responses/$id?include=x"
curl -s $u/mock/last | grep -o '"method":"[^"]*"\|"uri":"[^"]*"' | paste -sd' '
--- response_body_like
^"uri":"/openai/responses\?api-version=2025-04-01-preview" "api-key":"sk-a"
200
"method":"GET" "uri":"/openai/responses/resp_mock\d+_[0-9a-f]{8}\?api-version=2025-04-01-preview&include=x"
$
--- no_error_log
[error]
[warn]



=== TEST 10: the prompt guard sees a Responses request: instructions and input items blocked, masked and restored, translated and passed through
--- http_config
    ai_target an http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic models=claude-*;
    ai_target oa http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 models=gpt-*;
    ai_prompt_guard_rule project regex=(?i)project\s+nightingale "message=This topic is not allowed here.";
    ai_prompt_guard_rule pii detect=email action=mask;
--- config
    location /v1/ {
        ai_proxy an oa;
        ai_prompt_guard project pii;
    }
    location /mock/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT
curl -s -w ' %{http_code}\n' $u/v1/responses -d '{"model":"claude-3-5-haiku","input":[{"role":"user","content":[{"type":"input_text","text":"about Project Nightingale"}]}]}'
curl -s -w ' %{http_code}\n' $u/v1/responses -d '{"model":"claude-3-5-haiku","instructions":"project nightingale","input":"hi"}'
curl -s $u/v1/responses -d '{"model":"claude-3-5-haiku","input":"write to jane@example.com"}' | grep -o '"text":"[^"]*"'
curl -s $u/mock/last | grep -o 'write to [^\\]*'
curl -s -N $u/v1/responses -d '{"model":"claude-3-5-haiku","stream":true,"input":"write to jane@example.com"}' | grep -o '"type":"response.output_text.done".*"text":"[^"]*"' | grep -o '"text":"[^"]*"'
curl -s $u/v1/responses -d '{"model":"gpt-4o","input":[{"role":"user","content":[{"type":"input_text","text":"write to jane@example.com"}]}]}' | grep -o '"text":"[^"]*"'
curl -s -N $u/v1/responses -d '{"model":"gpt-4o","stream":true,"input":"write to jane@example.com"}' > $TEST_NGINX_SERVROOT/out.sse
grep -o '"delta":"[^"]*"' $TEST_NGINX_SERVROOT/out.sse | paste -sd' '
grep -c 'EMAIL' $TEST_NGINX_SERVROOT/out.sse
grep -o '"type":"response.completed","sequence_number":[0-9]*,"response":{"id":"resp_mock[0-9]*_[0-9a-f]*"' $TEST_NGINX_SERVROOT/out.sse | sed 's/[0-9]\+/N/g'
--- response_body_like
^\{"error":\{"message":"This topic is not allowed here.","type":"invalid_request_error","param":null,"code":"content_filtered"\}\}\n 400
\{"error":\{"message":"This topic is not allowed here.","type":"invalid_request_error","param":null,"code":"content_filtered"\}\}\n 400
"text":"mock reply: write to jane\@example.com"
write to \[EMAIL_1\]
"text":"mock reply: write to jane\@example.com"
"text":"mock reply: write to jane\@example.com"
"delta":"mock " "delta":"reply: " "delta":"write " "delta":"to " "delta":"jane\@example.com"
0
"type":"response.completed","sequence_number":N,"response":\{"id":"resp_mockN_[0-9a-fN]*"
$
--- no_error_log
[error]
nightingale
Nightingale



=== TEST 11: the token limit sees a Responses request: its estimate and max_output_tokens reserved, settled to the provider's usage; over the limit a 429 in OpenAI's shape
--- http_config
    ai_token_limit_zone tok key=$remote_addr;
    ai_target oa http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
--- config
    location /v1/ {
        ai_proxy oa;
        ai_token_limit tok 1000 per=day;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/responses
b='{"model":"gpt-4o~usage_prompt=200,usage_completion=100","max_output_tokens":100,"instructions":"Be brief.","input":[{"role":"user","content":"hi"}]}'
for i in 1 2 3; do t/lib/limit-probe $u "$b"; done
curl -s $u -d "$b" | sed -E 's/in [0-9]+s\./in Ss./'
t/lib/limit-probe $u '{"model":"gpt-4o~usage_prompt=1,usage_completion=1","max_output_tokens":80,"stream":true,"input":"hi"}'
--- response_body_like
^200 tokens=8\d\d/1000
200 tokens=5\d\d/1000
200 tokens=2\d\d/1000
\{"error":\{"message":"Rate limit reached for \\"tok\\": 1000 tokens per day. Try again in Ss.","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"\}\}
200 tokens=\d+/1000
$
--- error_log
ai_token_limit "tok": over 1000 tokens per day, refused
--- no_error_log
[error]



=== TEST 12: the cache keys a Responses request that says "store": false like any other: a miss, then hits rendered as a response and as its event stream, from a translated target and from an OpenAI stream passed through
--- http_config
    ai_store answers size=4m;
    ai_target an http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic models=claude-*;
    ai_target oa http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 models=gpt-*;
--- config
    location /v1/ {
        ai_proxy an oa;
        ai_cache answers;
    }
    location /mock/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT
curl -s -X POST $u/mock/reset > /dev/null
for m in claude-3-5-haiku gpt-4o; do
  b="{\"model\":\"$m\",\"input\":\"what is a cache\",\"stream\":true,\"store\":false}"
  curl -s -i -N $u/v1/responses -d "$b" | tr -d '\r' | grep -o '^X-AI-Cache-Status: .*\|"type":"response.completed"\|"delta":"[^"]*cache"' | paste -sd' '
  curl -s -i -N $u/v1/responses -d "$b" | tr -d '\r' | grep -o '^X-AI-Cache-Status: .*\|"type":"response.completed"\|"delta":"[^"]*cache"' | paste -sd' '
  b="{\"model\":\"$m\",\"input\":\"what is a cache\",\"store\":false}"
  curl -s -i $u/v1/responses -d "$b" | tr -d '\r' | grep -o '^X-AI-Cache-Status: .*\|"text":"[^"]*"' | paste -sd' '
done
curl -s $u/mock/count; echo
--- response_body
X-AI-Cache-Status: MISS "delta":"cache" "type":"response.completed"
X-AI-Cache-Status: HIT "delta":"is a cache" "type":"response.completed"
X-AI-Cache-Status: HIT "text":"mock reply: what is a cache"
X-AI-Cache-Status: MISS "delta":"cache" "type":"response.completed"
X-AI-Cache-Status: HIT "delta":"is a cache" "type":"response.completed"
X-AI-Cache-Status: HIT "text":"mock reply: what is a cache"
{"requests":2}
--- no_error_log
[error]
[warn]



=== TEST 13: ai_log records a Responses request: its endpoint, usage and the answer's text, passed through and translated
--- http_config
    ai_target an http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic models=claude-*;
    ai_target oa http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 models=gpt-*;
--- config
    location /v1/ {
        ai_proxy an oa;
        ai_log logs/ai.jsonl;
        ai_log_response_body on;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/responses
curl -s -o /dev/null $u -d '{"model":"gpt-4o","stream":true,"input":"log me"}'
curl -s -o /dev/null $u -d '{"model":"claude-3-5-haiku","stream":true,"input":"log me"}'
sleep 0.2
grep -o '"endpoint":"[^"]*"\|"provider":"[^"]*"\|"prompt_tokens":[0-9]*\|"response_body":"[^"]*"' $TEST_NGINX_SERVROOT/logs/ai.jsonl | paste -sd' '
--- response_body
"endpoint":"responses" "provider":"openai" "prompt_tokens":3 "response_body":"mock reply: log me" "endpoint":"responses" "provider":"anthropic" "prompt_tokens":3 "response_body":"mock reply: log me"
--- no_error_log
[error]



=== TEST 14: the official OpenAI SDK's responses API (create, stream, the stream helper, a tool round trip, structured output) to OpenAI, Anthropic and Gemini targets
--- main_config
    env TEST_AI_KEY_A;
    env TEST_AI_KEY_B;
--- http_config
    ai_store resp size=1m;
    ai_target oa http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 key=env:TEST_AI_KEY_A models=gpt-*;
    ai_target ob http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 key=env:TEST_AI_KEY_B models=gpt-*;
    ai_target an http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic models=claude-*;
    ai_target ge http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=gemini models=gemini-*;
--- config
    location /v1/ {
        ai_proxy oa ob an ge;
        ai_proxy_responses_store resp;
    }
--- exec
for m in gpt-4o claude-3-5-haiku gemini-2.0-flash; do
  echo "== $m"
  node t/sdk/openai_responses.mjs http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1 sk-client $m || exit 1
done
--- response_body
== gpt-4o
plain: mock reply: hello from the sdk (completed)
plain usage: 9 6 15
stream: mock reply: stream me please (completed) done=true ordered=true
stream events: response.created response.in_progress response.output_item.added response.content_part.added response.output_text.delta response.output_text.done response.content_part.done response.output_item.done response.completed
stream usage: 4 5 9
helper: mock reply: through the helper
tool: get_weather {"location":"Paris","unit":"celsius"} same=true
tool result: message completed
structured: {"answer":"mock reply"}
previous: true completed
retrieve: true
delete: true true
== claude-3-5-haiku
plain: mock reply: hello from the sdk (completed)
plain usage: 9 6 15
stream: mock reply: stream me please (completed) done=true ordered=true
stream events: response.created response.in_progress response.output_item.added response.content_part.added response.output_text.delta response.output_text.done response.content_part.done response.output_item.done response.completed
stream usage: 4 5 9
helper: mock reply: through the helper
tool: get_weather {"location":"Paris","unit":"celsius"} same=true
tool result: message completed
structured: {"location":"Paris","unit":"celsius"}
== gemini-2.0-flash
plain: mock reply: hello from the sdk (completed)
plain usage: 9 6 15
stream: mock reply: stream me please (completed) done=true ordered=true
stream events: response.created response.in_progress response.output_item.added response.content_part.added response.output_text.delta response.output_text.done response.content_part.done response.output_item.done response.completed
stream usage: 4 5 9
helper: mock reply: through the helper
tool: get_weather {"location":"Paris","unit":"celsius"} same=true
tool result: message completed
structured: {"answer":"mock reply"}
--- no_error_log
[error]
[warn]
--- timeout: 60



=== TEST 15: a stream cut by the provider ends with an error event, passed through and translated; its answer counted a token a delta event
--- http_config
    ai_target an http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic models=claude-*;
    ai_target oa http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 models=gpt-*;
--- config
    location /v1/ {
        ai_proxy an oa;
        ai_log logs/ai.jsonl;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/responses
for m in gpt-4o claude-3-5-haiku; do
  curl -s -N $u -d "{\"model\":\"$m~disconnect_after=2\",\"stream\":true,\"input\":\"one two three four\"}" | grep '^event:' | tail -2 | paste -sd' '
done
sleep 0.2
grep -o '"estimated_tokens":{[^}]*}' $TEST_NGINX_SERVROOT/logs/ai.jsonl | paste -sd' '
--- response_body
event: response.output_text.delta event: error
event: response.output_text.delta event: error
"estimated_tokens":{"prompt_tokens":5,"completion_tokens":2} "estimated_tokens":{"prompt_tokens":5,"completion_tokens":2}
--- error_log
stream
--- no_error_log
[error]



=== TEST 16: a response pinned to its key: a 429 of that key goes to the client with its Retry-After, not to the same key again at once (three attempts before)
--- main_config
    env TEST_AI_KEY_A;
    env TEST_AI_KEY_B;
--- http_config
    ai_store resp size=1m;
    ai_target a http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 key=env:TEST_AI_KEY_A;
    ai_target b http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 key=env:TEST_AI_KEY_B;
    log_format ai '$request_method $ai_endpoint $ai_target $ai_attempts key=$ai_proxy_key $status';
--- config
    location /v1/ {
        ai_proxy a b;
        ai_proxy_responses_store resp;
        access_log logs/access.log ai;
    }
--- exec
base=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/responses
id=$(curl -s $base -d '{"model":"gpt-4o","input":"one"}' | sed 's/^{"id":"\([^"]*\)".*/\1/')
curl -s -o /dev/null -X POST http://127.0.0.1:$TEST_NGINX_MOCK_PORT/mock/reset
curl -s -o /dev/null -D - $base -d "{\"model\":\"gpt-4o~status=429,retry_after=30\",\"previous_response_id\":\"$id\",\"input\":\"two\"}" | grep -i '^HTTP\|^retry-after' | tr -d '\r'
curl -s http://127.0.0.1:$TEST_NGINX_MOCK_PORT/mock/count; echo
--- response_body
HTTP/1.1 429 Too Many Requests
Retry-After: 30
{"requests":1}
--- access_log
POST responses a 1 key=1 200
POST responses a 1 key=1 429
--- no_error_log
[error]



=== TEST 17: a response pinned to its key: a 401 takes the key out, it is not sent again in the same request (three attempts before)
--- main_config
    env TEST_AI_KEY_A;
    env TEST_AI_KEY_B;
--- http_config
    ai_store resp size=1m;
    ai_target a http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 key=env:TEST_AI_KEY_A;
    ai_target b http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 key=env:TEST_AI_KEY_B;
    log_format ai '$request_method $ai_endpoint $ai_target $ai_attempts key=$ai_proxy_key $status';
--- config
    location /v1/ {
        ai_proxy a b;
        ai_proxy_responses_store resp;
        ai_proxy_pass_client_headers x-mock;
        access_log logs/access.log ai;
    }
--- exec
base=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/responses
id=$(curl -s $base -d '{"model":"gpt-4o","input":"one"}' | sed 's/^{"id":"\([^"]*\)".*/\1/')
curl -s -o /dev/null -X POST http://127.0.0.1:$TEST_NGINX_MOCK_PORT/mock/reset
curl -s -o /dev/null -w '%{http_code}\n' $base/$id -H 'x-mock: status=401'
curl -s http://127.0.0.1:$TEST_NGINX_MOCK_PORT/mock/count; echo
--- response_body
502
{"requests":1}
--- access_log
POST responses a 1 key=1 200
GET response a 1 key=1 502
--- error_log
ai_proxy: target "a" refused the gateway's credentials (401), the client gets 502
[error]
--- no_error_log eval
[qr/\bsk-a\b/]



=== TEST 18: a consumer reaches only its own responses: another consumer naming one gets OpenAI's 400 for an unknown id (before the cache, which answers its owner), 404 to read or delete it; an id the store does not hold (never made, expired, evicted) is refused the same way, never routed with a key of the gateway's
--- main_config
    env TEST_AI_KEY_A;
    env TEST_AI_KEY_B;
--- http_config
    ai_consumer alice sk-alice-0123456789;
    ai_consumer bob   sk-bob-0123456789;
    ai_store resp size=1m;
    ai_store answers size=1m;
    ai_target a http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 key=env:TEST_AI_KEY_A;
    ai_target b http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 key=env:TEST_AI_KEY_B;
    log_format ai '$ai_consumer $request_method $ai_endpoint $ai_target $status';
--- config
    location /v1/ {
        ai_proxy a b;
        ai_auth required;
        ai_proxy_responses_store resp;
        ai_cache answers;
        access_log logs/access.log ai;
    }
--- exec
base=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/responses
A='Authorization: Bearer sk-alice-0123456789'
B='Authorization: Bearer sk-bob-0123456789'
id=$(curl -s $base -H "$A" -d '{"model":"gpt-4o","input":"one"}' | sed 's/^{"id":"\([^"]*\)".*/\1/')
case "$id" in resp_mock*) ;; *) echo "no id: $id"; exit 1;; esac
curl -s -o /dev/null -X POST http://127.0.0.1:$TEST_NGINX_MOCK_PORT/mock/reset
two="{\"model\":\"gpt-4o\",\"previous_response_id\":\"$id\",\"input\":\"two\",\"store\":false}"
for who in "$A" "$A" "$B"; do
  curl -s -D - -o /tmp/ai_t022_18.$$ $base -H "$who" -d "$two" | tr -d '\r' \
    | grep '^HTTP\|^X-AI-Cache-Status' | cut -d' ' -f2 | paste -sd' '
done
sed "s/$id/ID/" /tmp/ai_t022_18.$$; rm -f /tmp/ai_t022_18.$$
curl -s -w ' %{http_code}\n' $base/$id -H "$B" | sed "s/$id/ID/"
curl -s -w ' %{http_code}\n' -X DELETE $base/$id -H "$B" | sed "s/$id/ID/"
curl -s -o /dev/null -w '%{http_code}\n' $base/$id -H "$A"
curl -s -w ' %{http_code}\n' $base -H "$B" \
     -d '{"model":"gpt-4o","previous_response_id":"resp_unknown","input":"two"}'
curl -s http://127.0.0.1:$TEST_NGINX_MOCK_PORT/mock/count; echo
--- response_body
200 MISS
200 HIT
400
{"error":{"message":"Previous response with id 'ID' not found.","type":"invalid_request_error","param":"previous_response_id","code":"previous_response_not_found"}}
{"error":{"message":"Response with id 'ID' not found.","type":"invalid_request_error","param":null,"code":"unknown_url"}}
 404
{"error":{"message":"Response with id 'ID' not found.","type":"invalid_request_error","param":null,"code":"unknown_url"}}
 404
200
{"error":{"message":"Previous response with id 'resp_unknown' not found.","type":"invalid_request_error","param":"previous_response_id","code":"previous_response_not_found"}}
 400
{"requests":2}
--- access_log
alice POST responses a 200
alice POST responses a 200
alice POST responses - 200
bob POST responses - 400
bob GET response - 404
bob DELETE response - 404
alice GET response a 200
bob POST responses - 400
--- no_error_log
[error]
[warn]



=== TEST 19: the cache passes over a Responses request that the provider keeps (no "store": false): each answer is a real response, read and continued by its id (a hit's id was the gateway's, which the provider does not know)
--- main_config
    env TEST_AI_KEY_A;
--- http_config
    ai_store resp size=1m;
    ai_store answers size=1m;
    ai_target a http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 key=env:TEST_AI_KEY_A;
    log_format ai '$request_method $ai_endpoint $ai_target $ai_outcome_cache $status';
--- config
    location /v1/ {
        ai_proxy a;
        ai_proxy_responses_store resp;
        ai_cache answers;
        access_log logs/access.log ai;
    }
--- exec
base=http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/responses
curl -s -o /dev/null -X POST http://127.0.0.1:$TEST_NGINX_MOCK_PORT/mock/reset
for i in 1 2; do
  curl -s -D /tmp/ai_t022_19.$$ -o /tmp/ai_t022_19b.$$ $base -d '{"model":"gpt-4o","input":"one"}'
  tr -d '\r' < /tmp/ai_t022_19.$$ | grep '^HTTP\|^X-AI-Cache-Status' | cut -d' ' -f2 | paste -sd' '
  id=$(sed 's/^{"id":"\([^"]*\)".*/\1/' /tmp/ai_t022_19b.$$)
done
rm -f /tmp/ai_t022_19.$$ /tmp/ai_t022_19b.$$
curl -s -o /dev/null -w '%{http_code}\n' $base/$id
curl -s -w '\n' $base -d "{\"model\":\"gpt-4o\",\"previous_response_id\":\"$id\",\"input\":\"two\"}" \
  | grep -o '"text":"[^"]*"'
curl -s http://127.0.0.1:$TEST_NGINX_MOCK_PORT/mock/count; echo
--- response_body
200 BYPASS
200 BYPASS
200
"text":"mock reply: two"
{"requests":4}
--- access_log
POST responses a BYPASS 200
POST responses a BYPASS 200
GET response a - 200
POST responses a BYPASS 200
--- no_error_log
[error]
[warn]
