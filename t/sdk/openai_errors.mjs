// The OpenAI SDK sees the gateway's errors as typed API errors with the
// gateway's message: a bad key, a malformed request, a cut stream.
//
//   node openai_errors.mjs BASE_URL GOOD_KEY
import OpenAI from 'openai';

const [baseURL, goodKey] = process.argv.slice(2);

async function report(name, fn) {
  try {
    await fn();
    console.log(`${name}: no error`);
  } catch (e) {
    console.log(`${name}: ${e.constructor.name} ${e.status ?? '-'} ${e.error?.type ?? '-'}: ${e.error?.message ?? e.message}`);
  }
}

const bad = new OpenAI({ baseURL, apiKey: 'sk-not-a-consumer-key', maxRetries: 0 });
const good = new OpenAI({ baseURL, apiKey: goodKey, maxRetries: 0 });

await report('bad key', () => bad.chat.completions.create({
  model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }));

await report('bad messages', () => good.chat.completions.create({
  model: 'gpt-4o', messages: 'not an array' }));

await report('cut stream', async () => {
  const s = await good.chat.completions.create({
    model: 'gpt-4o~disconnect_after=2', stream: true,
    messages: [{ role: 'user', content: 'a b c d e f' }] });
  for await (const _ of s) { /* drain */ }
});
