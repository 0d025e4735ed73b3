// The official OpenAI SDK against the gateway: chat.completions.create,
// plain and stream (with stream_options.include_usage); prints what the
// SDK returned so the suite can compare it.
//
//   node openai_chat.mjs BASE_URL API_KEY MODEL
import OpenAI from 'openai';

const [baseURL, apiKey, model = 'gpt-4o'] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 10000 });

const plain = await client.chat.completions.create({
  model,
  messages: [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: 'hello from the sdk' },
  ],
});
console.log(`plain: ${plain.choices[0].message.content}`);
console.log(`plain finish: ${plain.choices[0].finish_reason}`);
console.log(`plain usage: ${plain.usage.prompt_tokens} ${plain.usage.completion_tokens} ${plain.usage.total_tokens}`);

const stream = await client.chat.completions.create({
  model,
  stream: true,
  stream_options: { include_usage: true },
  messages: [{ role: 'user', content: 'stream me please' }],
});
let text = '';
let usage = null;
let chunks = 0;
let finish = null;
for await (const chunk of stream) {
  chunks++;
  if (chunk.choices.length) {
    text += chunk.choices[0].delta.content ?? '';
    finish = chunk.choices[0].finish_reason ?? finish;
  }
  if (chunk.usage) usage = chunk.usage;
}
console.log(`stream: ${text}`);
console.log(`stream finish: ${finish} chunks>3: ${chunks > 3}`);
console.log(`stream usage: ${usage.prompt_tokens} ${usage.completion_tokens} ${usage.total_tokens}`);
