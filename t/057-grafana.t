# The shipped Grafana dashboard (docs/grafana/ai-gateway.json) and
# Prometheus alert rules (docs/prometheus/ai-gateway-rules.yml): the JSON
# parses, the rules are well formed, and every metric and label their
# queries name is one the gateway exports (checked against /metrics after
# traffic that makes every family appear).
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_AI_K1} = 'sk-grafana-key-0001';
$ENV{TEST_AI_K2} = 'sk-grafana-key-0002';
env_to_nginx('TEST_AI_K1', 'TEST_AI_K2');
run_tests();

__DATA__

=== TEST 1: every query of the dashboard and of the rules names an exported metric and label
--- http_config
    ai_metrics_zone ai 4m;
    ai_store answers size=4m;
    ai_prompt_guard_rule mails detect=email action=mask;
    ai_token_limit_zone z key=$remote_addr;
    ai_target busy http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 models=gpt-4o model=gpt-4o~status=503;
    ai_target good http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 models=gpt-4o;
    ai_target pool http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 key=env:TEST_AI_K1 models=gpt-4o model=gpt-4o~fail_first=1,status=429,retry_after=60;
    ai_target gone http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 key=env:TEST_AI_K2 models=gone model=gpt-4o~status=401;
--- config
    location /v1/ {
        ai_proxy busy good;
        ai_cache answers;
        ai_prompt_guard mails;
        ai_token_limit z 4 count=requests per=day;
        ai_token_budget z 100000;
    }
    location /keys/v1/ {
        ai_proxy pool gone;
    }
    location = /metrics {
        ai_metrics;
    }
--- exec
PYTHONPATH=t/sdk /usr/bin/python3 - <<'EOF'
import yaml
from ai_log_check import *

with open('docs/grafana/ai-gateway.json') as f:
    dash = json.load(f)
with open('docs/prometheus/ai-gateway-rules.yml') as f:
    rules = yaml.safe_load(f)

# the dashboard's shape
ids = [p['id'] for p in dash['panels']]
queries = []
bad = []
for p in dash['panels']:
    if p['type'] == 'row':
        continue
    if not p.get('targets') or 'gridPos' not in p:
        bad.append(p['title'])
    for t in p.get('targets', []):
        if not t.get('expr') or not t.get('refId') \
           or t['datasource']['uid'] != '${datasource}':
            bad.append(p['title'])
        queries.append(('panel ' + p['title'], t['expr']))
for v in dash['templating']['list']:
    if v['type'] == 'query':
        queries.append(('variable ' + v['name'], v['query']['query']))
print('dashboard:', dash['uid'], 'panels unique:', len(ids) == len(set(ids)),
      'bad panels:', bad)

# the rules' shape
n = 0
for g in rules['groups']:
    for r in g['rules']:
        n += 1
        if not (r.get('alert') and r.get('expr')
                and r.get('labels', {}).get('severity')
                and r.get('annotations', {}).get('summary')):
            bad.append(r)
        queries.append(('alert ' + r['alert'], r['expr']))
print('rules well formed:', n > 5 and not bad)

# traffic that makes every family appear
h = {'Content-Type': 'application/json'}
for text in ('what is a cache', 'what is a cache', 'mail me at a@example.com'):
    chat('gpt-4o', text)
chat('gpt-4o', 'a stream', stream=True)
print('limited:', chat('gpt-4o', 'one too many')[0])
chat('gpt-4o', path='/keys/v1/chat/completions')
chat('gone', path='/keys/v1/chat/completions')
text, fams = metrics()
names = {}
for f in fams.values():
    for s in f.samples:
        names.setdefault(s.name, set()).update(s.labels)

METRIC = re.compile(r'\b(ai_[a-z0-9_]+)\b')
SELECTOR = re.compile(r'\b(ai_[a-z0-9_]+)\{([^}]*)\}')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)')
BY = re.compile(r'\b(?:by|without)\s*\(([^)]*)\)')

def check(expr):
    """what expr names that /metrics does not have"""
    missing = []
    used = set(METRIC.findall(expr))
    for m in used:
        if m not in names:
            missing.append(m)
    for m, sel in SELECTOR.findall(expr):
        for l in LABEL.findall(sel):
            if m in names and l not in names[m]:
                missing.append('%s{%s}' % (m, l))
    have = set()
    for m in used:
        have |= names.get(m, set())
    for group in BY.findall(expr):
        for l in (x.strip() for x in group.split(',')):
            if l and l not in have:
                missing.append('by %s' % l)
    # label_values(metric, label)
    for m, l in re.findall(r'label_values\((ai_[a-z0-9_]+),\s*(\w+)\)', expr):
        if l not in names.get(m, set()):
            missing.append('%s %s' % (m, l))
    return missing

missing = [(where, check(e)) for where, e in queries if check(e)]
print('queries:', len(queries) > 30, 'missing:', missing)
print('families used:', sorted(set(
    re.sub(r'_(bucket|sum|count)$', '', m)
    for _, e in queries for m in METRIC.findall(e))))
# the check can fail: a made-up metric, label and grouping are caught
print('caught:', check('sum by (team) (rate(ai_made_up_total[5m]))'),
      check('ai_requests_total{colour="red"}'),
      check('sum by (colour) (rate(ai_requests_total[5m]))'))
nokeys(['sk-grafana-key-0001', 'sk-grafana-key-0002'], ('metrics', text),
       ERROR_LOG)
EOF
--- response_body
dashboard: ai-gateway panels unique: True bad panels: []
rules well formed: True
limited: 429
queries: True missing: []
families used: ['ai_build_info', 'ai_cache_requests_total', 'ai_cost_usd_total', 'ai_fallbacks_total', 'ai_gateway_overhead_seconds', 'ai_guard_verdicts_total', 'ai_key_cooldowns_total', 'ai_key_disables_total', 'ai_metrics_label_overflow_total', 'ai_metrics_series', 'ai_rate_limit_total', 'ai_request_duration_seconds', 'ai_requests_in_flight', 'ai_requests_total', 'ai_streams_in_flight', 'ai_time_to_first_token_seconds', 'ai_token_budget_remaining', 'ai_tokens_total', 'ai_upstream_attempts_total', 'ai_upstream_keys']
caught: ['ai_made_up_total', 'by team'] ['ai_requests_total{colour}'] ['by colour']
metrics: no key
error.log: no key
--- error_log
refused the gateway's credentials
[error]
--- no_error_log
[alert]
--- timeout: 60
