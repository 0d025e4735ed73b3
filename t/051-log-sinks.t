# ai_log, the sinks: a file buffered with a flush timer, flushed when the
# worker exits, reopened on USR1 ("nginx -s reopen") like access_log;
# syslog over UDP; if= conditions; nginx -t errors.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: a buffered file is written when the flush timer fires
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_log logs/ai.jsonl buffer=64k flush=500ms;
    }
--- exec
PYTHONPATH=t/sdk /usr/bin/python3 - <<'EOF'
from ai_log_check import *
chat('gpt-4o')
chat('gpt-4o', stream=True)
print('at once:', len(lines()))
time.sleep(1.2)
print('after the flush:', len(lines()))
show(records(2)[1], ['model', 'stream', 'status', 'total_tokens'])
EOF
--- response_body
at once: 0
after the flush: 2
model: "gpt-4o"
status: 200
stream: true
total_tokens: 5



=== TEST 2: a buffered file without a timer is written when the worker exits
--- config
    access_log off;
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_log logs/access.log buffer=64k;
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":[{"role":"user","content":"buffered until exit"}]}
--- response_body_like
mock reply: buffered until exit
--- access_log_like
^\{"time":"[^"]+","request_id":"[0-9a-f]{32}","consumer":null,"client":"127\.0\.0\.1","route":"/v1/","endpoint":"chat","model":"gpt-4o",.*"status":200,"complete":true,"stream":false,"prompt_tokens":4,"completion_tokens":5,"cached_tokens":0,"reasoning_tokens":0,"total_tokens":9,.*"metadata":null\}$



=== TEST 3: USR1 reopens the files; buffered records go to the old file first
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_log logs/ai.jsonl;
        ai_log logs/buffered.jsonl buffer=64k flush=1h;
    }
--- exec
PYTHONPATH=t/sdk /usr/bin/python3 - <<'EOF'
from ai_log_check import *
import signal
logs = os.path.join(SERVROOT, 'logs')
buf = os.path.join(logs, 'buffered.jsonl')
truncate(buf)
chat('gpt-4o', 'first')
records(1)
print('before:', len(lines()), len(lines(buf)))
os.rename(LOG, LOG + '.1')
os.rename(buf, buf + '.1')
os.kill(master_pid(), signal.SIGUSR1)
deadline = time.time() + 5
while not os.path.exists(LOG) and time.time() < deadline:
    time.sleep(0.05)
time.sleep(0.3)
chat('gpt-4o', 'second')
records(1)
print('moved away:', len(lines(LOG + '.1')), len(lines(buf + '.1')))
print('reopened:', len(lines()), len(lines(buf)))
print(json.loads(lines(LOG + '.1')[0])['prompt_tokens'],
      json.loads(lines(buf + '.1')[0])['prompt_tokens'],
      json.loads(lines()[0])['prompt_tokens'])
EOF
--- response_body
before: 1 0
moved away: 1 1
reopened: 1 0
2 2 2
--- error_log
reopening logs



=== TEST 4: syslog: one datagram per record, with the tag and priority asked
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_log syslog:server=127.0.0.1:$TEST_NGINX_MOCK_PORT,facility=local3,severity=notice,tag=ai_gateway;
    }
--- exec
PYTHONPATH=t/sdk /usr/bin/python3 - <<'EOF'
from ai_log_check import *
# UDP on the mock's port number (the mock listens on TCP)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(('127.0.0.1', MOCK_PORT))
u.settimeout(5)
chat('gpt-4o', 'to syslog')
chat('gpt-4o~status=503', 'fails')
for _ in range(2):
    msg = u.recv(65536).decode('utf-8')
    m = re.match(r'^<(\d+)>\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ (\w+): (\{.*\})$',
                 msg)
    rec = json.loads(m.group(3))
    print(m.group(1), m.group(2), rec['model'], rec['status'],
          rec['prompt_tokens'])
EOF
--- response_body
157 ai_gateway gpt-4o 200 3
157 ai_gateway gpt-4o~status=503 503 None



=== TEST 5: if= keeps the records it is true for
--- http_config
    map $status $ai_failed {
        ~^[45]  1;
        default 0;
    }
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_log logs/ai.jsonl if=$ai_failed;
        ai_log logs/all.jsonl;
    }
--- exec
PYTHONPATH=t/sdk /usr/bin/python3 - <<'EOF'
from ai_log_check import *
truncate(os.path.join(SERVROOT, 'logs', 'all.jsonl'))
chat('gpt-4o')
chat('gpt-4o~status=500')
request('POST', '/v1/chat/completions', 'not json')
all_ = records(3, os.path.join(SERVROOT, 'logs', 'all.jsonl'))
print('all:', [r['status'] for r in all_])
print('failed:', [r['status'] for r in records(2)])
EOF
--- response_body
all: [200, 500, 400]
failed: [500, 400]



=== TEST 6: nginx -t: flush= without buffer=
--- config
    location /v1/ {
        ai_log logs/ai.jsonl flush=1s;
    }
--- must_die
--- error_log
"flush=" needs "buffer=" in "ai_log logs/ai.jsonl"



=== TEST 7: nginx -t: syslog cannot be buffered
--- config
    location /v1/ {
        ai_log syslog:server=127.0.0.1:514 buffer=4k;
    }
--- must_die
--- error_log
"ai_log" to syslog cannot be buffered



=== TEST 8: nginx -t: variables in the file name, unknown parameters
--- config
    location /v1/ {
        ai_log logs/$host.jsonl;
    }
--- must_die
--- error_log
"ai_log" directive does not support variables in the file name



=== TEST 9: nginx -t: an unknown parameter
--- config
    location /v1/ {
        ai_log logs/ai.jsonl gzip;
    }
--- must_die
--- error_log
invalid parameter "gzip"



=== TEST 10: nginx -t: the same file buffered twice with other sizes
--- config
    location /a/ {
        ai_log logs/ai.jsonl buffer=4k;
    }
    location /b/ {
        ai_log logs/ai.jsonl buffer=8k;
    }
--- must_die
--- error_log
is already buffered with other parameters



=== TEST 11: one buffered file: records made in its buffer, flushed when the next may not fit; a record whose bound passes the buffer made apart, in order; if= still applied
--- http_config
    map $http_x_keep $ai_keep {
        default 1;
        no      0;
    }
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_log logs/ai.jsonl buffer=8k flush=1h if=$ai_keep;
        ai_log_request_body on max=16k;
    }
--- exec
PYTHONPATH=t/sdk /usr/bin/python3 - <<'EOF'
from ai_log_check import *
import signal
truncate()
# small bodies: records made in the buffer (a bound of some 3 KB); large
# ones: a bound above 8k, made in the pool, buffered or written whole
sizes = [10, 100, 20, 1500, 50, 9000, 30, 200, 3000, 40, 60, 12000, 5]
sent = []
for i, n in enumerate(sizes):
    keep = (i % 5 != 3)
    text = ('r%02d ' % i) + 'x' * n
    st, _ = chat('gpt-4o', text, headers={} if keep else {'X-Keep': 'no'})
    assert st == 200, st
    if keep:
        sent.append(text)
def content(r):
    return json.loads(r['request_body'])['messages'][0]['content']
before = [content(json.loads(l)) for l in lines()]
os.kill(master_pid(), signal.SIGHUP)
deadline = time.time() + 10
while len(lines()) < len(sent) and time.time() < deadline:
    time.sleep(0.1)
got = [content(json.loads(l)) for l in lines()]
print('records:', len(got), 'of', len(sent))
print('in order, whole:', got == sent)
print('some written before the reload, the first ones:',
      0 < len(before) < len(sent) and got[:len(before)] == before)
EOF
--- response_body
records: 11 of 11
in order, whole: True
some written before the reload, the first ones: True



=== TEST 12: a record whose bound passes the buffer does not flush it: large bodies stay buffered until the flush
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_log logs/ai.jsonl buffer=64k flush=1h;
        ai_log_request_body on max=16k;
    }
--- exec
PYTHONPATH=t/sdk /usr/bin/python3 - <<'EOF'
from ai_log_check import *
import signal
truncate()
# each record is some 13 KB, its bound (every byte escaped) some 75 KB
for i in range(3):
    st, _ = chat('gpt-4o', ('b%d ' % i) + 'y' * 12000)
    assert st == 200, st
print('before the flush:', len(lines()))
os.kill(master_pid(), signal.SIGHUP)
deadline = time.time() + 10
while len(lines()) < 3 and time.time() < deadline:
    time.sleep(0.1)
print('after:', len(lines()))
EOF
--- response_body
before the flush: 0
after: 3
