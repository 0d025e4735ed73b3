# The prompt estimate a reservation is made of, against the o200k counts
# recorded by bench/estimator (docs/estimator.md): the estimates are the
# recorded ones (so the published error is the code's), the mean error is
# on the high side and within 20%, the worst under-estimate above -12%.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: the estimator on the 44 requests of bench/estimator/corpus
--- http_config
    ai_token_limit_zone est key=$http_x_case;
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
        ai_token_limit est 100000000 per=day;
    }
--- exec
node t/sdk/estimate_check.mjs http://127.0.0.1:$TEST_NGINX_SERVER_PORT/v1/chat/completions
--- response_body
44 cases, estimates as recorded: true
mean error between 0 and +20%: true
worst under-estimate above -12%: true
--- no_error_log
[error]
--- timeout: 30
