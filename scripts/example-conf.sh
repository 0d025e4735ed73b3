#!/bin/bash
# Makes an example of docs/examples (a complete /etc/nginx/nginx.conf for
# Debian's nginx with the packages installed) run anywhere, without
# touching the system or the network: in DIR, with the modules of a build
# and every upstream pointed at the mock provider.  t/095-examples.t
# checks every example this way; it also lets one try an example by hand.
#
#   scripts/example-conf.sh EXAMPLE DIR MODULES_DIR MOCK_PORT PORT
#   . DIR/env && nginx -p DIR/ -c DIR/nginx.conf
#
# writes
#   DIR/nginx.conf     the example with
#                        include /etc/nginx/modules-enabled/*.conf
#                                     -> load_module MODULES_DIR/... (the
#                                        core first)
#                        user www-data -> root when run as root, else none
#                        /run/nginx.pid, /var/log/nginx/, /etc/nginx/ai/
#                                     -> DIR/nginx.pid, DIR/logs/, DIR/ai/
#                        listen 8080  -> 127.0.0.1:PORT
#                        listen 9145  -> 127.0.0.1:PORT+1
#                        the providers' and model servers' addresses
#                                     -> http://127.0.0.1:MOCK_PORT
#                      and temporary files under DIR/tmp
#   DIR/ai/consumers.txt            docs/examples/consumers.txt
#   DIR/ai/keys/NAME.key            a made-up key for each file: key
#   DIR/env                         NAME=value for each "env NAME;", from
#                                   docs/examples/systemd/provider-keys.env
#                                   (the EnvironmentFile's format)
#
# It fails when the result still names a host or a path it does not know
# how to replace, so that no example can reach the network in the tests.

set -euo pipefail

if [ $# -ne 5 ]; then
    echo "usage: $0 EXAMPLE DIR MODULES_DIR MOCK_PORT PORT" >&2
    exit 2
fi

here=$(cd "$(dirname "$0")/.." && pwd)
example=$1
dir=$2
modules=$3
mock=$4
port=$5

mkdir -p "$dir/logs" "$dir/tmp" "$dir/ai/keys"
dir=$(cd "$dir" && pwd)

if [ "$(id -u)" = 0 ]; then
    user='user root;'
else
    user=''
fi

m=$modules
load="load_module $m/ngx_http_ai_core_module.so; "
load+="load_module $m/ngx_http_ai_proxy_module.so; "
load+="load_module $m/ngx_http_ai_log_module.so; "
load+="load_module $m/ngx_http_ai_token_limit_module.so; "
load+="load_module $m/ngx_http_ai_prompt_guard_module.so; "
load+="load_module $m/ngx_http_ai_redis_module.so; "
load+="load_module $m/ngx_http_ai_cache_module.so;"

up="http://127.0.0.1:$mock"
temp="client_body_temp_path $dir/tmp/body; proxy_temp_path $dir/tmp/proxy;"
temp+=" fastcgi_temp_path $dir/tmp/fastcgi; uwsgi_temp_path $dir/tmp/uwsgi;"
temp+=" scgi_temp_path $dir/tmp/scgi;"

sed -e "s#^include /etc/nginx/modules-enabled/\*\.conf;#$load#" \
    -e "s#^user www-data;#$user#" \
    -e "s#/run/nginx\.pid#$dir/nginx.pid#" \
    -e "s#/var/log/nginx/#$dir/logs/#g" \
    -e "s#/etc/nginx/ai/#$dir/ai/#g" \
    -e "s#^\( *listen\) 8080;#\1 127.0.0.1:$port;#" \
    -e "s#^\( *listen\) 9145;#\1 127.0.0.1:$((port + 1));#" \
    -e "s#https://api\.openai\.com#$up#g" \
    -e "s#https://api\.anthropic\.com#$up#g" \
    -e "s#https://generativelanguage\.googleapis\.com#$up#g" \
    -e "s#^\( *server\) 127\.0\.0\.1:\(8000\|11434\)\b#\1 127.0.0.1:$mock#" \
    -e "s#^\( *server\) 10\.0\.0\.[0-9]*:8000\b#\1 127.0.0.1:$mock#" \
    -e "s#^http {#http {\n    $temp#" \
    "$example" > "$dir/nginx.conf"

# what is left must be local: no https:// URL, no address but the mock's
# and the listen ones, no system path but the modules
ip='[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+:[0-9]+'
left=$(sed -e 's/#.*//' -e "s#$dir/##g" -e "s#$modules/##g" \
           "$dir/nginx.conf" \
       | grep -nE "https://|$ip|/etc/|/var/|/run/" \
       | grep -vE "127\.0\.0\.1:($mock|$port|$((port + 1)))\b" || true)
if [ -n "$left" ]; then
    echo "$0: $example: not replaced:" >&2
    echo "$left" >&2
    exit 1
fi

cp "$here/docs/examples/consumers.txt" "$dir/ai/consumers.txt"

# a made-up key for each key file
{ grep -oE "file:$dir/ai/keys/[A-Za-z0-9._-]+" "$dir/nginx.conf" \
      || true; } | sort -u | while read -r f; do
          printf 'sk-made-up-%s\n' "$(basename "${f#file:}" .key)" \
              > "${f#file:}"
      done

# the env: keys, from the example EnvironmentFile
: > "$dir/env"
for name in $(sed -n 's/^env \([A-Za-z0-9_]*\);.*/\1/p' "$dir/nginx.conf"); do
    line=$(grep -E "^$name=" "$here/docs/examples/systemd/provider-keys.env") \
        || { echo "$0: $name is not in provider-keys.env" >&2; exit 1; }
    echo "export $line" >> "$dir/env"
done
