"""Helpers for the ai_log suites (t/05*.t), run from their exec sections:

    PYTHONPATH=t/sdk /usr/bin/python3 - <<'EOF'
    from ai_log_check import *
    chat('gpt-4o', key='sk-...')
    for r in records(1): show(r)
    EOF

They send requests to the gateway under test, read the JSON Lines records
(strictly: every line must be valid JSON), print them with the values that
change from run to run masked, and parse the Prometheus exposition with
Debian's python3-prometheus-client (hence /usr/bin/python3).
"""

import calendar
import http.client
import json
import os
import re
import socket
import time

PORT = int(os.environ.get('TEST_NGINX_SERVER_PORT', '1984'))
MOCK_PORT = int(os.environ.get('TEST_NGINX_MOCK_PORT', '1985'))
SERVROOT = os.environ.get('TEST_NGINX_SERVROOT', 't/servroot')
LOG = os.path.join(SERVROOT, 'logs', 'ai.jsonl')
ERROR_LOG = os.path.join(SERVROOT, 'logs', 'error.log')


def truncate(path=LOG):
    """empties a log file that nginx appends to"""
    if os.path.exists(path):
        open(path, 'wb').close()


# the servroot's logs/ outlives a block: each block's records start here
truncate()


def request(method, path, body=None, headers=None, timeout=15):
    """one request on its own connection: (status, body bytes, headers)"""
    c = http.client.HTTPConnection('127.0.0.1', PORT, timeout=timeout)
    if isinstance(body, (dict, list)):
        body = json.dumps(body, ensure_ascii=False)
    if isinstance(body, str):
        body = body.encode('utf-8')
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data, dict((k.lower(), v) for k, v in r.getheaders())


def chat_body(model, text='hello', stream=False, usage=True, **extra):
    body = {'model': model, 'messages': [{'role': 'user', 'content': text}]}
    if stream:
        body['stream'] = True
        if usage:
            body['stream_options'] = {'include_usage': True}
    body.update(extra)
    return body


def chat(model, text='hello', key=None, stream=False, usage=True,
         headers=None, path='/v1/chat/completions', **extra):
    """a chat completion: (status, body bytes)"""
    h = {'Content-Type': 'application/json'}
    if key:
        h['Authorization'] = 'Bearer ' + key
    h.update(headers or {})
    st, data, _ = request('POST', path, chat_body(model, text, stream, usage,
                                                  **extra), h)
    return st, data


def abort(path, body, until=b'data:', headers=None):
    """sends a request, reads until `until` is in the response (the first
    event of a stream), then closes the connection: a client that gives
    up.  Returns what was read."""
    raw = json.dumps(body, ensure_ascii=False).encode('utf-8')
    head = ('POST %s HTTP/1.1\r\nHost: localhost\r\n'
            'Content-Type: application/json\r\nContent-Length: %d\r\n'
            % (path, len(raw)))
    for k, v in (headers or {}).items():
        head += '%s: %s\r\n' % (k, v)
    s = socket.create_connection(('127.0.0.1', PORT), timeout=10)
    s.sendall(head.encode() + b'\r\n' + raw)
    data = b''
    while until not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    return data


def lines(path=LOG):
    try:
        with open(path, 'rb') as f:
            return [l for l in f.read().split(b'\n') if l]
    except FileNotFoundError:
        return []


def records(n, path=LOG, timeout=10):
    """the records of the file once it has n of them (or at the timeout),
    each parsed as strict JSON (NaN, Infinity and bad UTF-8 refused)"""
    deadline = time.time() + timeout
    while len(lines(path)) < n and time.time() < deadline:
        time.sleep(0.05)
    out = []
    for l in lines(path):
        out.append(json.loads(l.decode('utf-8'), parse_constant=_bad))
    return out


def _bad(name):
    raise ValueError('not JSON: ' + name)


TIME_RE = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$')


def _mask(k, v):
    if k == 'time':
        ok = isinstance(v, str) and TIME_RE.match(v) and abs(
            calendar.timegm(time.strptime(v[:19], '%Y-%m-%dT%H:%M:%S'))
            - time.time()) < 300
        return '<time>' if ok else 'BAD %r' % v
    if k == 'request_id':
        return '<id>' if re.match(r'^[0-9a-f]{32}$', v or '') else 'BAD %r' % v
    if k in ('latency_ms', 'ttft_ms'):
        if v is None:
            return 'null'
        return '<ms>' if isinstance(v, int) and v >= 0 else 'BAD %r' % v
    if k == 'output_tokens_per_second':
        if v is None:
            return '<number|null>'
        return '<number|null>' if isinstance(v, (int, float)) and v > 0 \
            else 'BAD %r' % v
    if k == 'trail' and isinstance(v, list):
        v = [dict(a, ms='<ms>' if isinstance(a.get('ms'), int)
                  and a['ms'] >= 0 else 'BAD %r' % a.get('ms'))
             for a in v]
        return json.dumps(v, ensure_ascii=False).replace(
            ':%d' % MOCK_PORT, ':$MOCK')
    if k == 'cost_usd' and isinstance(v, float):
        return '%.9f' % v
    s = json.dumps(v, ensure_ascii=False)
    if k == 'target':
        s = s.replace(':%d' % MOCK_PORT, ':$MOCK')
    return s


def show(rec, only=None):
    """prints a record, one "key: value" line each, in the record's order"""
    for k, v in rec.items():
        if only is None or k in only:
            print('%s: %s' % (k, _mask(k, v)))


def show_keys(rec, only):
    """prints the keys named, in the order named"""
    for k in only:
        print('%s: %s' % (k, _mask(k, rec[k])))


def keys(rec):
    print(' '.join(rec.keys()))


def nokeys(secrets, *sources):
    """checks that no secret string is in any source (a file name, or a
    (name, text) pair); prints one line per source"""
    for src in sources:
        if isinstance(src, tuple):
            name, text = src
        else:
            name = os.path.basename(src)
            try:
                with open(src, 'rb') as f:
                    text = f.read().decode('utf-8', 'replace')
            except FileNotFoundError:
                text = ''
        if isinstance(text, bytes):
            text = text.decode('utf-8', 'replace')
        found = [s for s in secrets if s in text]
        print('%s: %s' % (name, 'KEYS FOUND %r' % found if found
                          else 'no key'))


def metrics(path='/metrics'):
    """(text, {family name: family}) parsed by prometheus_client"""
    from prometheus_client.parser import text_string_to_metric_families
    st, data, _ = request('GET', path)
    if st != 200:
        raise RuntimeError('GET %s: %d' % (path, st))
    text = data.decode('utf-8')
    fams = {}
    for f in text_string_to_metric_families(text):
        if f.name in fams:
            raise RuntimeError('family %s twice' % f.name)
        fams[f.name] = f
    return text, fams


def total(fams, family, sample=None, **labels):
    """the sum of the samples of a family (sample: its full name, e.g.
    ai_request_duration_seconds_count) whose labels match"""
    n = 0
    for s in fams[family].samples:
        if sample and s.name != sample:
            continue
        if all(s.labels.get(k) == v for k, v in labels.items()):
            n += s.value
    return n


def feed(path='/dashboard'):
    st, data, _ = request('GET', path + '?format=json')
    if st != 200:
        raise RuntimeError('GET %s: %d' % (path, st))
    return json.loads(data.decode('utf-8'), parse_constant=_bad), data


def quantile(q, counts, bounds):
    """the dashboard's percentile (Prometheus' histogram_quantile)"""
    total_ = sum(counts)
    if total_ == 0:
        return None
    rank = q * total_
    cum = 0
    for i, c in enumerate(counts):
        prev = cum
        cum += c
        if c > 0 and cum >= rank:
            if i >= len(bounds):
                return bounds[-1]
            lo = bounds[i - 1] if i else 0
            return lo + (bounds[i] - lo) * (rank - prev) / c
    return bounds[-1]


def master_pid():
    with open(os.path.join(SERVROOT, 'logs', 'nginx.pid')) as f:
        return int(f.read().strip())


def worker_pids():
    """the pids of the master's children"""
    mp = master_pid()
    out = []
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % d) as f:
                st = f.read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        if int(st[1]) == mp and st[0] != 'Z':
            out.append(int(d))
    return sorted(out)


def reload_and_wait(sig, timeout=10):
    """sends sig (signal.SIGHUP...) to the master and waits until the
    workers were replaced"""
    old = set(worker_pids())
    os.kill(master_pid(), sig)
    deadline = time.time() + timeout
    while time.time() < deadline:
        now = set(worker_pids())
        if now and not (now & old):
            time.sleep(0.2)
            return True
        time.sleep(0.05)
    return False


CHROMIUM = ['chromium', '--headless', '--no-sandbox', '--disable-gpu',
            '--disable-quic', '--no-first-run',
            '--disable-background-networking', '--disable-component-update',
            '--disable-sync', '--virtual-time-budget=5000']


def chromium(url, *args):
    """runs headless Chromium on url with a fresh profile: its stdout"""
    import shutil
    import subprocess
    import tempfile
    profile = tempfile.mkdtemp(prefix='ai-log-chromium-')
    try:
        p = subprocess.run(CHROMIUM + ['--user-data-dir=' + profile]
                           + list(args) + [url], capture_output=True,
                           timeout=60)
        return p.stdout.decode('utf-8')
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def dom(html):
    """the text of every element with an id, and the rows of the tables
    (by id): ({id: text}, {table id: [[cell, ...], ...]})"""
    from html.parser import HTMLParser

    class P(HTMLParser):
        def __init__(self):
            super().__init__()
            self.stack = []
            self.text = {}
            self.tables = {}
            self.table = None
            self.row = None

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag in ('meta', 'link', 'br', 'img', 'input', 'hr', 'col',
                       'area', 'base', 'embed', 'source', 'track', 'wbr'):
                return
            self.stack.append(a.get('id'))
            if tag == 'table' and a.get('id'):
                self.table = self.tables.setdefault(a['id'], [])
            elif tag == 'tr' and self.table is not None:
                self.row = []
                self.table.append(self.row)
            elif tag in ('td', 'th') and self.row is not None:
                self.row.append('')

        def handle_endtag(self, tag):
            if self.stack:
                self.stack.pop()
            if tag == 'table':
                self.table = None
                self.row = None

        def handle_data(self, data):
            for i in self.stack:
                if i:
                    self.text[i] = self.text.get(i, '') + data
            if self.row:
                self.row[-1] += data

    p = P()
    p.feed(html)
    return ({k: ' '.join(v.split()) for k, v in p.text.items()}, p.tables)
