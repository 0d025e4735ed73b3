# The Debian packages, end to end, on this machine's Debian NGINX:
# scripts/package.sh builds them from a clean copy of the repository with
# dpkg-buildpackage (lintian: no error, no warning); dpkg -i installs them
# and enables them (the core first); the stock /etc/nginx/nginx.conf passes
# nginx -t with them, and a chat request goes through them, in a private
# configuration that includes /etc/nginx/modules-enabled, to the mock;
# cmake --install lays out the same files; removing them, then purging
# them, leaves NGINX working.
#
# It installs packages into the system, so it runs once, in the debian
# pass, as root, and never replaces an installation: otherwise it passes
# one test that says why it did not run.  TEST_AI_PACKAGE=0 skips it.
# It installs no tool itself (scripts/deps.sh --test did).  When it fails,
# its stderr names the step and shows the end of that step's log.
# Ports: a free one, asked of the kernel.  Its files:
# BUILD_DIR/package-test.
# About a minute (the build is 30 s).
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

my @pkgs = qw(libnginx-mod-http-ai-core libnginx-mod-http-ai-proxy
              libnginx-mod-http-ai-log libnginx-mod-http-ai-token-limit
              libnginx-mod-http-ai-redis libnginx-mod-http-ai-prompt-guard
              libnginx-mod-http-ai-cache);

sub skip_reason {
    my $bin = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';

    return 'TEST_AI_PACKAGE=0'
        if defined $ENV{TEST_AI_PACKAGE} && $ENV{TEST_AI_PACKAGE} eq '0';
    return "the packages are for Debian's /usr/sbin/nginx, the suites run "
         . "$bin (the debian pass tests them)"
        if $bin ne '/usr/sbin/nginx';
    return 'the sanitizer pass (the debian pass tests them)'
        if $ENV{TEST_NGINX_LD_PRELOAD} || $ENV{TEST_NGINX_SANITIZER_LOGS};
    return 'not root (dpkg -i needs root)' if $> != 0;
    return 'not Debian (no dpkg, or no nginx-dev tree)'
        unless -x '/usr/bin/dpkg' && -d '/usr/share/nginx/src';

    for my $p (@pkgs) {
        my $st = `dpkg-query -W -f='\${Status}' $p 2>/dev/null`;
        return "$p is installed on this machine: this test does not replace "
             . "an installation (dpkg --purge it to run the test)"
            if $st =~ /installed|config-files|unpacked|half/;
    }

    for my $t (qw(dpkg-buildpackage dh lintian fakeroot)) {
        return "$t is not installed (scripts/deps.sh --test installs the "
             . "packaging tools)"
            if system("command -v $t >/dev/null 2>&1") != 0;
    }

    return "this machine's /etc/nginx/nginx.conf fails nginx -t before "
         . "anything is installed"
        if system('/usr/sbin/nginx -t -q >/dev/null 2>&1') != 0;

    return undef;
}

if (my $why = skip_reason()) {
    pass("the package test did not run: $why");
    exit 0;
}

run_tests();

__DATA__

=== TEST 1: build, lintian, install, nginx -t, a chat through the packaged modules, cmake --install, remove, purge
--- config
    location = /t { return 200; }
--- timeout: 400
--- exec
set -e
export DEBIAN_FRONTEND=noninteractive
# in the pass's build directory: the copy of the source holds t/*.t,
# which prove -r t would run if it were under t/
b=${TEST_NGINX_MODULES%/nginx}
w=$b/package-test
rm -rf $w
mkdir -p $w/tmp $w/cmake
pkgs="libnginx-mod-http-ai-proxy libnginx-mod-http-ai-log"
pkgs="$pkgs libnginx-mod-http-ai-token-limit libnginx-mod-http-ai-redis"
pkgs="$pkgs libnginx-mod-http-ai-prompt-guard libnginx-mod-http-ai-cache"
pkgs="$pkgs libnginx-mod-http-ai-core"
en=/etc/nginx/modules-enabled

# where it stopped, and why: $step names the step, $steplog its log; on
# the way out, whatever happened, the private nginx is stopped and the
# packages are purged
step=start steplog= started=0 installed=0
finish() {
    rc=$?
    if [ $rc -ne 0 ]; then
        echo "t/096: failed in the step '$step' (exit $rc)" >&2
        [ -z "$steplog" ] || [ ! -f "$steplog" ] || tail -30 "$steplog" >&2
    fi
    if [ $started = 1 ]; then
        /usr/sbin/nginx -c $w/nginx.conf -e $w/error.log -s quit || true
        i=0; while [ -f $w/nginx.pid ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
    fi
    if [ $installed = 1 ]; then
        dpkg --purge $pkgs > $w/dpkg-purge.log 2>&1 || cat $w/dpkg-purge.log >&2
    fi
    exit $rc
}
trap finish EXIT

# built from a clean copy with dpkg-buildpackage; lintian's report
step="scripts/package.sh" steplog=$w/package.log
scripts/package.sh $w/deb > $w/package.log 2>&1
ls $w/deb/*.deb | sed 's#.*/##; s/_.*//' | sort
echo "lintian: $(grep -c '^E: ' $w/deb/lintian.txt || true) errors, $(grep -c '^W: ' $w/deb/lintian.txt || true) warnings"

# one package per module of modules/, none for the test-only modules
step="the package list" steplog=
for m in modules/*/config; do
    m=${m#modules/ai_}; m=${m%/config}; m=$(echo $m | tr _ -)
    [ -f $w/deb/libnginx-mod-http-ai-${m}_*.deb ] \
        || { echo "modules/ai_$m has no package"; exit 1; }
done
for f in $w/deb/*.deb; do
    if dpkg-deb -c $f | grep -E 'test_module|/t/'; then exit 1; fi
done

# Debian's layout, the NGINX ABI of nginx-dev, the core for the others
step="the packages' contents and dependencies"
abi=$(sed -n 's/^nginx:abi=//p' /usr/share/nginx/src/debian/libnginx-mod.abisubstvars)
[ -n "$abi" ]
for p in core proxy log token-limit redis prompt-guard cache; do
    deb=$(ls $w/deb/libnginx-mod-http-ai-${p}_*.deb)
    dpkg-deb -c $deb | awk '$1 !~ /^d/ { print $6 }' | grep -v '^./usr/share/doc/'
    dpkg-deb -f $deb Depends | tr ',' '\n' | sed 's/^ *//' \
        | grep -E "^($abi|libnginx-mod-http-ai-core .*)$" \
        | sed -e 's/(= .*)/(= VERSION)/' -e "s/^$abi\$/the ABI of nginx-dev/"
done
cat $w/deb/src/debian/libnginx-mod.conf/mod-http-ai-core.conf

# one at a time: dpkg and /etc/nginx are the machine's
step="the lock"
exec 9> ${TMPDIR:-/tmp}/ai-gateway-package-test.lock
flock -w 300 9

running=0
if [ -f /run/nginx.pid ] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; then
    running=1
fi

# install: enabled, the core first
step="dpkg -i" steplog=$w/dpkg-i.log
installed=1
dpkg -i $(ls $w/deb/*.deb | grep -v dbgsym) > $w/dpkg-i.log 2>&1
ls $en | grep -- '-mod-http-ai-'
for f in $en/*-mod-http-ai-*.conf; do readlink $f; done
ls $en | grep -- '-mod-http-ai-' | sort | head -1

# the stock configuration, with the modules loaded
step="nginx -t with the stock nginx.conf" steplog=
/usr/sbin/nginx -t -q -c /etc/nginx/nginx.conf
echo "stock nginx.conf ok"

# a chat request through the packaged modules, in a private configuration
# (Debian's prefix, so that "modules/" is /usr/share/nginx/modules)
step="a chat through the packaged modules" steplog=$w/error.log
# a free port: a fixed one may be the machine's (2024, which the default
# 1984 + 40 was, is taken on the CI machines)
p=$(perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(Listen => 1,
        LocalAddr => "127.0.0.1", LocalPort => 0, ReuseAddr => 1)->sockport')
cat > $w/nginx.conf <<EOF
user root;
pid $w/nginx.pid;
error_log $w/error.log notice;
include $en/*.conf;
events { worker_connections 64; }
http {
    client_body_temp_path $w/tmp/body;
    proxy_temp_path $w/tmp/proxy;
    fastcgi_temp_path $w/tmp/fastcgi;
    uwsgi_temp_path $w/tmp/uwsgi;
    scgi_temp_path $w/tmp/scgi;
    access_log $w/access.log;
    ai_metrics_zone ai 4m;
    ai_token_limit_zone per_ip key=\$remote_addr size=1m;
    ai_prompt_guard_rule pii detect=email action=mask;
    server {
        listen 127.0.0.1:$p;
        location /v1/ {
            ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
            ai_log $w/ai.jsonl;
            ai_token_limit per_ip 100 count=requests;
            ai_prompt_guard pii;
        }
        location = /metrics { ai_metrics; }
    }
}
EOF
/usr/sbin/nginx -t -q -c $w/nginx.conf -e $w/error.log
started=1
/usr/sbin/nginx -c $w/nginx.conf -e $w/error.log
sleep 0.3
u=http://127.0.0.1:$p
curl -sS -i $u/v1/chat/completions -d '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}' \
    | grep -o '"content":"mock reply: hi"\|x-ratelimit-remaining-requests: 99'
curl -sS $u/v1/chat/completions -d '{"model":"gpt-4o","messages":[{"role":"user","content":"to a@example.com"}]}' \
    | grep -o '"content":"mock reply: to a@example.com"'
curl -sS $u/v1/messages -d '{"model":"gpt-4o","max_tokens":9,"messages":[{"role":"user","content":"hi"}]}' \
    | grep -o '"type":"message"'
# a series per endpoint: chat and messages
curl -sS $u/metrics | grep -c '^ai_requests_total{'
/usr/sbin/nginx -c $w/nginx.conf -e $w/error.log -s quit
i=0; while [ -f $w/nginx.pid ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
started=0
grep -c '"total_tokens":5' $w/ai.jsonl
if grep -E '\[(error|alert|crit|emerg)\]' $w/error.log; then exit 1; fi

# cmake --install (the suite's build): the same files, links and snippets
step="cmake --install" steplog=$w/cmake-install.log
DESTDIR=$w/cmake cmake --install $b > $w/cmake-install.log
(cd $w/cmake && find . ! -type d | sed 's#^\.##' | sort) > $w/cmake.files
{ for q in $pkgs; do dpkg -L $q; done | grep -v '^/usr/share/doc/' \
      | while read -r f; do [ -d "$f" ] || echo "$f"; done
  ls -d $en/*-mod-http-ai-*.conf; } | sort > $w/package.files
diff $w/package.files $w/cmake.files && echo "cmake --install: the same files"
for f in $(cat $w/package.files); do
    if [ -L "$f" ]; then
        [ "$(readlink $f)" = "$(readlink $w/cmake$f)" ] || { echo "link $f differs"; exit 1; }
    elif [ "${f%.conf}" != "$f" ]; then
        cmp $f $w/cmake$f
    fi
done

# remove: disabled (Debian keeps the links as *.removed), NGINX works
step="dpkg -r" steplog=$w/dpkg-r.log
dpkg -r $pkgs > $w/dpkg-r.log 2>&1
ls $en | grep -- '-mod-http-ai-' || true
/usr/sbin/nginx -t -q -c /etc/nginx/nginx.conf
echo "removed: stock nginx.conf ok"

# purge: nothing left, NGINX works
step="dpkg --purge" steplog=$w/dpkg-purge.log
dpkg --purge $pkgs > $w/dpkg-purge.log 2>&1
installed=0
ls $en /usr/lib/nginx/modules /usr/share/nginx/modules-available 2>/dev/null \
    | grep -c -- '-ai-\|_ai_' || true
/usr/sbin/nginx -t -q -c /etc/nginx/nginx.conf
echo "purged: stock nginx.conf ok"
step="the running nginx" steplog=
if [ $running = 1 ]; then
    sleep 1
    kill -0 "$(cat /run/nginx.pid)" && echo "the running nginx still runs"
else
    echo "the running nginx still runs"
fi
--- response_body
libnginx-mod-http-ai-cache
libnginx-mod-http-ai-cache-dbgsym
libnginx-mod-http-ai-core
libnginx-mod-http-ai-core-dbgsym
libnginx-mod-http-ai-log
libnginx-mod-http-ai-log-dbgsym
libnginx-mod-http-ai-prompt-guard
libnginx-mod-http-ai-prompt-guard-dbgsym
libnginx-mod-http-ai-proxy
libnginx-mod-http-ai-proxy-dbgsym
libnginx-mod-http-ai-redis
libnginx-mod-http-ai-redis-dbgsym
libnginx-mod-http-ai-token-limit
libnginx-mod-http-ai-token-limit-dbgsym
lintian: 0 errors, 0 warnings
./usr/lib/nginx/modules/ngx_http_ai_core_module.so
./usr/share/nginx/modules-available/mod-http-ai-core.conf
the ABI of nginx-dev
./usr/lib/nginx/modules/ngx_http_ai_proxy_module.so
./usr/share/nginx/modules-available/mod-http-ai-proxy.conf
libnginx-mod-http-ai-core (= VERSION)
the ABI of nginx-dev
./usr/lib/nginx/modules/ngx_http_ai_log_module.so
./usr/share/nginx/modules-available/mod-http-ai-log.conf
libnginx-mod-http-ai-core (= VERSION)
the ABI of nginx-dev
./usr/lib/nginx/modules/ngx_http_ai_token_limit_module.so
./usr/share/nginx/modules-available/mod-http-ai-token-limit.conf
libnginx-mod-http-ai-core (= VERSION)
the ABI of nginx-dev
./usr/lib/nginx/modules/ngx_http_ai_redis_module.so
./usr/share/nginx/modules-available/mod-http-ai-redis.conf
libnginx-mod-http-ai-core (= VERSION)
the ABI of nginx-dev
./usr/lib/nginx/modules/ngx_http_ai_prompt_guard_module.so
./usr/share/nginx/modules-available/mod-http-ai-prompt-guard.conf
libnginx-mod-http-ai-core (= VERSION)
the ABI of nginx-dev
./usr/lib/nginx/modules/ngx_http_ai_cache_module.so
./usr/share/nginx/modules-available/mod-http-ai-cache.conf
libnginx-mod-http-ai-core (= VERSION)
the ABI of nginx-dev
load_module modules/ngx_http_ai_core_module.so;
10-mod-http-ai-core.conf
50-mod-http-ai-cache.conf
50-mod-http-ai-log.conf
50-mod-http-ai-prompt-guard.conf
50-mod-http-ai-proxy.conf
50-mod-http-ai-redis.conf
50-mod-http-ai-token-limit.conf
/usr/share/nginx/modules-available/mod-http-ai-core.conf
/usr/share/nginx/modules-available/mod-http-ai-cache.conf
/usr/share/nginx/modules-available/mod-http-ai-log.conf
/usr/share/nginx/modules-available/mod-http-ai-prompt-guard.conf
/usr/share/nginx/modules-available/mod-http-ai-proxy.conf
/usr/share/nginx/modules-available/mod-http-ai-redis.conf
/usr/share/nginx/modules-available/mod-http-ai-token-limit.conf
10-mod-http-ai-core.conf
stock nginx.conf ok
x-ratelimit-remaining-requests: 99
"content":"mock reply: hi"
"content":"mock reply: to a@example.com"
"type":"message"
2
2
cmake --install: the same files
10-mod-http-ai-core.conf.removed
50-mod-http-ai-cache.conf.removed
50-mod-http-ai-log.conf.removed
50-mod-http-ai-prompt-guard.conf.removed
50-mod-http-ai-proxy.conf.removed
50-mod-http-ai-redis.conf.removed
50-mod-http-ai-token-limit.conf.removed
removed: stock nginx.conf ok
0
purged: stock nginx.conf ok
the running nginx still runs
--- no_error_log
[error]
