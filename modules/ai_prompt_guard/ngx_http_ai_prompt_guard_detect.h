
/*
 * Copyright (C) AI Gateway authors
 *
 * The built-in detectors of ai_prompt_guard: personal data, secrets,
 * prompt-injection phrases and hidden Unicode in a text.
 *
 * Pure code: text in, matches out.  No allocation, no state but a phrase
 * index built on first use, no regular expression engine, no logging;
 * time linear in the length of the text (each detector looks at a byte a
 * bounded number of times); safe on
 * any bytes (invalid UTF-8, NULs, any length).  The text is UTF-8; word
 * boundaries are ASCII ones (a non-ASCII byte, a CJK character say, is
 * never part of a word), so PII written between Chinese characters is
 * found.  Speed: prose is read about once (a map of 64-byte blocks lets
 * a detector skip those without its kind of bytes: digits, capitals,
 * non-ASCII); t/unit/test_detect.c prints the figures of a prompt dense
 * with personal data, English and Chinese, and bench/run's guard cases
 * the cost in NGINX.
 *
 * The rules of each detector and their known limits are told at the top
 * of ngx_http_ai_prompt_guard_detect.c.
 */


#ifndef _NGX_HTTP_AI_PROMPT_GUARD_DETECT_H_INCLUDED_
#define _NGX_HTTP_AI_PROMPT_GUARD_DETECT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/* the detectors, one bit each; a mask selects several */
#define NGX_HTTP_AI_PG_EMAIL            0x0001
#define NGX_HTTP_AI_PG_PHONE            0x0002  /* E.164 with "+"; North
                                                   American and Chinese
                                                   mobile forms with
                                                   separators */
#define NGX_HTTP_AI_PG_CARD             0x0004  /* 13-19 digits, spaces or
                                                   dashes, Luhn, known IIN */
#define NGX_HTTP_AI_PG_IBAN             0x0008  /* ISO 13616: country
                                                   length, mod 97 */
#define NGX_HTTP_AI_PG_IPV4             0x0010
#define NGX_HTTP_AI_PG_IPV6             0x0020  /* full, "::", v4-mapped */
#define NGX_HTTP_AI_PG_CN_ID            0x0040  /* GB 11643: 18 chars,
                                                   check digit, birth date */
#define NGX_HTTP_AI_PG_US_SSN           0x0080  /* AAA-GG-SSSS, valid
                                                   areas, groups, serials */
#define NGX_HTTP_AI_PG_SECRET           0x0100  /* API key shapes, PEM
                                                   private keys, JWTs */
#define NGX_HTTP_AI_PG_INJECTION        0x0200  /* injection phrases, EN
                                                   and ZH */
#define NGX_HTTP_AI_PG_HIDDEN           0x0400  /* tag characters,
                                                   zero-width, bidi */

#define NGX_HTTP_AI_PG_ALL              0x07ff


/*
 * The longest match of a detector, in bytes: a PEM block or a JWT longer
 * than this is not matched (NGX_HTTP_AI_PG_SECRET), nor is an injection
 * phrase stretched by whitespace over more than 256 bytes; a run of
 * hidden characters is cut into matches of at most 256 bytes.
 */
#define NGX_HTTP_AI_PG_SECRET_MAX       8192

/* the bytes read around a match, see ngx_http_ai_pg_detect_max_len() */
#define NGX_HTTP_AI_PG_LOOKAROUND       2


typedef struct {
    size_t                      start;     /* byte offset in the text */
    size_t                      len;       /* bytes */
    ngx_uint_t                  type;      /* one NGX_HTTP_AI_PG_* bit */
} ngx_http_ai_pg_match_t;


/*
 * Runs the detectors set in mask over text: the matches, in order of
 * start, never overlapping; where matches of several detectors overlap
 * the one that starts first wins, at the same start the longest, at the
 * same length the lowest bit.  At most max matches are stored in matches,
 * *n tells how many.  Returns NGX_OK, or NGX_DECLINED when there were
 * more than max (the first max are given).  text may be NULL if len is 0.
 */
ngx_int_t ngx_http_ai_pg_detect(u_char *text, size_t len, ngx_uint_t mask,
    ngx_http_ai_pg_match_t *matches, ngx_uint_t max, ngx_uint_t *n);

/*
 * The name of a detector for placeholders and logs: "EMAIL", "PHONE",
 * "CARD", "IBAN", "IPV4", "IPV6", "CN_ID", "US_SSN", "SECRET",
 * "INJECTION", "HIDDEN"; NULL for anything else than one bit.
 */
const char *ngx_http_ai_pg_detector_name(ngx_uint_t type);

/*
 * The bit of a detector from its name in the configuration: "email",
 * "phone", "card", "iban", "ipv4", "ipv6", "cn_id", "us_ssn", "secrets",
 * "injection", "hidden_unicode" (exact, lowercase); 0 if unknown.
 */
ngx_uint_t ngx_http_ai_pg_detector(u_char *name, size_t len);

/*
 * The longest match (bytes) that the detectors of mask can produce; 0 for
 * an empty mask.
 *
 * Streams: besides a match, a detector reads at most
 * NGX_HTTP_AI_PG_LOOKAROUND bytes before and after it (word boundaries,
 * "1.2.3.4" before ".5").  So the matches of what a stream holds that end
 * at least max_len + NGX_HTTP_AI_PG_LOOKAROUND bytes before its end are
 * final: a longer text has the same.  The text before them and before the
 * first match that is not final may be sent; the rest is held back.  U+FEFF
 * is taken for a BOM at offset 0 only: scan from the start of the text.
 */
size_t ngx_http_ai_pg_detect_max_len(ngx_uint_t mask);


#endif /* _NGX_HTTP_AI_PROMPT_GUARD_DETECT_H_INCLUDED_ */
