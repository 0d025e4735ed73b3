# The core's interface from the other modules' side: its symbols are weak
# references there, so a module loaded before the core (or without it)
# says so at configuration time instead of failing in dlopen().
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: a module loaded before the core, or without it, names the problem in nginx -t
--- config
    location = /t { return 200; }
--- exec
d=$TEST_NGINX_SERVROOT/order
mkdir -p $d/logs
for mods in "ngx_http_ai_store_test_module ngx_http_ai_core_module" "ngx_http_ai_store_test_module" "ngx_http_ai_proxy_module ngx_http_ai_core_module"; do
  {
    for m in $mods; do echo "load_module $TEST_NGINX_MODULES/$m.so;"; done
    echo "error_log logs/error.log; events {} http { }"
  } > $d/nginx.conf
  nginx -t -p $d/ -c $d/nginx.conf 2>&1 | grep -o 'ngx_http_ai_[a-z_]*_module needs ngx_http_ai_core_module: load ngx_http_ai_core_module.so before it ("load_module" lines in order)'
done
--- response_body
ngx_http_ai_store_test_module needs ngx_http_ai_core_module: load ngx_http_ai_core_module.so before it ("load_module" lines in order)
ngx_http_ai_store_test_module needs ngx_http_ai_core_module: load ngx_http_ai_core_module.so before it ("load_module" lines in order)
ngx_http_ai_proxy_module needs ngx_http_ai_core_module: load ngx_http_ai_core_module.so before it ("load_module" lines in order)
--- no_error_log
[error]



=== TEST 2: every module refers to the core only through weak symbols
--- config
    location = /t { return 200; }
--- exec
cd $TEST_NGINX_MODULES
for so in *.so; do
  case $so in ngx_http_ai_core_module.so) continue;; esac
  nm -D --undefined-only $so | awk -v so=$so '$1 == "U" && $2 ~ /^ngx_http_ai_/ { print so ": strong reference to " $2 }'
done
echo checked
--- response_body
checked
--- no_error_log
[error]
