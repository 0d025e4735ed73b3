# ai_log, the dashboard: the page is self-contained and compiled in from
# modules/ai_log/dashboard.html (the generated header must be in sync);
# its JSON feed rolls over its window and survives reloads; headless
# Chromium renders the numbers of known traffic (t/artifacts/dashboard.png
# is its screenshot) and the gateway's views: targets, providers, key
# health, status codes, fallback rate, the label cap and the time range
# (t/artifacts/dashboard-gateway.png).
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_AI_UPSTREAM_KEY} = 'sk-upstream-dashboard-42';
env_to_nginx('TEST_AI_UPSTREAM_KEY');
run_tests();

__DATA__

=== TEST 1: the compiled-in page is the one in dashboard.html
--- exec
sh modules/ai_log/dashboard.sh $TEST_NGINX_SERVROOT/dashboard.h && cmp $TEST_NGINX_SERVROOT/dashboard.h modules/ai_log/ngx_http_ai_log_dashboard.h && echo in sync
--- response_body
in sync



=== TEST 2: the page loads nothing from elsewhere: no link, src, url(), import or font
--- http_config
    ai_metrics_zone ai 1m history=10m;
--- config
    location = /dashboard {
        ai_dashboard;
    }
--- request
GET /dashboard
--- response_headers
Content-Type: text/html; charset=utf-8
Content-Security-Policy: default-src 'none'; connect-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:
Cache-Control: no-store
--- response_body_like
^<!doctype html>.*id="total-requests".*<script>.*</script>\s*</body>\s*</html>\s*$
--- response_body_unlike
<link|<img|<iframe|\ssrc=|\shref=|url\(|@import|@font-face|https?://(?!www\.w3\.org/2000/svg")



=== TEST 3: the JSON feed: buckets of the window, labels, and the window rolls
--- http_config
    ai_consumer app sk-app-dashboard-0001;
    ai_price gpt-4o input=2.5 output=10;
    ai_metrics_zone ai 1m interval=1s history=3s;
--- config
    location /v1/ {
        ai_auth optional;
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
    location = /dashboard {
        ai_dashboard;
    }
--- exec
PYTHONPATH=t/sdk /usr/bin/python3 - <<'EOF'
from ai_log_check import *
t = time.time()
time.sleep(1 - t % 1 + 0.05)
chat('gpt-4o', 'hello there', key='sk-app-dashboard-0001')
time.sleep(1.1)
chat('gpt-4o', 'hello there')
d, raw = feed()
print(d['version'], d['interval'], d['history'], d['buckets_ms'])
print(d['models'], d['consumers'], d['lifetime'])
for s in d['slots']:
    print(s['requests'], s['prompt_tokens'], s['completion_tokens'],
          s['cost_usd'], s['errors'], s['rejected'], sum(s['latency']),
          s['models'], s['consumers'])
time.sleep(3.5)
d, raw = feed()
print('later:', len(d['slots']), d['lifetime']['requests'])
nokeys(['sk-app-dashboard-0001'], ('feed', raw))
EOF
--- response_body
1 1 3 [25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000]
['__other__', 'gpt-4o'] ['__other__', 'app', ''] {'requests': 2, 'prompt_tokens': 6, 'completion_tokens': 8, 'cost_usd': 9.5e-05}
1 3 4 4.75e-05 0 0 1 [[1, 1, 7, 4.75e-05]] [[1, 1, 7, 4.75e-05]]
1 3 4 4.75e-05 0 0 1 [[1, 1, 7, 4.75e-05]] [[2, 1, 7, 4.75e-05]]
later: 0 2
feed: no key



=== TEST 4: headless Chromium shows the numbers of known traffic
--- http_config
    ai_consumer app sk-app-dashboard-0001;
    ai_price gpt-4o-mini* input=0.15 output=0.6;
    ai_price gpt-4o* input=2.5 output=10;
    ai_metrics_zone ai 4m;
--- config
    location /v1/ {
        ai_auth optional;
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_proxy_key env:TEST_AI_UPSTREAM_KEY;
    }
    location = /dashboard {
        ai_dashboard;
    }
--- exec
PYTHONPATH=t/sdk /usr/bin/python3 - <<'EOF'
from ai_log_check import *
for i in range(3):
    chat('gpt-4o', 'hello there', key='sk-app-dashboard-0001')
chat('gpt-4o-mini~delay_headers_ms=300', 'hello there')
request('POST', '/v1/chat/completions', '{"model": bad json')
chat('gpt-4o~status=500', 'hello there')
url = 'http://127.0.0.1:%d/dashboard' % PORT
html = chromium(url, '--dump-dom')
text, tables = dom(html)
for i in ('status', 'total-requests', 'total-tokens', 'total-prompt-tokens',
          'total-completion-tokens', 'total-cost', 'total-errors',
          'total-rejected', 'cache-hit-rate'):
    print('%s: %s' % (i, text.get(i)))
d, raw = feed()
lat = [sum(s['latency'][b] for s in d['slots']) for b in range(13)]
ttft = [sum(s['ttft'][b] for s in d['slots']) for b in range(13)]
for name, counts in (('latency', lat), ('ttft', ttft)):
    for q in (50, 95, 99):
        v = quantile(q / 100, counts, d['buckets_ms'])
        shown = text.get('%s-p%d' % (name, q))
        print('%s-p%d as the histogram says: %s' % (name, q,
              shown == ('%.1f ms' % v if v < 1000 else '%.2f s' % (v / 1000))))
print('latency-p95 in (250 ms, 500 ms]:',
      250 < float(text['latency-p95'].split()[0]) <= 500)
for t in ('table-models', 'table-consumers'):
    print(tables[t][0])
    for row in sorted(tables[t][1:]):
        print(row)
nokeys(['sk-app-dashboard-0001', 'sk-upstream-dashboard-42'],
       ('dom', html), ('feed', raw))
print('charts:', sorted(k for k in text if k.startswith('chart-')) ==
      sorted(['chart-requests-model', 'chart-tokens-model',
              'chart-cost-model', 'chart-requests-consumer',
              'chart-tokens-consumer', 'chart-cost-consumer',
              'chart-latency', 'chart-ttft', 'chart-cache',
              'chart-errors', 'chart-requests-target',
              'chart-requests-provider', 'chart-codes',
              'chart-fallbacks']))
os.makedirs('t/artifacts', exist_ok=True)
png = 't/artifacts/dashboard.png'
if os.path.exists(png):
    os.unlink(png)
chromium(url, '--screenshot=' + png, '--window-size=1280,900',
         '--hide-scrollbars')
with open(png, 'rb') as f:
    data = f.read()
print('screenshot:', data[:8] == b'\x89PNG\r\n\x1a\n' and len(data) > 20000)
EOF
--- response_body_like
^status: updated .*
total-requests: 6
total-tokens: 28
total-prompt-tokens: 12
total-completion-tokens: 16
total-cost: \$0\.000145
total-errors: 1
total-rejected: 1
cache-hit-rate: –
latency-p50 as the histogram says: True
latency-p95 as the histogram says: True
latency-p99 as the histogram says: True
ttft-p50 as the histogram says: True
ttft-p95 as the histogram says: True
ttft-p99 as the histogram says: True
latency-p95 in \(250 ms, 500 ms\]: True
\['model', 'requests', 'tokens', 'cost'\]
\['\(none\)', '2', '0', '\$0\.000000'\]
\['gpt-4o', '3', '21', '\$0\.000142'\]
\['gpt-4o-mini~delay_headers_ms=300', '1', '7', '\$0\.000003'\]
\['consumer', 'requests', 'tokens', 'cost'\]
\['\(anonymous\)', '3', '7', '\$0\.000003'\]
\['app', '3', '21', '\$0\.000142'\]
dom: no key
feed: no key
charts: True
screenshot: True
$
--- timeout: 90



=== TEST 5: the history survives a reload (HUP)
--- http_config
    ai_metrics_zone ai 4m;
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
chat('gpt-4o')
before, _ = feed()
print('before:', sum(s['requests'] for s in before['slots']))
print('reloaded:', reload_and_wait(signal.SIGHUP))
chat('gpt-4o')
after, _ = feed()
print('after:', sum(s['requests'] for s in after['slots']),
      'same zone:', after['started'] == before['started'],
      'earlier buckets kept:',
      all(any(a['t'] == b['t'] and a['requests'] >= b['requests']
              for a in after['slots']) for b in before['slots']))
EOF
--- response_body
before: 2
reloaded: True
after: 3 same zone: True earlier buckets kept: True



=== TEST 6: the budgets left, from the token limit's metric source, in the feed and in a table of the page
--- http_config
    ai_consumer app sk-app-dashboard-0001;
    ai_token_limit_zone team key=$ai_consumer;
    ai_metrics_zone ai 4m;
--- config
    location /v1/ {
        ai_auth optional;
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_token_budget team 100000;
    }
    location = /dashboard {
        ai_dashboard;
    }
--- exec
PYTHONPATH=t/sdk /usr/bin/python3 - <<'EOF'
from ai_log_check import *
chat('gpt-4o~usage_prompt=300,usage_completion=100', 'hello there',
     key='sk-app-dashboard-0001')
d, raw = feed()
print(d['sources'].splitlines()[-1])
html = chromium('http://127.0.0.1:%d/dashboard' % PORT, '--dump-dom')
text, tables = dom(html)
for row in tables['table-budgets']:
    print(row)
EOF
--- response_body
ai_token_budget_remaining{budget="team",count="tokens",key="app"} 99600
['budget', 'key', 'left']
['team (tokens)', 'app', '99600']
--- timeout: 90



=== TEST 7: the gateway's views in headless Chromium: targets, providers, key health, status codes, fallback rate, the label cap, and the time range the axis follows
--- http_config
    ai_metrics_zone ai 4m labels=3;
    ai_target busy http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 models=gpt-4o model=gpt-4o~status=503;
    ai_target good http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 models=gpt-4o;
    ai_target pool http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 key=env:TEST_AI_UPSTREAM_KEY key=env:TEST_AI_UPSTREAM_KEY models=gpt-4o model=gpt-4o~fail_first=1,status=429,retry_after=60;
    ai_target gone http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 key=env:TEST_AI_UPSTREAM_KEY models=gone model=gpt-4o~status=401;
--- config
    location /v1/ {
        ai_proxy busy good;
    }
    location /keys/v1/ {
        ai_proxy pool gone;
    }
    location = /dashboard {
        ai_dashboard;
    }
--- exec
PYTHONPATH=t/sdk /usr/bin/python3 - <<'EOF'
from ai_log_check import *
print(chat('gpt-4o')[0], chat('gpt-4o', path='/keys/v1/chat/completions')[0],
      chat('gone', path='/keys/v1/chat/completions')[0],
      chat('unserved')[0])
url = 'http://127.0.0.1:%d/dashboard' % PORT
def hhmm(t):
    return time.strftime('%H:%M', time.localtime(t))
def end():
    d = feed()[0]
    return d['now'] - d['now'] % d['interval'], d['interval']
for r, span in (('15m', 900), ('24h', 86400)):
    # the page's "now" is between two reads of the feed's
    before = end()
    text, tables = dom(chromium(url + '?range=' + r, '--dump-dom'))
    after = end()
    ok = []
    for x1, iv in (before, after):
        x0 = x1 - (span - iv)
        ok.append([text['axis-from'] == hhmm(x0), text['axis-to'] == hhmm(x1),
                   hhmm(x0) in text['chart-codes'],
                   hhmm(x1) in text['chart-codes']])
    print(r, text['window'], 'axis follows:',
          *(ok[0] if all(ok[0]) else ok[1]))
for i in ('fallback-rate', 'inflight-requests', 'inflight-streams',
          'label-cap', 'label-overflow'):
    print('%s: %s' % (i, text.get(i)))
for t in ('table-targets', 'table-providers', 'table-keys', 'table-codes',
          'table-labels'):
    print(tables[t][0])
    for row in sorted(tables[t][1:]):
        print(row)
png = 't/artifacts/dashboard-gateway.png'
os.makedirs('t/artifacts', exist_ok=True)
if os.path.exists(png):
    os.unlink(png)
chromium(url + '?range=15m', '--screenshot=' + png,
         '--window-size=1280,2200', '--hide-scrollbars')
with open(png, 'rb') as f:
    data = f.read()
print('screenshot:', data[:8] == b'\x89PNG\r\n\x1a\n' and len(data) > 20000)
EOF
--- response_body
200 200 502 404
15m last 15 min, 60 s buckets axis follows: True True True True
24h last 24 h, 60 s buckets axis follows: True True True True
fallback-rate: 50.0%
inflight-requests: 0
inflight-streams: 0
label-cap: 3
label-overflow: 2
['target', 'requests', 'errors', 'fallbacks', 'error rate']
['good', '1', '0', '1', '0.0%']
['other', '2', '1', '0', '50.0%']
['pool', '1', '0', '1', '0.0%']
['provider', 'requests', 'tokens']
['(none)', '1', '0']
['openai', '3', '10']
['target', 'usable', 'cooling', 'revoked', 'cooldowns', 'disables']
['busy', '0', '0', '0', '0', '0']
['gone', '0', '0', '1', '0', '1']
['good', '0', '0', '0', '0', '0']
['pool', '1', '1', '0', '1', '0']
['status', 'requests']
['2xx', '2']
['4xx', '1']
['5xx', '1']
['label', 'values', 'cap']
['consumer', '1', '3']
['endpoint', '1', '3']
['model', '3', '3']
['provider', '2', '3']
['target', '3', '3']
screenshot: True
--- error_log
refused the gateway's credentials
[error]
--- no_error_log
[alert]
--- timeout: 120
