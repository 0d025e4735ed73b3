# ai_log, the record: every field of the JSON line for plain, streamed,
# rejected (bad JSON, unknown and missing key), failed (unreachable
# upstream, provider error), failed-over (a dead server then a live one)
# and client-aborted requests; bodies and metadata with their caps; no
# key string in the log or the error log.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_AI_UPSTREAM_KEY} = 'sk-upstream-key-42';
env_to_nginx('TEST_AI_UPSTREAM_KEY');
run_tests();

__DATA__

=== TEST 1: a plain chat: every field, metadata kept as JSON or cut as a string
--- http_config
    ai_consumer app sk-app-consumer-0001;
    ai_price gpt-4o input=2.5 output=10 cached=1.25;
--- config
    location /v1/ {
        ai_auth optional;
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_proxy_key env:TEST_AI_UPSTREAM_KEY;
        ai_log logs/ai.jsonl;
        ai_log_metadata_header x-ai-metadata;
        ai_log_metadata_header X-Team max=8;
        ai_log_metadata_header x-absent;
    }
--- exec
PYTHONPATH=t/sdk /usr/bin/python3 - <<'EOF'
from ai_log_check import *
print(chat('gpt-4o', 'hello there', key='sk-app-consumer-0001',
           headers={'x-ai-metadata': '{"project": "alpha", "tags": ["a", 1]}',
                    'x-team': 'platform-team'})[0])
for r in records(1): show(r)
nokeys(['sk-app-consumer-0001', 'sk-upstream-key-42'], LOG, ERROR_LOG)
EOF
--- response_body
200
time: <time>
request_id: <id>
consumer: "app"
client: "127.0.0.1"
route: "/v1/"
endpoint: "chat"
model: "gpt-4o"
upstream_model: "gpt-4o"
provider: "openai"
target: "127.0.0.1:$MOCK"
attempts: 1
status: 200
complete: true
stream: false
prompt_tokens: 3
completion_tokens: 4
cached_tokens: 0
reasoning_tokens: 0
total_tokens: 7
usage_source: "provider"
cost_usd: 0.000047500
latency_ms: <ms>
ttft_ms: <ms>
output_tokens_per_second: <number|null>
cache_status: null
guard_verdict: null
guard_rule: null
limit_status: null
user: null
finish_reason: "stop"
trail: [{"target": "127.0.0.1:$MOCK", "key": 1, "upstream_status": 200, "ms": "<ms>", "reason": null, "request_id": "mock-1"}]
provider_request_id: "mock-1"
response_id: "chatcmpl-mock1"
gateway_error: false
error_code: null
error_message: null
outcomes: {}
metadata: {"x-ai-metadata": {"project": "alpha", "tags": ["a", 1]}, "x-team": "platform"}
ai.jsonl: no key
error.log: no key
--- no_error_log
[warn]



=== TEST 2: a stream with usage: tokens, TTFT well before the end, output tokens per second
--- http_config
    ai_price gpt-4o* input=2.5 output=10;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_log logs/ai.jsonl;
    }
--- exec
PYTHONPATH=t/sdk /usr/bin/python3 - <<'EOF'
from ai_log_check import *
st, body = chat('gpt-4o~delay_chunks_ms=60', 'a b c d', stream=True)
print(st, body.endswith(b'data: [DONE]\n\n'))
r = records(1)[0]
show(r, ['consumer', 'model', 'upstream_model', 'status', 'complete',
         'stream', 'prompt_tokens', 'completion_tokens', 'total_tokens',
         'cost_usd', 'metadata'])
# 8 events after the first, 60 ms apart: about 480 ms for 6 words
print('ttft < 200:', r['ttft_ms'] < 200)
print('latency >= 400:', r['latency_ms'] >= 400)
print('tps 6 / (latency - ttft):',
      abs(r['output_tokens_per_second']
          - 6000 / (r['latency_ms'] - r['ttft_ms'])) < 1.5)
EOF
--- response_body
200 True
consumer: null
model: "gpt-4o~delay_chunks_ms=60"
upstream_model: "gpt-4o~delay_chunks_ms=60"
status: 200
complete: true
stream: true
prompt_tokens: 5
completion_tokens: 6
total_tokens: 11
cost_usd: 0.000072500
metadata: null
ttft < 200: True
latency >= 400: True
tps 6 / (latency - ttft): True
--- no_error_log
[warn]



=== TEST 3: rejected by the gateway: bad JSON (400), unknown key and no key (401)
--- http_config
    ai_consumer app sk-app-consumer-0001;
--- config
    location /v1/ {
        ai_auth required;
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_proxy_key env:TEST_AI_UPSTREAM_KEY;
        ai_log logs/ai.jsonl;
    }
--- exec
PYTHONPATH=t/sdk /usr/bin/python3 - <<'EOF'
from ai_log_check import *
h = {'Authorization': 'Bearer sk-app-consumer-0001'}
print(request('POST', '/v1/chat/completions', '{"model": "gpt-4o", bad', h)[0])
print(chat('gpt-4o', key='sk-unknown-consumer-7777')[0])
print(chat('gpt-4o')[0])
for r in records(3):
    print('--')
    show(r)
nokeys(['sk-app-consumer-0001', 'sk-unknown-consumer-7777',
        'sk-upstream-key-42'], LOG, ERROR_LOG)
EOF
--- response_body
400
401
401
--
time: <time>
request_id: <id>
consumer: "app"
client: "127.0.0.1"
route: "/v1/"
endpoint: "chat"
model: null
upstream_model: null
provider: null
target: null
attempts: 0
status: 400
complete: false
stream: null
prompt_tokens: null
completion_tokens: null
cached_tokens: null
reasoning_tokens: null
total_tokens: null
usage_source: null
cost_usd: null
latency_ms: <ms>
ttft_ms: null
output_tokens_per_second: <number|null>
cache_status: null
guard_verdict: null
guard_rule: null
limit_status: null
user: null
finish_reason: null
trail: []
provider_request_id: null
response_id: null
gateway_error: true
error_code: "invalid_request_error"
error_message: "the request body is not valid JSON (error at byte 21)"
outcomes: {}
metadata: null
--
time: <time>
request_id: <id>
consumer: null
client: "127.0.0.1"
route: "/v1/"
endpoint: "chat"
model: null
upstream_model: null
provider: null
target: null
attempts: 0
status: 401
complete: false
stream: null
prompt_tokens: null
completion_tokens: null
cached_tokens: null
reasoning_tokens: null
total_tokens: null
usage_source: null
cost_usd: null
latency_ms: <ms>
ttft_ms: null
output_tokens_per_second: <number|null>
cache_status: null
guard_verdict: null
guard_rule: null
limit_status: null
user: null
finish_reason: null
trail: []
provider_request_id: null
response_id: null
gateway_error: true
error_code: "invalid_api_key"
error_message: "invalid API key"
outcomes: {}
metadata: null
--
time: <time>
request_id: <id>
consumer: null
client: "127.0.0.1"
route: "/v1/"
endpoint: "chat"
model: null
upstream_model: null
provider: null
target: null
attempts: 0
status: 401
complete: false
stream: null
prompt_tokens: null
completion_tokens: null
cached_tokens: null
reasoning_tokens: null
total_tokens: null
usage_source: null
cost_usd: null
latency_ms: <ms>
ttft_ms: null
output_tokens_per_second: <number|null>
cache_status: null
guard_verdict: null
guard_rule: null
limit_status: null
user: null
finish_reason: null
trail: []
provider_request_id: null
response_id: null
gateway_error: true
error_code: "invalid_api_key"
error_message: "missing API key: send it in the \"Authorization: Bearer\" or \"x-api-key\" header"
outcomes: {}
metadata: null
ai.jsonl: no key
error.log: no key



=== TEST 4: upstream failures: unreachable (502), the provider's 429 passed through
--- config
    location /down/v1/ {
        ai_proxy_pass http://127.0.0.1:1/v1;
        ai_log logs/ai.jsonl;
    }
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_log logs/ai.jsonl;
    }
--- exec
PYTHONPATH=t/sdk /usr/bin/python3 - <<'EOF'
from ai_log_check import *
print(chat('gpt-4o', path='/down/v1/chat/completions')[0])
print(chat('gpt-4o~status=429')[0])
for r in records(2):
    print('--')
    show(r, ['route', 'model', 'provider', 'target', 'attempts', 'status',
             'complete', 'stream', 'prompt_tokens', 'ttft_ms',
             'gateway_error'])
EOF
--- response_body
502
429
--
route: "/down/v1/"
model: "gpt-4o"
provider: "openai"
target: "127.0.0.1:1"
attempts: 1
status: 502
complete: false
stream: false
prompt_tokens: null
ttft_ms: null
gateway_error: true
--
route: "/v1/"
model: "gpt-4o~status=429"
provider: "openai"
target: "127.0.0.1:$MOCK"
attempts: 1
status: 429
complete: true
stream: false
prompt_tokens: null
ttft_ms: <ms>
gateway_error: false
--- error_log
connect() failed (111: Connection refused)
[error]



=== TEST 5: failed over within an upstream block: a dead server, then a live one
--- http_config
    upstream pool {
        server 127.0.0.1:1;
        server 127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- config
    location /v1/ {
        ai_proxy_pass http://pool/v1;
        ai_log logs/ai.jsonl;
    }
--- exec
PYTHONPATH=t/sdk /usr/bin/python3 - <<'EOF'
from ai_log_check import *
print(chat('gpt-4o', 'x')[0])
show(records(1)[0], ['provider', 'target', 'attempts', 'status', 'complete',
                     'total_tokens', 'gateway_error'])
EOF
--- response_body
200
provider: "openai"
target: "pool"
attempts: 2
status: 200
complete: true
total_tokens: 5
gateway_error: false
--- error_log
connect() failed (111: Connection refused)
[error]



=== TEST 6: streams the client abandons: 499, incomplete, with what was counted
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_log logs/ai.jsonl;
    }
    location /anthropic/ {
        ai_core on;
        proxy_buffering off;
        proxy_set_header anthropic-version 2023-06-01;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/;
        ai_log logs/ai.jsonl;
    }
--- exec
PYTHONPATH=t/sdk /usr/bin/python3 - <<'EOF'
from ai_log_check import *
abort('/v1/chat/completions',
      chat_body('gpt-4o~delay_chunks_ms=300', 'one two three', stream=True))
abort('/anthropic/v1/messages',
      {'model': 'claude-3-5-haiku~delay_chunks_ms=300', 'max_tokens': 50,
       'stream': True,
       'messages': [{'role': 'user', 'content': 'one two three'}]},
      until=b'message_start')
for r in records(2):
    print('--')
    show(r, ['route', 'endpoint', 'model', 'status', 'complete', 'stream',
             'prompt_tokens', 'completion_tokens', 'total_tokens',
             'ttft_ms', 'gateway_error'])
EOF
--- response_body
--
route: "/v1/"
endpoint: "chat"
model: "gpt-4o~delay_chunks_ms=300"
status: 499
complete: false
stream: true
prompt_tokens: null
completion_tokens: null
total_tokens: null
ttft_ms: <ms>
gateway_error: false
--
route: "/anthropic/"
endpoint: "messages"
model: "claude-3-5-haiku~delay_chunks_ms=300"
status: 499
complete: false
stream: true
prompt_tokens: 4
completion_tokens: 1
total_tokens: 5
ttft_ms: <ms>
gateway_error: false



=== TEST 7: request and response bodies, capped, always valid JSON and UTF-8
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_log logs/ai.jsonl;
        ai_log_request_body on max=64;
        ai_log_response_body on max=12;

        location /v1/full/ {
            ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
            ai_log_request_body on;
            ai_log_response_body on;
        }
    }
--- exec
PYTHONPATH=t/sdk /usr/bin/python3 - <<'EOF'
from ai_log_check import *
text = 'h\u00e9llo "w\u00f6rld"\n\tnext'
chat('gpt-4o', text)
chat('gpt-4o', 'one two three', stream=True, path='/v1/full/chat/completions')
chat('gpt-4o', text, path='/v1/full/chat/completions')
chat('gpt-4o', 'one two three', stream=True, usage=False)
rs = records(4)
for r in rs:
    print('--')
    show(r, ['route', 'request_body', 'request_body_truncated',
             'response_body', 'response_body_truncated'][:3 if r is rs[2] else 5])
body = json.loads(rs[2]['response_body'])
print(json.dumps(body['choices'][0]['message']['content'], ensure_ascii=False))
print(json.loads(rs[2]['request_body'])['messages'][0]['content'] == text)
EOF
--- response_body
--
route: "/v1/"
request_body: "{\"model\": \"gpt-4o\", \"messages\": [{\"role\": \"user\", \"content\": \"h"
request_body_truncated: true
response_body: "{\"id\":\"chatc"
response_body_truncated: true
--
route: "/v1/full/"
request_body: "{\"model\": \"gpt-4o\", \"messages\": [{\"role\": \"user\", \"content\": \"one two three\"}], \"stream\": true, \"stream_options\": {\"include_usage\": true}}"
request_body_truncated: false
response_body: "mock reply: one two three"
response_body_truncated: false
--
route: "/v1/full/"
request_body: "{\"model\": \"gpt-4o\", \"messages\": [{\"role\": \"user\", \"content\": \"héllo \\\"wörld\\\"\\n\\tnext\"}]}"
request_body_truncated: false
--
route: "/v1/"
request_body: "{\"model\": \"gpt-4o\", \"messages\": [{\"role\": \"user\", \"content\": \"on"
request_body_truncated: true
response_body: "mock reply: "
response_body_truncated: true
"mock reply: héllo \"wörld\" next"
True



=== TEST 8: only AI routes are logged; "ai_log off" below an inherited one
--- http_config
    ai_log logs/ai.jsonl;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;

        location /v1/quiet/ {
            ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
            ai_log off;
        }
    }
    location /static/ {
        return 200 "static\n";
    }
--- exec
PYTHONPATH=t/sdk /usr/bin/python3 - <<'EOF'
from ai_log_check import *
print(request('GET', '/static/x')[0])
print(chat('gpt-4o', path='/v1/quiet/chat/completions')[0])
print(chat('gpt-4o', 'logged')[0])
print(request('GET', '/v1/models')[0])
for r in records(2):
    show(r, ['route', 'endpoint', 'model', 'status', 'prompt_tokens'])
EOF
--- response_body
200
200
200
200
route: "/v1/"
endpoint: "chat"
model: "gpt-4o"
status: 200
prompt_tokens: 2
route: "/v1/"
endpoint: "models"
model: null
status: 200
prompt_tokens: null



=== TEST 9: headers that carry keys are refused as metadata
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_log logs/ai.jsonl;
        ai_log_metadata_header X-API-Key;
    }
--- must_die
--- error_log
"ai_log_metadata_header": "x-api-key" carries keys and is never logged



=== TEST 10: the authorization header is refused as metadata too
--- config
    location /v1/ {
        ai_log_metadata_header authorization;
    }
--- must_die
--- error_log
"ai_log_metadata_header": "authorization" carries keys and is never logged



=== TEST 11: streams: every part, tool calls included, in the response body
--- http_config
    ai_target oa http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 models=gpt-*;
    ai_target an http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic models=claude-*;
    ai_target ge http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=gemini models=gemini-*;
    ai_target canned-ge http://127.0.0.1:$TEST_NGINX_SERVER_PORT/canned provider=gemini models=canned-gemini;
    ai_target canned-oa http://127.0.0.1:$TEST_NGINX_SERVER_PORT/canned/v1 models=canned-openai;
--- config
    location /v1/ {
        ai_proxy oa an ge canned-ge canned-oa;
        ai_log logs/ai.jsonl;
        ai_log_response_body on;
    }
    location /canned/v1/ {
        default_type text/event-stream;
        return 200 'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":"Both: "}}]}\n\ndata: {"choices":[{"index":1,"delta":{"content":"second choice"}}]}\n\ndata: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"a","type":"function","function":{"name":"f","arguments":"{\\"x\\":"}}]}}]}\n\ndata: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"1}"}},{"index":1,"id":"b","type":"function","function":{"name":"g","arguments":"{}"}}]}}]}\n\ndata: {"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}\n\ndata: [DONE]\n\n';
    }
    location /canned/ {
        default_type text/event-stream;
        return 200 'data: {"candidates":[{"content":{"parts":[{"text":"one "},{"functionCall":{"name":"f","args":{"x":1}}},{"text":"two"},{"functionCall":{"name":"g"}},{"text":" three"}],"role":"model"},"index":0}]}\r\n\r\ndata: {"candidates":[{"content":{"parts":[{"text":" four"}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":4,"totalTokenCount":7}}\r\n\r\n';
    }
--- exec
PYTHONPATH=t/sdk /usr/bin/python3 - <<'EOF'
from ai_log_check import *
tools = [{'type': 'function', 'function': {'name': 'get_weather',
          'parameters': {'type': 'object'}}}]
for m in ('gemini-2.0-flash', 'gpt-4o', 'claude-3-5-haiku', 'canned-gemini',
          'canned-openai'):
    st, body = chat(m, 'the weather in Paris?', stream=True, tools=tools)
    print(m, st)
for r in records(5):
    print('--')
    show(r, ['provider', 'status', 'complete', 'response_body',
             'response_body_truncated'])
EOF
--- response_body
gemini-2.0-flash 200
gpt-4o 200
claude-3-5-haiku 200
canned-gemini 200
canned-openai 200
--
provider: "gemini"
status: 200
complete: true
response_body: "[tool_call get_weather] {\"location\":\"Paris\",\"unit\":\"celsius\"}"
response_body_truncated: false
--
provider: "openai"
status: 200
complete: true
response_body: "[tool_call get_weather] {\"location\":\"Paris\",\"unit\":\"celsius\"}"
response_body_truncated: false
--
provider: "anthropic"
status: 200
complete: true
response_body: "[tool_call get_weather] {\"location\":\"Paris\",\"unit\":\"celsius\"}"
response_body_truncated: false
--
provider: "gemini"
status: 200
complete: true
response_body: "one \n[tool_call f] {\"x\":1}\ntwo\n[tool_call g] \n three four"
response_body_truncated: false
--
provider: "openai"
status: 200
complete: true
response_body: "Both: \n[tool_call f] {\"x\":1}\n[tool_call g] {}"
response_body_truncated: false



=== TEST 12: the record's request_id is $request_id: the access log's where it has one, 32 hex digits, a new one each request (the gateway's drawn 4 KB of random bytes at a time)
--- http_config
    log_format ids '$request_id';
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_log logs/ai.jsonl;
        access_log logs/ids.log ids;
    }
    location /gw/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_log logs/gw.jsonl;
    }
--- exec
PYTHONPATH=t/sdk /usr/bin/python3 - <<'EOF'
import os, time
from ai_log_check import *
ids_log = os.path.join(SERVROOT, 'logs', 'ids.log')
gw_log = os.path.join(SERVROOT, 'logs', 'gw.jsonl')
truncate(ids_log)
truncate(gw_log)
n = 300
for i in range(n):
    request('POST', '/v1/chat/completions', chat_body('gpt-4o', 'hi %d' % i))
    request('POST', '/gw/chat/completions', chat_body('gpt-4o', 'hi %d' % i))
ids = [r['request_id'] for r in records(n)]
deadline = time.time() + 10
while len(lines(ids_log)) < n and time.time() < deadline:
    time.sleep(0.05)
access = [l.decode().strip() for l in lines(ids_log)]
gw = [r['request_id'] for r in records(n, gw_log)]
print('records:', len(ids), len(gw), 'access log:', len(access))
print("the access log's ids:", ids == access)
print('32 hex digits:', all(re.match(r'^[0-9a-f]{32}$', i)
                            for i in ids + gw))
print('all different:', len(set(ids + gw)) == 2 * n)
EOF
--- response_body
records: 300 300 access log: 300
the access log's ids: True
32 hex digits: True
all different: True
--- no_error_log
[error]
[warn]



=== TEST 13: a record's strings hold every byte a body may have, wherever it falls in the 8 bytes the escaper reads at once: quotes, backslashes and DEL escaped, UTF-8 kept, invalid bytes as U+FFFD
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_log logs/ai.jsonl;
        ai_log_request_body on;
    }
--- exec
PYTHONPATH=t/sdk /usr/bin/python3 - <<'EOF'
import random
from ai_log_check import *
random.seed(13)
# in a JSON string as sent: escapes, raw DEL and UTF-8, lone bad bytes
pieces = [b'a', b'bc', b'defghij', b'\\"', b'\\\\', b'\\n', b'\\u0001',
          b'\x7f', b'\xc3\xa9', b'\xe4\xb8\xad', b'\xf0\x9f\x98\x80',
          b'\x80', b'\xff', b'\xc3A', b' ']
bodies = []
for n in range(40):
    content = b''.join(random.choice(pieces)
                       for _ in range(random.randint(0, 30)))
    bodies.append(b'{"model":"gpt-4o","messages":[{"role":"user",'
                  b'"content":"' + b'x' * (n % 9) + content + b'"}]}')
statuses = set()
for b in bodies:
    statuses.add(request('POST', '/v1/chat/completions', b,
                         {'Content-Type': 'application/json'})[0])
rs = records(len(bodies))
same = [r['request_body'] == b.decode('utf-8', 'replace')
        for r, b in zip(rs, bodies)]
print('statuses:', sorted(statuses))
print('records:', len(rs), 'as sent:', sum(same))
EOF
--- response_body
statuses: [200]
records: 40 as sent: 40
--- no_error_log
[error]
[alert]
