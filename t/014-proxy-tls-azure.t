# ai_proxy to TLS providers (certificate verification and SNI on by
# default, through NGINX's upstream SSL) and the Azure OpenAI request
# shape (deployment URL, api-version, api-key header).
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use Cwd qw(abs_path);

# a self-signed certificate for provider.test, for the tests only
$ENV{TEST_NGINX_DATA_DIR} = abs_path('t/data');

$ENV{TEST_AI_K1} = 'sk-azure-key-1';
env_to_nginx('TEST_AI_K1');
$ENV{TEST_NGINX_MOCK_PORT_TLS} = ($ENV{TEST_NGINX_MOCK_PORT} || 1985) + 100;
run_tests();

__DATA__

=== TEST 1: https target: verified against its CA, SNI and Host sent, streams too
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_MOCK_PORT_TLS ssl;
        server_name provider.test;
        ssl_certificate $TEST_NGINX_DATA_DIR/tls.crt;
        ssl_certificate_key $TEST_NGINX_DATA_DIR/tls.key;
        location / {
            add_header X-SNI $ssl_server_name always;
            proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
            proxy_buffering off;
        }
    }
    ai_target tls https://127.0.0.1:$TEST_NGINX_MOCK_PORT_TLS/v1 host=provider.test;
--- config
    location /v1/ {
        ai_proxy tls;
        ai_proxy_ssl_trusted_certificate $TEST_NGINX_DATA_DIR/tls.crt;
    }
--- request eval
["POST /v1/chat/completions\n{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"secure\"}]}",
 "POST /v1/chat/completions\n{\"model\":\"gpt-4o\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"secure\"}]}"]
--- response_headers eval
["X-SNI: provider.test", "X-SNI: provider.test"]
--- response_body_like eval
["mock reply: secure", "data: \\[DONE\\]"]
--- no_error_log
[error]



=== TEST 2: https target with an unknown CA: refused, a JSON 502
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_MOCK_PORT_TLS ssl;
        server_name provider.test;
        ssl_certificate $TEST_NGINX_DATA_DIR/tls.crt;
        ssl_certificate_key $TEST_NGINX_DATA_DIR/tls.key;
        location / { proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT; }
    }
    ai_target tls https://127.0.0.1:$TEST_NGINX_MOCK_PORT_TLS/v1 host=provider.test;
--- config
    location /v1/ {
        ai_proxy tls;
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":[{"role":"user","content":"secure"}]}
--- error_code: 502
--- response_body_like
^\{"error":\{"message":"the upstream provider could not be reached or sent an invalid response","type":"api_error"
--- error_log
upstream SSL certificate verify error
[error]



=== TEST 3: Azure OpenAI: deployment URL, api-version, api-key header
--- main_config
    env TEST_AI_K1;
--- http_config
    ai_target az http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=azure key=env:TEST_AI_K1 model=my-deploy api_version=2024-06-01;
--- config
    location /v1/ {
        ai_proxy az;
    }
    location /mock/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request eval
["POST /v1/chat/completions\n{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", "GET /mock/last"]
--- response_body_like eval
["mock reply: hi", "\"uri\":\"/openai/deployments/my-deploy/chat/completions\\?api-version=2024-06-01\".*\"api-key\":\"sk-azure-key-1\""]
--- response_body_unlike eval
["sk-azure", "authorization"]
--- no_error_log
[error]

