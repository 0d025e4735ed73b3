# ai_proxy to TLS providers (certificate verification and SNI on by
# default, through NGINX's upstream SSL) and the Azure OpenAI request
# shape (deployment URL, api-version, api-key header).
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

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
        ssl_certificate ../html/tls.crt;
        ssl_certificate_key ../html/tls.key;
        location / {
            add_header X-SNI $ssl_server_name always;
            proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
            proxy_buffering off;
        }
    }
    ai_target tls https://127.0.0.1:$TEST_NGINX_MOCK_PORT_TLS/v1 host=provider.test;
--- user_files
>>> tls.crt
-----BEGIN CERTIFICATE-----
MIIDLTCCAhWgAwIBAgIUVlvGelNCcQx8lTbUdktfJFYDnywwDQYJKoZIhvcNAQEL
BQAwGDEWMBQGA1UEAwwNcHJvdmlkZXIudGVzdDAgFw0yNjExMjIwMTE4NDdaGA8y
MTI2MTAyOTAxMTg0N1owGDEWMBQGA1UEAwwNcHJvdmlkZXIudGVzdDCCASIwDQYJ
KoZIhvcNAQEBBQADggEPADCCAQoCggEBANQ0EvveRjaSqulTM1eGJUAdqpzTp3ZQ
J7fM3K9IT9nd3GMXCCj6bBROQbTgWtkDUpl+QNs0WVrb4gBqrLvDeIyUia7hjt4f
juYtCTIyYqHpnpGhI52nQLrXyLLpz2jAuDIodBk2QbLdribHMbUssmk1NEzGwaS3
e/cwqiz96xtzN9RVDYgt9AREeXbioBgKbf9sWspKTOuSy84hJhdkm8VHAokDMG9u
mb02kvVwRMO83dHRt4HEdGcksMjgVRUU//aTgA0x6dbLZgXZldM6sRLRuu2J0Wnk
fsJnymYAoZEXqZC9/t1o6ItffKyAbrFygap8fbhU0nIhRMEU2msw/NECAwEAAaNt
MGswHQYDVR0OBBYEFAjbCFWni6HF/0QchRyglotc34w5MB8GA1UdIwQYMBaAFAjb
CFWni6HF/0QchRyglotc34w5MA8GA1UdEwEB/wQFMAMBAf8wGAYDVR0RBBEwD4IN
cHJvdmlkZXIudGVzdDANBgkqhkiG9w0BAQsFAAOCAQEAQRNx95Au7aCrwPIm/mgJ
XNhGY40/v63n6KWWx73+bPjTk4lnwyDgQD0xRYEueyW/8QGAS7itcu2cXLasx8mj
ays5XnePRSUCEvkAjauf9li769KqbkatnQFaR4XqFBJCeua9+q/c8JwSUivYpnRq
izHavqnJK5sao2dTU7G4mmNyVAB/CwYcSVSUrxV0XvHn6RYhqtGhja7J3gCie+O7
61SvVbrYPnss86syVAVGzeXngzn3qlSzfvIDQRfuGvRTcKwLOKLMTWN/6x+WLFrZ
80mR0DZfb0BxzK47sKAeuid40SNa7HwQTpQuJmRvHteJEW+eO9FVTaX79MjuYam9
+Q==
-----END CERTIFICATE-----
>>> tls.key
-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDUNBL73kY2kqrp
UzNXhiVAHaqc06d2UCe3zNyvSE/Z3dxjFwgo+mwUTkG04FrZA1KZfkDbNFla2+IA
aqy7w3iMlImu4Y7eH47mLQkyMmKh6Z6RoSOdp0C618iy6c9owLgyKHQZNkGy3a4m
xzG1LLJpNTRMxsGkt3v3MKos/esbczfUVQ2ILfQERHl24qAYCm3/bFrKSkzrksvO
ISYXZJvFRwKJAzBvbpm9NpL1cETDvN3R0beBxHRnJLDI4FUVFP/2k4ANMenWy2YF
2ZXTOrES0brtidFp5H7CZ8pmAKGRF6mQvf7daOiLX3ysgG6xcoGqfH24VNJyIUTB
FNprMPzRAgMBAAECggEAVy19jxPl7I2cwXZ45UArFYgai4s4hRaw+oWjNC+U/oBz
BhJ0O8GFnWH5BIIXUIhY6s4/fs6m1vj2hA1PIWRQphBv7/SiaQa2AkIGQSUJ+FKt
3k5A/4eyxA/aWAZOO07RXWnZKHJt0znXTf8PoMrYEPjWn6QX8b+fohHQF+PJLuEL
T5AMkgCPU3KGQO/S0saXYKRN4fBZUegNg4IOgL6X5r+V2yYO/ZmsH6e7C5DAwbl3
MX5k1gJ6s/NbngcRhZGbs8obgIh/n8XfbkeSbnJAkvtC6GZRJAtHOf8iaqTaZpwx
29V5mPWbrgnkXGC8mH12uQlGLkjQbYIJLKJlOHCM8QKBgQDqrkb98QdetPoDf+Xa
XxLusT5DabUZAhQQ+Ly5PFo2WnuDLVzvR15LPPn/fcXqaiZRTFv7TWU4+JgGtYjm
h1oui06YZHobAawGOoxlIGfzI5hRwT6UEzB/SiyijCVsimomgDPExejPzZiAJ6X4
VisWeJRVwixCJ/JEDlfAqNM6+wKBgQDnexCR3zZkb/GPwZt8e/yJAtb4xwW/2h3d
hhj8l/pgzWtYKHU1rHz9D0exrB1mTomSKPyT9juM6dUyhlPmKUr9LoNmXB6cDk9X
Yy08Wv+hUmp0lg1OqMY5AF3gN83/7+jNCdo8FZs1RPg3X1eoW7c+QRUBIlMFS5FB
I4KzzcwdowKBgQCDoULSdpnSpiHBSsCKzl7ZIPMybp0ULNVCe7GnGFHlQLUca5o/
38Dk5Iu4oTwccnORkAnbl5qZ7N2gjbv+yZZsmth3o4vVkAeD6t0Kb7W+a42o9YH7
HhRKoTkN5xuqmKxXcfsXeIZP4BqUbyipdPNwBCv3OhUG+k7pmz3fIxJvdwKBgQC0
cFu0ObjehdxY4ORhHwz1iD8mYY17xXxuR6+GhrlnZ/j7GV50XmZ3pMeQGcg5DZNz
WXu5osE80LGd1tPjn+CShwVqbvh1UTpLtkV2vMBzchkFlEn/PNR3bm++7gEoNkzU
N4/kMjtwRLjwAOQFmqi2YGkNH0Jz6Dnr+tBRdGRd3QKBgAG9pumTm/vRBGpO4l0m
T1F7duLExFCyucXjNlpxCAKFaFQaM7DlMuNUSPKc5ESwK8YK+IIG94D3QA3ebtSg
n2hVb6t7vDSLQCDI7CgUvH3+8uRrAWEDVngyqSLD1X9LsO3vO5v7WLDjI8TncfZs
FiJTdf/Z7wmhDQgEHDjKVyCb
-----END PRIVATE KEY-----
--- config
    location /v1/ {
        ai_proxy tls;
        ai_proxy_ssl_trusted_certificate ../html/tls.crt;
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
        ssl_certificate ../html/tls.crt;
        ssl_certificate_key ../html/tls.key;
        location / { proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT; }
    }
    ai_target tls https://127.0.0.1:$TEST_NGINX_MOCK_PORT_TLS/v1 host=provider.test;
--- user_files
>>> tls.crt
-----BEGIN CERTIFICATE-----
MIIDLTCCAhWgAwIBAgIUVlvGelNCcQx8lTbUdktfJFYDnywwDQYJKoZIhvcNAQEL
BQAwGDEWMBQGA1UEAwwNcHJvdmlkZXIudGVzdDAgFw0yNjExMjIwMTE4NDdaGA8y
MTI2MTAyOTAxMTg0N1owGDEWMBQGA1UEAwwNcHJvdmlkZXIudGVzdDCCASIwDQYJ
KoZIhvcNAQEBBQADggEPADCCAQoCggEBANQ0EvveRjaSqulTM1eGJUAdqpzTp3ZQ
J7fM3K9IT9nd3GMXCCj6bBROQbTgWtkDUpl+QNs0WVrb4gBqrLvDeIyUia7hjt4f
juYtCTIyYqHpnpGhI52nQLrXyLLpz2jAuDIodBk2QbLdribHMbUssmk1NEzGwaS3
e/cwqiz96xtzN9RVDYgt9AREeXbioBgKbf9sWspKTOuSy84hJhdkm8VHAokDMG9u
mb02kvVwRMO83dHRt4HEdGcksMjgVRUU//aTgA0x6dbLZgXZldM6sRLRuu2J0Wnk
fsJnymYAoZEXqZC9/t1o6ItffKyAbrFygap8fbhU0nIhRMEU2msw/NECAwEAAaNt
MGswHQYDVR0OBBYEFAjbCFWni6HF/0QchRyglotc34w5MB8GA1UdIwQYMBaAFAjb
CFWni6HF/0QchRyglotc34w5MA8GA1UdEwEB/wQFMAMBAf8wGAYDVR0RBBEwD4IN
cHJvdmlkZXIudGVzdDANBgkqhkiG9w0BAQsFAAOCAQEAQRNx95Au7aCrwPIm/mgJ
XNhGY40/v63n6KWWx73+bPjTk4lnwyDgQD0xRYEueyW/8QGAS7itcu2cXLasx8mj
ays5XnePRSUCEvkAjauf9li769KqbkatnQFaR4XqFBJCeua9+q/c8JwSUivYpnRq
izHavqnJK5sao2dTU7G4mmNyVAB/CwYcSVSUrxV0XvHn6RYhqtGhja7J3gCie+O7
61SvVbrYPnss86syVAVGzeXngzn3qlSzfvIDQRfuGvRTcKwLOKLMTWN/6x+WLFrZ
80mR0DZfb0BxzK47sKAeuid40SNa7HwQTpQuJmRvHteJEW+eO9FVTaX79MjuYam9
+Q==
-----END CERTIFICATE-----
>>> tls.key
-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDUNBL73kY2kqrp
UzNXhiVAHaqc06d2UCe3zNyvSE/Z3dxjFwgo+mwUTkG04FrZA1KZfkDbNFla2+IA
aqy7w3iMlImu4Y7eH47mLQkyMmKh6Z6RoSOdp0C618iy6c9owLgyKHQZNkGy3a4m
xzG1LLJpNTRMxsGkt3v3MKos/esbczfUVQ2ILfQERHl24qAYCm3/bFrKSkzrksvO
ISYXZJvFRwKJAzBvbpm9NpL1cETDvN3R0beBxHRnJLDI4FUVFP/2k4ANMenWy2YF
2ZXTOrES0brtidFp5H7CZ8pmAKGRF6mQvf7daOiLX3ysgG6xcoGqfH24VNJyIUTB
FNprMPzRAgMBAAECggEAVy19jxPl7I2cwXZ45UArFYgai4s4hRaw+oWjNC+U/oBz
BhJ0O8GFnWH5BIIXUIhY6s4/fs6m1vj2hA1PIWRQphBv7/SiaQa2AkIGQSUJ+FKt
3k5A/4eyxA/aWAZOO07RXWnZKHJt0znXTf8PoMrYEPjWn6QX8b+fohHQF+PJLuEL
T5AMkgCPU3KGQO/S0saXYKRN4fBZUegNg4IOgL6X5r+V2yYO/ZmsH6e7C5DAwbl3
MX5k1gJ6s/NbngcRhZGbs8obgIh/n8XfbkeSbnJAkvtC6GZRJAtHOf8iaqTaZpwx
29V5mPWbrgnkXGC8mH12uQlGLkjQbYIJLKJlOHCM8QKBgQDqrkb98QdetPoDf+Xa
XxLusT5DabUZAhQQ+Ly5PFo2WnuDLVzvR15LPPn/fcXqaiZRTFv7TWU4+JgGtYjm
h1oui06YZHobAawGOoxlIGfzI5hRwT6UEzB/SiyijCVsimomgDPExejPzZiAJ6X4
VisWeJRVwixCJ/JEDlfAqNM6+wKBgQDnexCR3zZkb/GPwZt8e/yJAtb4xwW/2h3d
hhj8l/pgzWtYKHU1rHz9D0exrB1mTomSKPyT9juM6dUyhlPmKUr9LoNmXB6cDk9X
Yy08Wv+hUmp0lg1OqMY5AF3gN83/7+jNCdo8FZs1RPg3X1eoW7c+QRUBIlMFS5FB
I4KzzcwdowKBgQCDoULSdpnSpiHBSsCKzl7ZIPMybp0ULNVCe7GnGFHlQLUca5o/
38Dk5Iu4oTwccnORkAnbl5qZ7N2gjbv+yZZsmth3o4vVkAeD6t0Kb7W+a42o9YH7
HhRKoTkN5xuqmKxXcfsXeIZP4BqUbyipdPNwBCv3OhUG+k7pmz3fIxJvdwKBgQC0
cFu0ObjehdxY4ORhHwz1iD8mYY17xXxuR6+GhrlnZ/j7GV50XmZ3pMeQGcg5DZNz
WXu5osE80LGd1tPjn+CShwVqbvh1UTpLtkV2vMBzchkFlEn/PNR3bm++7gEoNkzU
N4/kMjtwRLjwAOQFmqi2YGkNH0Jz6Dnr+tBRdGRd3QKBgAG9pumTm/vRBGpO4l0m
T1F7duLExFCyucXjNlpxCAKFaFQaM7DlMuNUSPKc5ESwK8YK+IIG94D3QA3ebtSg
n2hVb6t7vDSLQCDI7CgUvH3+8uRrAWEDVngyqSLD1X9LsO3vO5v7WLDjI8TncfZs
FiJTdf/Z7wmhDQgEHDjKVyCb
-----END PRIVATE KEY-----
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

