# Models and access: GET /v1/models and /v1/models/{id} answered by the
# gateway in each door's shape (aliases, ai_proxy_models, the targets'
# plain names), the consumers' model allow-lists checked on the routed
# model (an alias cannot bypass them), backups that back up only what a
# primary serves, embeddings never sent to a chat model, and nginx -t
# refusing model patterns, aliases and declarations that cannot work.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: GET /v1/models: aliases, declared models and the targets' plain names, once each, in OpenAI's shape; HEAD too
--- http_config
    ai_target gpt  http://127.0.0.1:$TEST_NGINX_MOCK_PORT/gpt/v1 models=gpt-*,o1;
    ai_target an   http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic models=claude-*;
--- config
    location /v1/ {
        ai_proxy gpt an;
        ai_proxy_alias fast gpt-4o-mini;
        ai_proxy_models gpt-4o claude-sonnet-4 o1 fast;
    }
--- request eval
["GET /v1/models", "HEAD /v1/models", "GET /v1/models/"]
--- error_code eval
[200, 200, 200]
--- response_headers
Content-Type: application/json
--- response_body eval
["{\"object\":\"list\",\"data\":[{\"id\":\"fast\",\"object\":\"model\",\"created\":0,\"owned_by\":\"gpt\"},{\"id\":\"gpt-4o\",\"object\":\"model\",\"created\":0,\"owned_by\":\"gpt\"},{\"id\":\"claude-sonnet-4\",\"object\":\"model\",\"created\":0,\"owned_by\":\"an\"},{\"id\":\"o1\",\"object\":\"model\",\"created\":0,\"owned_by\":\"gpt\"}]}\n",
 "",
 "{\"object\":\"list\",\"data\":[{\"id\":\"fast\",\"object\":\"model\",\"created\":0,\"owned_by\":\"gpt\"},{\"id\":\"gpt-4o\",\"object\":\"model\",\"created\":0,\"owned_by\":\"gpt\"},{\"id\":\"claude-sonnet-4\",\"object\":\"model\",\"created\":0,\"owned_by\":\"an\"},{\"id\":\"o1\",\"object\":\"model\",\"created\":0,\"owned_by\":\"gpt\"}]}\n"]
--- no_error_log
[error]
[alert]



=== TEST 2: the Anthropic door's model list and model (its SDK sends anthropic-version), and its 404
--- http_config
    ai_target gpt  http://127.0.0.1:$TEST_NGINX_MOCK_PORT/gpt/v1 models=gpt-*;
    ai_target an   http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic models=claude-*;
--- config
    location /v1/ {
        ai_proxy gpt an;
        ai_proxy_alias sonnet claude-sonnet-4;
        ai_proxy_models gpt-4o;
    }
--- request eval
["GET /v1/models?limit=20", "GET /v1/models/sonnet", "GET /v1/models/claude-3-opus", "GET /v1/models/mistral"]
--- more_headers
anthropic-version: 2023-06-01
--- error_code eval
[200, 200, 200, 404]
--- response_body eval
["{\"data\":[{\"type\":\"model\",\"id\":\"sonnet\",\"display_name\":\"sonnet\",\"created_at\":\"1970-01-01T00:00:00Z\"},{\"type\":\"model\",\"id\":\"gpt-4o\",\"display_name\":\"gpt-4o\",\"created_at\":\"1970-01-01T00:00:00Z\"}],\"has_more\":false,\"first_id\":\"sonnet\",\"last_id\":\"gpt-4o\"}\n",
 "{\"type\":\"model\",\"id\":\"sonnet\",\"display_name\":\"sonnet\",\"created_at\":\"1970-01-01T00:00:00Z\"}\n",
 "{\"type\":\"model\",\"id\":\"claude-3-opus\",\"display_name\":\"claude-3-opus\",\"created_at\":\"1970-01-01T00:00:00Z\"}\n",
 "{\"type\":\"error\",\"error\":{\"message\":\"the model \\\"mistral\\\" is not served here\",\"type\":\"invalid_request_error\",\"param\":\"model\",\"code\":\"model_not_found\"}}\n"]
--- no_error_log
[error]
[alert]



=== TEST 3: nothing declared (one OpenAI-compatible target, no alias): the provider answers for its own models; the Anthropic door's list is the gateway's (empty)
--- config
    location /v1/ {
        ai_proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1;
    }
--- request eval
["GET /v1/models", "GET /v1/models", "GET /v1/models/anything"]
--- more_headers eval
["", "anthropic-version: 2023-06-01", ""]
--- error_code eval
[200, 200, 404]
--- response_body_like eval
["^\\{\"object\":\"list\",\"data\":\\[\\{\"id\":\"gpt-4o\",",
 "^\\{\"data\":\\[\\],\"has_more\":false,\"first_id\":null,\"last_id\":null\\}\$",
 "Invalid URL \\(GET /v1/models/anything\\)"]
--- no_error_log
[error]
[alert]



=== TEST 4: the official SDKs: models.list and models.retrieve through both doors, and the typed 404
--- http_config
    ai_consumer app sk-client-app-0001;
    ai_target gpt  http://127.0.0.1:$TEST_NGINX_MOCK_PORT/gpt/v1 models=gpt-*;
    ai_target an   http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic models=claude-*;
--- config
    location /v1/ {
        ai_auth required;
        ai_proxy gpt an;
        ai_proxy_alias fast gpt-4o-mini;
        ai_proxy_models gpt-4o claude-sonnet-4;
    }
--- exec
node t/sdk/models.mjs http://127.0.0.1:$TEST_NGINX_SERVER_PORT sk-client-app-0001 fast
--- response_body
openai list: fast/gpt gpt-4o/gpt claude-sonnet-4/an
openai retrieve: fast model gpt
openai unknown: NotFoundError 404 model_not_found
anthropic list: fast/model/fast gpt-4o/model/gpt-4o claude-sonnet-4/model/claude-sonnet-4
anthropic retrieve: fast model 1970-01-01T00:00:00Z
anthropic unknown: NotFoundError 404 error invalid_request_error
--- no_error_log
[error]
[alert]
sk-client-app-0001
--- timeout: 30



=== TEST 5: a consumer's allow-list is checked on the routed model: a model or an alias to a model not on it is a 403 naming it, in each door's shape; another consumer is not limited
--- http_config
    ai_consumer team-a sk-team-a-000001 models=gpt-4o-mini,claude-*;
    ai_consumer team-b sk-team-b-000002;
    ai_target gpt  http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 models=gpt-*;
    ai_target an   http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic models=claude-*;
    log_format ai '$ai_consumer $ai_model $ai_route_model $status';
--- config
    location /v1/ {
        ai_auth required;
        ai_proxy gpt an;
        ai_proxy_alias fast gpt-4o-mini;
        ai_proxy_alias big gpt-4o;
        access_log logs/access.log ai;
    }
--- request eval
["POST /v1/chat/completions\n{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}",
 "POST /v1/chat/completions\n{\"model\":\"big\",\"messages\":[{\"role\":\"user\",\"content\":\"b\"}]}",
 "POST /v1/chat/completions\n{\"model\":\"fast\",\"messages\":[{\"role\":\"user\",\"content\":\"c\"}]}",
 "POST /v1/messages\n{\"model\":\"big\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":\"d\"}]}",
 "POST /v1/messages\n{\"model\":\"claude-3-5-haiku\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":\"e\"}]}",
 "POST /v1/chat/completions\n{\"model\":\"big\",\"messages\":[{\"role\":\"user\",\"content\":\"f\"}]}"]
--- more_headers eval
["Authorization: Bearer sk-team-a-000001", "Authorization: Bearer sk-team-a-000001",
 "Authorization: Bearer sk-team-a-000001", "x-api-key: sk-team-a-000001",
 "x-api-key: sk-team-a-000001", "Authorization: Bearer sk-team-b-000002"]
--- error_code eval
[403, 403, 200, 403, 200, 200]
--- response_body_like eval
["^\\{\"error\":\\{\"message\":\"the model \\\\\"gpt-4o\\\\\" is not allowed for this API key\",\"type\":\"permission_error\",\"param\":\"model\",\"code\":\"model_not_allowed\"\\}\\}\$",
 "^\\{\"error\":\\{\"message\":\"the model \\\\\"gpt-4o\\\\\" \\(asked as \\\\\"big\\\\\"\\) is not allowed for this API key\",\"type\":\"permission_error\",\"param\":\"model\",\"code\":\"model_not_allowed\"\\}\\}\$",
 "mock reply: c",
 "^\\{\"type\":\"error\",\"error\":\\{\"message\":\"the model \\\\\"gpt-4o\\\\\" \\(asked as \\\\\"big\\\\\"\\) is not allowed for this API key\",\"type\":\"permission_error\",",
 "mock reply: e",
 "mock reply: f"]
--- access_log
team-a gpt-4o gpt-4o 403
team-a big gpt-4o 403
team-a fast gpt-4o-mini 200
team-a big gpt-4o 403
team-a claude-3-5-haiku claude-3-5-haiku 200
team-b big gpt-4o 200
--- no_error_log
[error]
[alert]



=== TEST 6: the model list and model of a limited consumer: only what it may use; another model is a 403
--- http_config
    ai_consumer team-a sk-team-a-000001 models=gpt-4o-mini,claude-*;
    ai_consumer team-b sk-team-b-000002;
    ai_target gpt  http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 models=gpt-*;
    ai_target an   http://127.0.0.1:$TEST_NGINX_MOCK_PORT provider=anthropic models=claude-*;
--- config
    location /v1/ {
        ai_auth required;
        ai_proxy gpt an;
        ai_proxy_alias fast gpt-4o-mini;
        ai_proxy_alias big gpt-4o;
        ai_proxy_models gpt-4o gpt-4o-mini claude-sonnet-4;
    }
--- request eval
["GET /v1/models", "GET /v1/models", "GET /v1/models/big", "GET /v1/models/gpt-4o", "GET /v1/models/fast"]
--- more_headers eval
["Authorization: Bearer sk-team-a-000001", "Authorization: Bearer sk-team-b-000002",
 "Authorization: Bearer sk-team-a-000001", "Authorization: Bearer sk-team-a-000001",
 "Authorization: Bearer sk-team-a-000001"]
--- error_code eval
[200, 200, 403, 403, 200]
--- response_body_like eval
["^\\{\"object\":\"list\",\"data\":\\[\\{\"id\":\"fast\",[^]]*\\{\"id\":\"gpt-4o-mini\",[^]]*\\{\"id\":\"claude-sonnet-4\",[^]]*\\]\\}\$",
 "^\\{\"object\":\"list\",\"data\":\\[\\{\"id\":\"fast\",[^]]*\\{\"id\":\"big\",[^]]*\\{\"id\":\"gpt-4o\",[^]]*\\{\"id\":\"gpt-4o-mini\",[^]]*\\{\"id\":\"claude-sonnet-4\",[^]]*\\]\\}\$",
 "\"message\":\"the model \\\\\"gpt-4o\\\\\" is not allowed for this API key\"",
 "\"code\":\"model_not_allowed\"",
 "^\\{\"id\":\"fast\",\"object\":\"model\""]
--- response_body_unlike eval
["\"big\"|\"gpt-4o\"", "unlikely-string", "\\bfast\\b", "unlikely-string", "gpt-4o\\\"\\}"]
--- no_error_log
[error]
[alert]



=== TEST 7: the consumers file takes models= too
--- http_config
    ai_consumers_file consumers.txt;
    ai_target gpt  http://127.0.0.1:$TEST_NGINX_MOCK_PORT/v1 models=gpt-*;
--- config
    location /v1/ {
        ai_auth required;
        ai_proxy gpt;
    }
--- user_files
>>> ../conf/consumers.txt
# name key [models=...]
team-a sk-team-a-000001 models=gpt-4o-mini   # a comment
team-b	sk-team-b-000002
--- request eval
["POST /v1/chat/completions\n{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}",
 "POST /v1/chat/completions\n{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"b\"}]}",
 "POST /v1/chat/completions\n{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"c\"}]}"]
--- more_headers eval
["Authorization: Bearer sk-team-a-000001", "Authorization: Bearer sk-team-a-000001",
 "Authorization: Bearer sk-team-b-000002"]
--- error_code eval
[403, 200, 200]
--- response_body_like eval
["is not allowed for this API key", "mock reply: b", "mock reply: c"]
--- no_error_log
[error]
[alert]



=== TEST 8: a backup with models= serves its models alone; without, only what a primary serves
--- http_config
    ai_target main  http://127.0.0.1:$TEST_NGINX_MOCK_PORT/main/v1 models=gpt-*;
    ai_target spare http://127.0.0.1:$TEST_NGINX_MOCK_PORT/spare/v1 backup;
    ai_target local http://127.0.0.1:$TEST_NGINX_MOCK_PORT/local/v1 models=llama-* backup;
    log_format ai '$ai_model $ai_target $status';
--- config
    location /v1/ {
        ai_proxy main spare local;
        access_log logs/access.log ai;
    }
--- request eval
["POST /v1/chat/completions\n{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}",
 "POST /v1/chat/completions\n{\"model\":\"llama-3\",\"messages\":[{\"role\":\"user\",\"content\":\"b\"}]}",
 "POST /v1/chat/completions\n{\"model\":\"mistral\",\"messages\":[{\"role\":\"user\",\"content\":\"c\"}]}"]
--- error_code eval
[200, 200, 404]
--- response_body_like eval
["mock reply: a", "mock reply: b", "\"code\":\"model_not_found\""]
--- access_log
gpt-4o main 200
llama-3 local 200
mistral - 404
--- no_error_log
[error]
[alert]



=== TEST 9: an embeddings request never goes to a chat model: a target sent one model (model=) serves chat only, unless endpoints= says otherwise
--- http_config
    ai_target chat http://127.0.0.1:$TEST_NGINX_MOCK_PORT/chat/v1 model=gpt-4o-mini;
    ai_target emb  http://127.0.0.1:$TEST_NGINX_MOCK_PORT/emb/v1 models=text-embedding-* endpoints=embeddings;
    log_format ai '$ai_model $ai_target $ai_upstream_model $status';
--- config
    location /v1/ {
        ai_proxy chat;
        access_log logs/access.log ai;
    }
    location /both/v1/ {
        ai_proxy chat emb;
        access_log logs/access.log ai;
    }
--- request eval
["POST /v1/embeddings\n{\"model\":\"text-embedding-3-small\",\"input\":\"x\"}",
 "POST /v1/chat/completions\n{\"model\":\"anything\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}",
 "POST /both/v1/embeddings\n{\"model\":\"text-embedding-3-small\",\"input\":\"x\"}",
 "POST /both/v1/chat/completions\n{\"model\":\"text-embedding-3-small\",\"messages\":[{\"role\":\"user\",\"content\":\"b\"}]}"]
--- error_code eval
[404, 200, 200, 200]
--- response_body_like eval
["\"message\":\"the model \\\\\"text-embedding-3-small\\\\\" is not served here\"",
 "mock reply: a", "\"object\":\"embedding\"", "mock reply: b"]
--- access_log
text-embedding-3-small - - 404
anything chat gpt-4o-mini 200
text-embedding-3-small emb text-embedding-3-small 200
text-embedding-3-small chat gpt-4o-mini 200
--- no_error_log
[error]
[alert]



=== TEST 10: nginx -t: a regular expression as a target's model pattern
--- http_config
    ai_target an http://127.0.0.1:1 provider=anthropic models=^claude.*$;
--- config
    location /v1/ { ai_proxy an; }
--- must_die
--- error_log
ai_target "an": invalid model pattern "^claude.*$" in "models=": looks like a regular expression ("^" or "$"); model patterns are shell globs: "*", "?", "[...]"



=== TEST 11: nginx -t: ".*" in a target's model pattern
--- http_config
    ai_target gpt http://127.0.0.1:1 models=gpt-4o,gpt.*;
--- config
    location /v1/ { ai_proxy gpt; }
--- must_die
--- error_log
ai_target "gpt": invalid model pattern "gpt.*" in "models=": looks like a regular expression (".*"); model patterns are shell globs: "*" matches anything



=== TEST 12: nginx -t: an unclosed "[" in a consumer's models=
--- http_config
    ai_consumer team-a sk-team-a-000001 models=gpt-[4o;
--- config
    location /v1/ { return 200; }
--- must_die
--- error_log
consumer "team-a": invalid model pattern "gpt-[4o" in "models=": has an unclosed "["



=== TEST 13: nginx -t: an alias to a model no target of the location serves
--- http_config
    ai_target gpt http://127.0.0.1:1 models=gpt-*;
--- config
    location /v1/ {
        ai_proxy gpt;
        ai_proxy_alias sonnet claude-sonnet-4;
    }
--- must_die
--- error_log
"ai_proxy_alias sonnet claude-sonnet-4": no target of this location serves the model "claude-sonnet-4"



=== TEST 14: nginx -t: a declared model no target serves
--- http_config
    ai_target gpt http://127.0.0.1:1 models=gpt-*;
--- config
    location /v1/ {
        ai_proxy gpt;
        ai_proxy_models gpt-4o llama-3;
    }
--- must_die
--- error_log
"ai_proxy_models": no target of this location serves the model "llama-3"



=== TEST 15: nginx -t: ai_proxy_models lists models, not patterns
--- http_config
    ai_target gpt http://127.0.0.1:1 models=gpt-*;
--- config
    location /v1/ {
        ai_proxy gpt;
        ai_proxy_models gpt-*;
    }
--- must_die
--- error_log
"ai_proxy_models" lists models, not patterns: "gpt-*"



=== TEST 16: nginx -t: endpoints= of a target
--- http_config
    ai_target an http://127.0.0.1:1 provider=anthropic endpoints=embeddings;
--- config
    location /v1/ { ai_proxy an; }
--- must_die
--- error_log
ai_target "an": embeddings are OpenAI's API only, the provider "anthropic" has none



=== TEST 17: nginx -t: an unknown value in endpoints=
--- http_config
    ai_target gpt http://127.0.0.1:1 endpoints=chat,images;
--- config
    location /v1/ { ai_proxy gpt; }
--- must_die
--- error_log
ai_target "gpt": invalid "endpoints=chat,images" (chat, embeddings, or both separated by a comma)



=== TEST 18: a consumer's allow-list holds behind a plain proxy_pass too (no router: the model asked for is the model served)
--- http_config
    ai_consumer team-a sk-team-a-000001 models=gpt-4o-mini;
--- config
    location /v1/ {
        ai_core on;
        ai_auth required;
        proxy_set_header Authorization "";
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request eval
["POST /v1/chat/completions\n{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}",
 "POST /v1/chat/completions\n{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"b\"}]}"]
--- more_headers
Authorization: Bearer sk-team-a-000001
--- error_code eval
[403, 200]
--- response_body_like eval
["^\\{\"error\":\\{\"message\":\"the model \\\\\"gpt-4o\\\\\" is not allowed for this API key\",\"type\":\"permission_error\",\"param\":\"model\",\"code\":\"model_not_allowed\"\\}\\}\$",
 "mock reply: b"]
--- no_error_log
[error]
[alert]
