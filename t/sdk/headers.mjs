// Client headers through the gateway: the OpenAI SDK's organization and
// project, the Anthropic SDK's beta header; prints what the mock provider
// received (GET MOCK_LAST_URL returns the last request it saw).
//
//   node headers.mjs BASE_URL API_KEY MOCK_LAST_URL
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';

const [base, apiKey, last] = process.argv.slice(2);

async function seen() {
  const r = await fetch(last);
  const h = (await r.json()).headers;
  const keys = ['openai-organization', 'openai-project', 'anthropic-beta',
                'x-api-key', 'authorization'];
  return keys.map((k) => `${k}=${h[k] ?? '-'}`).join(' ');
}

const openai = new OpenAI({ baseURL: `${base}/v1`, apiKey, maxRetries: 0,
                            timeout: 10000, organization: 'org-7',
                            project: 'proj-9' });
const r = await openai.chat.completions.create({
  model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
console.log(`openai: ${r.choices[0].message.content}`);
console.log(`upstream saw: ${await seen()}`);

const anthropic = new Anthropic({ baseURL: base, apiKey, maxRetries: 0,
                                  timeout: 10000 });
const m = await anthropic.messages.create({
  model: 'gpt-4o', max_tokens: 10,
  messages: [{ role: 'user', content: 'hey' }] },
  { headers: { 'anthropic-beta': 'prompt-caching-2024-07-31' } });
console.log(`anthropic: ${m.content[0].text}`);
console.log(`upstream saw: ${await seen()}`);
