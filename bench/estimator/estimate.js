// A JavaScript copy of the gateway's estimator
// (modules/ai_token_limit/ngx_http_ai_token_limit_estimate.c) for an
// OpenAI chat request, with its constants as parameters, so that `fit` can
// try other constants without rebuilding the module.  `run` checks that,
// with the C file's constants, it gives exactly what the gateway reserved:
// the measurement itself always comes from the real C code.
'use strict'

const { contentText } = require('./reference')

const CURRENT = {
    ascii: 4,        // ASCII bytes a token
    other: 2,        // non-ASCII bytes a token
    message: 4,      // each message
    priming: 3,      // each request
    tool: 8,         // each tool definition and each tool call
    json: 4,         // a tool's (or call's) JSON bytes a token
}

// ceil(bytes / per), as the C code's (n + per - 1) / per for integers
const div = (n, per) => Math.ceil(n / per - 1e-9)

function textTokens(s, k, per = k.ascii) {
    const b = Buffer.from(s, 'utf8')
    let ascii = 0
    for (const c of b) ascii += c < 0x80
    return div(ascii, per) + div(b.length - ascii, k.other)
}

// cJSON_PrintUnformatted and JSON.stringify agree on the corpus (no
// floats, no control characters but \n): checked by run
const jsonTokens = (v, k) => textTokens(JSON.stringify(v), k, k.json)

function estimate(body, k = CURRENT) {
    let n = k.priming
    for (const m of body.messages) {
        n += k.message + textTokens(contentText(m.content), k)
        for (const c of m.tool_calls || []) n += k.tool + jsonTokens(c, k)
    }
    for (const t of body.tools || []) n += k.tool + jsonTokens(t, k)
    return n
}

module.exports = { estimate, CURRENT }
