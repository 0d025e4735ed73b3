// N streamed requests at once against one token limit: prints how many
// were admitted and refused, the tokens the admitted ones used (from
// their usage chunks), and whether that total stayed within the limit.
// Then one more request: what the gateway says is left must be the limit
// minus exactly what was used and what that request reserved.
//
//   node limit_concurrency.mjs URL N LIMIT MODEL RESERVE PROBE_RESERVE
//
// RESERVE is what each request reserves (its estimate and max_tokens),
// PROBE_RESERVE the last request's.
const [url, n, limit, model, reserve, probeReserve] = process.argv.slice(2);

async function one(i) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model, stream: true, max_tokens: 20,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'hi there' }],
    }),
  });
  const body = await res.text();
  if (res.status !== 200) {
    return { status: res.status, tokens: 0 };
  }
  const m = body.match(/"total_tokens":(\d+)/);
  return { status: 200, tokens: m ? Number(m[1]) : NaN,
           done: body.endsWith('data: [DONE]\n\n') };
}

const all = await Promise.all(Array.from({ length: Number(n) }, (_, i) => one(i)));
const ok = all.filter((r) => r.status === 200);
const refused = all.filter((r) => r.status === 429).length;
const total = ok.reduce((s, r) => s + r.tokens, 0);
console.log(`admitted+refused=${ok.length + refused} all complete: ${ok.every((r) => r.done)}`);
console.log(`some refused: ${refused > 0}`);
console.log(`admitted at least limit/reservation: ${ok.length >= Math.floor(limit / reserve)}`);
console.log(`used within the limit: ${total <= Number(limit)}`);

const res = await fetch(url, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ model, max_tokens: 1,
                         messages: [{ role: 'user', content: 'hi' }] }),
});
await res.text();
const left = Number(res.headers.get('x-ratelimit-remaining-tokens'));
const exact = left === Number(limit) - total - Number(probeReserve);
console.log(`settled exactly: ${exact}` + (exact ? "" : ` (left ${left}, used ${total})`));
