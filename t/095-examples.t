# docs/examples: every configuration passes nginx -t and serves its case
# against the mock.  scripts/example-conf.sh makes each one local (the
# build's modules, a private prefix, every upstream pointed at the mock,
# the env: keys from systemd/provider-keys.env); the example's nginx
# listens on TEST_NGINX_SERVER_PORT + 30 (and + 31), and its error log must
# have nothing at [error] or above, and no log any key.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: openai-compatible.conf: one vLLM/Ollama upstream, consumer keys, access log with tokens
--- config
    location = /t { return 200; }
--- exec
set -e
d=$TEST_NGINX_SERVROOT/example-openai-compatible
rm -rf $d
p=$((TEST_NGINX_SERVER_PORT + 30))
scripts/example-conf.sh docs/examples/openai-compatible.conf $d \
    $TEST_NGINX_MODULES $TEST_NGINX_MOCK_PORT $p
. $d/env
nginx -t -q -p $d/ -c $d/nginx.conf
nginx -p $d/ -c $d/nginx.conf
stop() {
    nginx -p $d/ -c $d/nginx.conf -s quit
    i=0; while [ -f $d/nginx.pid ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
}
trap '[ -f $d/nginx.pid ] && stop' EXIT
sleep 0.3
u=http://127.0.0.1:$p
k='Authorization: Bearer sk-example-alice-0123456789'
curl -s $u/v1/chat/completions -H "$k" \
     -d '{"model":"default","messages":[{"role":"user","content":"hi"}]}' \
     | grep -o '"model":"Qwen/Qwen2.5-7B-Instruct"'
curl -sN $u/v1/chat/completions -H "$k" \
     -d '{"model":"default","stream":true,"messages":[{"role":"user","content":"hi"}]}' \
     | grep -c '^data: \[DONE\]'
curl -s -o /dev/null -w '%{http_code}\n' $u/v1/chat/completions \
     -d '{"model":"default","messages":[{"role":"user","content":"hi"}]}'
curl -s $u/metrics | grep -c '^ai_requests_total{'
curl -s -o /dev/null -w '%{http_code}\n' $u/dashboard
stop
grep -c '^127.0.0.1 alice .* 200 default 2+3 ' $d/logs/ai-access.log
grep -c '"consumer":"alice"' $d/logs/ai.jsonl
if grep -E '\[(error|alert|crit|emerg)\]' $d/logs/error.log; then exit 1; fi
! grep -rqE 'sk-example|sk-made-up|replace-me' $d/logs
--- response_body
"model":"Qwen/Qwen2.5-7B-Instruct"
1
401
2
200
2
2
--- no_error_log
[error]



=== TEST 2: fallback.conf: OpenAI, Anthropic and Gemini by model, a failed provider falls back to the backup target; a model no primary serves is a 404, not the backup's
--- config
    location = /t { return 200; }
--- exec
set -e
d=$TEST_NGINX_SERVROOT/example-fallback
rm -rf $d
p=$((TEST_NGINX_SERVER_PORT + 30))
scripts/example-conf.sh docs/examples/fallback.conf $d \
    $TEST_NGINX_MODULES $TEST_NGINX_MOCK_PORT $p
. $d/env
nginx -t -q -p $d/ -c $d/nginx.conf
nginx -p $d/ -c $d/nginx.conf
stop() {
    nginx -p $d/ -c $d/nginx.conf -s quit
    i=0; while [ -f $d/nginx.pid ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
}
trap '[ -f $d/nginx.pid ] && stop' EXIT
sleep 0.3
u=http://127.0.0.1:$p
k='Authorization: Bearer sk-example-alice-0123456789'
for m in gpt-4o fast smart gemini-2.5-flash 'gpt-4o~status=503'; do
    curl -s $u/v1/chat/completions -H "$k" \
         -d '{"model":"'$m'","messages":[{"role":"user","content":"hi"}]}' \
         | grep -o '"content":"mock reply: hi"'
done
curl -s $u/v1/chat/completions -H "$k" \
     -d '{"model":"mistral-large","messages":[{"role":"user","content":"hi"}]}' \
     | grep -o '"code":"model_not_found"'
curl -s $u/v1/messages -H 'x-api-key: sk-example-alice-0123456789' \
     -d '{"model":"gpt-4o","max_tokens":9,"messages":[{"role":"user","content":"hi"}]}' \
     | grep -o '"type":"message"'
stop
grep -o '"model":"[^"]*","upstream_model":"[^"]*","provider":"[a-z]*","target":"[a-z]*","attempts":[0-9]*,"status":[0-9]*' \
     $d/logs/ai.jsonl | sort
if grep -E '\[(error|alert|crit|emerg)\]' $d/logs/error.log; then exit 1; fi
! grep -rqE 'sk-example|sk-made-up|replace-me' $d/logs
--- response_body
"content":"mock reply: hi"
"content":"mock reply: hi"
"content":"mock reply: hi"
"content":"mock reply: hi"
"content":"mock reply: hi"
"code":"model_not_found"
"type":"message"
"model":"fast","upstream_model":"gpt-4o-mini","provider":"openai","target":"openai","attempts":1,"status":200
"model":"gemini-2.5-flash","upstream_model":"gemini-2.5-flash","provider":"gemini","target":"gemini","attempts":1,"status":200
"model":"gpt-4o","upstream_model":"gpt-4o","provider":"openai","target":"openai","attempts":1,"status":200
"model":"gpt-4o","upstream_model":"gpt-4o","provider":"openai","target":"openai","attempts":1,"status":200
"model":"gpt-4o~status=503","upstream_model":"claude-sonnet-4-5","provider":"anthropic","target":"fallback","attempts":2,"status":200
"model":"smart","upstream_model":"claude-sonnet-4-5","provider":"anthropic","target":"anthropic","attempts":1,"status":200
--- no_error_log
[error]



=== TEST 3: teams.conf: each consumer's team picks its providers and models, a rate per consumer
--- config
    location = /t { return 200; }
--- exec
set -e
d=$TEST_NGINX_SERVROOT/example-teams
rm -rf $d
p=$((TEST_NGINX_SERVER_PORT + 30))
scripts/example-conf.sh docs/examples/teams.conf $d \
    $TEST_NGINX_MODULES $TEST_NGINX_MOCK_PORT $p
. $d/env
nginx -t -q -p $d/ -c $d/nginx.conf
nginx -p $d/ -c $d/nginx.conf
stop() {
    nginx -p $d/ -c $d/nginx.conf -s quit
    i=0; while [ -f $d/nginx.pid ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
}
trap '[ -f $d/nginx.pid ] && stop' EXIT
sleep 0.3
u=http://127.0.0.1:$p
chat() {
    curl -s -w ' %{http_code}\n' $u/v1/chat/completions \
         -H "Authorization: Bearer sk-example-$1-0123456789" \
         -d '{"model":"'$2'","messages":[{"role":"user","content":"hi"}]}' \
         | grep -oE '"model":"[^"]*"|"code":"[a-z_]*"|"type":"permission_error"| [0-9]+$' \
         | tr -s '\n ' '  ' | sed 's/ *$//'
    echo
}
chat research-bob smart
chat research-carol o3-mini
chat support-dave gpt-4o
chat alice fast
chat alice o3-mini
chat alice claude-3-5-haiku
chat nobody fast
curl -s -o /dev/null -w '%{http_code}\n' $u/team/research/v1/chat/completions \
     -d '{"model":"smart","messages":[{"role":"user","content":"hi"}]}'
# 120 requests a minute: a client sending in a row is refused at the
# 121st; the answer shown is the first 429
i=0
while [ $i -lt 150 ]; do
    r=$(chat support-dave x)
    case "$r" in *' 429') break;; esac
    i=$((i+1))
done
echo "$r"
stop
grep -c ' research research-bob smart anthropic 200 ' $d/logs/ai-teams.log
grep -c ' support support-dave gpt-4o support-mini 200 ' $d/logs/ai-teams.log
grep -c ' general alice o3-mini - 403 ' $d/logs/ai-teams.log
if grep -E '\[(error|alert|crit|emerg)\]' $d/logs/error.log; then exit 1; fi
grep -c '\[warn\] .*ai_token_limit "per_consumer": over 120 requests per minute, refused' $d/logs/error.log
! grep -rqE 'sk-example|sk-made-up|replace-me' $d/logs
--- response_body
"model":"smart" 200
"model":"o3-mini" 200
"model":"gpt-4o-mini" 200
"model":"gpt-4o-mini" 200
"type":"permission_error" 403
"code":"model_not_found" 404
"code":"invalid_api_key" 401
404
"code":"rate_limit_exceeded" 429
1
1
1
1
--- no_error_log
[error]



=== TEST 4: multi-node.conf: a pool of model servers and a provider, a health check, metrics on their own port
--- config
    location = /t { return 200; }
--- exec
set -e
d=$TEST_NGINX_SERVROOT/example-multi-node
rm -rf $d
p=$((TEST_NGINX_SERVER_PORT + 30))
scripts/example-conf.sh docs/examples/multi-node.conf $d \
    $TEST_NGINX_MODULES $TEST_NGINX_MOCK_PORT $p
. $d/env
nginx -t -q -p $d/ -c $d/nginx.conf
nginx -p $d/ -c $d/nginx.conf
stop() {
    nginx -p $d/ -c $d/nginx.conf -s quit
    i=0; while [ -f $d/nginx.pid ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
}
trap '[ -f $d/nginx.pid ] && stop' EXIT
sleep 0.3
u=http://127.0.0.1:$p
k='Authorization: Bearer sk-example-alice-0123456789'
for m in qwen3-8b llama-3.1-8b gpt-4o; do
    curl -s $u/v1/chat/completions -H "$k" \
         -d '{"model":"'$m'","messages":[{"role":"user","content":"hi"}]}' \
         | grep -o '"content":"mock reply: hi"'
done
curl -s $u/healthz
curl -s http://127.0.0.1:$((p + 1))/metrics | grep -c '^ai_requests_total{'
stop
grep -o '"model":"[^"]*","upstream_model":"[^"]*","provider":"[a-z]*","target":"[a-z]*"' \
     $d/logs/ai.jsonl | sort
if grep -E '\[(error|alert|crit|emerg)\]' $d/logs/error.log; then exit 1; fi
! grep -rqE 'sk-example|sk-made-up|replace-me' $d/logs
--- response_body
"content":"mock reply: hi"
"content":"mock reply: hi"
"content":"mock reply: hi"
ok
3
"model":"gpt-4o","upstream_model":"gpt-4o","provider":"openai","target":"openai"
"model":"llama-3.1-8b","upstream_model":"llama-3.1-8b","provider":"openai","target":"cluster"
"model":"qwen3-8b","upstream_model":"qwen3-8b","provider":"openai","target":"cluster"
--- no_error_log
[error]



=== TEST 5: claude-code.conf: Claude Code's requests on the Anthropic door, served by an OpenAI-compatible provider
--- config
    location = /t { return 200; }
--- exec
set -e
d=$TEST_NGINX_SERVROOT/example-claude-code
rm -rf $d
p=$((TEST_NGINX_SERVER_PORT + 30))
scripts/example-conf.sh docs/examples/claude-code.conf $d \
    $TEST_NGINX_MODULES $TEST_NGINX_MOCK_PORT $p
. $d/env
nginx -t -q -p $d/ -c $d/nginx.conf
nginx -p $d/ -c $d/nginx.conf
stop() {
    nginx -p $d/ -c $d/nginx.conf -s quit
    i=0; while [ -f $d/nginx.pid ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
}
trap '[ -f $d/nginx.pid ] && stop' EXIT
sleep 0.3
u=http://127.0.0.1:$p
# as Claude Code sends them: ?beta=true, the consumer key as a bearer token
curl -sN "$u/v1/messages?beta=true" \
     -H 'Authorization: Bearer sk-example-alice-0123456789' \
     -H 'anthropic-version: 2023-06-01' -H 'anthropic-beta: fine-grained-tool-streaming-2025-05-14' \
     -d '{"model":"claude-sonnet-4-5-20250929","max_tokens":512,"stream":true,"system":[{"type":"text","text":"You are Claude Code."}],"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}' \
     | grep -E '^event: (message_start|message_stop)$'
curl -s "$u/v1/messages?beta=true" -H 'x-api-key: sk-example-alice-0123456789' \
     -d '{"model":"claude-haiku-4-5-20251001","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}' \
     | grep -o '"text":"mock reply: hi"'
curl -s -D - -w '\ncode %{http_code}\n' $u/v1/messages/count_tokens -H 'x-api-key: sk-example-alice-0123456789' \
     -d '{"model":"claude-haiku-4-5-20251001","messages":[{"role":"user","content":"hi"}]}' \
     | tr -d '\r' | grep -oE '^X-AI-Token-Estimate: true$|"input_tokens":[0-9]+|^code [0-9]+$' \
     | tr -s '\n ' '  ' | sed 's/ *$//'
echo
stop
grep -o '"model":"[^"]*","upstream_model":"[^"]*","provider":"[a-z]*","target":"[a-z]*"' \
     $d/logs/ai.jsonl | sort
if grep -E '\[(error|alert|crit|emerg)\]' $d/logs/error.log; then exit 1; fi
! grep -rqE 'sk-example|sk-made-up|replace-me' $d/logs
--- response_body
event: message_start
event: message_stop
"text":"mock reply: hi"
X-AI-Token-Estimate: true "input_tokens":10 code 200
"model":"claude-haiku-4-5-20251001","upstream_model":"gpt-4.1-mini","provider":"openai","target":"small"
"model":"claude-sonnet-4-5-20250929","upstream_model":"gpt-4.1","provider":"openai","target":"main"
--- no_error_log
[error]



=== TEST 6: the systemd drop-in is valid, and its EnvironmentFile has every env: key the examples name
--- config
    location = /t { return 200; }
--- exec
set -e
s=docs/examples/systemd
env=$s/provider-keys.env
# every "env NAME;" of an example, and the drop-in's list, in the file
for n in $(sed -n 's/^env \([A-Z0-9_]*\);$/\1/p' docs/examples/*.conf) \
         $(sed -n 's/^#     env \([A-Z0-9_]*\);$/\1/p' $s/nginx.service.d/ai-gateway.conf); do
    grep -q "^$n=" $env || { echo "$n is not in $env"; exit 1; }
done
echo "env ok"
grep -c '^EnvironmentFile=/etc/nginx/ai/provider-keys.env$' $s/nginx.service.d/ai-gateway.conf
# the drop-in over Debian's unit, as systemd reads it (offline)
if command -v systemd-analyze >/dev/null && [ -f /lib/systemd/system/nginx.service ]; then
    v=$TEST_NGINX_SERVROOT/systemd-verify
    rm -rf $v
    mkdir -p $v/nginx.service.d
    cp /lib/systemd/system/nginx.service $v/
    cp $s/nginx.service.d/ai-gateway.conf $v/nginx.service.d/
    # no warning about the unit or the drop-in (unknown keys, bad lines)
    (cd $v && systemd-analyze verify ./nginx.service) > $v/out 2>&1 \
        || { cat $v/out; exit 1; }
    if grep -E 'ai-gateway\.conf|nginx\.service' $v/out; then exit 1; fi
    # the drop-in is read, with its EnvironmentFile
    (cd $v && SYSTEMD_LOG_LEVEL=debug systemd-analyze verify ./nginx.service) \
        > $v/debug 2>&1
    grep -q 'DropIn Path: .*/nginx.service.d/ai-gateway.conf' $v/debug
    grep -q 'EnvironmentFile: /etc/nginx/ai/provider-keys.env' $v/debug
fi
echo "drop-in ok"
--- response_body
env ok
1
drop-in ok
--- no_error_log
[error]



=== TEST 7: every example of docs/examples is checked here
--- config
    location = /t { return 200; }
--- exec
for f in docs/examples/*.conf; do
    grep -q "^scripts/example-conf.sh $f " t/095-examples.t \
        || echo "$f is not checked by t/095-examples.t"
done
echo done
--- response_body
done
--- no_error_log
[error]
