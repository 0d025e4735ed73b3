
/*
 * Copyright (C) AI Gateway authors
 *
 * The key of an answer: SHA-256 of what decides it.  The kind of endpoint
 * (chat or embeddings: not the door, so that an answer cached from one
 * door serves the other); the routed model (after aliases: two names of
 * one model share entries, two models never do); the scope (the consumer,
 * unless shared) and the namespace (the location's, and the client's
 * X-AI-Cache-Namespace header); and the request in OpenAI's format (the
 * format layer's pivot: an Anthropic request as its OpenAI translation),
 * after the guard's masking, every field included (messages, tools,
 * sampling and format parameters) but those that do not change the answer
 * (stream, stream_options, user), with its keys sorted (the order a client
 * writes them in changes nothing) and max_completion_tokens read as
 * max_tokens.  ai_cache_last_messages N keys on the
 * last N messages only, ai_cache_ignore_system off the system prompt.
 */


#include "ngx_http_ai_cache.h"

#include <openssl/evp.h>


static EVP_MD      *ngx_http_ai_cache_md;
static EVP_MD_CTX  *ngx_http_ai_cache_md_ctx;


static void ngx_http_ai_cache_trim(cJSON *json, ngx_uint_t format,
    ngx_http_ai_cache_loc_conf_t *clcf);
static void ngx_http_ai_cache_sort(cJSON *json, ngx_uint_t depth);


ngx_int_t
ngx_http_ai_cache_key(ngx_http_request_t *r, ngx_http_ai_ctx_t *ai,
    ngx_http_ai_cache_loc_conf_t *clcf, ngx_http_ai_cache_ctx_t *ctx)
{
    char                             *s;
    cJSON                            *json;
    u_char                            md[EVP_MAX_MD_SIZE], *p;
    ngx_str_t                         ns, *model, body, err;
    ngx_uint_t                        format;
    ngx_http_ai_translate_request_t   tr;
    unsigned int                      mdlen;
    EVP_MD_CTX                       *md_ctx;
    ngx_table_elt_t                  *h;

    model = ai->route_model.len ? &ai->route_model : &ai->req.model;

    /* the request in the pivot format, whatever the door's (an OpenAI
     * request is its own: its tree is copied, not printed and parsed) */

    if (ai->req.format == NGX_HTTP_AI_FMT_OPENAI) {
        json = cJSON_Duplicate(ai->req.json, 1);
        format = NGX_HTTP_AI_FMT_OPENAI;
        goto trim;
    }

    ngx_memzero(&tr, sizeof(ngx_http_ai_translate_request_t));
    tr.from = ai->req.format;
    tr.to = NGX_HTTP_AI_FMT_OPENAI;
    tr.endpoint = ai->req.endpoint;
    tr.json = ai->req.json;
    tr.body = ai->req.body;
    tr.model = *model;
    tr.max_tokens = NGX_HTTP_AI_UNSET;

    if (ngx_http_ai_translate_request(r->pool, &tr, &body, &err) == NGX_OK) {
        json = cJSON_ParseWithLength((char *) body.data, body.len);
        format = NGX_HTTP_AI_FMT_OPENAI;

    } else {
        json = cJSON_Duplicate(ai->req.json, 1);
        format = ai->req.format;
    }

trim:

    if (json == NULL) {
        return NGX_ERROR;
    }

    ngx_http_ai_cache_trim(json, format, clcf);
    ngx_http_ai_cache_sort(json, 0);

    s = cJSON_PrintUnformatted(json);
    cJSON_Delete(json);

    if (s == NULL) {
        return NGX_ERROR;
    }

    /*
     * one digest and context for the worker: OpenSSL 3 fetches an
     * algorithm at each EVP_sha256() use and allocates each context,
     * which cost more than hashing a small request
     */

    if (ngx_http_ai_cache_md == NULL) {
#if (OPENSSL_VERSION_NUMBER >= 0x30000000L)
        ngx_http_ai_cache_md = EVP_MD_fetch(NULL, "SHA256", NULL);
#else
        ngx_http_ai_cache_md = (EVP_MD *) EVP_sha256();
#endif
        ngx_http_ai_cache_md_ctx = EVP_MD_CTX_new();

        if (ngx_http_ai_cache_md == NULL
            || ngx_http_ai_cache_md_ctx == NULL)
        {
            cJSON_free(s);
            return NGX_ERROR;
        }
    }

    md_ctx = ngx_http_ai_cache_md_ctx;

    if (EVP_DigestInit_ex(md_ctx, ngx_http_ai_cache_md, NULL) != 1) {
        goto failed;
    }

    /* each part with its length first: no two keys run into each other */

    p = ngx_sprintf(md, "v1:%s:%ui:%uz:",
                    ai->req.endpoint == NGX_HTTP_AI_EP_EMBEDDINGS
                    ? "embeddings" : "chat",
                    format, model->len);
    EVP_DigestUpdate(md_ctx, md, p - md);
    EVP_DigestUpdate(md_ctx, model->data, model->len);

    if (!clcf->per_consumer) {
        ngx_str_null(&ns);

    } else {
        ns = ai->consumer;
    }

    p = ngx_sprintf(md, ":%uz:", ns.len);
    EVP_DigestUpdate(md_ctx, md, p - md);
    EVP_DigestUpdate(md_ctx, ns.data, ns.len);

    ngx_str_null(&ns);

    if (clcf->namespace
        && ngx_http_complex_value(r, clcf->namespace, &ns) != NGX_OK)
    {
        goto failed;
    }

    p = ngx_sprintf(md, ":%uz:", ns.len);
    EVP_DigestUpdate(md_ctx, md, p - md);
    EVP_DigestUpdate(md_ctx, ns.data, ns.len);

    h = ngx_http_ai_cache_header(r, "x-ai-cache-namespace");
    ns.len = h ? h->value.len : 0;

    p = ngx_sprintf(md, ":%uz:", ns.len);
    EVP_DigestUpdate(md_ctx, md, p - md);

    if (h) {
        EVP_DigestUpdate(md_ctx, h->value.data, h->value.len);
    }

    EVP_DigestUpdate(md_ctx, ":", 1);
    EVP_DigestUpdate(md_ctx, s, ngx_strlen(s));

    if (EVP_DigestFinal_ex(md_ctx, md, &mdlen) != 1) {
        goto failed;
    }

    cJSON_free(s);

    p = ngx_hex_dump(ctx->key, md, ngx_min(mdlen, 32));
    *p = '\0';

    return NGX_OK;

failed:

    cJSON_free(s);

    return NGX_ERROR;
}


/* the fields that do not change the answer, and the key's options */

static void
ngx_http_ai_cache_trim(cJSON *json, ngx_uint_t format,
    ngx_http_ai_cache_loc_conf_t *clcf)
{
    int     n, keep;
    cJSON  *messages, *m, *next, *role, *mct;

    /* the model: the routed one is in the key already */
    cJSON_DeleteItemFromObjectCaseSensitive(json, "model");

    cJSON_DeleteItemFromObjectCaseSensitive(json, "stream");
    cJSON_DeleteItemFromObjectCaseSensitive(json, "stream_options");
    cJSON_DeleteItemFromObjectCaseSensitive(json, "user");

    mct = cJSON_DetachItemFromObjectCaseSensitive(json,
                                                  "max_completion_tokens");

    if (mct) {
        if (cJSON_GetObjectItemCaseSensitive(json, "max_tokens") == NULL) {
            cJSON_AddItemToObject(json, "max_tokens", mct);

        } else {
            cJSON_Delete(mct);
        }
    }

    messages = cJSON_GetObjectItemCaseSensitive(json,
                   format == NGX_HTTP_AI_FMT_GEMINI ? "contents" : "messages");

    if (clcf->ignore_system) {
        cJSON_DeleteItemFromObjectCaseSensitive(json, "system");
        cJSON_DeleteItemFromObjectCaseSensitive(json, "systemInstruction");
        cJSON_DeleteItemFromObjectCaseSensitive(json, "system_instruction");

        for (m = messages ? messages->child : NULL; m; m = next) {
            next = m->next;
            role = cJSON_GetObjectItemCaseSensitive(m, "role");

            if (cJSON_IsString(role)
                && (ngx_strcmp(role->valuestring, "system") == 0
                    || ngx_strcmp(role->valuestring, "developer") == 0))
            {
                cJSON_Delete(cJSON_DetachItemViaPointer(messages, m));
            }
        }
    }

    if (clcf->last_messages > 0 && cJSON_IsArray(messages)) {
        n = cJSON_GetArraySize(messages);
        keep = (int) clcf->last_messages;

        while (n-- > keep) {
            cJSON_DeleteItemFromArray(messages, 0);
        }
    }
}


/* every object's keys in order, at any depth (bounded): insertion sort of
 * the child list, relinked in place */

static void
ngx_http_ai_cache_sort(cJSON *json, ngx_uint_t depth)
{
    cJSON  *c, *next, *sorted, *p, *last;

    if (json == NULL || depth > 64) {
        return;
    }

    for (c = json->child; c; c = c->next) {
        ngx_http_ai_cache_sort(c, depth + 1);
    }

    if (!cJSON_IsObject(json) || json->child == NULL) {
        return;
    }

    sorted = NULL;

    for (c = json->child; c; c = next) {
        next = c->next;

        if (sorted == NULL
            || ngx_strcmp(c->string ? c->string : "",
                          sorted->string ? sorted->string : "")
               < 0)
        {
            c->next = sorted;
            sorted = c;
            continue;
        }

        for (p = sorted;
             p->next && ngx_strcmp(p->next->string ? p->next->string : "",
                                   c->string ? c->string : "")
                        <= 0;
             p = p->next)
        {
            /* void */
        }

        c->next = p->next;
        p->next = c;
    }

    /* the back links: cJSON keeps the last in the first's prev */

    last = NULL;

    for (c = sorted; c; c = c->next) {
        c->prev = last;
        last = c;
    }

    sorted->prev = last;
    json->child = sorted;
}
