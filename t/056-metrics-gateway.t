# ai_log, the metrics an on-call engineer reads: the target and endpoint
# labels, the attempts and fallbacks by target, the requests and streams
# in flight, the gateway's own overhead (a histogram, and Server-Timing
# with ai_server_timing), ai_build_info; the label cap holds for targets.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_AI_K1} = 'sk-gauge-key-0001';
$ENV{TEST_AI_K2} = 'sk-gauge-key-0002';
$ENV{TEST_AI_K3} = 'sk-gauge-key-0003';
env_to_nginx('TEST_AI_K1', 'TEST_AI_K2', 'TEST_AI_K3');
run_tests();

__DATA__

=== TEST 1: a fallback: target and endpoint labels, attempts by outcome, fallbacks, overhead, build info, Server-Timing
--- http_config
    ai_metrics_zone ai 4m;
    ai_target busy http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 model=gpt-4o~status=503;
    ai_target good http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 models=gpt-* model=gpt-4o~delay_headers_ms=150;
    ai_target an   http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic models=claude-*;
--- config
    location /v1/ {
        ai_proxy busy good an;
        ai_server_timing on;
    }
    location /quiet/v1/ {
        ai_proxy good;
    }
    location = /metrics {
        ai_metrics;
    }
--- exec
PYTHONPATH=t/sdk /usr/bin/python3 - <<'EOF'
from ai_log_check import *
h = {'Content-Type': 'application/json'}
st, body, hd = request('POST', '/v1/chat/completions', chat_body('gpt-4o'), h)
print(st)
m = re.match(r'^gateway;dur=(\d+), upstream;dur=(\d+)$', hd['server-timing'])
print('server-timing:', bool(m), 'upstream >= 150:', int(m.group(2)) >= 150,
      'gateway < upstream:', int(m.group(1)) < int(m.group(2)))
st, body, hd = request('POST', '/quiet/v1/chat/completions',
                       chat_body('gpt-4o'), h)
print(st, 'server-timing' in hd)
h2 = dict(h, **{'anthropic-version': '2023-06-01'})
print(request('POST', '/v1/messages',
              {'model': 'claude-3-haiku', 'max_tokens': 9,
               'messages': [{'role': 'user', 'content': 'hi'}]}, h2)[0])
text, f = metrics()
for s in sorted(f['ai_requests'].samples, key=lambda s: s.labels['target']):
    print(sorted(s.labels.items()), s.value)
print(sorted((tuple(sorted(s.labels.items())), s.value)
             for s in f['ai_upstream_attempts'].samples))
print([(s.labels, s.value) for s in f['ai_fallbacks'].samples])
print('overhead count:', total(f, 'ai_gateway_overhead_seconds',
                               'ai_gateway_overhead_seconds_count'),
      'le=0.1:', total(f, 'ai_gateway_overhead_seconds',
                       'ai_gateway_overhead_seconds_bucket', le='0.1'))
print([(s.labels['version'], s.labels['core_api'], s.value)
       for s in f['ai_build_info'].samples])
print('in flight:', total(f, 'ai_requests_in_flight'),
      total(f, 'ai_streams_in_flight'))
print(f['ai_requests_in_flight'].type, f['ai_gateway_overhead_seconds'].type)
EOF
--- response_body
200
server-timing: True upstream >= 150: True gateway < upstream: True
200 False
200
[('consumer', ''), ('endpoint', 'messages'), ('model', 'claude-3-haiku'), ('provider', 'anthropic'), ('status', '200'), ('target', 'an')] 1.0
[('consumer', ''), ('endpoint', 'chat'), ('model', 'gpt-4o~delay_headers_ms=150'), ('provider', 'openai'), ('status', '200'), ('target', 'good')] 2.0
[((('outcome', 'ok'), ('target', 'an')), 1.0), ((('outcome', 'ok'), ('target', 'good')), 2.0), ((('outcome', 'server_error'), ('target', 'busy')), 1.0)]
[({'target': 'good'}, 1.0)]
overhead count: 3.0 le=0.1: 3.0
[('0.1.0', '13', 1.0)]
in flight: 0.0 0.0
gauge histogram
--- error_log
target "busy" answered 503
--- no_error_log
[error]
[alert]



=== TEST 2: requests and streams in flight while a stream runs, none after
--- http_config
    ai_metrics_zone ai 1m history=10m;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
    location = /metrics {
        ai_metrics;
    }
--- exec
PYTHONPATH=t/sdk /usr/bin/python3 - <<'EOF'
import threading
from ai_log_check import *
out = {}
def slow():
    out['st'] = chat('gpt-4o~delay_chunks_ms=150', 'a b c d e f', stream=True)[0]
t = threading.Thread(target=slow)
t.start()
time.sleep(0.5)
f = metrics()[1]
print('during:', total(f, 'ai_requests_in_flight'),
      total(f, 'ai_streams_in_flight'))
t.join()
time.sleep(0.2)
f = metrics()[1]
print(out['st'], 'after:', total(f, 'ai_requests_in_flight'),
      total(f, 'ai_streams_in_flight'))
EOF
--- response_body
during: 1.0 1.0
200 after: 0.0 0.0
--- no_error_log
[error]
[alert]



=== TEST 3: the label cap holds for targets: later targets are __other__, counted as overflow
--- http_config
    ai_metrics_zone ai 1m labels=2 history=1h;
    ai_target a http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 models=m-a;
    ai_target b http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 models=m-b;
    ai_target c http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 models=m-c;
--- config
    location /v1/ {
        ai_proxy a b c;
    }
    location = /metrics {
        ai_metrics;
    }
--- exec
PYTHONPATH=t/sdk /usr/bin/python3 - <<'EOF'
from ai_log_check import *
for m in ('m-a', 'm-b', 'm-c', 'm-a'):
    chat(m)
text, f = metrics()
d = {}
for s in f['ai_requests'].samples:
    d[s.labels['target']] = d.get(s.labels['target'], 0) + s.value
print(sorted(d.items()))
print(sorted((s.labels['target'], s.value)
             for s in f['ai_upstream_attempts'].samples))
print('overflow:', total(f, 'ai_metrics_label_overflow'))
EOF
--- response_body
[('__other__', 1.0), ('a', 2.0), ('b', 1.0)]
[('__other__', 1.0), ('a', 2.0), ('b', 1.0)]
overflow: 1.0
--- no_error_log
[error]
[alert]



=== TEST 4: nginx -t: ai_server_timing takes on or off
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_server_timing maybe;
    }
--- must_die
--- error_log
invalid value "maybe" in "ai_server_timing" directive, it must be "on" or "off"



=== TEST 5: key state gauges per target: usable, cooling after a 429, revoked after a 401
--- http_config
    ai_metrics_zone ai 1m history=10m;
    ai_target pool http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 key=env:TEST_AI_K1 key=env:TEST_AI_K2 models=gpt-4o model=gpt-4o~fail_first=1,status=429,retry_after=30;
    ai_target gone http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 key=env:TEST_AI_K3 models=gone model=gpt-4o~status=401;
--- config
    location /v1/ {
        ai_proxy pool gone;
    }
    location = /metrics {
        ai_metrics;
    }
--- exec
PYTHONPATH=t/sdk /usr/bin/python3 - <<'EOF'
from ai_log_check import *
f = metrics()[1]
print(sorted((s.labels['target'], s.labels['state'], s.value)
             for s in f['ai_upstream_keys'].samples))
print(chat('gpt-4o')[0], chat('gone')[0])
text, f = metrics()
print(sorted((s.labels['target'], s.labels['state'], s.value)
             for s in f['ai_upstream_keys'].samples))
print(f['ai_upstream_keys'].type)
nokeys(['sk-gauge-key-0001', 'sk-gauge-key-0002', 'sk-gauge-key-0003'],
       ('metrics', text), ERROR_LOG)
EOF
--- response_body
[('gone', 'cooling', 0.0), ('gone', 'revoked', 0.0), ('gone', 'usable', 1.0), ('pool', 'cooling', 0.0), ('pool', 'revoked', 0.0), ('pool', 'usable', 2.0)]
200 502
[('gone', 'cooling', 0.0), ('gone', 'revoked', 1.0), ('gone', 'usable', 0.0), ('pool', 'cooling', 1.0), ('pool', 'revoked', 0.0), ('pool', 'usable', 1.0)]
gauge
metrics: no key
error.log: no key
--- error_log
refused the gateway's credentials
[error]
--- no_error_log
[alert]
