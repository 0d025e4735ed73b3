
/*
 * Copyright (C) AI Gateway authors
 *
 * Preloaded into nginx with the ASan runtime by the sanitizer pass
 * (docs/testing.md).  GCC's UBSan runtime reads UBSAN_OPTIONS when it
 * reports for the first time, from /proc/self/environ; in an nginx
 * worker that memory holds the process title by then (setproctitle), so
 * UBSan would run with its defaults: no stack trace, and a report path
 * of "stderr" that it also sets for ASan.  The options are saved here
 * at startup and handed to UBSan through its __ubsan_default_options()
 * hook.
 */


#include <stdlib.h>
#include <string.h>


const char *__ubsan_default_options(void);


static char  ngx_ubsan_options[4096];


__attribute__((constructor)) static void
ngx_ubsan_options_save(void)
{
    const char  *v;

    v = getenv("UBSAN_OPTIONS");

    if (v != NULL) {
        strncpy(ngx_ubsan_options, v, sizeof(ngx_ubsan_options) - 1);
    }
}


const char *
__ubsan_default_options(void)
{
    return ngx_ubsan_options;
}
