# Consumers: virtual keys from directives, env and a file; 401 in OpenAI's
# shape for a missing or unknown key; keys never appear in logs.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_AI_TEAM_KEY} = 'sk-team-from-env-123';
env_to_nginx('TEST_AI_TEAM_KEY');
run_tests();

__DATA__

=== TEST 1: required: missing, unknown and known keys (a header's name in any case)
--- http_config
    ai_consumer alice sk-alice-0123456789;
    ai_consumer bob   sk-bob-0123456789;
--- config
    location /v1/ {
        ai_core on;
        ai_auth required;
        return 200 "consumer=$ai_consumer\n";
    }
--- request eval
["POST /v1/chat/completions\n{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
 "POST /v1/chat/completions\n{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
 "POST /v1/chat/completions\n{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
 "POST /v1/messages\n{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
 "POST /v1/messages\n{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"]
--- more_headers eval
["", "Authorization: Bearer sk-mallory-0123456789", "Authorization: Bearer sk-bob-0123456789",
 "x-api-key: sk-alice-0123456789", "X-API-Key: sk-alice-0123456789"]
--- error_code eval
[401, 401, 200, 200, 200]
--- response_body eval
[qq!{"error":{"message":"missing API key: send it in the \\"Authorization: Bearer\\" or \\"x-api-key\\" header","type":"authentication_error","param":null,"code":"invalid_api_key"}}\n!,
 qq!{"error":{"message":"invalid API key","type":"authentication_error","param":null,"code":"invalid_api_key"}}\n!,
 "consumer=bob\n",
 "consumer=alice\n",
 "consumer=alice\n"]
--- no_error_log
sk-mallory-0123456789
sk-bob-0123456789
sk-alice-0123456789
[error]



=== TEST 2: the 401 comes before the body is read (no body needed)
--- http_config
    ai_consumer alice sk-alice-0123456789;
--- config
    location /v1/ {
        ai_core on;
        ai_auth required;
        return 200 "ok\n";
    }
--- request
GET /v1/models
--- error_code: 401
--- response_headers
Content-Type: application/json
--- no_error_log
[error]



=== TEST 3: optional: anonymous is fine, an unknown key is not
--- http_config
    ai_consumer alice sk-alice-0123456789;
--- config
    location /v1/ {
        ai_core on;
        ai_auth optional;
        return 200 "consumer=[$ai_consumer]\n";
    }
--- request eval
["GET /v1/models", "GET /v1/models", "GET /v1/models"]
--- more_headers eval
["", "Authorization: Bearer sk-unknown-000000", "Authorization: Bearer sk-alice-0123456789"]
--- error_code eval
[200, 401, 200]
--- response_body_like eval
["^consumer=\\[\\]\$", "invalid API key", "^consumer=\\[alice\\]\$"]
--- no_error_log
[error]



=== TEST 4: keys from a file and from the environment
--- main_config
    env TEST_AI_TEAM_KEY;
--- http_config
    ai_consumers_file consumers.txt;
    ai_consumer team env:TEST_AI_TEAM_KEY;
--- config
    location /v1/ {
        ai_core on;
        ai_auth required;
        return 200 "consumer=$ai_consumer\n";
    }
--- user_files
>>> ../conf/consumers.txt
# name   key
carol    sk-carol-0123456789
  dave	sk-dave-0123456789
--- request eval
["GET /v1/models", "GET /v1/models", "GET /v1/models"]
--- more_headers eval
["Authorization: Bearer sk-carol-0123456789", "Authorization: bearer  sk-dave-0123456789",
 "x-api-key: sk-team-from-env-123"]
--- response_body eval
["consumer=carol\n", "consumer=dave\n", "consumer=team\n"]
--- no_error_log
[error]



=== TEST 5: ai_auth without consumers is an nginx -t error
--- config
    location /v1/ {
        ai_core on;
        ai_auth required;
    }
--- must_die
--- error_log
"ai_auth" is on but no consumer keys are defined



=== TEST 6: two consumers with one key is an nginx -t error
--- http_config
    ai_consumer a sk-same-key-0000;
    ai_consumer b sk-same-key-0000;
--- config
    location /v1/ { ai_core on; }
--- must_die
--- error_log
consumers "a" and "b" have the same key
--- no_error_log
sk-same-key-0000



=== TEST 7: bad values are named by nginx -t
--- http_config
    ai_consumer a short;
--- config
    location /v1/ { ai_core on; ai_auth maybe; }
--- must_die
--- error_log
the key of consumer "a" is too short



=== TEST 8: an invalid ai_auth value is named
--- config
    location /v1/ { ai_core on; ai_auth maybe; }
--- must_die
--- error_log
invalid value "maybe"



=== TEST 9: an unset environment variable is named
--- http_config
    ai_consumer a env:TEST_AI_NO_SUCH_VAR;
--- config
    location /v1/ { ai_core on; }
--- must_die
--- error_log
environment variable "TEST_AI_NO_SUCH_VAR" is not set
