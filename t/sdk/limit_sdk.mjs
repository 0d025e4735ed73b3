// The official SDKs against a limited location: the rate limit headers
// read through each SDK's raw-response call, and the 429 seen as the
// SDK's RateLimitError with the gateway's message and Retry-After.
//
//   node limit_sdk.mjs BASE_URL KEY
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';

const [base, key] = process.argv.slice(2);
const openai = new OpenAI({ baseURL: `${base}/v1`, apiKey: key, maxRetries: 0 });
const anthropic = new Anthropic({ baseURL: base, apiKey: key, maxRetries: 0 });
const messages = [{ role: 'user', content: 'hi' }];

function show(name, h) {
  console.log(`${name}: ${h.get('x-ratelimit-remaining-requests')}/${h.get('x-ratelimit-limit-requests')} left`);
}

async function refused(name, fn) {
  try {
    await fn();
    console.log(`${name}: no error`);
  } catch (e) {
    const h = e.headers;
    const retry = h?.get ? h.get('retry-after') : h?.['retry-after'];
    console.log(`${name}: ${e.constructor.name} ${e.status} retry-after ${Number(retry) > 0}: ${e.error?.error?.message ?? e.error?.message}`);
  }
}

const a = await openai.chat.completions
  .create({ model: 'gpt-4o', messages }).withResponse();
show('openai', a.response.headers);

const b = await anthropic.messages
  .create({ model: 'claude-3-5-haiku', max_tokens: 10, messages }).withResponse();
show('anthropic', b.response.headers);

await refused('openai', () => openai.chat.completions.create({ model: 'gpt-4o', messages }));
await refused('anthropic', () => anthropic.messages.create({ model: 'claude-3-5-haiku', max_tokens: 10, messages }));
