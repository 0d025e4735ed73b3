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
["^\\{\"id\":\"resp_mock\\d+_[0-9a-f]{8}\",\"object\":\"response\",.*\"status\":\"completed\".*\"output\":\\[\\{\"id\":\"msg_mock\\d+\",\"type\":\"message\",\"status\":\"completed\",\"content\":\\[\\{\"type\":\"output_text\",\"annotations\":\\[\\],\"logprobs\":\\[\\],\"text\":\"mock reply: hello there\"\\}\\],\"role\":\"assistant\"\\}\\].*\"usage\":\\{\"input_tokens\":5,\"input_tokens_details\":\\{\"cached_tokens\":0\\},\"output_tokens\":4,",
 "\"uri\":\"/v1/responses\".*\"authorization\":\"Bearer sk-a\".*\\\\\"instructions\\\\\":\\\\\"Be kind.\\\\\"",
 "^event: response.created\ndata: \\{\"type\":\"response.created\",\"sequence_number\":0,.*event: response.in_progress\n.*event: response.output_item.added\n.*event: response.content_part.added\n.*event: response.output_text.delta\ndata: \\{\"type\":\"response.output_text.delta\",\"sequence_number\":4,\"item_id\":\"msg_mock\\d+\",\"output_index\":0,\"content_index\":0,\"delta\":\"mock \",\"logprobs\":\\[\\]\\}\n\n.*event: response.output_text.done\n.*event: response.content_part.done\n.*event: response.output_item.done\n.*event: response.completed\ndata: \\{\"type\":\"response.completed\",.*\"usage\":\\{\"input_tokens\":3,.*\n\n\$"]
--- access_log
responses openai false 5 4 9
responses openai true 3 4 7
--- no_error_log
[error]
[warn]
