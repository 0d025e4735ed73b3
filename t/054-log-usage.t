# ai_log and hostile usage: a provider that reports huge, negative, string
# or overflowing token counts gets records with counts in [0, 2^40] and a
# cost in [0, 1e9] USD, metrics that never wrap or go negative, and the
# counts of honest requests stay exact next to them.  The lying providers
# are locations of the same server, reached through ai_target.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: lying usage: the records, the metrics and the dashboard stay in range
--- http_config
    ai_price liar-* input=2.5 output=10;
    ai_price gpt-4o input=2.5 output=10;
    ai_target big http://127.0.0.1:$TEST_NGINX_SERVER_PORT/big models=liar-big;
    ai_target huge http://127.0.0.1:$TEST_NGINX_SERVER_PORT/huge models=liar-huge;
    ai_target neg http://127.0.0.1:$TEST_NGINX_SERVER_PORT/neg models=liar-neg;
    ai_target str http://127.0.0.1:$TEST_NGINX_SERVER_PORT/str models=liar-str;
    ai_target sse http://127.0.0.1:$TEST_NGINX_SERVER_PORT/sse models=liar-sse;
    ai_target oa http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 models=gpt-*;
    ai_metrics_zone ai 1m history=10m;
--- config
    location /v1/ {
        ai_proxy big huge neg str sse oa;
        ai_log logs/ai.jsonl;
    }
    location /big/ {
        default_type application/json;
        return 200 '{"id":"x","object":"chat.completion","model":"liar-big","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9000000000000000000,"completion_tokens":9e18,"total_tokens":1.8e19,"prompt_tokens_details":{"cached_tokens":4e18},"completion_tokens_details":{"reasoning_tokens":9e18}}}';
    }
    location /huge/ {
        default_type application/json;
        return 200 '{"id":"x","object":"chat.completion","model":"liar-huge","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1e300,"completion_tokens":1e300,"total_tokens":1e300}}';
    }
    location /neg/ {
        default_type application/json;
        return 200 '{"id":"x","object":"chat.completion","model":"liar-neg","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":-5,"completion_tokens":-1e300,"total_tokens":-9223372036854775809}}';
    }
    location /str/ {
        default_type application/json;
        return 200 '{"id":"x","object":"chat.completion","model":"liar-str","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":"12","completion_tokens":"9e99","total_tokens":null}}';
    }
    location /sse/ {
        default_type text/event-stream;
        return 200 'data: {"id":"x","object":"chat.completion.chunk","model":"liar-sse","choices":[{"index":0,"delta":{"role":"assistant","content":"ok"},"finish_reason":null}]}\n\ndata: {"id":"x","object":"chat.completion.chunk","model":"liar-sse","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":1e19,"completion_tokens":9.2e18,"total_tokens":1e300}}\n\ndata: [DONE]\n\n';
    }
    location = /metrics {
        ai_metrics;
    }
    location = /dashboard {
        ai_dashboard;
    }
--- exec
PYTHONPATH=t/sdk /usr/bin/python3 - <<'EOF'
from ai_log_check import *
import math
MAXT = 2 ** 40
st = []
for m in ('liar-big', 'liar-huge', 'liar-neg', 'liar-str', 'liar-big',
          'liar-huge'):
    st.append(chat(m)[0])
st.append(chat('liar-sse', stream=True)[0])
print('statuses:', st)
def tokens_ok(v):
    return v is None or (isinstance(v, int) and 0 <= v <= MAXT)
def cost_ok(v, n=1):
    return v is None or (isinstance(v, (int, float)) and math.isfinite(v)
                         and 0 <= v <= n * 1e9)
rs = records(7)
for r in rs:
    print(r['model'],
          'tokens:', all(tokens_ok(r[k]) for k in (
              'prompt_tokens', 'completion_tokens', 'cached_tokens',
              'reasoning_tokens', 'total_tokens')),
          'cost:', cost_ok(r['cost_usd']),
          'tps:', r['output_tokens_per_second'] is None
                  or 0 <= r['output_tokens_per_second'] < 1e18)
def sane(f):
    ok = True
    for s in f['ai_requests'].samples:
        n = s.value
        lab = dict((k, v) for k, v in s.labels.items())
        for t in ('prompt', 'completion', 'cached', 'reasoning'):
            v = total(f, 'ai_tokens', type=t, **lab)
            ok = ok and 0 <= v <= n * MAXT
        ok = ok and cost_ok(total(f, 'ai_cost_usd', **lab), n)
    return ok
text, f = metrics()
print('metrics in range:', sane(f))
before = dict((t, total(f, 'ai_tokens', type=t))
              for t in ('prompt', 'completion'))
print(chat('gpt-4o', 'hello')[0])
text, f = metrics()
print('still in range:', sane(f))
print('honest request added exactly:',
      [total(f, 'ai_tokens', type=t) - before[t]
       for t in ('prompt', 'completion')])
print('honest series:', total(f, 'ai_requests', model='gpt-4o'),
      total(f, 'ai_tokens', model='gpt-4o', type='prompt'),
      total(f, 'ai_tokens', model='gpt-4o', type='completion'),
      total(f, 'ai_cost_usd', model='gpt-4o'))
d, raw = feed()
life = d['lifetime']
print('lifetime:', life['requests'],
      all(isinstance(life[k], int) and 0 <= life[k] <= 8 * MAXT
          for k in ('prompt_tokens', 'completion_tokens')),
      cost_ok(life['cost_usd'], 8))
print('slots:', all(cost_ok(s['cost_usd'], 8) and 0 <= s['prompt_tokens']
                    <= 8 * MAXT for s in d['slots']))
EOF
--- response_body
statuses: [200, 200, 200, 200, 200, 200, 200]
liar-big tokens: True cost: True tps: True
liar-huge tokens: True cost: True tps: True
liar-neg tokens: True cost: True tps: True
liar-str tokens: True cost: True tps: True
liar-big tokens: True cost: True tps: True
liar-huge tokens: True cost: True tps: True
liar-sse tokens: True cost: True tps: True
metrics in range: True
200
still in range: True
honest request added exactly: [2.0, 3.0]
honest series: 1.0 2.0 3.0 3.5e-05
lifetime: 8 True True
slots: True



=== TEST 2: a stream cut before the provider's usage: counted locally, and said so
# OpenAI: the prompt's 9 bytes are 3 tokens, each event of the answer one;
# Anthropic: the prompt as message_start said (6), the text deltas counted
--- http_config
    ai_target oa http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    ai_target an http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic;
    log_format src '$uri $ai_usage_source [$ai_total_tokens]';
--- config
    location /o/ {
        ai_proxy oa;
        ai_log logs/usage.jsonl;
        access_log logs/access.log src;
    }
    location /a/ {
        ai_proxy an;
        ai_log logs/usage.jsonl;
        access_log logs/access.log src;
    }
--- exec
u=http://127.0.0.1:$TEST_NGINX_SERVER_PORT
for p in o a; do
    # cut after three events, then complete
    curl -sN $u/$p/v1/chat/completions -d '{"model":"m~disconnect_after=3","stream":true,"messages":[{"role":"user","content":"a b c d e"}]}' > /dev/null
    curl -sN $u/$p/v1/chat/completions -d '{"model":"m","stream":true,"messages":[{"role":"user","content":"a b c d e"}]}' > /dev/null
done
sleep 0.3
grep -o '"total_tokens":[^,]*,"usage_source":[^,]*\(,"estimated_tokens":{[^}]*}\)\?' $TEST_NGINX_SERVROOT/logs/usage.jsonl
--- response_body
"total_tokens":null,"usage_source":"estimated","estimated_tokens":{"prompt_tokens":3,"completion_tokens":4}
"total_tokens":13,"usage_source":"provider"
"total_tokens":7,"usage_source":"estimated","estimated_tokens":{"prompt_tokens":6,"completion_tokens":3}
"total_tokens":13,"usage_source":"provider"
--- access_log
/o/v1/chat/completions estimated [-]
/o/v1/chat/completions provider [13]
/a/v1/chat/completions estimated [7]
/a/v1/chat/completions provider [13]
--- no_error_log
[error]
