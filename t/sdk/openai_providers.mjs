// The OpenAI SDK against whatever provider the model routes to: plain,
// stream with usage, and tool calls streamed.
//
//   node openai_providers.mjs BASE_URL API_KEY MODEL
import OpenAI from 'openai';

const [baseURL, apiKey, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 10000 });

const plain = await client.chat.completions.create({
  model,
  messages: [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: 'hello from the sdk' },
  ],
});
console.log(`plain: ${plain.choices[0].message.content} (${plain.choices[0].finish_reason})`);
console.log(`plain usage: ${plain.usage.prompt_tokens} ${plain.usage.completion_tokens} ${plain.usage.total_tokens}`);

const stream = await client.chat.completions.create({
  model, stream: true, stream_options: { include_usage: true },
  messages: [{ role: 'user', content: 'stream me please' }],
});
let text = '', usage = null, finish = null;
for await (const chunk of stream) {
  if (chunk.choices.length) {
    text += chunk.choices[0].delta.content ?? '';
    finish = chunk.choices[0].finish_reason ?? finish;
  }
  if (chunk.usage) usage = chunk.usage;
}
console.log(`stream: ${text} (${finish})`);
console.log(`stream usage: ${usage.prompt_tokens} ${usage.completion_tokens} ${usage.total_tokens}`);

const tools = [{ type: 'function', function: {
  name: 'get_weather', description: 'Weather of a city',
  parameters: { type: 'object', properties: { location: { type: 'string' },
                unit: { type: 'string' } }, required: ['location'] } } }];
const ts = await client.chat.completions.create({
  model, stream: true, tools,
  messages: [{ role: 'user', content: 'what is the weather in Paris?' }],
});
const calls = {};
let tfinish = null;
for await (const chunk of ts) {
  const c = chunk.choices[0];
  if (!c) continue;
  for (const d of c.delta.tool_calls ?? []) {
    calls[d.index] ??= { name: '', args: '' };
    if (d.function?.name) calls[d.index].name += d.function.name;
    if (d.function?.arguments) calls[d.index].args += d.function.arguments;
  }
  tfinish = c.finish_reason ?? tfinish;
}
const call = calls[0];
console.log(`tool: ${call.name} ${JSON.stringify(JSON.parse(call.args))} (${tfinish})`);
