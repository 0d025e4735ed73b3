
/*
 * Copyright (C) AI Gateway authors
 *
 * Model patterns: the shell globs (fnmatch(3): *, ?, [...]) of a
 * consumer's "models=", "ai_target ... models=" and "ai_price", checked
 * when the configuration is read and matched at every request.
 */


#include "ngx_http_ai_core_module.h"

#include <fnmatch.h>


/*
 * Model patterns are shell globs (fnmatch(3)): *, ?, [...].  What looks
 * like a regular expression would silently match nothing, so it is
 * refused with the reason.
 */

const char *
ngx_http_ai_glob_invalid(ngx_str_t *glob)
{
    u_char  *p, *last;

    if (glob->len == 0) {
        return "empty";
    }

    if (glob->len >= NGX_HTTP_AI_MODEL_MAX) {
        return "too long";
    }

    p = glob->data;
    last = glob->data + glob->len;

    if (*p == '^' || last[-1] == '$') {
        return "looks like a regular expression (\"^\" or \"$\"); model "
               "patterns are shell globs: \"*\", \"?\", \"[...]\"";
    }

    for ( /* void */ ; p < last; p++) {

        switch (*p) {

        case '.':
            if (p + 1 < last && (p[1] == '*' || p[1] == '+')) {
                return "looks like a regular expression (\".*\"); model "
                       "patterns are shell globs: \"*\" matches anything";
            }

            break;

        case '\\':
        case '(':
        case ')':
        case '|':
        case '+':
        case '{':
        case '}':
            return "looks like a regular expression; model patterns are "
                   "shell globs: \"*\", \"?\", \"[...]\"";

        case '[':
            if (ngx_strlchr(p + 1, last, ']') == NULL) {
                return "has an unclosed \"[\"";
            }

            break;

        default:
            if (*p <= ' ' || *p == 0x7f) {
                return "has white space or control characters";
            }
        }
    }

    return NULL;
}


/*
 * Most patterns are a name ("gpt-4o") or a name and one "*" at its end
 * ("claude-*"): those are compared here, the others go to fnmatch(3),
 * whose every call costs a few hundred instructions more (it is called
 * per target, price and consumer, at every request).  The bytes before
 * the first special character must be the name's own in both.
 */

ngx_uint_t
ngx_http_ai_glob_match(ngx_str_t *glob, ngx_str_t *name)
{
    u_char      c, buf[NGX_HTTP_AI_MODEL_MAX];
    ngx_uint_t  i;

    if (name->len >= sizeof(buf)) {
        return 0;
    }

    for (i = 0; i < glob->len; i++) {
        c = glob->data[i];

        if (c == '*') {
            if (i == glob->len - 1) {
                return 1;
            }

            goto fnmatch;
        }

        if (c == '?' || c == '[' || c == '\\') {
            goto fnmatch;
        }

        if (i == name->len || name->data[i] != c) {
            return 0;
        }
    }

    return i == name->len;

fnmatch:

    /* glob->data is NUL-terminated, as every directive's argument */

    ngx_memcpy(buf, name->data, name->len);
    buf[name->len] = '\0';

    return fnmatch((char *) glob->data, (char *) buf, 0) == 0;
}
