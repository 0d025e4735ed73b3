// A JavaScript copy of the gateway's estimator
// (modules/ai_core/ngx_http_ai_core_estimate.c) for an
// OpenAI chat request.  `run` checks that it gives exactly what the
// gateway reserved: the measurement itself always comes from the real C
// code.  `estimateBytes` is the estimator the module had first (bytes a
// token), with its constants as parameters, for `fit`'s searches.
'use strict'

const { contentText } = require('./reference')

// the C code's pieces of a text (see its header comment)
function pieceTokens(s) {
    const b = Buffer.from(s, 'utf8')
    const letter = (i) => {
        if (((b[i] | 0x20) >= 0x61 && (b[i] | 0x20) <= 0x7a)) return 1
        if (b[i] >= 0xc0 && b[i] < 0xe0 && i + 1 < b.length
            && b[i + 1] >= 0x80 && b[i + 1] < 0xc0) return 2
        return 0
    }
    const upper = (x) => x >= 0x41 && x <= 0x5a
    const digit = (x) => x >= 0x30 && x <= 0x39
    const space = (x) => x === 0x20 || x === 0x0a || x === 0x09 || x === 0x0d
    let n = 0, c3 = 0, c4 = 0, p = 0
    while (p < b.length) {
        const c = b[p]
        if (!letter(p) && c >= 0x80) {
            if (c >= 0xf0) c4++
            else if (c >= 0xe0) c3++
            p++
            continue
        }
        if (letter(p)) {
            while (p < b.length && upper(b[p])) p++
            while (p < b.length && letter(p) && !upper(b[p])) p += letter(p)
            n++
            continue
        }
        const q = p
        if (digit(c)) {
            while (p < b.length && digit(b[p])) p++
            n += Math.floor((p - q + 2) / 3)
            continue
        }
        if (space(c)) {
            while (p < b.length && space(b[p])) p++
            if (!(p - q === 1 && c === 0x20 && p < b.length)) n++
            continue
        }
        while (p < b.length && b[p] < 0x80 && !letter(p) && !digit(b[p])
               && !space(b[p])) p++
        if (p - q === 1 && p < b.length && letter(p)) continue
        n += Math.floor((p - q + 2) / 3)
    }
    return n + Math.floor((c3 * 2 + 2) / 3) + Math.floor((c4 * 3 + 1) / 2)
}

function estimate(body) {
    let n = 3
    for (const m of body.messages) {
        n += 4 + pieceTokens(contentText(m.content))
        for (const c of m.tool_calls || []) n += pieceTokens(JSON.stringify(c))
    }
    for (const t of body.tools || []) n += pieceTokens(JSON.stringify(t))
    return Math.floor((n * 115 + 99) / 100)
}

// the first estimator: bytes a token
const BYTES = {
    ascii: 4,        // ASCII bytes a token
    other: 2,        // non-ASCII bytes a token
    message: 4,      // each message
    priming: 3,      // each request
    tool: 8,         // each tool definition and each tool call
    json: 4,         // a tool's (or call's) JSON bytes a token
}

// ceil(bytes / per), as C's (n + per - 1) / per for integers
const div = (n, per) => Math.ceil(n / per - 1e-9)

function textTokens(s, k, per = k.ascii) {
    const b = Buffer.from(s, 'utf8')
    let ascii = 0
    for (const c of b) ascii += c < 0x80
    return div(ascii, per) + div(b.length - ascii, k.other)
}

// cJSON_PrintUnformatted and JSON.stringify agree on the corpus (no
// floats, no control characters but \n)
const jsonTokens = (v, k) => textTokens(JSON.stringify(v), k, k.json)

function estimateBytes(body, k = BYTES) {
    let n = k.priming
    for (const m of body.messages) {
        n += k.message + textTokens(contentText(m.content), k)
        for (const c of m.tool_calls || []) n += k.tool + jsonTokens(c, k)
    }
    for (const t of body.tools || []) n += k.tool + jsonTokens(t, k)
    return n
}

module.exports = { estimate, estimateBytes, BYTES }
