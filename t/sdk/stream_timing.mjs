// Streams a chat completion with fetch and prints whether the first
// content chunk arrived well before the end (the gateway must pass each
// event on as it comes, not buffer the stream).
//
//   node stream_timing.mjs URL MODEL
const [url, model] = process.argv.slice(2);
const t0 = performance.now();
const res = await fetch(url, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ model, stream: true,
                         messages: [{ role: 'user', content: 'a b c d e' }] }),
});
let first = null;
let body = '';
const decoder = new TextDecoder();
for await (const chunk of res.body) {
  body += decoder.decode(chunk, { stream: true });
  if (first === null && body.includes('"content":"mock "')) {
    first = performance.now() - t0;
  }
}
const total = performance.now() - t0;
console.log(`status ${res.status} done ${body.endsWith('data: [DONE]\n\n')}`);
console.log(`first chunk early: ${first !== null && first < total / 2}`);
