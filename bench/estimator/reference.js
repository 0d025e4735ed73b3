// The reference count of a chat request: what OpenAI bills gpt-4o for the
// prompt, counted with the o200k_base BPE of gpt-tokenizer (pinned in
// package.json, read from its bundled vocabulary: no network).
//
// Messages: gpt-tokenizer's countChatCompletionTokens(), which is OpenAI's
// documented formula (3 tokens a message for its framing, the role's and
// the content's tokens, 1 more for a "name", 3 to prime the reply); it
// equals encodeChat()'s length for plain chats (checked in run).
//
// What OpenAI does not document, and how it is counted here:
//
// - tool definitions: OpenAI renders them into a hidden system text.  The
//   primary reference uses gpt-tokenizer's rendering of "functions" (the
//   TypeScript-like "namespace functions { ... }" text that was reverse
//   engineered from the API's counts, plus 9 tokens); refJson is the other
//   reading the issue suggests: each tool's compact JSON counted as text.
//   Both are reported, and the estimate is judged against both.
// - assistant tool_calls: each call counts as the legacy function_call
//   does in gpt-tokenizer (its name's and arguments' tokens, plus 3); the
//   call ids are not counted (the model does not see them as text).
// - content given as an array of parts: the text parts joined with "\n"
//   (as the gateway's core joins them).
'use strict'

const gpt4o = require('gpt-tokenizer/model/gpt-4o')

const count = (s) => gpt4o.countTokens(s)

function contentText(content) {
    if (content == null) return ''
    if (typeof content === 'string') return content
    return content.filter((p) => typeof p.text === 'string')
                  .map((p) => p.text).join('\n')
}

// One request body (an object) -> { ref, refJson, plain }
function reference(body) {
    const messages = []
    let extra = 0          // tool calls beyond the first of a message

    for (const m of body.messages) {
        const msg = { role: m.role, content: contentText(m.content) }
        if (m.name) msg.name = m.name
        const calls = m.tool_calls || []
        calls.forEach((c, i) => {
            const fn = c.function || {}
            if (i === 0) {
                msg.function_call = { name: fn.name, arguments: fn.arguments }
            } else {
                extra += count(fn.name || '') + count(fn.arguments || '') + 3
            }
        })
        messages.push(msg)
    }

    const tools = (body.tools || []).map((t) => t.function)
    const ref = gpt4o.countChatCompletionTokens({
        messages,
        functions: tools.length ? tools : undefined,
    }) + extra

    // the same messages with each tool's JSON counted as plain text
    let refJson = gpt4o.countChatCompletionTokens({ messages }) + extra
    for (const t of body.tools || []) refJson += count(JSON.stringify(t))

    // a plain chat (no tools, no calls) must count as encodeChat does
    const plain = !body.tools && messages.every((m) => !m.function_call)
    if (plain && !messages.some((m) => m.name)) {
        const n = gpt4o.encodeChat(messages).length
        if (n !== ref) {
            throw new Error(`countChatCompletionTokens ${ref} != ` +
                            `encodeChat ${n}`)
        }
    }

    return { ref, refJson: tools.length ? refJson : ref }
}

module.exports = { reference, count, contentText }
