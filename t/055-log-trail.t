# ai_log, what the record tells an on-call engineer: the attempt trail
# (target, key index, status, time, why it moved on), the provider's
# request id and its answer's id, the finish reason, the client's user,
# and the error code and message of a failed or rejected request; a
# request the gateway refused itself has no attempt.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_AI_K1} = 'sk-trail-key-0001';
$ENV{TEST_AI_K2} = 'sk-trail-key-0002';
env_to_nginx('TEST_AI_K1', 'TEST_AI_K2');
run_tests();

__DATA__

=== TEST 1: fallback: a rate-limited key, a dead server, then an answer; each attempt in the trail
--- http_config
    ai_target first  http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 key=env:TEST_AI_K1 key=env:TEST_AI_K2 model=gpt-4o~status=429,retry_after=30;
    ai_target down   http://127.0.0.1:1/v1 models=gpt-4o;
    ai_target good   http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 models=gpt-4o;
--- config
    location /v1/ {
        ai_proxy first down good;
        ai_proxy_balance latency;
        ai_proxy_next_upstream_tries 4;
        ai_log logs/ai.jsonl;
    }
--- exec
PYTHONPATH=t/sdk /usr/bin/python3 - <<'EOF'
from ai_log_check import *
print(chat('gpt-4o', 'hi', user='u-42')[0])
r = records(1)[0]
show_keys(r, ['user', 'target', 'attempts', 'trail', 'status', 'finish_reason',
         'error_code', 'error_message'])
print('provider_request_id:', r['provider_request_id']
      == r['trail'][-1]['request_id'])
print('request ids:', [bool(re.match(r'^mock-\d+$', a['request_id'] or ''))
                       for a in r['trail']])
print('response_id:', r['response_id'].startswith('chatcmpl-mock'))
nokeys(['sk-trail-key-0001', 'sk-trail-key-0002'], LOG, ERROR_LOG)
EOF
--- response_body_like
^200
user: "u-42"
target: "good"
attempts: 4
trail: \[\{"target": "first", "key": 1, "upstream_status": 429, "ms": "<ms>", "reason": "rate_limited", "request_id": "mock-\d+"\}, \{"target": "first", "key": 2, "upstream_status": 429, "ms": "<ms>", "reason": "rate_limited", "request_id": "mock-\d+"\}, \{"target": "down", "key": null, "upstream_status": null, "ms": "<ms>", "reason": "error", "request_id": null\}, \{"target": "good", "key": null, "upstream_status": 200, "ms": "<ms>", "reason": null, "request_id": "mock-\d+"\}\]
status: 200
finish_reason: "stop"
error_code: null
error_message: null
provider_request_id: True
request ids: \[True, True, False, True\]
response_id: True
ai.jsonl: no key
error.log: no key
$
--- error_log
connect() failed (111: Connection refused)
[error]
--- no_error_log
[alert]



=== TEST 2: the provider's error: its code and message; a timeout in the trail
--- http_config
    ai_target slow http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 model=gpt-4o~delay_headers_ms=3000;
    ai_target bad  http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 model=gpt-4o~status=400;
--- config
    location /v1/ {
        ai_proxy slow bad;
        ai_proxy_read_timeout 300ms;
        ai_log logs/ai.jsonl;
    }
--- exec
PYTHONPATH=t/sdk /usr/bin/python3 - <<'EOF'
from ai_log_check import *
st, body = chat('gpt-4o', 'hi')
print(st, json.loads(body)['error']['message'])
r = records(1)[0]
show_keys(r, ['attempts', 'trail', 'status', 'gateway_error', 'error_code',
              'error_message', 'finish_reason', 'response_id'])
EOF
--- response_body_like
^400 (.+)
attempts: 2
trail: \[\{"target": "slow", "key": null, "upstream_status": null, "ms": "<ms>", "reason": "timeout", "request_id": null\}, \{"target": "bad", "key": null, "upstream_status": 400, "ms": "<ms>", "reason": null, "request_id": "mock-\d+"\}\]
status: 400
gateway_error: false
error_code: "invalid_request_error"
error_message: "Invalid request \(mock\)."
finish_reason: null
response_id: null
$
--- error_log
upstream timed out
[error]
--- no_error_log
[alert]



=== TEST 3: the gateway's own refusals: no attempt, its error code and message
--- http_config
    ai_consumer app sk-app-trail-0001;
    ai_prompt_guard_rule project regex=(?i)project\s+nightingale "message=This topic is not allowed here.";
    ai_target oa http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 models=gpt-*;
--- config
    location /v1/ {
        ai_auth required;
        ai_proxy oa;
        ai_prompt_guard project;
        ai_log logs/ai.jsonl;
    }
--- exec
PYTHONPATH=t/sdk /usr/bin/python3 - <<'EOF'
from ai_log_check import *
k = 'sk-app-trail-0001'
print(chat('gpt-4o', 'tell me about Project Nightingale', key=k)[0])
print(chat('mistral-large', 'hi', key=k)[0])
print(chat('gpt-4o', 'hi', key='sk-wrong')[0])
for r in records(3):
    print('--')
    show_keys(r, ['consumer', 'attempts', 'trail', 'provider_request_id',
             'status', 'gateway_error', 'error_code', 'error_message'])
nokeys(['sk-app-trail-0001', 'sk-wrong'], LOG, ERROR_LOG)
EOF
--- response_body
400
404
401
--
consumer: "app"
attempts: 0
trail: []
provider_request_id: null
status: 400
gateway_error: true
error_code: "content_filtered"
error_message: "This topic is not allowed here."
--
consumer: "app"
attempts: 0
trail: []
provider_request_id: null
status: 404
gateway_error: true
error_code: "model_not_found"
error_message: "the model \"mistral-large\" is not served here"
--
consumer: null
attempts: 0
trail: []
provider_request_id: null
status: 401
gateway_error: true
error_code: "invalid_api_key"
error_message: "invalid API key"
ai.jsonl: no key
error.log: no key
--- no_error_log
[error]
[alert]



=== TEST 4: Anthropic and Gemini: the user, the finish reason and the answer's id, plain and streamed
--- http_config
    ai_target an http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic models=claude-*;
    ai_target ge http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=gemini models=gemini-*;
--- config
    location /v1/ {
        ai_proxy an ge;
        ai_log logs/ai.jsonl;
    }
--- exec
PYTHONPATH=t/sdk /usr/bin/python3 - <<'EOF'
from ai_log_check import *
h = {'Content-Type': 'application/json', 'anthropic-version': '2023-06-01'}
b = {'model': 'claude-3-5-sonnet', 'max_tokens': 64,
     'metadata': {'user_id': 'user-7'},
     'messages': [{'role': 'user', 'content': 'a b c'}]}
print(request('POST', '/v1/messages', b, h)[0])
b['stream'] = True
print(request('POST', '/v1/messages', b, h)[0])
print(chat('gemini-1.5-pro', 'a b', user='openai-door-user')[0])
print(chat('gemini-1.5-pro', 'a b', stream=True)[0])
for r in records(4):
    print('--')
    show_keys(r, ['endpoint', 'user', 'stream', 'finish_reason'])
    print('response_id:', bool(re.match(r'^(msg_mock|mock)[\w-]*$',
                                        r['response_id'] or '')))
    print('provider_request_id:', bool(re.match(r'^mock-\d+$',
                                       r['provider_request_id'] or '')))
EOF
--- response_body
200
200
200
200
--
endpoint: "messages"
user: "user-7"
stream: false
finish_reason: "end_turn"
response_id: True
provider_request_id: True
--
endpoint: "messages"
user: "user-7"
stream: true
finish_reason: "end_turn"
response_id: True
provider_request_id: True
--
endpoint: "chat"
user: "openai-door-user"
stream: false
finish_reason: "STOP"
response_id: True
provider_request_id: True
--
endpoint: "chat"
user: null
stream: true
finish_reason: "STOP"
response_id: True
provider_request_id: True
--- no_error_log
[error]
[alert]



=== TEST 5: hostile answers: an id and a finish reason that are not short plain strings are not kept
--- http_config
    ai_target canned http://127.0.0.1:$TEST_NGINX_SERVER_PORT/canned/v1 models=canned;
--- config
    location /v1/ {
        ai_proxy canned;
        ai_log logs/ai.jsonl;
    }
    location = /canned/v1/chat/completions {
        default_type application/json;
        add_header x-request-id "id with spaces";
        return 200 '{"id":"chatcmpl-<script>","object":"chat.completion","model":"canned","choices":[{"index":0,"message":{"role":"assistant","content":"\\"finish_reason\\":\\"fake\\""},"finish_reason":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}';
    }
--- exec
PYTHONPATH=t/sdk /usr/bin/python3 - <<'EOF'
from ai_log_check import *
print(chat('canned', 'hi')[0])
r = records(1)[0]
show_keys(r, ['status', 'provider_request_id', 'response_id', 'finish_reason'])
print(r['trail'][0]['request_id'])
EOF
--- response_body
200
status: 200
provider_request_id: null
response_id: null
finish_reason: null
None
--- no_error_log
[error]
[alert]



=== TEST 6: a stream the upstream cut after its 200: its error in the record; a client that went away is no error
--- http_config
    ai_target oa http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 models=gpt-*;
--- config
    location /v1/ {
        ai_proxy oa;
        ai_log logs/ai.jsonl;
    }
--- exec
PYTHONPATH=t/sdk /usr/bin/python3 - <<'EOF'
from ai_log_check import *
st, body = chat('gpt-4o~disconnect_after=2', 'a b c d', stream=True)
print(st, b'stream_truncated' in body)
abort('/v1/chat/completions',
      chat_body('gpt-4o~delay_chunks_ms=200', 'a b c d e f', stream=True))
for r in records(2):
    print('--')
    show_keys(r, ['status', 'complete', 'finish_reason', 'error_code',
                  'error_message'])
EOF
--- response_body
200 True
--
status: 200
complete: false
finish_reason: null
error_code: "stream_truncated"
error_message: "the upstream stream ended before it was complete"
--
status: 499
complete: false
finish_reason: null
error_code: null
error_message: null
--- no_error_log
[error]
[alert]
