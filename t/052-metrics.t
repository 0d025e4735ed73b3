# ai_log, the metrics: the Prometheus exposition parses with
# prometheus_client (Debian's python3-prometheus-client) and adds up over
# two workers; label values are capped with an "__other__" overflow; the
# core's counters of other modules are exported; reloads keep the counts.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_AI_UPSTREAM_KEY} = 'sk-upstream-metrics-42';
env_to_nginx('TEST_AI_UPSTREAM_KEY');
workers(2);
run_tests();

__DATA__

=== TEST 1: two workers, one zone: the sums are the traffic sent
--- http_config
    ai_consumer app  sk-app-metrics-0001;
    ai_consumer team sk-team-metrics-0002;
    ai_price gpt-4o* input=2.5 output=10;
    ai_metrics_zone ai 4m;
    log_format pids '$pid';
--- config
    location /v1/ {
        ai_auth optional;
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_proxy_key env:TEST_AI_UPSTREAM_KEY;
        access_log logs/pids.log pids;
    }
    location = /metrics {
        ai_metrics;
    }
--- exec
PYTHONPATH=t/sdk /usr/bin/python3 - <<'EOF'
from ai_log_check import *
from concurrent.futures import ThreadPoolExecutor
pids = os.path.join(SERVROOT, 'logs', 'pids.log')
truncate(pids)
def slow(i):
    key = 'sk-app-metrics-0001' if i % 2 else 'sk-team-metrics-0002'
    return chat('gpt-4o~delay_headers_ms=100', 'hello there', key=key)[0]
with ThreadPoolExecutor(10) as ex:
    st = list(ex.map(slow, range(40)))
for i in range(6):
    st.append(chat('gpt-4o', 'hello there', stream=True)[0])
for i in range(4):
    st.append(chat('gpt-4o', key='sk-not-a-known-key-99')[0])
print('sent:', len(st), 'ok:', st.count(200), 'rejected:', st.count(401))
print('workers that served:', len(set(lines(pids))))
text, f = metrics()
print('requests:', total(f, 'ai_requests'))
for label in ('status', 'consumer'):
    d = {}
    for s in f['ai_requests'].samples:
        d[s.labels[label]] = d.get(s.labels[label], 0) + s.value
    print('by %s:' % label, sorted(d.items()))
print('prompt tokens:', total(f, 'ai_tokens', type='prompt'))
print('completion tokens:', total(f, 'ai_tokens', type='completion'))
print('cost: %.6f' % total(f, 'ai_cost_usd'))
d = 'ai_request_duration_seconds'
t = 'ai_time_to_first_token_seconds'
print('duration count:', total(f, d, d + '_count'),
      '+Inf:', total(f, d, d + '_bucket', le='+Inf'))
print('ttft count:', total(f, t, t + '_count'))
print('slow ones at or above 0.1 s:',
      total(f, d, d + '_count', status='200')
      - total(f, d, d + '_bucket', status='200', le='0.05'))
ok = True
for fam in (d, t):
    series = {}
    for s in f[fam].samples:
        if s.name.endswith('_bucket'):
            k = tuple(sorted((a, b) for a, b in s.labels.items() if a != 'le'))
            series.setdefault(k, []).append(s.value)
    for v in series.values():
        ok = ok and v == sorted(v) and len(v) == 13
print('buckets cumulative:', ok)
print('types:', f['ai_requests'].type, f['ai_tokens'].type, f[d].type)
nokeys(['sk-app-metrics-0001', 'sk-team-metrics-0002',
        'sk-not-a-known-key-99', 'sk-upstream-metrics-42'],
       ('metrics', text), ERROR_LOG)
EOF
--- response_body
sent: 50 ok: 46 rejected: 4
workers that served: 2
requests: 50.0
by status: [('200', 46.0), ('401', 4.0)]
by consumer: [('', 10.0), ('app', 20.0), ('team', 20.0)]
prompt tokens: 138.0
completion tokens: 184.0
cost: 0.002185
duration count: 50.0 +Inf: 50.0
ttft count: 46.0
slow ones at or above 0.1 s: 40.0
buckets cumulative: True
types: counter counter histogram
metrics: no key
error.log: no key
--- timeout: 60



=== TEST 2: label values over the cap are counted as __other__
--- http_config
    ai_metrics_zone ai 1m labels=2 history=1h;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
    location = /metrics {
        ai_metrics;
    }
--- exec
PYTHONPATH=t/sdk /usr/bin/python3 - <<'EOF'
from ai_log_check import *
for m in ('m1', 'm2', 'm3', 'm4', 'm1'):
    chat(m)
text, f = metrics()
print(sorted((s.labels['model'], s.value) for s in f['ai_requests'].samples))
print('overflow:', total(f, 'ai_metrics_label_overflow'))
print('series:', total(f, 'ai_metrics_series'))
EOF
--- response_body
[('__other__', 2.0), ('m1', 2.0), ('m2', 1.0)]
overflow: 2.0
series: 3.0



=== TEST 3: label values are escaped and kept valid UTF-8
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
from ai_log_check import *
weird = 'we"ird\\m\u00f6del\nx'
print(chat(weird)[0])
text, f = metrics()
print([s.labels['model'] == weird for s in f['ai_requests'].samples])
EOF
--- response_body
200
[True]



=== TEST 4: the core's counters, registered by any module, are exported
--- http_config
    ai_metrics_zone ai 1m history=10m;
    ai_store s size=64k;
--- config
    location /store {
        ai_store_test s;
    }
    location = /metrics {
        ai_metrics;
    }
--- exec
PYTHONPATH=t/sdk /usr/bin/python3 - <<'EOF'
from ai_log_check import *
for op in ('set&value=1', 'get', 'incr&delta=2'):
    request('GET', '/store?key=k&op=' + op)
text, f = metrics()
c = f['ai_store_test_ops']
print(c.type, repr(c.documentation), [(s.name, s.value) for s in c.samples])
print(request('POST', '/metrics', 'x')[0], request('HEAD', '/metrics')[0])
st, body, h = request('GET', '/metrics')
print(h['content-type'])
EOF
--- response_body
counter 'Operations of the test-only store module.' [('ai_store_test_ops_total', 3.0)]
405 200
text/plain; version=0.0.4; charset=utf-8



=== TEST 5: a reload (HUP) keeps the counts
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
from ai_log_check import *
import signal
for i in range(3):
    chat('gpt-4o')
print('before:', total(metrics()[1], 'ai_requests'))
print('reloaded:', reload_and_wait(signal.SIGHUP))
chat('gpt-4o')
print('after:', total(metrics()[1], 'ai_requests'))
EOF
--- response_body
before: 3.0
reloaded: True
after: 4.0



=== TEST 6: nginx -t: the endpoints need a zone
--- config
    location = /metrics {
        ai_metrics;
    }
--- must_die
--- error_log
"ai_metrics" and "ai_dashboard" need an "ai_metrics_zone" in the http block



=== TEST 7: nginx -t: a zone too small for its history
--- http_config
    ai_metrics_zone ai 1m;
--- must_die
--- error_log
ai_metrics_zone "ai" is too small for labels=64 and 1440 history intervals: at least



=== TEST 8: the model label is the routed model: clients cannot create label values
--- http_config
    ai_consumer app sk-app-metrics-0001;
    ai_target oa http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 models=gpt-*;
    ai_metrics_zone ai 1m labels=4 history=1h;
--- config
    location /v1/ {
        ai_auth optional;
        ai_proxy oa;
    }
    location /plain/ {
        ai_core on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1/;
    }
    location = /metrics {
        ai_metrics;
    }
--- exec
PYTHONPATH=t/sdk /usr/bin/python3 - <<'EOF'
from ai_log_check import *
st = {}
def count(s):
    st[s] = st.get(s, 0) + 1
for i in range(70):
    # no target serves them: 404 from the gateway
    count(chat('unserved-%d' % i)[0])
for i in range(10):
    # routed by the target's glob, refused by the provider
    count(chat('gpt-nope-%d~status=404' % i)[0])
    # a known model, but an unknown key: 401 before any routing
    count(chat('gpt-4o', key='sk-unknown-%d' % i)[0])
    # a plain proxy_pass: the provider refuses
    count(chat('gpt-plain-%d' % i, path='/plain/chat/completions',
               headers={'x-mock': 'status=404'})[0])
count(chat('gpt-4o', key='sk-app-metrics-0001')[0])
count(chat('gpt-4o-mini', path='/plain/chat/completions')[0])
# a served model keeps its label when it fails later
count(chat('gpt-4o-mini', path='/plain/chat/completions',
           headers={'x-mock': 'status=500'})[0])
print(sorted(st.items()))
text, f = metrics()
d = {}
for s in f['ai_requests'].samples:
    k = (s.labels['model'], s.labels['provider'], s.labels['status'])
    d[k] = d.get(k, 0) + s.value
for k in sorted(d):
    print(k, d[k])
print('overflow:', total(f, 'ai_metrics_label_overflow'))
nokeys(['sk-app-metrics-0001'] + ['sk-unknown-%d' % i for i in range(10)],
       ('metrics', text), ERROR_LOG)
EOF
--- response_body
[(200, 2), (401, 10), (404, 90), (500, 1)]
('', '', '401') 10.0
('', '', '404') 80.0
('', 'openai', '404') 10.0
('gpt-4o', 'openai', '200') 1.0
('gpt-4o-mini', '', '200') 1.0
('gpt-4o-mini', '', '500') 1.0
overflow: 0.0
metrics: no key
error.log: no key



=== TEST 9: a reload with other zone parameters starts again (no packed-layout collision)
--- http_config
    ai_metrics_zone ai 1m interval=2097157s history=2097157s;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
    location = /dashboard {
        ai_dashboard;
    }
--- exec
PYTHONPATH=t/sdk /usr/bin/python3 - <<'EOF'
from ai_log_check import *
import signal
chat('gpt-4o')
d, _ = feed()
print('before:', d['interval'], d['history'], d['lifetime']['requests'])
# 2097157 = 2^21 + 5 and one slot packed as (3 << 20) | 5, as 5 s and
# three slots did: the zone must not be taken for the same one
conf = os.path.join(SERVROOT, 'conf', 'nginx.conf')
with open(conf) as f:
    text = f.read()
with open(conf, 'w') as f:
    f.write(text.replace('interval=2097157s history=2097157s',
                         'interval=5s history=15s'))
print('reloaded:', reload_and_wait(signal.SIGHUP))
for i in range(3):
    chat('gpt-4o')
# a worker logs a request just after its answer went out: the feed, maybe
# served by the other worker, may come first on a busy machine
for i in range(40):
    d, _ = feed()
    if d['lifetime']['requests'] >= 3:
        break
    time.sleep(0.05)
print('after:', d['interval'], d['history'], d['lifetime']['requests'],
      sum(s['requests'] for s in d['slots']))
EOF
--- response_body
before: 2097157 2097157 1
reloaded: True
after: 5 15 3 3
--- error_log
ai_metrics_zone "ai": parameters changed, the metrics start again
